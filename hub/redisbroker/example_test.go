package redisbroker_test

import (
	"log"
	"net/http"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/redisbroker"
)

// Each instance of a server makes a broker of its own, connected to the
// same Redis, and a hub on it: a message published on any instance
// reaches the subscribers of every instance.
func ExampleNew() {
	b, err := redisbroker.New(redisbroker.Options{Addr: "127.0.0.1:6379", Prefix: "chat:"})
	if err != nil {
		log.Fatal(err)
	}
	h, err := hub.New(hub.Options{Broker: b})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close() // closes b too

	http.Handle("/news", &websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		defer h.Leave(conn)
		if err := h.Subscribe(conn, "news"); err != nil {
			return
		}
		for {
			if _, _, err := conn.ReceiveMessage(); err != nil {
				return
			}
		}
	}})
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}
