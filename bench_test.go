package websocket

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// replayConn is a net.Conn whose peer sends the same bytes over and
// over, as fast as they can be read, and swallows what it is sent: the
// network at its fastest, to measure the connection's own work.
type replayConn struct {
	net.Conn // not used; satisfies the rest of the interface
	stream   []byte
	pos      int
	closed   atomic.Bool
}

func (r *replayConn) Read(p []byte) (int, error) {
	if r.closed.Load() {
		return 0, net.ErrClosed
	}
	n := copy(p, r.stream[r.pos:])
	r.pos = (r.pos + n) % len(r.stream)
	return n, nil
}

func (r *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (r *replayConn) Close() error                     { r.closed.Store(true); return nil }
func (r *replayConn) SetDeadline(time.Time) error      { return nil }
func (r *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (r *replayConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkReceiveMessage measures a server reading masked client
// messages, in a receive loop, from a network that never waits.
func BenchmarkReceiveMessage(b *testing.B) {
	for _, tc := range []struct {
		op   opcode
		size int
	}{{opBinary, 16}, {opBinary, 1024}, {opText, 1024}, {opBinary, 64 << 10}} {
		b.Run(fmt.Sprintf("%v/%dB", tc.op, tc.size), func(b *testing.B) {
			var stream []byte
			for len(stream) < 1<<20 {
				stream = append(stream, encodeFrame(0x80|byte(tc.op), bytes.Repeat([]byte("a"), tc.size), true)...)
			}
			rc := &replayConn{stream: stream}
			conn := &Conn{}
			conn.init(rc, nil, false, defaultSettings(), 0)
			conn.start()
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
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
			// The replayed stream holds no close frame: end it, so
			// that Close need not wait for one.
			rc.Close()
			conn.Close(StatusOK, "")
		})
	}
}

// replayServer returns a server connection that reads the message
// stream forever from a replayConn.
func replayServer(stream []byte) (*Conn, *replayConn) {
	rc := &replayConn{stream: stream}
	conn := &Conn{}
	conn.init(rc, nil, false, defaultSettings(), 0)
	conn.start()
	return conn, rc
}

// BenchmarkReceive measures the three receive calls on 1 KiB messages,
// from a network that never waits.  ReceiveText allocates the string it
// returns, and nothing else.
func BenchmarkReceive(b *testing.B) {
	text := bytes.Repeat([]byte("κόσμε ab"), 1024/10)[:1024]
	for _, tc := range []struct {
		name    string
		op      opcode
		receive func(c *Conn, buf []byte) error
	}{
		{"ReceiveMessage", opBinary, func(c *Conn, buf []byte) error {
			_, r, err := c.ReceiveMessage()
			for err == nil {
				_, err = r.Read(buf)
			}
			if err == io.EOF {
				err = nil
			}
			return err
		}},
		{"ReceiveBinary", opBinary, func(c *Conn, buf []byte) error {
			_, err := c.ReceiveBinary(buf)
			return err
		}},
		{"ReceiveText", opText, func(c *Conn, buf []byte) error {
			_, err := c.ReceiveText(len(buf))
			return err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var stream []byte
			for len(stream) < 1<<20 {
				stream = append(stream, encodeFrame(0x80|byte(tc.op), text, true)...)
			}
			conn, rc := replayServer(stream)
			buf := make([]byte, 4096)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.receive(conn, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			rc.Close()
			conn.Close(StatusOK, "")
		})
	}
}

// BenchmarkSend measures the send calls to a network that takes
// everything at once.
func BenchmarkSend(b *testing.B) {
	for _, size := range []int{16, 1024, 64 << 10} {
		payload := bytes.Repeat([]byte("a"), size)
		text := string(payload)
		for _, tc := range []struct {
			name string
			send func(c *Conn) error
		}{
			{"SendText", func(c *Conn) error { return c.SendText(text) }},
			{"SendBinary", func(c *Conn) error { return c.SendBinary(payload) }},
			{"SendMessage", func(c *Conn) error {
				w, err := c.SendMessage(Binary)
				if err != nil {
					return err
				}
				w.Write(payload)
				return w.Close()
			}},
		} {
			b.Run(fmt.Sprintf("%s/%dB", tc.name, size), func(b *testing.B) {
				rc := &sinkConn{closed: make(chan struct{})}
				conn := &Conn{}
				conn.init(rc, nil, false, defaultSettings(), 0)
				conn.start()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if err := tc.send(conn); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				rc.Close()
				conn.Close(StatusOK, "")
			})
		}
	}
}

// sinkConn is a net.Conn that swallows what it is sent and has nothing
// to read until it is closed.
type sinkConn struct {
	net.Conn // not used; satisfies the rest of the interface
	closed   chan struct{}
	once     sync.Once
}

func (s *sinkConn) Read(p []byte) (int, error) {
	<-s.closed
	return 0, net.ErrClosed
}

func (s *sinkConn) Write(p []byte) (int, error)      { return len(p), nil }
func (s *sinkConn) Close() error                     { s.once.Do(func() { close(s.closed) }); return nil }
func (s *sinkConn) SetDeadline(time.Time) error      { return nil }
func (s *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }
