package websocket_test

// The tests in this file are written as a user of the reference API
// (seehuhn.de/go/websocket) writes code: errors are compared with ==,
// and their texts are matched.  Programs like these must run unchanged
// on this package.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
)

// echo is the echo handler of the reference's README, written against
// io.Discard instead of the deprecated ioutil.Discard.
func echo(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")

	for {
		tp, r, err := conn.ReceiveMessage()
		if err != nil {
			break
		}

		w, err := conn.SendMessage(tp)
		if err != nil {
			io.Copy(io.Discard, r)
			break
		}

		_, err = io.Copy(w, r)
		if err != nil {
			io.Copy(io.Discard, r)
		}

		w.Close()
	}
}

func TestCompatErrorTexts(t *testing.T) {
	for err, want := range map[error]string{
		websocket.ErrConnClosed:  "connection closed",
		websocket.ErrMessageType: "invalid message type",
		websocket.ErrStatusCode:  "invalid status code",
		websocket.ErrTooLarge:    "message too large",
	} {
		if err.Error() != want {
			t.Errorf("error text %q, want %q", err.Error(), want)
		}
	}
}

// compatServer starts a server whose Handle passes each connection to
// the test, and returns its ws:// URL.
func compatServer(t *testing.T) (string, <-chan *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(&websocket.Handler{Handle: func(conn *websocket.Conn) { conns <- conn }})
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), conns
}

func compatDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusOK, "") })
	return conn
}

// expectEnded checks that every call on a connection that has ended
// returns exactly ErrConnClosed, including a message writer that was
// opened before the end.
func expectEnded(t *testing.T, conn *websocket.Conn, w io.WriteCloser) {
	t.Helper()
	check := func(what string, err error) {
		t.Helper()
		if err != websocket.ErrConnClosed {
			t.Errorf("%s returned %v, want exactly ErrConnClosed", what, err)
		}
	}
	if w != nil {
		_, err := w.Write([]byte("late"))
		check("the writer's Write", err)
		check("the writer's Close", w.Close())
	}
	_, _, err := conn.ReceiveMessage()
	check("ReceiveMessage", err)
	_, err = conn.ReceiveText(100)
	check("ReceiveText", err)
	_, err = conn.ReceiveBinary(make([]byte, 100))
	check("ReceiveBinary", err)
	check("SendText", conn.SendText("late"))
	check("SendBinary", conn.SendBinary([]byte("late")))
	_, err = conn.SendMessage(websocket.Text)
	check("SendMessage", err)
	check("Close", conn.Close(websocket.StatusOK, ""))
	if cause := conn.Err(); cause == nil || cause.Error() == "" {
		t.Errorf("Err() = %v after the end, want the cause", cause)
	}
}

// waitEnded waits until GetStatus returns, that is until the connection
// has fully ended.
func waitEnded(t *testing.T, conn *websocket.Conn) (websocket.Status, string) {
	t.Helper()
	type status struct {
		code   websocket.Status
		reason string
	}
	got := make(chan status, 1)
	go func() {
		code, reason := conn.GetStatus()
		got <- status{code, reason}
	}()
	select {
	case s := <-got:
		return s.code, s.reason
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not end")
		return 0, ""
	}
}

func TestCompatPeerClosed(t *testing.T) {
	url, conns := compatServer(t)
	client := compatDial(t, url)
	server := <-conns
	w, err := server.SendMessage(websocket.Binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Close(websocket.StatusGoingAway, "bye"); err != nil {
		t.Fatalf("client Close: %v", err)
	}
	if code, reason := waitEnded(t, server); code != websocket.StatusGoingAway || reason != "bye" {
		t.Errorf("GetStatus = %v %q", code, reason)
	}
	t.Run("server", func(t *testing.T) { expectEnded(t, server, w) })
	t.Run("client", func(t *testing.T) { expectEnded(t, client, nil) })
	if err := server.Err(); !strings.Contains(err.Error(), "1001") || !strings.Contains(err.Error(), "bye") {
		t.Errorf("server Err() = %v, want the peer's code and reason", err)
	}
}

func TestCompatServerClosed(t *testing.T) {
	url, conns := compatServer(t)
	client := compatDial(t, url)
	server := <-conns
	w, err := client.SendMessage(websocket.Text)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Close(websocket.StatusOK, ""); err != nil {
		t.Fatalf("server Close: %v", err)
	}
	if code, _ := waitEnded(t, client); code != websocket.StatusOK {
		t.Errorf("client GetStatus = %v", code)
	}
	t.Run("client", func(t *testing.T) { expectEnded(t, client, w) })
	t.Run("server", func(t *testing.T) { expectEnded(t, server, nil) })
}

func TestCompatDropped(t *testing.T) {
	url, conns := compatServer(t)
	peer := rawDial(t, url)
	server := <-conns
	w, err := server.SendMessage(websocket.Text)
	if err != nil {
		t.Fatal(err)
	}
	peer.Close() // no close frame: the TCP connection just ends
	if code, _ := waitEnded(t, server); code != websocket.StatusDropped {
		t.Errorf("GetStatus = %v, want StatusDropped", code)
	}
	expectEnded(t, server, w)
}

func TestCompatProtocolError(t *testing.T) {
	url, conns := compatServer(t)
	peer := rawDial(t, url)
	server := <-conns
	received := make(chan error, 1)
	go func() {
		_, err := server.ReceiveText(100)
		received <- err
	}()
	// A text frame with a reserved bit set, and no extension that
	// would give it a meaning.
	peer.Write(maskedFrame(0x80|0x40|0x1, []byte("bad")))
	if err := <-received; err != websocket.ErrConnClosed {
		t.Errorf("ReceiveText returned %v, want exactly ErrConnClosed", err)
	}
	if code := readCloseCode(t, peer); code != websocket.StatusProtocolError {
		t.Errorf("close code %v, want 1002", code)
	}
	peer.Close()
	waitEnded(t, server)
	expectEnded(t, server, nil)
	if err := server.Err(); !strings.Contains(err.Error(), "1002") {
		t.Errorf("Err() = %v, want the reason for 1002", err)
	}
}

// An invalid close code from the peer fails the connection with 1002
// (RFC 6455, section 7.4), although the reference tolerated it.
func TestCompatInvalidCloseCode(t *testing.T) {
	url, conns := compatServer(t)
	peer := rawDial(t, url)
	server := <-conns
	peer.Write(maskedFrame(0x88, binary.BigEndian.AppendUint16(nil, 1005)))
	if code := readCloseCode(t, peer); code != websocket.StatusProtocolError {
		t.Errorf("close code %v, want 1002", code)
	}
	peer.Close()
	waitEnded(t, server)
	expectEnded(t, server, nil)
}

func TestCompatReaderCutOff(t *testing.T) {
	url, conns := compatServer(t)
	peer := rawDial(t, url)
	server := <-conns
	// Half of a 100-byte message, then the peer vanishes.
	frame := maskedFrame(0x82, make([]byte, 100))
	peer.Write(frame[:len(frame)-50])
	tp, r, err := server.ReceiveMessage()
	if err != nil || tp != websocket.Binary {
		t.Fatalf("ReceiveMessage: %v %v", tp, err)
	}
	peer.Close()
	if _, err := io.ReadAll(r); err != websocket.ErrConnClosed {
		t.Errorf("reading the cut-off message returned %v, want exactly ErrConnClosed", err)
	}
	expectEnded(t, server, nil)
}

func TestCompatArguments(t *testing.T) {
	url, conns := compatServer(t)
	client := compatDial(t, url)
	server := <-conns

	// Messages of the wrong type are discarded with ErrMessageType.
	client.SendBinary([]byte{1, 2, 3})
	if _, err := server.ReceiveText(100); err != websocket.ErrMessageType {
		t.Errorf("ReceiveText of a binary message: %v", err)
	}
	client.SendText("text")
	if _, err := server.ReceiveBinary(make([]byte, 10)); err != websocket.ErrMessageType {
		t.Errorf("ReceiveBinary of a text message: %v", err)
	}
	for _, tp := range []websocket.MessageType{0, 3, 8, 9} {
		if _, err := server.SendMessage(tp); err != websocket.ErrMessageType {
			t.Errorf("SendMessage(%v): %v", tp, err)
		}
	}

	// Messages that do not fit are cut, with ErrTooLarge.
	client.SendText("hello, world")
	if text, err := server.ReceiveText(5); err != websocket.ErrTooLarge || text != "hello" {
		t.Errorf("ReceiveText(5) = %q, %v", text, err)
	}
	client.SendBinary([]byte("0123456789"))
	buf := make([]byte, 4)
	if n, err := server.ReceiveBinary(buf); err != websocket.ErrTooLarge || n != 4 || string(buf) != "0123" {
		t.Errorf("ReceiveBinary into 4 bytes = %d %q, %v", n, buf[:n], err)
	}

	// Bad arguments to Close leave the connection open.
	for _, code := range []websocket.Status{0, 999, websocket.StatusDropped, 1015, 5000} {
		if err := server.Close(code, ""); err != websocket.ErrStatusCode {
			t.Errorf("Close(%d): %v", code, err)
		}
	}
	if err := server.Close(websocket.StatusOK, strings.Repeat("x", 124)); err != websocket.ErrTooLarge {
		t.Errorf("Close with a 124-byte message: %v", err)
	}
	if err := server.Err(); err != nil {
		t.Errorf("Err() = %v on an open connection", err)
	}
	client.SendText("still open")
	if text, err := server.ReceiveText(100); err != nil || text != "still open" {
		t.Errorf("after bad arguments: %q, %v", text, err)
	}
	if err := server.Close(websocket.StatusOK, strings.Repeat("x", 123)); err != nil {
		t.Errorf("Close with a 123-byte message: %v", err)
	}
	if code, reason := waitEnded(t, client); code != websocket.StatusOK || len(reason) != 123 {
		t.Errorf("client GetStatus = %v %q", code, reason)
	}
}

// rawDial opens a TCP connection and performs the handshake by hand.
func rawDial(t *testing.T, wsURL string) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(wsURL, "ws://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	// Read the response byte by byte, so that nothing after it is
	// taken from the connection.
	var resp []byte
	one := make([]byte, 1)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.HasSuffix(string(resp), "\r\n\r\n") {
		if _, err := conn.Read(one); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		resp = append(resp, one[0])
	}
	conn.SetReadDeadline(time.Time{})
	if !strings.HasPrefix(string(resp), "HTTP/1.1 101 ") {
		t.Fatalf("handshake answered %q", resp)
	}
	return conn
}

// maskedFrame encodes a client frame; first is its first byte.
func maskedFrame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// readCloseCode reads server frames until a close frame and returns its
// status code.
func readCloseCode(t *testing.T, conn net.Conn) websocket.Status {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("waiting for a close frame: %v", err)
		}
		n := int64(hdr[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			io.ReadFull(br, ext[:])
			n = int64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			io.ReadFull(br, ext[:])
			n = int64(binary.BigEndian.Uint64(ext[:]))
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatalf("waiting for a close frame: %v", err)
		}
		if hdr[0]&0x0f == 0x8 {
			if len(payload) < 2 {
				return websocket.StatusNotSent
			}
			return websocket.Status(binary.BigEndian.Uint16(payload))
		}
	}
}
