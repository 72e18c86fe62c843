package websocket

import (
	"fmt"
	"io"
	"testing"
	"unicode/utf8"
)

// BenchmarkEcho measures a full round trip over loopback TCP: the
// client sends a message, the server echoes it with ReceiveMessage and
// SendMessage, the client reads it back.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{16, 1024, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			url := startServer(&testing.T{}, &Handler{Handle: echoHandler})
			conn := dialTest(&testing.T{}, url, nil)
			defer conn.Close(StatusOK, "")
			msg := make([]byte, size)
			buf := make([]byte, size)
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := conn.SendBinary(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := conn.ReceiveBinary(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReceiveMessage measures reading messages that the peer sends
// as fast as it can, the path of a server that mostly listens.
func BenchmarkReceiveMessage(b *testing.B) {
	for _, size := range []int{16, 1024, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			msg := make([]byte, size)
			stop := make(chan struct{})
			url := startServer(&testing.T{}, &Handler{Handle: func(conn *Conn) {
				defer conn.Close(StatusOK, "")
				for {
					select {
					case <-stop:
						return
					default:
					}
					if conn.SendBinary(msg) != nil {
						return
					}
				}
			}})
			conn := dialTest(&testing.T{}, url, nil)
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_, r, err := conn.ReceiveMessage()
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := r.Read(buf); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			close(stop)
			go func() {
				for conn.SendText("") == nil {
					if _, r, err := conn.ReceiveMessage(); err == nil {
						io.Copy(io.Discard, r)
					}
				}
			}()
			conn.Close(StatusOK, "")
		})
	}
}

func BenchmarkMask(b *testing.B) {
	key := [4]byte{1, 2, 3, 4}
	for _, size := range []int{16, 1024, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			data := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				maskBytes(key, 1, data)
			}
		})
	}
}

func BenchmarkUTF8Validator(b *testing.B) {
	text := []byte(string(make([]byte, 32<<10)) + "κόσμε €")
	for _, chunk := range []int{1000, 32 << 10} {
		b.Run(fmt.Sprintf("chunks of %dB", chunk), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				var v utf8Validator
				for i := 0; i < len(text); i += chunk {
					v.write(text[i:min(i+chunk, len(text))])
				}
				if !v.complete() {
					b.Fatal("invalid")
				}
			}
		})
	}
	b.Run("stdlib utf8.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			utf8.Valid(text)
		}
	})
}
