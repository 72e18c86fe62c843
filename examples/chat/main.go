// Command chat is a chat server: every member's messages reach every
// member, and the server announces who joins and leaves.  The page at /
// is the chat client; the WebSocket is at /api/chat.
//
//	go run . -addr localhost:8080
//
// Several chat servers are one room when they share a Redis or a NATS
// server: messages and notices reach the members of every one, a name
// is unique across all, and /names lists everybody.
//
//	go run . -addr localhost:8080 -redis 127.0.0.1:6379
//	go run . -addr localhost:8081 -redis 127.0.0.1:6379
//
// The protocol is the one of the reference chat example.  A client's
// first message is "CHAT <name>"; anything else is refused with close
// code 1002, and a name already in use with 1007.  Every event then
// arrives as a JSON text message {"When": <RFC 3339 time>, "From":
// <name, or "" for the server's notices>, "Text": ...}.  A member sends
// plain text messages; "/names" asks for the list of members, "/quit"
// leaves the chat.
package main

import (
	"embed"
	"flag"
	"io/fs"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

//go:embed static
var static embed.FS

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	redisAddr := flag.String("redis", "", "Redis `address`, host:port, that connects this chat server with others")
	natsURL := flag.String("nats", "", "NATS server `URL` that connects this chat server with others")
	flag.Parse()

	broker, err := newBroker(*redisAddr, *natsURL)
	if err != nil {
		log.Fatal(err)
	}

	h, err := hub.New(hub.Options{
		Broker: broker,
		// The chat protocol has no positions to recover from.
		History: hub.HistoryOptions{Size: -1},
	})
	if err != nil {
		log.Fatal(err)
	}
	r := newRoom(h)
	srv := &http.Server{
		Handler: newMux(r),
		// Without a bound on reading the request header, a client
		// that sends it slowly, a byte now and then, holds a
		// connection for as long as it likes (slowloris).  The
		// WebSocket connections themselves are not affected: the
		// handler takes them over once the header is in.
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat server listening on http://%s/ (WebSocket at /api/chat)", ln.Addr())
	log.Fatal(srv.Serve(ln))
}

// newMux routes the page and the WebSocket endpoint.
func newMux(r *room) *http.ServeMux {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("/api/chat", &websocket.Handler{Handle: r.serve, ServerName: "websocket-chat"})
	mux.Handle("/", http.FileServerFS(files))
	return mux
}
