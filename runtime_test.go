package websocket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKeepAliveDropsSilentPeer: a peer that holds its socket open but
// answers nothing is pinged after the interval and dropped after the
// timeout; the receiving handler learns of it, and every goroutine of
// the connection ends.
func TestKeepAliveDropsSilentPeer(t *testing.T) {
	checkGoroutines(t)
	const interval, timeout = 100 * time.Millisecond, 150 * time.Millisecond
	type result struct {
		err     error
		code    Status
		elapsed time.Duration
		cause   error
	}
	results := make(chan result, 1)
	url := startServer(t, &Handler{PingInterval: interval, PongTimeout: timeout, Handle: func(conn *Conn) {
		start := time.Now()
		_, _, err := conn.ReceiveMessage()
		code, _ := conn.GetStatus()
		results <- result{err, code, time.Since(start), conn.Err()}
	}})
	p := dialRaw(t, url, nil)
	// The peer reads what comes, to see the ping, but answers nothing.
	pinged := make(chan struct{}, 1)
	go func() {
		for {
			_, op, _, err := p.readFrame()
			if err != nil {
				return
			}
			if op == opPing {
				select {
				case pinged <- struct{}{}:
				default:
				}
			}
		}
	}()
	select {
	case r := <-results:
		if r.err != ErrConnClosed || r.code != StatusDropped {
			t.Errorf("ReceiveMessage: %v, GetStatus %v; want ErrConnClosed, StatusDropped", r.err, r.code)
		}
		if r.elapsed < interval+timeout-20*time.Millisecond || r.elapsed > interval+timeout+2*time.Second {
			t.Errorf("dropped after %v, want about %v", r.elapsed, interval+timeout)
		}
		if r.cause == nil || !strings.Contains(r.cause.Error(), "ping") {
			t.Errorf("Err() = %v, want the keep-alive's reason", r.cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the silent peer was not dropped")
	}
	select {
	case <-pinged:
	default:
		t.Error("the peer was never pinged")
	}
}

// TestKeepAliveKeepsLivePeer: a peer that answers pings stays connected
// over many intervals, also while neither application receives.
func TestKeepAliveKeepsLivePeer(t *testing.T) {
	checkGoroutines(t)
	const interval, timeout = 50 * time.Millisecond, 150 * time.Millisecond
	got := make(chan *Conn, 1)
	u := startServer(t, &Handler{PingInterval: interval, PongTimeout: timeout, Handle: func(conn *Conn) { got <- conn }})
	client := dialTest(t, u, &DialOptions{PingInterval: interval, PongTimeout: timeout})
	server := <-got
	time.Sleep(20 * interval)
	if err := server.Err(); err != nil {
		t.Fatalf("server side ended: %v", err)
	}
	if err := client.Err(); err != nil {
		t.Fatalf("client side ended: %v", err)
	}
	if err := client.SendText("still here"); err != nil {
		t.Fatal(err)
	}
	if text, err := server.ReceiveText(100); err != nil || text != "still here" {
		t.Fatalf("after keep-alive: %q, %v", text, err)
	}
	server.Close(StatusOK, "")
}

// TestWriteTimeout: a peer that never reads makes a sender fail with
// ErrConnClosed once its write has made no progress for the write
// timeout; another connection of the same handler carries on.
func TestWriteTimeout(t *testing.T) {
	checkGoroutines(t)
	const writeTimeout = 200 * time.Millisecond
	type result struct {
		err     error
		sent    int
		stalled time.Duration
		code    Status
	}
	results := make(chan result, 1)
	h := &Handler{WriteTimeout: writeTimeout}
	h.Handle = func(conn *Conn) {
		if conn.ResourceName.Path == "/echo" {
			echoHandler(conn)
			return
		}
		msg := make([]byte, 64<<10)
		var r result
		for {
			start := time.Now()
			r.err = conn.SendBinary(msg)
			if r.err != nil {
				r.stalled = time.Since(start)
				break
			}
			r.sent++
		}
		r.code, _ = conn.GetStatus()
		results <- r
	}
	url := startServer(t, h)
	// A peer that reads nothing, with as little buffer as it can.
	p := dialRaw(t, url+"/stall", nil)
	p.conn.(*net.TCPConn).SetReadBuffer(4096)
	p.conn.SetDeadline(time.Time{})

	echo := dialTest(t, url+"/echo", nil)
	select {
	case r := <-results:
		if r.err != ErrConnClosed || r.code != StatusDropped {
			t.Errorf("after %d messages: %v, GetStatus %v; want ErrConnClosed, StatusDropped", r.sent, r.err, r.code)
		}
		if r.stalled < writeTimeout-20*time.Millisecond || r.stalled > writeTimeout*2+time.Second {
			t.Errorf("the stalled send failed after %v, want about %v", r.stalled, writeTimeout)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the send to a peer that never reads did not fail")
	}
	// The other connection is unaffected.
	for i := range 10 {
		msg := fmt.Sprintf("message %d", i)
		if err := echo.SendText(msg); err != nil {
			t.Fatal(err)
		}
		if text, err := echo.ReceiveText(100); err != nil || text != msg {
			t.Fatalf("echo: %q, %v", text, err)
		}
	}
}

// TestPushOnly: 1,000 connections whose handler never receives.  Each
// peer sends a data message and then closes: the connection still
// answers, sees the close, and is freed.
func TestPushOnly(t *testing.T) {
	checkGoroutines(t)
	const conns = 1000
	var finished atomic.Int32
	statuses := make(chan Status, conns)
	url := startServer(t, &Handler{Handle: func(conn *Conn) {
		conn.SendText("news")
		code, _ := conn.GetStatus() // never receives
		statuses <- code
		finished.Add(1)
	}})
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, url, nil)
			if err != nil {
				errs <- err
				return
			}
			if text, err := c.ReceiveText(100); err != nil || text != "news" {
				errs <- fmt.Errorf("client %d: %q, %v", i, text, err)
			}
			c.SendText("a message nobody receives")
			if err := c.Close(StatusOK, "bye"); err != nil {
				errs <- fmt.Errorf("client %d: Close: %v (the server did not answer)", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitFor(t, 10*time.Second, "every push-only handler to see the close", func() bool { return finished.Load() == conns })
	close(statuses)
	for code := range statuses {
		if code != StatusOK {
			t.Errorf("GetStatus = %v, want 1000", code)
			break
		}
	}
}

// TestReadDeadline: a receive whose deadline passes before a message
// returns a timeout and leaves the connection usable, also when part of
// a frame header had arrived; a deadline that passes in the middle of a
// message fails the connection with 1008.
func TestReadDeadline(t *testing.T) {
	checkGoroutines(t)
	steps := make(chan error)
	proceed := make(chan struct{})
	url, _ := closeServer(t, func(conn *Conn) {
		defer conn.Close(StatusOK, "")
		conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, _, err := conn.ReceiveMessage()
		steps <- err // a timeout, nothing arrived
		<-proceed
		conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err = conn.ReceiveText(100)
		steps <- err // a timeout, half a header arrived
		<-proceed
		conn.SetReadDeadline(time.Time{})
		text, err := conn.ReceiveText(100)
		if err == nil && text != "after the deadline" {
			err = fmt.Errorf("received %q", text)
		}
		steps <- err
		<-proceed
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, r, err := conn.ReceiveMessage()
		if err == nil {
			_, err = io.ReadAll(r)
		}
		steps <- err // the message stopped half way
	})
	p := dialRaw(t, url, nil)
	if err := <-steps; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("receive with nothing coming: %v, want a deadline error", err)
	}
	msg := frame(true, opText, "after the deadline")
	p.write(msg[:1])
	proceed <- struct{}{}
	if err := <-steps; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("receive with half a header: %v, want a deadline error", err)
	}
	p.write(msg[1:])
	proceed <- struct{}{}
	if err := <-steps; err != nil {
		t.Fatalf("the message after the deadlines: %v", err)
	}
	half := frame(true, opBinary, strings.Repeat("x", 100))
	p.write(half[:60])
	proceed <- struct{}{}
	if err := <-steps; err != ErrConnClosed {
		t.Fatalf("reading a message that stops half way: %v, want ErrConnClosed", err)
	}
	p.expectClose(StatusPolicyViolation)
}

// TestWriteDeadline: a send whose deadline has passed before it begins
// returns a timeout and leaves the connection usable.
func TestWriteDeadline(t *testing.T) {
	checkGoroutines(t)
	url, conns := closeServer(t, func(*Conn) {})
	client := dialTest(t, url, nil)
	server := <-conns
	defer server.Close(StatusOK, "")
	client.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := client.SendText("late"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SendText after the deadline: %v", err)
	}
	if _, err := client.SendMessage(Text); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	// The writer holds the sender token; a second send waits for it
	// until its deadline.
	client.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if err := client.SendText("blocked"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("SendText while a message is open: %v", err)
	}
	client.SetWriteDeadline(time.Time{})
	if err := client.writer.Close(); err != nil {
		t.Fatalf("closing the open message: %v", err)
	}
	if err := client.SendText("on time"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"", "on time"} {
		if text, err := server.ReceiveText(100); err != nil || text != want {
			t.Fatalf("received %q, %v; want %q", text, err, want)
		}
	}
}

// TestShutdown closes 1,000 connections gracefully: each client sees
// 1001, new handshakes get 503, and nothing remains.
func TestShutdown(t *testing.T) {
	checkGoroutines(t)
	const conns = 1000
	h := &Handler{Handle: echoHandler}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	clients := make([]*Conn, conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, url, nil)
			if err != nil {
				t.Error(err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	waitFor(t, 5*time.Second, "the server to count its connections", func() bool { return h.open.Load() == conns })

	// Every client receives, as an application would.
	received := make(chan error, conns)
	for _, c := range clients {
		go func() {
			_, _, err := c.ReceiveMessage()
			received <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("Shutdown closed %d connections in %v", conns, time.Since(start).Round(time.Millisecond))
	for range conns {
		if err := <-received; err != ErrConnClosed {
			t.Errorf("a client's receive: %v", err)
		}
	}
	for i, c := range clients {
		if code, reason := c.GetStatus(); code != StatusGoingAway || reason != "server shutting down" {
			t.Errorf("client %d: GetStatus = %v %q", i, code, reason)
			break
		}
	}
	_, err := Dial(context.Background(), url, nil)
	if !errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), "503") {
		t.Errorf("a handshake during shutdown: %v, want 503", err)
	}
	if n := h.open.Load(); n != 0 {
		t.Errorf("%d connections still open", n)
	}
}

// TestShutdownDropsUnresponsive: a connection whose peer never answers
// the close frame is dropped when the context ends.
func TestShutdownDropsUnresponsive(t *testing.T) {
	checkGoroutines(t)
	h := &Handler{Handle: func(conn *Conn) { conn.GetStatus() }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	p := dialRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	_ = p
	waitFor(t, 5*time.Second, "the connection", func() bool { return h.open.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v, want context.DeadlineExceeded", err)
	}
	waitFor(t, 5*time.Second, "the connection to be dropped", func() bool { return h.open.Load() == 0 })
}

// TestUpgrade accepts connections inside an application's own handler,
// which checks a cookie first.
func TestUpgrade(t *testing.T) {
	checkGoroutines(t)
	ws := &Handler{ServerName: "upgrade-test"}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie("session")
		if err != nil || cookie.Value != "secret" {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Set-Cookie", "seen=1")
		conn, err := ws.Upgrade(w, r)
		if err != nil {
			return
		}
		echoHandler(conn)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"

	_, err := Dial(context.Background(), url, nil)
	if !errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), "401") {
		t.Errorf("without the cookie: %v", err)
	}
	conn := dialTest(t, url, &DialOptions{Header: http.Header{"Cookie": {"session=secret"}}})
	conn.SendText("hello")
	if text, err := conn.ReceiveText(100); err != nil || text != "hello" {
		t.Errorf("echo through Upgrade: %q, %v", text, err)
	}

	// A request that is no handshake: Upgrade answers it and says so.
	rec := httptest.NewRecorder()
	_, err = ws.Upgrade(rec, httptest.NewRequest("GET", "/ws", nil))
	if !errors.Is(err, ErrBadHandshake) || rec.Code != http.StatusBadRequest {
		t.Errorf("Upgrade of a plain request: %v, status %d", err, rec.Code)
	}
}

// TestHandlePanics: a panic in Handle is logged and closes the
// connection with 1011, as net/http does for its handlers.
func TestHandlePanics(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: func(conn *Conn) {
		conn.ReceiveText(100)
		panic(http.ErrAbortHandler) // not logged
	}})
	conn := dialTest(t, url, nil)
	conn.SendText("boom")
	if code, _ := conn.GetStatus(); code != StatusInternalServerError {
		t.Errorf("GetStatus = %v, want 1011", code)
	}
}

// TestIdleConnectionCost: an idle connection whose application waits
// in a receive costs that goroutine and no other, and holds no buffer.
// Both ends are in this process and both receive, so that each pair of
// connections should cost two goroutines, and a few KiB of heap for the
// two Conns and their sockets: an input buffer would add 4 KiB each.
// With compression and no context takeover, the same: compressors and
// decompressors go back to their pools after each message.  With context
// takeover, each end keeps a compressor and a decompressor, whose cost is
// reported.
func TestIdleConnectionCost(t *testing.T) {
	checkGoroutines(t)
	warmUp := strings.Repeat("warm up ", 100) // compressed when it may be
	t.Run("plain", func(t *testing.T) {
		heap := idleCost(t, &Handler{Handle: echoHandler}, nil, warmUp)
		if heap > 2*inputSize {
			t.Errorf("%.0f bytes of heap per pair of idle connections: they hold buffers", heap)
		}
	})
	t.Run("compression", func(t *testing.T) {
		heap := idleCost(t, &Handler{Handle: echoHandler, EnableCompression: true},
			&DialOptions{EnableCompression: true}, warmUp)
		if heap > 2*inputSize {
			t.Errorf("%.0f bytes of heap per pair of idle connections: they hold compressors", heap)
		}
	})
	t.Run("takeover", func(t *testing.T) {
		opts := CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true}
		heap := idleCost(t, &Handler{Handle: echoHandler, EnableCompression: true, CompressionOptions: opts},
			&DialOptions{EnableCompression: true, CompressionOptions: opts}, warmUp)
		if heap < 100<<10 {
			t.Errorf("%.0f bytes of heap per pair of idle connections with context takeover: no compressors?", heap)
		}
	})
}

// idleCost opens pairs of connections with the handler h and the dial
// options, exchanges warmUp each way, leaves them idle, each receiving,
// and returns the heap that a pair holds then.
func idleCost(t *testing.T, h *Handler, opts *DialOptions, warmUp string) float64 {
	const pairs = 200
	url := startServer(t, h)
	runtime.GC()
	runtime.GC() // the second empties the pools' victim caches
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()

	clients := make([]*Conn, pairs)
	var wg sync.WaitGroup
	for i := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := Dial(ctx, url, opts)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		// A message each way, so that buffers were taken; then the
		// client receives in a goroutine of its own, as
		// applications do.
		c.SendText(warmUp)
		if _, err := c.ReceiveText(len(warmUp)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.ReceiveMessage()
		}()
	}
	time.Sleep(100 * time.Millisecond) // long past receiverGrace
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	added := runtime.NumGoroutine() - goroutines
	heap := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / pairs
	t.Logf("per pair of idle connections: %.2f goroutines, heap %.0f bytes", float64(added)/pairs, heap)
	if added > 2*pairs+5 {
		t.Errorf("%d goroutines for %d pairs of receiving connections: the connections run goroutines of their own", added, pairs)
	}
	for _, c := range clients {
		c.Close(StatusOK, "")
	}
	wg.Wait()
	return heap
}
