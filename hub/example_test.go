package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

// Two instances of a server, on one broker: a message published on one
// reaches the subscribers of the other.  With Redis or NATS the
// instances are processes on different machines; here they share a
// MemoryBroker and its peer.
func Example() {
	broker := hub.NewMemoryBroker()
	newInstance := func(b hub.Broker) (*hub.Hub, string, func()) {
		h, err := hub.New(hub.Options{Broker: b})
		if err != nil {
			log.Fatal(err)
		}
		srv := httptest.NewServer(&websocket.Handler{Handle: func(conn *websocket.Conn) {
			defer conn.Close(websocket.StatusOK, "")
			defer h.Leave(conn)
			if err := h.Subscribe(conn, "news"); err != nil {
				return
			}
			conn.SendText("subscribed")
			for {
				if _, _, err := conn.ReceiveMessage(); err != nil {
					return
				}
			}
		}})
		return h, "ws" + strings.TrimPrefix(srv.URL, "http"), func() { srv.Close(); h.Close() }
	}
	_, urlA, stopA := newInstance(broker)
	defer stopA()
	hubB, _, stopB := newInstance(broker.Peer())
	defer stopB()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := websocket.Dial(ctx, urlA, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(websocket.StatusOK, "")
	first, _ := conn.ReceiveText(100)
	fmt.Println(first)

	pos, err := hubB.Publish(ctx, "news", websocket.Text, []byte("hello from instance B"))
	if err != nil {
		log.Fatal(err)
	}
	text, _ := conn.ReceiveText(100)
	fmt.Println(text, "at offset", pos.Offset)
	// Output:
	// subscribed
	// hello from instance B at offset 1
}
