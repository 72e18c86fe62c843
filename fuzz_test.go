package websocket

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzServerInput feeds arbitrary bytes to the server side of a
// connection, as a hostile client could, and checks that the connection
// neither panics nor hangs: every message can be read, and the
// connection closes within the closing timeout.
func FuzzServerInput(f *testing.F) {
	f.Add(encodeFrame(0x81, []byte("hello"), true))
	f.Add(append(frame(false, opText, "frag"), frame(true, opContinuation, "ment")...))
	f.Add(append(frame(true, opPing, "p"), frame(true, opClose, closePayloadOf(1000, "bye"))...))
	f.Add(frame(true, opText, "\xff"))
	f.Add([]byte{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		old := closeTimeout.Swap(int64(100 * time.Millisecond))
		defer closeTimeout.Store(old)

		server, peer := net.Pipe()
		defer peer.Close()
		conn := &Conn{}
		conn.init(server, nil, false, defaultSettings(), 1<<16)
		conn.start()
		go io.Copy(io.Discard, peer)
		go func() {
			peer.Write(data)
			peer.Close()
		}()

		finished := make(chan struct{})
		go func() {
			defer close(finished)
			for {
				_, r, err := conn.ReceiveMessage()
				if err != nil {
					break
				}
				io.Copy(io.Discard, r)
			}
			conn.Close(StatusOK, "")
			conn.GetStatus()
		}()
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Fatalf("connection did not finish on input % x", data)
		}
	})
}
