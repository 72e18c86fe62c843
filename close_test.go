package websocket

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// closeServer runs handle for the first connection and passes the
// connection on, so that the test can inspect it.
func closeServer(t *testing.T, handle func(*Conn)) (string, <-chan *Conn) {
	conns := make(chan *Conn, 1)
	url := startServer(t, &Handler{Handle: func(conn *Conn) {
		conns <- conn
		handle(conn)
	}})
	return url, conns
}

// rawPeerAndConn connects a raw peer to a server whose handler holds the
// connection until it ends, and returns the peer and the server's side.
func rawPeerAndConn(t *testing.T) (*rawPeer, *Conn) {
	t.Helper()
	url, conns := closeServer(t, func(conn *Conn) { conn.GetStatus() })
	p := dialRaw(t, url, nil)
	return p, <-conns
}

func TestCloseArguments(t *testing.T) {
	checkGoroutines(t)
	results := make(chan []error, 1)
	url, _ := closeServer(t, func(conn *Conn) {
		results <- []error{
			conn.Close(999, ""),
			conn.Close(1010, ""), // only clients may send it
			conn.Close(StatusDropped, ""),
			conn.Close(5000, ""),
			conn.Close(StatusOK, strings.Repeat("x", 124)),
			conn.SendText("still open"),
			conn.Close(StatusNotSent, "ignored"),
			conn.SendText("closed now"),
			conn.Close(StatusOK, ""),
		}
	})
	p := dialRaw(t, url, nil)
	if op, msg := p.readMessage(); op != opText || msg != "still open" {
		t.Fatalf("got %v %q", op, msg)
	}
	_, op, payload, err := p.readFrame()
	if err != nil || op != opClose || len(payload) != 0 {
		t.Fatalf("got %v %q %v, want an empty close frame", op, payload, err)
	}
	p.write(frame(true, opClose, ""))
	p.expectEOF()

	errs := <-results
	want := []error{ErrStatusCode, ErrStatusCode, ErrStatusCode, ErrStatusCode, ErrTooLarge, nil, nil, ErrConnClosed, ErrConnClosed}
	for i, err := range errs {
		if !errors.Is(err, want[i]) || (want[i] == nil) != (err == nil) {
			t.Errorf("call %d returned %v, want %v", i, err, want[i])
		}
	}
}

func TestCloseWaitsForPeer(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	done := make(chan time.Duration, 1)
	url, conns := closeServer(t, func(conn *Conn) {
		start := time.Now()
		conn.Close(StatusGoingAway, "shutting down")
		done <- time.Since(start)
	})
	p := dialRaw(t, url, nil)
	conn := <-conns
	_, op, payload, err := p.readFrame()
	if err != nil || op != opClose || string(payload) != closePayloadOf(StatusGoingAway, "shutting down") {
		t.Fatalf("got %v %q %v", op, payload, err)
	}
	// The peer never answers: Close gives up after the timeout.
	d := <-done
	if d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("Close returned after %v, want about 300ms", d)
	}
	if code, _ := conn.GetStatus(); code != StatusDropped {
		t.Errorf("GetStatus = %v, want StatusDropped", code)
	}
	p.expectEOF()
}

func TestCloseHandshakeFromServer(t *testing.T) {
	checkGoroutines(t)
	url, conns := closeServer(t, func(conn *Conn) {
		conn.Close(4001, "bye")
	})
	p := dialRaw(t, url, nil)
	conn := <-conns
	_, op, payload, err := p.readFrame()
	if err != nil || op != opClose || string(payload) != closePayloadOf(4001, "bye") {
		t.Fatalf("got %v %q %v", op, payload, err)
	}
	p.write(frame(true, opClose, closePayloadOf(4001, "")))
	p.expectEOF()
	if code, reason := conn.GetStatus(); code != 4001 || reason != "" {
		t.Errorf("GetStatus = %v %q", code, reason)
	}
	if _, _, err := conn.ReceiveMessage(); !errors.Is(err, ErrConnClosed) {
		t.Errorf("ReceiveMessage after close: %v", err)
	}
	if err := conn.SendBinary(nil); !errors.Is(err, ErrConnClosed) {
		t.Errorf("SendBinary after close: %v", err)
	}
	if _, err := conn.SendMessage(Text); !errors.Is(err, ErrConnClosed) {
		t.Errorf("SendMessage after close: %v", err)
	}
}

// TestCloseWithUnreadMessage closes while the application holds a
// message that it has not read: the rest of the message must be skipped
// to find the peer's close frame.
func TestCloseWithUnreadMessage(t *testing.T) {
	checkGoroutines(t)
	readErr := make(chan error, 1)
	url, conns := closeServer(t, func(conn *Conn) {
		_, r, err := conn.ReceiveMessage()
		if err != nil {
			readErr <- err
			return
		}
		conn.Close(StatusPolicyViolation, "no thanks")
		_, err = r.Read(make([]byte, 10))
		readErr <- err
	})
	p := dialRaw(t, url, nil)
	conn := <-conns
	p.write(frame(true, opBinary, strings.Repeat("z", 100000)))
	_, op, _, err := p.readFrame()
	if err != nil || op != opClose {
		t.Fatalf("got %v %v, want close", op, err)
	}
	p.write(frame(true, opClose, closePayloadOf(StatusPolicyViolation, "ok")))
	p.expectEOF()
	if code, reason := conn.GetStatus(); code != StatusPolicyViolation || reason != "ok" {
		t.Errorf("GetStatus = %v %q", code, reason)
	}
	if err := <-readErr; !errors.Is(err, ErrConnClosed) {
		t.Errorf("reading a message cut off by Close: %v", err)
	}
}

// TestPeerCloseWakesReceiver checks that a goroutine blocked in
// ReceiveMessage learns of the peer's close.
func TestPeerCloseWakesReceiver(t *testing.T) {
	checkGoroutines(t)
	received := make(chan error, 1)
	url, _ := closeServer(t, func(conn *Conn) {
		_, _, err := conn.ReceiveMessage()
		received <- err
		conn.Close(StatusOK, "")
	})
	p := dialRaw(t, url, nil)
	p.write(frame(true, opClose, closePayloadOf(StatusGoingAway, "tab closed")))
	p.expectClose(StatusGoingAway)
	select {
	case err := <-received:
		if !errors.Is(err, ErrConnClosed) {
			t.Errorf("ReceiveMessage: %v, want ErrConnClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReceiveMessage still blocked after the peer closed")
	}
}

func TestClientRejectsMaskedServerFrame(t *testing.T) {
	checkGoroutines(t)
	// A hand-written server that masks its frame, which RFC 6455,
	// section 5.1, forbids.
	url, conns := closeServer(t, func(conn *Conn) {})
	client := dialTest(t, url, nil)
	server := <-conns
	server.writeMu.Lock()
	server.netConn.Write(encodeFrame(0x81, []byte("masked"), true))
	server.writeMu.Unlock()

	if _, _, err := client.ReceiveMessage(); !errors.Is(err, ErrConnClosed) {
		t.Errorf("ReceiveMessage: %v, want an error wrapping ErrConnClosed", err)
	}
	if code, _ := server.GetStatus(); code != StatusProtocolError {
		t.Errorf("server saw close code %v, want 1002", code)
	}
	server.Close(StatusOK, "")
}
