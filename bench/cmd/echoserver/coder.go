package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// coder echoes as its README's example does, with Reader, Writer and
// io.Copy, without compression unless -compress asks for it.
func init() {
	servers["coder"] = func(ln net.Listener) error {
		opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
		switch compression.mode {
		case "notakeover":
			opts.CompressionMode = websocket.CompressionNoContextTakeover
		case "takeover":
			opts.CompressionMode = websocket.CompressionContextTakeover
		}
		opts.CompressionThreshold = compression.threshold
		mux := http.NewServeMux()
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			conn, err := websocket.Accept(w, r, opts)
			if err != nil {
				return
			}
			defer conn.CloseNow()
			conn.SetReadLimit(-1)
			ctx := context.Background()
			for {
				typ, r, err := conn.Reader(ctx)
				if err != nil {
					return
				}
				w, err := conn.Writer(ctx, typ)
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
