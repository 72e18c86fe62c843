package natsbroker_test

import (
	"log"

	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/natsbroker"
)

// Each instance of an application makes a broker of its own, connected
// to the same NATS server, and a hub on it.
func Example() {
	b, err := natsbroker.New(natsbroker.Options{URL: "nats://127.0.0.1:4222", Prefix: "chat"})
	if err != nil {
		log.Fatal(err)
	}
	if !b.JetStream() {
		log.Print("the server has no JetStream: history and positions are each instance's own")
	}
	h, err := hub.New(hub.Options{Broker: b})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close() // closes the broker too
	// Serve WebSocket connections that subscribe with h.SubscribeWith.
}
