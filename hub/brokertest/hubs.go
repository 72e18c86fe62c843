package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

// event is what a test subscriber is sent: first a hello with where its
// subscription starts, then every publication with its position.
type event struct {
	Hello  bool
	Gap    bool // the subscriber could not recover
	Offset uint64
	Epoch  string
	Text   string
}

// instance is one hub with a WebSocket endpoint: a connection to
// /?topic=T&name=N[&offset=O&epoch=E] subscribes to T as N, recovering
// from the position if given.
type instance struct {
	hub *hub.Hub
	url string
}

func startInstance(t *testing.T, b hub.Broker) *instance {
	t.Helper()
	h, err := hub.New(hub.Options{
		Broker:      b,
		PresenceTTL: presenceTTL,
		Format: func(p *hub.Publication) []byte {
			return encodeEvent(event{Offset: p.Position.Offset, Epoch: p.Position.Epoch, Text: string(p.Payload)})
		},
		ErrorLog: func(err error) { t.Logf("hub: %v", err) },
	})
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	in := &instance{hub: h}
	srv := httptest.NewServer(&websocket.Handler{Handle: in.serve})
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	in.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return in
}

// serve subscribes a connection and holds it until it ends.
func (in *instance) serve(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")
	defer in.hub.Leave(conn)
	q := conn.ResourceName.Query()
	opts := hub.SubscribeOptions{Client: q.Get("name"), Info: []byte("info of " + q.Get("name")), Unique: true}
	if q.Has("epoch") {
		offset, _ := strconv.ParseUint(q.Get("offset"), 10, 64)
		opts.Since = &hub.Position{Offset: offset, Epoch: q.Get("epoch")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start, err := in.hub.SubscribeWith(ctx, conn, q.Get("topic"), opts)
	switch {
	case errors.Is(err, hub.ErrClientTaken):
		conn.Close(websocket.StatusInvalidData, "name already in use")
		return
	case err != nil && err != hub.ErrRecoveryGap:
		conn.Close(websocket.StatusInternalServerError, err.Error())
		return
	}
	if conn.SendText(string(encodeEvent(event{Hello: true, Gap: err != nil, Offset: start.Offset, Epoch: start.Epoch}))) != nil {
		return
	}
	for {
		if _, _, err := conn.ReceiveMessage(); err != nil {
			return
		}
	}
}

func encodeEvent(e event) []byte {
	data, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return data
}

// subscriber is a test client.
type subscriber struct {
	conn  *websocket.Conn
	hello event
	early []event // sent before the hello: recovered from the history
	at    event   // the position checkStream has read up to
}

// join connects to in as name, subscribed to topic, and waits for the
// hello; since, if set, is where to recover from.
func join(t *testing.T, in *instance, topic, name string, since *hub.Position) *subscriber {
	t.Helper()
	q := url.Values{"topic": {topic}, "name": {name}}
	if since != nil {
		q.Set("offset", strconv.FormatUint(since.Offset, 10))
		q.Set("epoch", since.Epoch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := websocket.Dial(ctx, in.url+"/?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusOK, "") })
	// What a subscriber recovers is sent before SubscribeWith returns,
	// so before the hello.
	s := &subscriber{conn: conn}
	for {
		e := s.receive(t)
		if e.Hello {
			s.hello, s.at = e, e
			return s
		}
		s.early = append(s.early, e)
	}
}

// next returns the next event the subscriber is sent.
func (s *subscriber) next(t *testing.T) event {
	t.Helper()
	if len(s.early) > 0 {
		e := s.early[0]
		s.early = s.early[1:]
		return e
	}
	return s.receive(t)
}

// receive reads an event from the connection.
func (s *subscriber) receive(t *testing.T) event {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(wait))
	text, err := s.conn.ReceiveText(1 << 16)
	if err != nil {
		code, reason := s.conn.GetStatus()
		t.Fatalf("receive: %v (status %d %q)", err, code, reason)
	}
	var e event
	if err := json.Unmarshal([]byte(text), &e); err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return e
}

// testTwoHubs runs two hubs, on two broker instances, with subscribers
// on both and publishers on both: every subscriber is sent every
// message once, in each publisher's order, with consecutive positions;
// the presence lists the subscribers of both; a name in use on one
// instance is refused on the other.
func testTwoHubs(t *testing.T, connect func(t *testing.T) hub.Broker) {
	hubs := []*instance{startInstance(t, connect(t)), startInstance(t, connect(t))}
	topic := Topic(t)
	var subs []*subscriber
	for i := range 6 {
		subs = append(subs, join(t, hubs[i%2], topic, fmt.Sprintf("member%d", i), nil))
	}

	present, err := hubs[1].hub.Presence(ctxFor(t), topic)
	must(t, err)
	if len(present) != 6 || string(present["member0"]) != "info of member0" {
		t.Fatalf("presence %q, want the 6 members of both instances", present)
	}

	// A name in use on the first instance, refused on the second.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dup, err := websocket.Dial(ctx, hubs[1].url+"/?"+url.Values{"topic": {topic}, "name": {"member0"}}.Encode(), nil)
	must(t, err)
	dup.SetReadDeadline(time.Now().Add(wait))
	if _, err := dup.ReceiveText(1 << 10); err == nil {
		t.Fatal("a second member0 was subscribed")
	}
	if code, _ := dup.GetStatus(); code != websocket.StatusInvalidData {
		t.Fatalf("a duplicate name was closed with %d, want %d", code, websocket.StatusInvalidData)
	}

	const each = 100
	var wg sync.WaitGroup
	for i, in := range hubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				_, err := in.hub.Publish(ctx, topic, websocket.Text, fmt.Appendf(nil, "%c-%d", 'A'+i, n))
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		}()
	}
	for _, s := range subs {
		checkStream(t, s, 2*each, map[byte]int{'A': 0, 'B': 0})
	}
	wg.Wait()
}

// checkStream reads n publications from s: consecutive positions after
// its hello, and each publisher's messages in order from next.
func checkStream(t *testing.T, s *subscriber, n int, next map[byte]int) event {
	t.Helper()
	last := s.at
	for range n {
		e := s.next(t)
		if e.Offset != last.Offset+1 || e.Epoch != last.Epoch {
			t.Fatalf("after %d/%s came %d/%s: not the next position", last.Offset, last.Epoch, e.Offset, e.Epoch)
		}
		want := fmt.Sprintf("%c-%d", e.Text[0], next[e.Text[0]])
		if e.Text != want {
			t.Fatalf("got %q, want %q", e.Text, want)
		}
		next[e.Text[0]]++
		last = e
	}
	s.at = last
	return last
}

// testRecovery disconnects a subscriber, publishes, and reconnects it to
// the other instance with its last position: it is sent what it missed,
// then what is new; a position of an unknown epoch gets a gap.
func testRecovery(t *testing.T, connect func(t *testing.T) hub.Broker) {
	a, b := startInstance(t, connect(t)), startInstance(t, connect(t))
	topic := Topic(t)
	ctx := ctxFor(t)
	pub := func(in *instance, n int) {
		t.Helper()
		if _, err := in.hub.Publish(ctx, topic, websocket.Text, fmt.Appendf(nil, "A-%d", n)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	s := join(t, a, topic, "roamer", nil)
	for n := range 3 {
		pub(b, n)
	}
	last := checkStream(t, s, 3, map[byte]int{'A': 0})
	s.conn.Close(websocket.StatusGoingAway, "")
	for n := 3; n < 7; n++ {
		pub(b, n)
	}

	since := hub.Position{Offset: last.Offset, Epoch: last.Epoch}
	back := join(t, b, topic, "roamer", &since)
	if back.hello.Gap || back.hello.Offset != 7 || len(back.early) != 4 {
		t.Fatalf("recovery from a position within the history: hello %+v after %d messages, want offset 7 after 4", back.hello, len(back.early))
	}
	back.at = event{Offset: since.Offset, Epoch: since.Epoch}
	next := map[byte]int{'A': 3}
	checkStream(t, back, 4, next)
	pub(a, 7)
	checkStream(t, back, 1, next)

	lost := join(t, a, topic, "stranger", &hub.Position{Offset: 1, Epoch: "an epoch long gone"})
	if !lost.hello.Gap {
		t.Fatal("recovery from a position of another epoch reported no gap")
	}
}
