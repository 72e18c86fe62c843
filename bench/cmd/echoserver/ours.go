package main

import (
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gowebsock/websocket"
)

// ours echoes with the handler of this module's README: ReceiveMessage,
// SendMessage and io.Copy, which streams any message.
func init() {
	servers["ours"] = func(ln net.Listener) error {
		h := &websocket.Handler{Handle: oursEcho}
		if compression.enabled() {
			threshold := compression.threshold
			if threshold <= 0 {
				threshold = -1 // every message
			}
			h.EnableCompression = true
			h.CompressionOptions = websocket.CompressionOptions{
				Level:                 compression.level,
				Threshold:             threshold,
				ServerContextTakeover: compression.takeover(),
				ClientContextTakeover: compression.takeover(),
			}
		}
		mux := http.NewServeMux()
		mux.Handle("/ws", h)
		return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	}
}

func oursEcho(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")
	for {
		tp, r, err := conn.ReceiveMessage()
		if err != nil {
			return
		}
		w, err := conn.SendMessage(tp)
		if err != nil {
			io.Copy(io.Discard, r)
			return
		}
		io.Copy(w, r)
		w.Close()
	}
}
