module github.com/gowebsock/websocket/interop

go 1.24

require github.com/gowebsock/websocket v0.0.0

replace github.com/gowebsock/websocket => ../
