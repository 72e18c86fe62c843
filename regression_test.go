package websocket

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestBroadcastWaitsForStreamedMessage: a broadcast that finds a
// streamed message in progress is queued, and goes out after the
// message, not between its fragments (RFC 6455, section 5.4: the data
// frames of two messages must not interleave).  It did go out between
// them, when every writer drained the whole queue before its frame.
func TestBroadcastWaitsForStreamedMessage(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 200*time.Millisecond)
	p, sc := rawPeerAndConn(t)
	defer sc.Close(StatusOK, "")

	w, err := sc.SendMessage(Binary)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 70000) // more than holdSize: each Write sends a fragment
	if _, err := w.Write(chunk[:100]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(chunk); err != nil {
		t.Fatal(err)
	}
	if errs := BroadcastText(context.Background(), []*Conn{sc}, "broadcast"); len(errs) != 0 {
		t.Fatalf("BroadcastText: %v", errs)
	}
	if _, err := w.Write(chunk); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	inMessage := false
	for i := 0; i < 5; i++ {
		fin, op, payload, err := p.readFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		t.Logf("frame %d: %v fin=%v len=%d", i, op, fin, len(payload))
		if op.IsControl() {
			continue
		}
		if inMessage && op != opContinuation {
			t.Fatalf("a %v frame (%q) went out inside a fragmented message", op, payload)
		}
		if op == opText && string(payload) == "broadcast" && !inMessage {
			// The broadcast came after the whole message: fine.
			return
		}
		inMessage = !fin
	}
}

// TestFirstLargeWriteOfMessage: a first Write of more than 64 KiB to a
// message writer, with nothing held yet, sends its fragment.  It once
// panicked, slicing the missing held buffer, and left the write lock
// locked for good.
func TestFirstLargeWriteOfMessage(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 200*time.Millisecond)
	url, conns := closeServer(t, func(conn *Conn) { conn.GetStatus() })
	p := dialRaw(t, url, nil)
	_ = p
	sc := <-conns

	w, err := sc.SendMessage(Binary)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("the first Write of 70000 bytes panicked: %v", r)
			}
		}()
		w.Write(make([]byte, 70000))
	}()
	closed := make(chan struct{})
	go func() {
		sc.Close(StatusOK, "")
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Errorf("Close hangs: the panic left writeMu locked")
		sc.writeMu.Unlock() // let the test end
		<-closed
	}
}

// TestNoDataFrameAfterCloseFrame: no data frame goes out after the close
// frame (RFC 6455, section 5.5.1): not from a message writer closed
// after Close began, nor from a SendText that waited for the write lock
// while the close frame went out.
func TestNoDataFrameAfterCloseFrame(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 500*time.Millisecond)

	// expectNothingAfterClose reads the close frame and fails on any
	// data frame that follows it.
	expectNothingAfterClose := func(t *testing.T, p *rawPeer) {
		t.Helper()
		p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		sawClose := false
		for {
			_, op, payload, err := p.readFrame()
			if err != nil {
				if !sawClose {
					t.Fatalf("no close frame: %v", err)
				}
				return // EOF or timeout after the close frame: fine
			}
			t.Logf("peer got %v %q", op, payload)
			if op == opClose {
				if !sawClose {
					sawClose = true
					p.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					p.write(frame(true, opClose, string(payload[:2]))) // answer it
				}
				continue
			}
			if sawClose {
				t.Errorf("a %v frame %q went out after the close frame", op, payload)
				return
			}
		}
	}

	t.Run("message writer Close", func(t *testing.T) {
		p, sc := rawPeerAndConn(t)
		w, err := sc.SendMessage(Text)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("held back"))
		closeDone := make(chan error, 1)
		go func() { closeDone <- sc.Close(StatusOK, "") }()
		waitFor(t, 2*time.Second, "closing", sc.isClosingNow)
		err = w.Close()
		t.Logf("message writer's Close after conn.Close began: %v", err)
		expectNothingAfterClose(t, p)
		<-closeDone
	})

	t.Run("SendText waiting for writeMu", func(t *testing.T) {
		p, sc := rawPeerAndConn(t)
		// Somebody writes (a pong, a ping, a large frame): writeMu is
		// held.  Close queues up for it first, then a SendText that
		// passed acquireSender before closing began.
		sc.writeMu.Lock()
		closeDone := make(chan error, 1)
		go func() { closeDone <- sc.Close(StatusOK, "") }()
		time.Sleep(50 * time.Millisecond) // Close waits in sendClose
		sendDone := make(chan error, 1)
		go func() { sendDone <- sc.SendText("after close") }()
		waitFor(t, 2*time.Second, "SendText to take the sender token", func() bool { return sc.senderToken.held.Load() })
		time.Sleep(50 * time.Millisecond) // SendText waits for writeMu
		sc.writeMu.Unlock()
		t.Logf("SendText: %v", <-sendDone)
		expectNothingAfterClose(t, p)
		<-closeDone
	})
}

// TestPeerCloseFrameReachesCloser: a receive call that holds the read
// side after closing began may read the peer's close frame; it leaves it
// in the input for Close, which completes the closing handshake at once
// and reports the peer's status.  The input was once dropped, and Close
// waited for the closing timeout and reported StatusDropped.
func TestPeerCloseFrameReachesCloser(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 2*time.Second)
	p, sc := rawPeerAndConn(t)

	// The read side is taken (by the background reader, say) while a
	// receiver and then Close queue up for it.
	sc.readMu.Lock()
	recvDone := make(chan error, 1)
	go func() {
		_, _, err := sc.ReceiveMessage()
		recvDone <- err
	}()
	waitFor(t, 2*time.Second, "the receiver to wait", func() bool { return sc.readWaiters.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	closeDone := make(chan error, 1)
	go func() { closeDone <- sc.Close(StatusOK, "") }()
	waitFor(t, 2*time.Second, "Close to wait for the read side", func() bool { return sc.readWaiters.Load() == 2 })
	time.Sleep(50 * time.Millisecond)
	sc.readMu.Unlock()

	// The peer answers the close frame at once.
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, op, _, err := p.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if op == opClose {
			break
		}
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "bye")))

	t.Logf("receive: %v", <-recvDone)
	err := <-closeDone
	took := time.Since(start)
	code, reason := sc.GetStatus()
	t.Logf("Close: %v after %v; GetStatus: %v %q", err, took.Round(time.Millisecond), code, reason)
	if took > time.Second || code != StatusOK {
		t.Errorf("the peer's close frame was lost: Close took %v (closeTimeout 2s), GetStatus %v %q, want 1000 \"bye\"", took.Round(time.Millisecond), code, reason)
	}
}

// TestShutdownClosesLateConnection: a connection whose handshake was
// under way when Shutdown began is closed with 1001 too, and Shutdown
// returns nil once it has closed.  It was once missed, and dropped only
// when Shutdown's context ended.
func TestShutdownClosesLateConnection(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 500*time.Millisecond)
	var late atomic.Bool
	entered := make(chan struct{})
	proceed := make(chan struct{})
	h := &Handler{
		AccessOk: func(conn *Conn, protocols []string) bool {
			if late.Load() {
				close(entered)
				<-proceed
			}
			return true
		},
		Handle: func(conn *Conn) { conn.GetStatus() },
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	early := dialRaw(t, url, nil) // answers the close frame when told
	waitFor(t, 2*time.Second, "the first connection", func() bool { return h.open.Load() == 1 })

	late.Store(true)
	lateConn := make(chan *Conn, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := Dial(ctx, url, nil)
		if err != nil {
			t.Error(err)
			close(lateConn)
			return
		}
		lateConn <- c
	}()
	<-entered // the late handshake has passed the shuttingDown check

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	start := time.Now()
	go func() { shutdown <- h.Shutdown(ctx) }()
	// Shutdown has listed its connections once the first gets its close.
	early.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, op, _, err := early.readFrame(); err != nil || op != opClose {
		t.Fatalf("first connection: %v %v", op, err)
	}
	close(proceed)
	c := <-lateConn
	if c == nil {
		return
	}
	defer c.Close(StatusOK, "")
	early.write(frame(true, opClose, closePayloadOf(StatusGoingAway, "")))

	err := <-shutdown
	code, _ := c.GetStatus()
	t.Logf("Shutdown: %v after %v; the late connection's GetStatus: %v", err, time.Since(start).Round(time.Millisecond), code)
	if err != nil || code != StatusGoingAway {
		t.Errorf("the connection that joined during Shutdown was not closed with 1001: Shutdown %v, GetStatus %v", err, code)
	}
}

// TestPongNotWithheldBehindQueue: a queued broadcast waits for a
// streamed message to end, but the peer's ping is answered meanwhile.
func TestPongNotWithheldBehindQueue(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 200*time.Millisecond)
	p, sc := rawPeerAndConn(t)
	defer sc.Close(StatusOK, "")

	w, err := sc.SendMessage(Binary)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if errs := BroadcastText(context.Background(), []*Conn{sc}, "queued"); len(errs) != 0 {
		t.Fatalf("BroadcastText: %v", errs)
	}
	p.write(frame(true, opPing, "are you there"))
	p.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, op, payload, err := p.readFrame()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("no pong within 2 s: it waits for the streamed message to end")
		}
		if err != nil {
			t.Fatal(err)
		}
		if op == opPong {
			t.Logf("pong %q", payload)
			return
		}
	}
}

// TestCloseDeadlineBoundsWriter: Close's deadline bounds a frame that is
// being written, to a peer that reads slowly: the writer does not renew
// its write timeout past it.
func TestCloseDeadlineBoundsWriter(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 500*time.Millisecond)
	conns := make(chan *Conn, 1)
	url := startServer(t, &Handler{WriteTimeout: 300 * time.Millisecond, Handle: func(conn *Conn) {
		conns <- conn
		conn.GetStatus()
	}})
	p := dialRaw(t, url, nil)
	p.conn.(*net.TCPConn).SetReadBuffer(256 << 10)
	p.conn.SetDeadline(time.Time{})
	sc := <-conns
	sc.netConn.(*net.TCPConn).SetWriteBuffer(8192)

	// The peer reads, steadily but slowly: 32 KiB every 5 ms (loopback's
	// MSS is 64 KiB, so the window must be able to open by that much).
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 32<<10)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			p.conn.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := p.conn.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
	defer func() { close(stop); <-readerDone }()

	sent := make(chan error, 1)
	go func() { sent <- sc.SendBinary(make([]byte, 24<<20)) }()
	time.Sleep(200 * time.Millisecond) // the send is under way
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- sc.Close(StatusOK, "") }()
	select {
	case err := <-closed:
		t.Logf("Close: %v after %v", err, time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Errorf("Close still waits after 3 s (closeTimeout 500 ms): the writer renewed its deadline over the close deadline")
		sc.netConn.Close() // let the test end
		<-closed
	}
	t.Logf("SendBinary: %v after %v; Err: %v", <-sent, time.Since(start).Round(time.Millisecond), sc.Err())
}

// TestMessagesBeforePeerCloseReceived: a message that the peer sent
// before its close frame can be received after the connection has read
// both by itself, while the application was busy.
func TestMessagesBeforePeerCloseReceived(t *testing.T) {
	checkGoroutines(t)
	got := make(chan string, 2)
	url, _ := closeServer(t, func(conn *Conn) {
		time.Sleep(300 * time.Millisecond) // busy with something else
		text, err := conn.ReceiveText(100)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- text
	})
	p := dialRaw(t, url, nil)
	p.write(frame(true, opText, "last words"), frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectClose(StatusOK)
	if text := <-got; text != "last words" {
		t.Errorf("ReceiveText after the peer's message and close: %s; want \"last words\"", text)
	}
}

// TestDeadlineWhileWaitingForToken: a deadline set while a receive or a
// send waits for the message before its own ends that wait.
func TestDeadlineWhileWaitingForToken(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 200*time.Millisecond)

	t.Run("receive", func(t *testing.T) {
		p, sc := rawPeerAndConn(t)
		defer sc.Close(StatusOK, "")
		p.write(frame(false, opText, "first part of a message"))
		if _, _, err := sc.ReceiveMessage(); err != nil { // holds the receiver token
			t.Fatal(err)
		}
		second := make(chan error, 1)
		go func() {
			_, _, err := sc.ReceiveMessage()
			second <- err
		}()
		time.Sleep(50 * time.Millisecond) // it waits for the token
		sc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		select {
		case err := <-second:
			t.Logf("second ReceiveMessage: %v", err)
		case <-time.After(2 * time.Second):
			t.Errorf("a ReceiveMessage waiting for the receiver token ignores SetReadDeadline (still waiting 2 s after a 100 ms deadline)")
		}
	})

	t.Run("send", func(t *testing.T) {
		url, conns := closeServer(t, func(conn *Conn) { conn.GetStatus() })
		dialRaw(t, url, nil)
		sc := <-conns
		defer sc.Close(StatusOK, "")
		w, err := sc.SendMessage(Text) // holds the sender token
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		second := make(chan error, 1)
		go func() { second <- sc.SendText("waits") }()
		time.Sleep(50 * time.Millisecond) // it waits for the token
		sc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		select {
		case err := <-second:
			t.Logf("SendText: %v", err)
		case <-time.After(2 * time.Second):
			t.Errorf("a SendText waiting for the sender token ignores SetWriteDeadline (still waiting 2 s after a 100 ms deadline)")
		}
	})
}
