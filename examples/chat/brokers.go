package main

import (
	"fmt"

	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/natsbroker"
	"github.com/gowebsock/websocket/hub/redisbroker"
)

// newBroker returns the broker that connects this instance to the others:
// through Redis at redisAddr or NATS at natsURL, or nil, for a chat of
// this process alone, if both are empty.
func newBroker(redisAddr, natsURL string) (hub.Broker, error) {
	switch {
	case redisAddr != "" && natsURL != "":
		return nil, fmt.Errorf("-redis and -nats exclude each other")
	case redisAddr != "":
		return redisbroker.New(redisbroker.Options{Addr: redisAddr})
	case natsURL != "":
		return natsbroker.New(natsbroker.Options{URL: natsURL})
	}
	return nil, nil
}
