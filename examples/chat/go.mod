module github.com/gowebsock/websocket/examples/chat

go 1.26.0

replace (
	github.com/gowebsock/websocket => ../..
	github.com/gowebsock/websocket/hub/natsbroker => ../../hub/natsbroker
	github.com/gowebsock/websocket/hub/redisbroker => ../../hub/redisbroker
)

require (
	github.com/gowebsock/websocket v0.0.0-00010101000000-000000000000
	github.com/gowebsock/websocket/hub/natsbroker v0.0.0-00010101000000-000000000000
	github.com/gowebsock/websocket/hub/redisbroker v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/klauspost/compress v1.20.0 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
