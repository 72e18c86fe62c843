package websocket

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// statusServer runs the echo handler with a read limit and reports the
// GetStatus result of every connection on the returned channel.
func statusServer(t *testing.T, limit int64) (string, <-chan [2]any) {
	statuses := make(chan [2]any, 1)
	url := startServer(t, &Handler{Handle: func(conn *Conn) {
		conn.SetReadLimit(limit)
		go func() {
			code, reason := conn.GetStatus()
			statuses <- [2]any{code, reason}
		}()
		echoHandler(conn)
	}})
	return url, statuses
}

func waitStatus(t *testing.T, statuses <-chan [2]any, code Status, reason string) {
	t.Helper()
	select {
	case got := <-statuses:
		if got[0] != code || got[1] != reason {
			t.Errorf("GetStatus = %v %q, want %v %q", got[0], got[1], code, reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GetStatus did not return")
	}
}

// TestProtocolViolations sends frames that RFC 6455 forbids and checks
// the status code that the server fails the connection with.
func TestProtocolViolations(t *testing.T) {
	long := strings.Repeat("x", 126)
	cases := []struct {
		name   string
		frames [][]byte
		want   Status
	}{
		{"unmasked frame", [][]byte{encodeFrame(0x81, []byte("hi"), false)}, StatusProtocolError},
		{"RSV1 without extension", [][]byte{encodeFrame(0xC1, []byte("hi"), true)}, StatusProtocolError},
		{"RSV3 without extension", [][]byte{encodeFrame(0x91, []byte("hi"), true)}, StatusProtocolError},
		{"reserved data opcode", [][]byte{frame(true, 3, "")}, StatusProtocolError},
		{"reserved control opcode", [][]byte{frame(true, 0xB, "")}, StatusProtocolError},
		{"fragmented ping", [][]byte{frame(false, opPing, "")}, StatusProtocolError},
		{"oversized ping", [][]byte{frame(true, opPing, long)}, StatusProtocolError},
		{"oversized close", [][]byte{frame(true, opClose, "\x03\xe8"+long)}, StatusProtocolError},
		{"continuation without start", [][]byte{frame(true, opContinuation, "x")}, StatusProtocolError},
		{"new message inside fragmented message", [][]byte{frame(false, opText, "a"), frame(true, opText, "b")}, StatusProtocolError},
		{"binary inside fragmented text", [][]byte{frame(false, opText, "a"), frame(true, opBinary, "b")}, StatusProtocolError},
		{"invalid UTF-8", [][]byte{frame(true, opText, "ok\xff")}, StatusInvalidData},
		{"surrogate in UTF-8", [][]byte{frame(true, opText, "\xed\xa0\x80")}, StatusInvalidData},
		{"overlong UTF-8", [][]byte{frame(true, opText, "\xc0\xaf")}, StatusInvalidData},
		{"invalid UTF-8 across fragments", [][]byte{frame(false, opText, "\xce"), frame(true, opContinuation, "\x41")}, StatusInvalidData},
		{"truncated UTF-8 at message end", [][]byte{frame(false, opText, "ok"), frame(true, opContinuation, "\xe2\x82")}, StatusInvalidData},
		{"invalid UTF-8 after a valid fragment", [][]byte{frame(false, opText, "κόσμε"), frame(false, opContinuation, "\xf4\x90\x80\x80"), frame(true, opContinuation, "")}, StatusInvalidData},
		{"truncated UTF-8 before an empty final fragment", [][]byte{frame(false, opText, "ab\xe2\x82"), frame(true, opContinuation, "")}, StatusInvalidData},
		{"message over the read limit", [][]byte{frame(true, opBinary, strings.Repeat("b", 1001))}, StatusTooLarge},
		{"fragments over the read limit", [][]byte{frame(false, opBinary, strings.Repeat("b", 600)), frame(true, opContinuation, strings.Repeat("b", 600))}, StatusTooLarge},
		{"fragment lengths overflowing the limit check", [][]byte{frame(false, opBinary, "0123456789"), {0x80, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4}}, StatusTooLarge},
		{"64-bit length with the top bit set", [][]byte{{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}}, StatusProtocolError},
		{"close with one byte", [][]byte{frame(true, opClose, "\x03")}, StatusProtocolError},
		{"close code 999", [][]byte{frame(true, opClose, closePayloadOf(999, ""))}, StatusProtocolError},
		{"close code 1004", [][]byte{frame(true, opClose, closePayloadOf(1004, ""))}, StatusProtocolError},
		{"close code 1005", [][]byte{frame(true, opClose, closePayloadOf(1005, ""))}, StatusProtocolError},
		{"close code 1006", [][]byte{frame(true, opClose, closePayloadOf(1006, ""))}, StatusProtocolError},
		{"close code 1015", [][]byte{frame(true, opClose, closePayloadOf(1015, ""))}, StatusProtocolError},
		{"close code 2999", [][]byte{frame(true, opClose, closePayloadOf(2999, ""))}, StatusProtocolError},
		{"close code 5000", [][]byte{frame(true, opClose, closePayloadOf(5000, ""))}, StatusProtocolError},
		{"close reason not UTF-8", [][]byte{frame(true, opClose, closePayloadOf(1000, "\xff"))}, StatusInvalidData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			url, statuses := statusServer(t, 1000)
			p := dialRaw(t, url, nil)
			p.write(tc.frames...)
			p.expectClose(tc.want)
			<-statuses
		})
	}
}

func TestFragmentedUTF8(t *testing.T) {
	checkGoroutines(t)
	url, statuses := statusServer(t, 0)
	p := dialRaw(t, url, nil)
	// "€" is E2 82 AC: split inside the character, with an empty
	// fragment and a ping between the parts.
	p.write(
		frame(false, opText, "price: \xe2"),
		frame(false, opContinuation, ""),
		frame(true, opPing, "are you there?"),
		frame(false, opContinuation, "\x82"),
		frame(true, opPong, "unsolicited"),
		frame(true, opContinuation, "\xac 5"),
	)
	fin, op, payload, err := p.readFrame()
	if err != nil || !fin || op != opPong || string(payload) != "are you there?" {
		t.Fatalf("got %v %v %q %v, want the pong", fin, op, payload, err)
	}
	if op, msg := p.readMessage(); op != opText || msg != "price: € 5" {
		t.Fatalf("echo: %v %q", op, msg)
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "bye")))
	p.expectClose(StatusOK)
	waitStatus(t, statuses, StatusOK, "bye")
}

func TestPeerClosesWithoutCode(t *testing.T) {
	checkGoroutines(t)
	url, statuses := statusServer(t, 0)
	p := dialRaw(t, url, nil)
	p.write(frame(true, opClose, ""))
	p.expectClose(StatusNotSent)
	waitStatus(t, statuses, StatusNotSent, "")
}

func TestPeerVanishes(t *testing.T) {
	checkGoroutines(t)
	url, statuses := statusServer(t, 0)
	p := dialRaw(t, url, nil)
	p.write(frame(false, opBinary, "part of a message"))
	p.conn.Close()
	waitStatus(t, statuses, StatusDropped, "")
}

func TestEarlyFrameAfterHandshake(t *testing.T) {
	checkGoroutines(t)
	url, statuses := statusServer(t, 0)
	// The frame travels in the same packet as the request, so the
	// HTTP server reads it into its buffer before handing over.
	p := dialRaw(t, url, frame(true, opText, "early bird"))
	if op, msg := p.readMessage(); op != opText || msg != "early bird" {
		t.Fatalf("echo: %v %q", op, msg)
	}
	p.write(frame(true, opClose, closePayloadOf(4000, "")))
	p.expectClose(4000)
	waitStatus(t, statuses, 4000, "")
}

// TestReadLimitSetLate sets the read limit after the reader goroutine
// may already have seen the start of an oversized message.
func TestReadLimitSetLate(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: func(conn *Conn) {
		time.Sleep(50 * time.Millisecond)
		conn.SetReadLimit(1000)
		echoHandler(conn)
	}})
	p := dialRaw(t, url, frame(true, opBinary, strings.Repeat("b", 1001)))
	p.expectClose(StatusTooLarge)
}

// TestPingWhileWriterBlocked: the server is stuck writing a big message
// to a peer that reads only after it has sent its own message, with a
// ping inside.  Answering the ping must not stop the server's reading.
func TestPingWhileWriterBlocked(t *testing.T) {
	checkGoroutines(t)
	big := make([]byte, 32<<20)
	received := make(chan string, 1)
	url := startServer(t, &Handler{Handle: func(conn *Conn) {
		defer conn.Close(StatusOK, "")
		sent := make(chan error, 1)
		go func() { sent <- conn.SendBinary(big) }()
		text, err := conn.ReceiveText(100)
		if err != nil {
			text = err.Error()
		}
		received <- text
		<-sent
		conn.ReceiveMessage() // wait for the peer's close
	}})
	p := dialRaw(t, url, nil)
	time.Sleep(50 * time.Millisecond) // let the big write fill the socket buffers
	p.write(frame(false, opText, "hello "), frame(true, opPing, "p"), frame(true, opContinuation, "world"))
	select {
	case text := <-received:
		if text != "hello world" {
			t.Fatalf("server received %q", text)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server's reading is blocked behind its own writer")
	}
	if op, msg := p.readMessage(); op != opBinary || len(msg) != len(big) {
		t.Fatalf("got %v of %d bytes", op, len(msg))
	}
	_, op, payload, err := p.readFrame()
	if err != nil || op != opPong || string(payload) != "p" {
		t.Fatalf("got %v %q %v, want the pong", op, payload, err)
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectClose(StatusOK)
}

// TestIdleApplication: the application neither receives nor sends, yet
// pings are answered and the peer's close completes the connection.
func TestIdleApplication(t *testing.T) {
	checkGoroutines(t)
	statuses := make(chan [2]any, 1)
	url := startServer(t, &Handler{Handle: func(conn *Conn) {
		code, reason := conn.GetStatus() // blocks; never receives
		statuses <- [2]any{code, reason}
	}})
	p := dialRaw(t, url, nil)
	for _, payload := range []string{"one", "two"} {
		p.write(frame(true, opPing, payload))
		_, op, got, err := p.readFrame()
		if err != nil || op != opPong || string(got) != payload {
			t.Fatalf("got %v %q %v, want the pong %q", op, got, err, payload)
		}
	}
	p.write(frame(true, opClose, closePayloadOf(StatusGoingAway, "idle")))
	p.expectClose(StatusGoingAway)
	waitStatus(t, statuses, StatusGoingAway, "idle")
}

// TestNoReadingPastProtocolError: two goroutines receive when the peer
// sends an illegal frame whose payload looks like a frame of its own.
// Neither receiver may see that payload as a message.
func TestNoReadingPastProtocolError(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 100*time.Millisecond)
	// A continuation frame without a message, masked with a zero key
	// so that its payload is a valid text frame on the wire.
	inner := frame(true, opText, "INJECTED")
	illegal := append([]byte{0x80, 0x80 | byte(len(inner)), 0, 0, 0, 0}, inner...)
	for round := range 50 {
		results := make(chan error, 2)
		url := startServer(t, &Handler{Handle: func(conn *Conn) {
			defer conn.Close(StatusOK, "")
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, r, err := conn.ReceiveMessage()
					if err == nil {
						b, _ := io.ReadAll(r)
						err = fmt.Errorf("got message %q", b)
					}
					results <- err
				}()
			}
			wg.Wait()
		}})
		p := dialRaw(t, url, nil)
		time.Sleep(2 * time.Millisecond) // both receivers are waiting
		p.write(illegal)
		p.expectClose(StatusProtocolError)
		for range 2 {
			if err := <-results; !errors.Is(err, ErrConnClosed) {
				t.Fatalf("round %d: a receiver got %v, want ErrConnClosed", round, err)
			}
		}
	}
}

// TestReadLimitRaisedLate raises the read limit after the reader
// goroutine may have seen the start of a message above the handler's.
func TestReadLimitRaisedLate(t *testing.T) {
	checkGoroutines(t)
	got := make(chan error, 1)
	url := startServer(t, &Handler{ReadLimit: 1024, Handle: func(conn *Conn) {
		defer conn.Close(StatusOK, "")
		time.Sleep(20 * time.Millisecond) // authentication, say
		conn.SetReadLimit(0)
		_, r, err := conn.ReceiveMessage()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		got <- err
	}})
	p := dialRaw(t, url, nil)
	go p.conn.Write(frame(true, opBinary, strings.Repeat("b", 1<<20)))
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("message above the handler's limit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not received")
	}
	// The handler returned and closes; answer its close frame.
	if _, op, _, err := p.readFrame(); err != nil || op != opClose {
		t.Fatalf("got %v, %v; want the server's close frame", op, err)
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectEOF()
}
