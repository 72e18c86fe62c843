// Command echo is a WebSocket echo server: every message a client sends
// comes back to it unchanged.  The page at / opens a WebSocket to the
// server from a browser, to try it out by hand.
//
//	go run ./examples/echo -addr 127.0.0.1:8080
package main

import (
	_ "embed"
	"flag"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/gowebsock/websocket"
)

//go:embed index.html
var indexPage []byte

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	flag.Parse()

	http.Handle("/echo", &websocket.Handler{Handle: echo, ServerName: "websocket-echo"})
	http.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(indexPage)
	})
	srv := &http.Server{
		Addr: *addr,
		// Without a bound on reading the request header, a client
		// that sends it a byte now and then holds a connection for
		// as long as it likes (slowloris).  WebSocket connections are
		// not affected: the handler takes them over once the header
		// is in.
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("echo server listening on %s (page at /, WebSocket at /echo)", *addr)
	log.Fatal(srv.ListenAndServe())
}

// echo sends every message back to the client, streaming it, so that
// even very large messages need little memory.
func echo(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")
	for {
		tp, r, err := conn.ReceiveMessage()
		if err != nil {
			return
		}
		w, err := conn.SendMessage(tp)
		if err != nil {
			// The message must still be read to its end.
			io.Copy(io.Discard, r)
			return
		}
		if _, err := io.Copy(w, r); err != nil {
			io.Copy(io.Discard, r)
		}
		if err := w.Close(); err != nil {
			return
		}
	}
}
