package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// gorilla echoes as its autobahn test server does, with NextReader,
// NextWriter and io.Copy, and with the write buffer pool that its
// documentation recommends for servers with many connections.
func init() {
	servers["gorilla"] = func(ln net.Listener) error {
		upgrader := websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     func(*http.Request) bool { return true },
			// Without context takeover, as it always does.
			EnableCompression: compression.enabled(),
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			conn, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			if compression.enabled() {
				conn.SetCompressionLevel(compression.level)
			}
			for {
				mt, r, err := conn.NextReader()
				if err != nil {
					return
				}
				w, err := conn.NextWriter(mt)
				if err != nil {
					return
				}
				if _, err := io.Copy(w, r); err != nil {
					return
				}
				if err := w.Close(); err != nil {
					return
				}
			}
		})
		return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	}
}
