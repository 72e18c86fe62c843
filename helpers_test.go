package websocket

import (
	"context"

	"github.com/gowebsock/websocket/internal/wire"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// echoHandler is the echo server of the package documentation.
func echoHandler(conn *Conn) {
	defer conn.Close(StatusOK, "")
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
		if _, err := io.Copy(w, r); err != nil {
			io.Copy(io.Discard, r)
		}
		w.Close()
	}
}

// startServer runs h on a loopback test server and returns its ws://
// URL.  The server is shut down when the test ends.
func startServer(t *testing.T, h *Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dialTest connects to url, failing the test on error; the connection
// is closed when the test ends.
func dialTest(t *testing.T, url string, opts *DialOptions) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", url, err)
	}
	t.Cleanup(func() { conn.Close(StatusOK, "") })
	return conn
}

// checkGoroutines fails the test if it leaves goroutines behind.  It
// must be called first in a test, so that its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf)
		}
	})
}

// shortCloseTimeout shortens the closing handshake's timeout for one
// test.
func shortCloseTimeout(t *testing.T, d time.Duration) {
	old := closeTimeout.Swap(int64(d))
	t.Cleanup(func() { closeTimeout.Store(old) })
}

// Short names for the opcodes, for the tests' raw frames.
type opcode = wire.Opcode

const (
	opContinuation = wire.Continuation
	opText         = wire.Text
	opBinary       = wire.Binary
	opClose        = wire.Close
	opPing         = wire.Ping
	opPong         = wire.Pong
)

// defaultSettings returns the tunables of a connection with nothing set.
func defaultSettings() *settings {
	s := newSettings(0, 0, 0, 0)
	return &s
}
