package websocket

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDialEchoSizes(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: echoHandler})
	conn := dialTest(t, url, nil)
	for _, size := range []int{0, 1, 125, 126, 127, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i*7 + size)
		}
		if err := conn.SendBinary(msg); err != nil {
			t.Fatalf("SendBinary(%d bytes): %v", size, err)
		}
		buf := make([]byte, size+1)
		n, err := conn.ReceiveBinary(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("echo of %d bytes: got %d bytes, err %v", size, n, err)
		}
		text := strings.Repeat("é", size/2)
		if err := conn.SendText(text); err != nil {
			t.Fatalf("SendText: %v", err)
		}
		got, err := conn.ReceiveText(size + 1)
		if err != nil || got != text {
			t.Fatalf("text echo of %d bytes: got %d bytes, err %v", len(text), len(got), err)
		}
	}
}

func TestDialStreamingMessage(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: echoHandler})
	conn := dialTest(t, url, nil)

	rng := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	w, err := conn.SendMessage(Binary)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		chunk := make([]byte, rng.IntN(10000))
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		want.Write(chunk)
		if n, err := w.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tp, r, err := conn.ReceiveMessage()
	if err != nil || tp != Binary {
		t.Fatalf("ReceiveMessage: %v, %v", tp, err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("streamed echo: %d bytes, want %d, err %v", len(got), want.Len(), err)
	}
}

func TestConcurrentSenders(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: echoHandler})
	conn := dialTest(t, url, nil)

	const senders, perSender = 8, 50
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				msg := strings.Repeat(string(rune('a'+s)), 1000+i)
				if s%2 == 0 {
					w, err := conn.SendMessage(Text)
					if err != nil {
						t.Error(err)
						return
					}
					io.WriteString(w, msg[:500])
					io.WriteString(w, msg[500:])
					w.Close()
				} else if err := conn.SendText(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := 0
	for seen < senders*perSender {
		msg, err := conn.ReceiveText(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Trim(msg, msg[:1]) != "" {
			t.Fatalf("messages interleaved: %q...", msg[:20])
		}
		seen++
	}
	wg.Wait()
}

func TestDialSubprotocol(t *testing.T) {
	checkGoroutines(t)
	var offered []string
	url := startServer(t, &Handler{
		AccessOk: func(conn *Conn, protocols []string) bool {
			offered = protocols
			conn.Protocol = "chat.v1"
			return true
		},
		Handle: echoHandler,
	})
	conn := dialTest(t, url, &DialOptions{Subprotocols: []string{"chat.v2", "chat.v1"}})
	if conn.Protocol != "chat.v1" {
		t.Errorf("Protocol = %q, want chat.v1", conn.Protocol)
	}
	if strings.Join(offered, ",") != "chat.v2,chat.v1" {
		t.Errorf("server saw protocols %q", offered)
	}
}

func TestDialRefused(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{AccessOk: func(*Conn, []string) bool { return false }})
	_, err := Dial(context.Background(), url, nil)
	want := `websocket: bad handshake: the server answered "HTTP/1.1 403 Forbidden": websocket: access denied`
	if !errors.Is(err, ErrBadHandshake) || err.Error() != want {
		t.Errorf("Dial to a refusing server: %v, want %s", err, want)
	}

	// The README's mistake: a subprotocol that the server does not
	// pick.  The error must tell why, not just "400 Bad Request".
	url = startServer(t, &Handler{Handle: echoHandler})
	_, err = Dial(context.Background(), url, &DialOptions{Subprotocols: []string{"chat.v1"}})
	if !errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), `"HTTP/1.1 400 Bad Request": websocket: none of the offered subprotocols is supported`) {
		t.Errorf("Dial offering an unknown subprotocol: %v", err)
	}

	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	_, err = Dial(context.Background(), "ws"+strings.TrimPrefix(plain.URL, "http"), nil)
	if !errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), `"HTTP/1.1 404 Not Found": 404 page not found`) {
		t.Errorf("Dial to a plain HTTP server: %v, want ErrBadHandshake with 404 and the body", err)
	}

	// A refusal whose body never comes: the status line is enough, and
	// Dial does not wait for the body for long.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nbusy")
		time.Sleep(3 * time.Second)
	}()
	start := time.Now()
	_, err = Dial(context.Background(), "ws://"+ln.Addr().String()+"/", nil)
	if !errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), `"HTTP/1.1 503 Service Unavailable": busy`) {
		t.Errorf("Dial to a server that stalls in its refusal: %v", err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("Dial waited %v for the body of a refusal", d)
	}
}

func TestDialContextTimeout(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never answers the handshake
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial to a silent server: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial took %v despite a 200ms context", d)
	}
	(<-accepted).Close()
}

func TestDialBadURL(t *testing.T) {
	for _, u := range []string{"ftp://example.com/", "ws://", "::"} {
		if _, err := Dial(context.Background(), u, nil); err == nil {
			t.Errorf("Dial(%q) succeeded", u)
		}
	}
}

func TestDialTLS(t *testing.T) {
	checkGoroutines(t)
	srv := httptest.NewUnstartedServer(&Handler{Handle: echoHandler, AccessOk: func(conn *Conn, _ []string) bool {
		return conn.ResourceName.Scheme == "wss"
	}})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted dial below is expected to fail
	srv.StartTLS()
	defer srv.Close()
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	conn := dialTest(t, url, &DialOptions{TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	msg := strings.Repeat("secret ", 10000)
	if err := conn.SendText(msg); err != nil {
		t.Fatal(err)
	}
	if got, err := conn.ReceiveText(len(msg)); got != msg || err != nil {
		t.Fatalf("echo over TLS: %d bytes, %v", len(got), err)
	}
	if err := conn.Close(StatusOK, ""); err != nil {
		t.Errorf("Close: %v", err)
	}
	if code, _ := conn.GetStatus(); code != StatusOK {
		t.Errorf("GetStatus = %v", code)
	}

	// Without the test CA, the certificate is not trusted.
	if _, err := Dial(context.Background(), url, nil); err == nil {
		t.Error("Dial trusted the test server's certificate")
	}
}
