package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

// TestRedisRestart kills Redis under two hubs with subscribers on both,
// and starts it again on the same port: publishing fails while Redis
// is away, and works again once it is back, without anybody
// subscribing again; a subscriber that recovers from a position of
// before sees whether the history survived.
func TestRedisRestart(t *testing.T) {
	t.Run("WithoutPersistence", func(t *testing.T) { testRedisRestart(t, false) })
	t.Run("WithAOF", func(t *testing.T) {
		testRedisRestart(t, true, "--appendonly", "yes", "--appendfsync", "always")
	})
}

func testRedisRestart(t *testing.T, keepsData bool, args ...string) {
	checkGoroutines(t)
	srv := startRedis(t, args...)
	prefix := testPrefix()
	a, b := startHub(t, srv.addr, prefix), startHub(t, srv.addr, prefix)
	const topic = "news"
	alice := a.join(t, topic, "alice", nil)
	bob := b.join(t, topic, "bob", nil)

	var published []message // what Publish said it published, in order
	publish := func(h *testHub, text string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		pos, err := h.hub.Publish(ctx, topic, websocket.Text, []byte(text))
		if err == nil {
			published = append(published, message{Offset: pos.Offset, Epoch: pos.Epoch, Text: text})
		}
		return err
	}
	for i := range 3 {
		if err := publish([]*testHub{a, b}[i%2], fmt.Sprint("before ", i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	alice.expect(t, published)
	bob.expect(t, published)
	before, n := published[len(published)-1], len(published)

	srv.kill()
	// The hub's connections learn of it at their next use.  While Redis
	// is away, every publication fails, on both instances.
	for i := range 4 {
		start := time.Now()
		err := publish([]*testHub{a, b}[i%2], fmt.Sprint("while away ", i))
		if err == nil {
			t.Fatal("a publication succeeded while Redis was away")
		}
		t.Logf("Publish while Redis is away failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}

	srv.start(t)
	// The first publication that succeeds may wait for the client to
	// dial again.
	restarted := time.Now()
	deadline := restarted.Add(wait)
	for publish(a, "after 0") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no publication succeeded within %v of Redis's restart", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("publishing again %v after the restart", time.Since(restarted).Round(time.Millisecond))
	for i := 1; i < 4; i++ {
		if err := publish([]*testHub{a, b}[i%2], fmt.Sprint("after ", i)); err != nil {
			t.Fatalf("Publish after the restart: %v", err)
		}
	}
	after := published[n:]
	first := after[0]
	if keepsData {
		if first.Epoch != before.Epoch || first.Offset != before.Offset+1 {
			t.Fatalf("Redis kept its data, yet the first publication after its restart is at %d/%s, after %d/%s",
				first.Offset, first.Epoch, before.Offset, before.Epoch)
		}
	} else if first.Epoch == before.Epoch || first.Offset != 1 {
		t.Fatalf("Redis lost its data, yet the first publication after its restart is at %d/%s, after %d/%s",
			first.Offset, first.Epoch, before.Offset, before.Epoch)
	}
	// Subscribers on both instances are sent what is new, without
	// subscribing again, once each and in order.
	alice.expect(t, after)
	bob.expect(t, after)

	// A subscriber that lost its connection before Redis did comes back
	// with the last position it has.
	carol := b.join(t, topic, "carol", &hub.Position{Offset: before.Offset, Epoch: before.Epoch})
	if keepsData {
		if carol.hello.Gap {
			t.Fatal("recovery from a position that the history still holds reported a gap")
		}
		carol.expect(t, after)
	} else if !carol.hello.Gap {
		t.Fatal("recovery from a position of an epoch that Redis lost reported no gap")
	}
	if last := published[len(published)-1]; carol.hello.Offset != last.Offset || carol.hello.Epoch != last.Epoch {
		t.Fatalf("carol's subscription starts at %d/%s, want %d/%s", carol.hello.Offset, carol.hello.Epoch, last.Offset, last.Epoch)
	}
	// One from the new epoch recovers.
	dave := a.join(t, topic, "dave", &hub.Position{Offset: first.Offset, Epoch: first.Epoch})
	if dave.hello.Gap {
		t.Fatal("recovery from a position after the restart reported a gap")
	}
	dave.expect(t, after[1:])
	// Nobody was sent anything twice.
	if err := publish(b, "last"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for _, c := range []*client{alice, bob, carol, dave} {
		c.expect(t, published[len(published)-1:])
	}

	// The hubs refresh the presence that Redis may have lost.
	deadline = time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		present, err := a.hub.Presence(ctx, topic)
		cancel()
		if err != nil {
			t.Fatalf("Presence: %v", err)
		}
		if len(present) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence %q after the restart, want alice, bob, carol and dave", present)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// message is what the test's subscribers are sent: a hello with the
// position their subscription starts from, then each publication with
// its position.
type message struct {
	Hello  bool   `json:"hello,omitempty"`
	Gap    bool   `json:"gap,omitempty"`
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
	Text   string `json:"text,omitempty"`
}

// testHub is a hub on a Broker of its own, with a WebSocket endpoint
// that subscribes connections to /?topic=T&name=N[&offset=O&epoch=E].
type testHub struct {
	hub *hub.Hub
	url string
}

func startHub(t *testing.T, addr, prefix string) *testHub {
	t.Helper()
	b, err := New(Options{Addr: addr, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Options{
		Broker:        b,
		PresenceTTL:   time.Second,
		BrokerTimeout: 2 * time.Second,
		Format: func(p *hub.Publication) []byte {
			return encode(message{Offset: p.Position.Offset, Epoch: p.Position.Epoch, Text: string(p.Payload)})
		},
		ErrorLog: func(err error) { t.Logf("hub: %v", err) },
	})
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	th := &testHub{hub: h}
	srv := httptest.NewServer(&websocket.Handler{Handle: th.serve})
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	th.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return th
}

// serve subscribes a connection and reads from it until it ends.
func (th *testHub) serve(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")
	defer th.hub.Leave(conn)
	q := conn.ResourceName.Query()
	opts := hub.SubscribeOptions{Client: q.Get("name"), Unique: true}
	if q.Has("epoch") {
		offset, _ := strconv.ParseUint(q.Get("offset"), 10, 64)
		opts.Since = &hub.Position{Offset: offset, Epoch: q.Get("epoch")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start, err := th.hub.SubscribeWith(ctx, conn, q.Get("topic"), opts)
	if err != nil && !errors.Is(err, hub.ErrRecoveryGap) {
		conn.Close(websocket.StatusInternalServerError, err.Error())
		return
	}
	hello := message{Hello: true, Gap: err != nil, Offset: start.Offset, Epoch: start.Epoch}
	if conn.SendText(string(encode(hello))) != nil {
		return
	}
	for {
		if _, _, err := conn.ReceiveMessage(); err != nil {
			return
		}
	}
}

func encode(m message) []byte {
	data, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return data
}

// client is a test subscriber.
type client struct {
	conn      *websocket.Conn
	hello     message
	recovered []message // sent before the hello: what it missed
}

// join connects a subscriber to th and waits for its hello.
func (th *testHub) join(t *testing.T, topic, name string, since *hub.Position) *client {
	t.Helper()
	q := url.Values{"topic": {topic}, "name": {name}}
	if since != nil {
		q.Set("offset", strconv.FormatUint(since.Offset, 10))
		q.Set("epoch", since.Epoch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := websocket.Dial(ctx, th.url+"/?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusOK, "") })
	c := &client{conn: conn}
	for {
		m := c.receive(t)
		if m.Hello {
			c.hello = m
			return c
		}
		c.recovered = append(c.recovered, m)
	}
}

// receive returns the next message the client is sent.
func (c *client) receive(t *testing.T) message {
	t.Helper()
	if len(c.recovered) > 0 && c.hello.Hello {
		m := c.recovered[0]
		c.recovered = c.recovered[1:]
		return m
	}
	c.conn.SetReadDeadline(time.Now().Add(wait))
	text, err := c.conn.ReceiveText(1 << 16)
	if err != nil {
		code, reason := c.conn.GetStatus()
		t.Fatalf("receive: %v (status %d %q)", err, code, reason)
	}
	var m message
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return m
}

// expect checks that the client is sent want next, in order.
func (c *client) expect(t *testing.T, want []message) {
	t.Helper()
	for _, w := range want {
		if m := c.receive(t); m != w {
			t.Fatalf("sent %+v, want %+v", m, w)
		}
	}
}
