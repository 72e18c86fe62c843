package websocket

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"testing"
	"time"
)

// receiveServer runs fn on the server side and closes the connection
// afterwards.
func receiveServer(t *testing.T, fn func(*Conn)) string {
	return startServer(t, &Handler{Handle: func(conn *Conn) {
		defer conn.Close(StatusOK, "")
		fn(conn)
	}})
}

func TestReceiveText(t *testing.T) {
	checkGoroutines(t)
	type result struct {
		text string
		err  error
	}
	results := make(chan result, 10)
	url := receiveServer(t, func(conn *Conn) {
		for _, max := range []int{100, 2, 3, 0, 5, 100} {
			text, err := conn.ReceiveText(max)
			results <- result{text, err}
		}
	})
	client := dialTest(t, url, nil)
	client.SendText("héllo")         // fits
	client.SendText("héllo")         // cut inside "é": only "h"
	client.SendText("héllo")         // cut after "é"
	client.SendText("")              // empty text fits into 0 bytes
	client.SendBinary([]byte("bin")) // wrong type
	client.SendText("after")         // the connection is still in step
	want := []result{{"héllo", nil}, {"h", ErrTooLarge}, {"hé", ErrTooLarge}, {"", nil}, {"", ErrMessageType}, {"after", nil}}
	for i, w := range want {
		got := <-results
		if got.text != w.text || !errors.Is(got.err, w.err) || (w.err == nil) != (got.err == nil) {
			t.Errorf("message %d: got %q, %v; want %q, %v", i, got.text, got.err, w.text, w.err)
		}
	}
}

func TestReceiveBinary(t *testing.T) {
	checkGoroutines(t)
	type result struct {
		data []byte
		err  error
	}
	results := make(chan result, 10)
	url := receiveServer(t, func(conn *Conn) {
		for _, size := range []int{10, 4, 4, 0, 10} {
			buf := make([]byte, size)
			n, err := conn.ReceiveBinary(buf)
			results <- result{buf[:n], err}
		}
	})
	client := dialTest(t, url, nil)
	client.SendBinary([]byte("1234"))   // shorter than the buffer
	client.SendBinary([]byte("123456")) // longer
	client.SendText("text")             // wrong type
	client.SendBinary(nil)              // empty into an empty buffer
	client.SendBinary([]byte("next"))   // still in step
	want := []result{{[]byte("1234"), nil}, {[]byte("1234"), ErrTooLarge}, {[]byte{}, ErrMessageType}, {[]byte{}, nil}, {[]byte("next"), nil}}
	for i, w := range want {
		got := <-results
		if !bytes.Equal(got.data, w.data) || !errors.Is(got.err, w.err) || (w.err == nil) != (got.err == nil) {
			t.Errorf("message %d: got %q, %v; want %q, %v", i, got.data, got.err, w.data, w.err)
		}
	}
}

func TestSendMessageType(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: echoHandler})
	conn := dialTest(t, url, nil)
	if _, err := conn.SendMessage(0); !errors.Is(err, ErrMessageType) {
		t.Errorf("SendMessage(0): %v", err)
	}
	if _, err := conn.SendMessage(MessageType(8)); !errors.Is(err, ErrMessageType) {
		t.Errorf("SendMessage(8): %v", err)
	}
	if Text.String() != "text" || Binary.String() != "binary" || MessageType(7).String() != "MessageType(7)" {
		t.Errorf("MessageType.String: %v %v %v", Text, Binary, MessageType(7))
	}
}

// TestReceiveBinaryExactSize receives messages that fill the buffer
// exactly, in a request-response loop: finding out that nothing is left
// of the message must not wait for the next one.
func TestReceiveBinaryExactSize(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: echoHandler})
	conn := dialTest(t, url, nil)
	buf := make([]byte, 4)
	for i := range 300 {
		if err := conn.SendBinary([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := conn.ReceiveBinary(buf)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: ReceiveBinary hangs on a message that fills the buffer", i)
		}
	}
}

func TestReadAfterEOF(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: echoHandler})
	conn := dialTest(t, url, nil)
	conn.SendText("x")
	_, r, err := conn.ReceiveMessage()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); string(b) != "x" || err != nil {
		t.Fatalf("ReadAll: %q, %v", b, err)
	}
	time.Sleep(20 * time.Millisecond) // let the reader goroutine wait for the next message
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF: %d, %v", n, err)
	}
}

// TestConnBeforeHandshake uses the connection inside AccessOk, where it
// is not ready yet: calls fail instead of panicking or blocking.
func TestConnBeforeHandshake(t *testing.T) {
	var errs []error
	h := &Handler{AccessOk: func(conn *Conn, _ []string) bool {
		_, _, err := conn.ReceiveMessage()
		errs = append(errs, err, conn.SendText("x"), conn.Close(StatusOK, ""))
		if code, _ := conn.GetStatus(); code != StatusDropped {
			t.Errorf("GetStatus = %v", code)
		}
		return false
	}}
	h.ServeHTTP(httptest.NewRecorder(), handshakeRequest())
	for i, err := range errs {
		if !errors.Is(err, ErrConnClosed) {
			t.Errorf("call %d: %v, want ErrConnClosed", i, err)
		}
	}
}
