package main

import (
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/pool/pbufio"
	"github.com/gobwas/ws"
)

// gobwas echoes with the low-level API of its README: ReadHeader, the
// payload, Cipher to unmask, WriteHeader and the payload back, on a
// goroutine per connection that holds no buffer while it waits.  The
// reply goes out through a pooled bufio.Writer (gobwas/pool), in one
// write.  With compression, it is gobwasFlate instead.
func init() {
	servers["gobwas"] = func(ln net.Listener) error {
		mux := http.NewServeMux()
		if compression.enabled() {
			mux.HandleFunc("/ws", gobwasFlate)
			return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
		}
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			go gobwasEcho(conn)
		})
		return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	}
}

func gobwasEcho(conn net.Conn) {
	defer conn.Close()
	var payload []byte
	for {
		header, err := ws.ReadHeader(conn)
		if err != nil {
			return
		}
		if int64(cap(payload)) < header.Length {
			payload = make([]byte, header.Length)
		}
		payload = payload[:header.Length]
		if _, err := io.ReadFull(conn, payload); err != nil {
			return
		}
		if header.Masked {
			ws.Cipher(payload, header.Mask, 0)
		}
		header.Masked = false
		switch header.OpCode {
		case ws.OpClose:
			ws.WriteFrame(conn, ws.NewCloseFrame(payload))
			return
		case ws.OpPing:
			header.OpCode = ws.OpPong
		case ws.OpPong:
			continue
		}
		bw := pbufio.GetWriter(conn, ws.MaxHeaderSize+len(payload))
		ws.WriteHeader(bw, header)
		bw.Write(payload)
		err = bw.Flush()
		pbufio.PutWriter(bw)
		if err != nil {
			return
		}
		if cap(payload) > 64<<10 {
			payload = nil // do not hold a large buffer while waiting
		}
	}
}
