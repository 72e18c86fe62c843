package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

// startChat runs a chat server on loopback and returns the URL of its
// WebSocket endpoint.
func startChat(t *testing.T) string {
	t.Helper()
	return startChatOn(t, nil)
}

// startChatOn runs a chat server on loopback with broker, one instance
// of several if other servers use the same broker's peers, and returns
// the URL of its WebSocket endpoint.
func startChatOn(t *testing.T, broker hub.Broker) string {
	t.Helper()
	h, err := hub.New(hub.Options{Broker: broker, History: hub.HistoryOptions{Size: -1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newMux(newRoom(h)))
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/chat"
}

// dial connects to the chat, with opts if not nil; the connection is
// closed when the test ends.
func dial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusOK, "") })
	return conn
}

// join connects and joins the chat as name.
func join(t *testing.T, url, name string) *websocket.Conn {
	t.Helper()
	conn := dial(t, url, nil)
	if err := conn.SendText("CHAT " + name); err != nil {
		t.Fatal(err)
	}
	return conn
}

// next receives the next event.
func next(t *testing.T, conn *websocket.Conn) Message {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	text, err := conn.ReceiveText(1 << 20)
	if err != nil {
		t.Fatalf("receiving: %v", err)
	}
	var msg Message
	if err := json.Unmarshal([]byte(text), &msg); err != nil {
		t.Fatalf("event %q: %v", text, err)
	}
	if time.Since(msg.When) > time.Minute || msg.When.After(time.Now()) {
		t.Errorf("event %q: When is not the current time", text)
	}
	return msg
}

// expect receives the next event and checks its sender and text.
func expect(t *testing.T, conn *websocket.Conn, from, text string) {
	t.Helper()
	if msg := next(t, conn); msg.From != from || msg.Text != text {
		t.Fatalf("got %q from %q, want %q from %q", msg.Text, msg.From, text, from)
	}
}

// status waits for the end of conn and returns the server's close code
// and reason.
func status(t *testing.T, conn *websocket.Conn) (websocket.Status, string) {
	t.Helper()
	done := make(chan struct{})
	var code websocket.Status
	var reason string
	go func() {
		code, reason = conn.GetStatus()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection")
	}
	return code, reason
}

// TestChatTwoInstances runs two chat servers on one in-memory broker:
// they are one room.
func TestChatTwoInstances(t *testing.T) {
	mem := hub.NewMemoryBroker()
	testTwoInstances(t, mem, mem.Peer())
}

// testTwoInstances runs two chat servers, on brokers a and b of one
// server, and checks that they are one room: every message and notice
// reaches the members on both, names are unique across both, and /names
// lists the members of both.
func testTwoInstances(t *testing.T, a, b hub.Broker) {
	urlA, urlB := startChatOn(t, a), startChatOn(t, b)
	ann := join(t, urlA, "Ann")
	expect(t, ann, "", `"Ann" has joined this chat`)
	bob := join(t, urlB, "Bob")
	expect(t, bob, "", `"Bob" has joined this chat`)
	expect(t, ann, "", `"Bob" has joined this chat`)

	// Ann's name is taken on the other instance too.
	ann2 := join(t, urlB, "Ann")
	if code, reason := status(t, ann2); code != websocket.StatusInvalidData || reason != "name already in use" {
		t.Fatalf("a name in use on the other instance: closed with %d %q", code, reason)
	}

	ann.SendText("hello from A")
	expect(t, ann, "Ann", "hello from A")
	expect(t, bob, "Ann", "hello from A")
	bob.SendText("hello from B")
	expect(t, bob, "Bob", "hello from B")
	expect(t, ann, "Bob", "hello from B")

	for _, conn := range []*websocket.Conn{ann, bob} {
		conn.SendText("/names")
		expect(t, conn, "", "members: Ann, Bob")
	}

	ann.SendText("/quit")
	expect(t, bob, "", `"Ann" has left this chat`)
	bob.SendText("/names")
	expect(t, bob, "", "members: Bob")
	// Ann's name is free again, on either instance.
	ann = join(t, urlB, "Ann")
	expect(t, ann, "", `"Ann" has joined this chat`)
	expect(t, bob, "", `"Ann" has joined this chat`)
}

func TestChatProtocol(t *testing.T) {
	url := startChat(t)

	ann := join(t, url, "Ann")
	expect(t, ann, "", `"Ann" has joined this chat`)
	bob := join(t, url, "Bob Builder")
	expect(t, ann, "", `"Bob Builder" has joined this chat`)
	expect(t, bob, "", `"Bob Builder" has joined this chat`)

	ann.SendText("hello, Bob")
	expect(t, ann, "Ann", "hello, Bob")
	expect(t, bob, "Ann", "hello, Bob")

	bob.SendText("/names")
	expect(t, bob, "", "members: Ann, Bob Builder")

	// A name in use is refused with 1007.
	again := join(t, url, "Ann")
	if code, reason := status(t, again); code != websocket.StatusInvalidData || reason != "name already in use" {
		t.Errorf("joining under a name in use: closed with %v %q", code, reason)
	}
	// A first message that is not CHAT is refused with 1002.
	for _, first := range []string{"hello", "CHAT", "chat Carl"} {
		c := dial(t, url, nil)
		c.SendText(first)
		if code, _ := status(t, c); code != websocket.StatusProtocolError {
			t.Errorf("first message %q: closed with %v, want 1002", first, code)
		}
	}
	c := dial(t, url, nil)
	c.SendBinary([]byte("CHAT Carl"))
	if code, _ := status(t, c); code != websocket.StatusProtocolError {
		t.Errorf("binary first message: closed with %v, want 1002", code)
	}

	// Messages that cannot be sent are refused to their sender only.
	bob.SendText(strings.Repeat("x", maxText+1))
	expect(t, bob, "", fmt.Sprintf("your message was longer than %d bytes and was not sent", maxText))
	bob.SendBinary([]byte("bin"))
	expect(t, bob, "", "binary messages are not supported")

	bob.SendText("/quit")
	if code, reason := status(t, bob); code != websocket.StatusOK || reason != "quit request received" {
		t.Errorf("/quit: closed with %v %q", code, reason)
	}
	expect(t, ann, "", `"Bob Builder" has left this chat`)

	ann.Close(websocket.StatusGoingAway, "")
	dave := join(t, url, "Dave")
	expect(t, dave, "", `"Dave" has joined this chat`)
	dave.SendText("/names")
	// Ann's leaving and Dave's joining may come in either order.
	msg := next(t, dave)
	if msg.Text == `"Ann" has left this chat` {
		msg = next(t, dave)
	}
	if msg.Text != "members: Dave" {
		t.Errorf("/names after Ann left: %q", msg.Text)
	}
}

// TestChatSlowMember has one member that never reads while another
// sends 10,000 messages of 1 KiB: every other member gets all of them,
// in order, and the one that does not read is dropped.
func TestChatSlowMember(t *testing.T) {
	const (
		readers  = 5
		messages = 10000
		window   = 64 // messages the sender has in flight at most
	)
	url := startChat(t)

	// The stalled member takes as little as its kernel allows, so
	// that its queue fills after a few hundred messages and not after
	// megabytes of socket buffers.
	stalled := dial(t, url, &websocket.DialOptions{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				conn.(*net.TCPConn).SetReadBuffer(4096)
			}
			return conn, err
		},
	})
	stalled.SendText("CHAT stalled")

	// The readers join one after the other, each waiting for its own
	// join notice, and so see the joins of those after them.  The
	// stalled member's join may come anywhere among them.
	conns := make([]*websocket.Conn, readers)
	stalledJoined := make([]bool, readers)
	expectJoin := func(i, j int) {
		t.Helper()
		msg := next(t, conns[i])
		if msg.From == "" && msg.Text == `"stalled" has joined this chat` && !stalledJoined[i] {
			stalledJoined[i] = true
			msg = next(t, conns[i])
		}
		if want := fmt.Sprintf(`"reader%d" has joined this chat`, j); msg.From != "" || msg.Text != want {
			t.Fatalf("reader%d got %q from %q, want %q", i, msg.Text, msg.From, want)
		}
	}
	for i := range conns {
		conns[i] = join(t, url, fmt.Sprintf("reader%d", i))
		expectJoin(i, i)
	}
	for i := range conns {
		for j := i + 1; j < readers; j++ {
			expectJoin(i, j)
		}
	}

	payload := strings.Repeat("x", 1024-6)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	echoes := make(chan int, messages) // the sender's own copies, for pacing
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want, sawLeave := 0, false
			for want < messages || !sawLeave {
				text, err := conn.ReceiveText(1 << 20)
				if err != nil {
					errs <- fmt.Errorf("reader%d after %d messages: %v", i, want, err)
					return
				}
				var msg Message
				if err := json.Unmarshal([]byte(text), &msg); err != nil {
					errs <- fmt.Errorf("reader%d: %v", i, err)
					return
				}
				if msg.From == "" && msg.Text == `"stalled" has joined this chat` && !stalledJoined[i] {
					stalledJoined[i] = true
					continue
				}
				if msg.From == "" {
					if msg.Text != `"stalled" has left this chat` {
						errs <- fmt.Errorf("reader%d: unexpected notice %q", i, msg.Text)
						return
					}
					sawLeave = true
					continue
				}
				if msg.From != "reader0" || msg.Text != fmt.Sprintf("%05d%s", want, payload) {
					errs <- fmt.Errorf("reader%d: message %d is %.20q… from %q", i, want, msg.Text, msg.From)
					return
				}
				if i == 0 {
					echoes <- want
				}
				want++
			}
		}()
	}

	start := time.Now()
	for n := range messages {
		if n >= window {
			select {
			case <-echoes:
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(10 * time.Second):
				t.Fatalf("message %d: the sender's own copy of message %d did not come back", n, n-window)
			}
		}
		if err := conns[0].SendText(fmt.Sprintf("%05d%s", n, payload)); err != nil {
			t.Fatalf("sending message %d: %v", n, err)
		}
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(60 * time.Second):
		t.Fatal("the readers did not receive every message")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d messages of 1 KiB reached %d members in %v", messages, readers, time.Since(start).Round(time.Millisecond))
}
