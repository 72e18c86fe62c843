package websocket

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pipePeer drives a server connection over net.Pipe, which has no
// buffering: every write of the server arrives as one read here, so the
// test sees how the server cut its output into writes.
type pipePeer struct {
	t      *testing.T
	client net.Conn
	server *Conn

	mu     sync.Mutex
	writes [][]byte // the server's writes, in order
	wrote  chan struct{}
}

func newPipePeer(t *testing.T) *pipePeer {
	t.Helper()
	serverEnd, clientEnd := net.Pipe()
	p := &pipePeer{t: t, client: clientEnd, server: &Conn{}, wrote: make(chan struct{}, 1000)}
	p.server.init(serverEnd, nil, false, defaultSettings(), 0)
	p.server.start()
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := clientEnd.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.writes = append(p.writes, bytes.Clone(buf[:n]))
				p.mu.Unlock()
				p.wrote <- struct{}{}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		clientEnd.Close()
		p.server.Close(StatusOK, "")
	})
	return p
}

// send writes frames to the server in one write, as a pipelining peer
// does.  net.Pipe's write waits for the server to read, so it runs on a
// goroutine of its own: the server is to read it as a receive call.
func (p *pipePeer) send(frames ...[]byte) {
	data := bytes.Join(frames, nil)
	go p.client.Write(data)
}

// longCorkDelay makes replies wait for as long as the test runs, so that
// only the rules of coalescing decide when they go out.
func longCorkDelay(t *testing.T) {
	old := corkDelay.Swap(int64(time.Hour))
	t.Cleanup(func() { corkDelay.Store(old) })
}

// waitWrites waits until the server has made n writes in all, and
// returns them.
func (p *pipePeer) waitWrites(n int) [][]byte {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.writes)
		writes := append([][]byte(nil), p.writes...)
		p.mu.Unlock()
		if got >= n {
			return writes
		}
		select {
		case <-p.wrote:
		case <-timeout:
			p.t.Fatalf("the server made %d writes, want %d", got, n)
		}
	}
}

// unframe decodes the server frames in data and returns their payloads.
func unframe(t *testing.T, data []byte) []string {
	t.Helper()
	var payloads []string
	for len(data) > 0 {
		if len(data) < 2 || data[1]&0x7F >= 126 {
			t.Fatalf("unexpected frame bytes % x", data)
		}
		n := int(data[1])
		payloads = append(payloads, string(data[2:2+n]))
		data = data[2+n:]
	}
	return payloads
}

// echoOnce receives one message and sends it back.
func echoOnce(c *Conn) error {
	tp, r, err := c.ReceiveMessage()
	if err != nil {
		return err
	}
	w, err := c.SendMessage(tp)
	if err != nil {
		return err
	}
	io.Copy(w, r)
	return w.Close()
}

// A lone request is answered at once, in one write: there is nothing to
// wait for.
func TestCoalesceLoneMessage(t *testing.T) {
	checkGoroutines(t)
	longCorkDelay(t) // a held reply would never come
	p := newPipePeer(t)
	p.send(frame(true, opText, "ping?"))
	if err := echoOnce(p.server); err != nil {
		t.Fatal(err)
	}
	writes := p.waitWrites(1)
	if got := unframe(t, writes[0]); len(got) != 1 || got[0] != "ping?" {
		t.Errorf("the reply: %q", got)
	}
}

// Replies to pipelined requests go out together, once the application
// has read the requests that were there.
func TestCoalescePipelined(t *testing.T) {
	checkGoroutines(t)
	longCorkDelay(t)
	p := newPipePeer(t)
	var frames [][]byte
	var want []string
	for i := range 16 {
		msg := string(rune('a' + i))
		frames = append(frames, frame(true, opText, msg))
		want = append(want, msg)
	}
	p.send(frames...)
	for range 16 {
		if err := echoOnce(p.server); err != nil {
			t.Fatal(err)
		}
	}
	writes := p.waitWrites(1)
	if len(writes) != 1 {
		t.Errorf("16 pipelined replies took %d writes, want 1", len(writes))
	}
	if got := unframe(t, bytes.Join(writes, nil)); !equalStrings(got, want) {
		t.Errorf("replies %q, want %q", got, want)
	}
}

// Replies held back go out before the connection waits for more input,
// here for the rest of a request that came in part.
func TestCoalesceFlushBeforeWaiting(t *testing.T) {
	checkGoroutines(t)
	longCorkDelay(t)
	p := newPipePeer(t)
	third := frame(true, opText, "third")
	p.send(frame(true, opText, "first"), frame(true, opText, "second"), third[:3])
	for range 2 {
		if err := echoOnce(p.server); err != nil {
			t.Fatal(err)
		}
	}
	// Both replies are held: more input is there.  The next receive
	// must wait for the rest of the third request, and sends them
	// before it does.
	done := make(chan error, 1)
	go func() { done <- echoOnce(p.server) }()
	writes := p.waitWrites(1)
	if got := unframe(t, bytes.Join(writes, nil)); !equalStrings(got, []string{"first", "second"}) {
		t.Errorf("before waiting, the server sent %q", got)
	}
	p.send(third[3:])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	writes = p.waitWrites(len(writes) + 1)
	if got := unframe(t, bytes.Join(writes, nil)); !equalStrings(got, []string{"first", "second", "third"}) {
		t.Errorf("the server sent %q", got)
	}
}

// A pong held back behind pipelined requests goes out within the bound,
// also while the application does not get around to reading them.
func TestCoalesceControlFrameBound(t *testing.T) {
	checkGoroutines(t)
	p := newPipePeer(t)
	p.send(frame(true, opText, "one"), frame(true, opPing, "are you there"), frame(true, opText, "two"))
	if err := echoOnce(p.server); err != nil {
		t.Fatal(err)
	}
	// The reply to "one" is held: "two" is waiting.  The application
	// now reads on, which answers the ping; the pong is held too.
	_, r, err := p.server.ReceiveMessage()
	if err != nil {
		t.Fatal(err)
	}
	// The application is busy with "two" and sends nothing: the held
	// frames go out after corkDelay all the same.
	writes := p.waitWrites(1)
	data := bytes.Join(writes, nil)
	if !bytes.Contains(data, []byte("one")) || !bytes.Contains(data, []byte("are you there")) {
		t.Errorf("held frames did not go out: % x", data)
	}
	io.Copy(io.Discard, r)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
