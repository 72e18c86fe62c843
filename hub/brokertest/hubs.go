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

// Event is what a subscriber of an Instance is sent: first a hello with
// where its subscription starts, then every publication with its
// position.
type Event struct {
	Hello  bool
	Gap    bool // the subscriber could not recover
	Offset uint64
	Epoch  string
	Text   string
}

// Instance is one hub with a WebSocket endpoint: a connection to
// /?topic=T&name=N[&offset=O&epoch=E] subscribes to T as N, a unique
// client, recovering from the position if given, and is sent Events.
// Brokers' own tests (a server restarted, say) use it as the suite does.
type Instance struct {
	Hub *hub.Hub
	URL string
}

// StartInstance starts a hub on b with a WebSocket endpoint on loopback,
// both closed when the test ends.
func StartInstance(t *testing.T, b hub.Broker) *Instance {
	t.Helper()
	h, err := hub.New(hub.Options{
		Broker:      b,
		PresenceTTL: presenceTTL,
		Format: func(p *hub.Publication) []byte {
			return encodeEvent(Event{Offset: p.Position.Offset, Epoch: p.Position.Epoch, Text: string(p.Payload)})
		},
		ErrorLog: func(err error) { t.Logf("hub: %v", err) },
	})
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	in := &Instance{Hub: h}
	srv := httptest.NewServer(&websocket.Handler{Handle: in.serve})
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	in.URL = "ws" + strings.TrimPrefix(srv.URL, "http")
	return in
}

// serve subscribes a connection and holds it until it ends.
func (in *Instance) serve(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")
	defer in.Hub.Leave(conn)
	q := conn.ResourceName.Query()
	opts := hub.SubscribeOptions{Client: q.Get("name"), Info: []byte("info of " + q.Get("name")), Unique: true}
	if q.Has("epoch") {
		offset, _ := strconv.ParseUint(q.Get("offset"), 10, 64)
		opts.Since = &hub.Position{Offset: offset, Epoch: q.Get("epoch")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start, err := in.Hub.SubscribeWith(ctx, conn, q.Get("topic"), opts)
	switch {
	case errors.Is(err, hub.ErrClientTaken):
		conn.Close(websocket.StatusInvalidData, "name already in use")
		return
	case err != nil && err != hub.ErrRecoveryGap:
		conn.Close(websocket.StatusInternalServerError, err.Error())
		return
	}
	if conn.SendText(string(encodeEvent(Event{Hello: true, Gap: err != nil, Offset: start.Offset, Epoch: start.Epoch}))) != nil {
		return
	}
	for {
		if _, _, err := conn.ReceiveMessage(); err != nil {
			return
		}
	}
}

func encodeEvent(e Event) []byte {
	data, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return data
}

// Subscriber is a client of an Instance.
type Subscriber struct {
	Conn  *websocket.Conn
	Hello Event
	early []Event // sent before the hello: recovered from the history
	at    Event   // the position checkStream has read up to
}

// Join connects to in as name, subscribed to topic, and waits for the
// hello; since, if set, is where to recover from.  The connection is
// closed when the test ends.
func (in *Instance) Join(t *testing.T, topic, name string, since *hub.Position) *Subscriber {
	t.Helper()
	q := url.Values{"topic": {topic}, "name": {name}}
	if since != nil {
		q.Set("offset", strconv.FormatUint(since.Offset, 10))
		q.Set("epoch", since.Epoch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := websocket.Dial(ctx, in.URL+"/?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusOK, "") })
	// What a subscriber recovers is sent before SubscribeWith returns,
	// so before the hello.
	s := &Subscriber{Conn: conn}
	for {
		e := s.receive(t)
		if e.Hello {
			s.Hello, s.at = e, e
			return s
		}
		s.early = append(s.early, e)
	}
}

// Next returns the next Event the subscriber is sent.
func (s *Subscriber) Next(t *testing.T) Event {
	t.Helper()
	if len(s.early) > 0 {
		e := s.early[0]
		s.early = s.early[1:]
		return e
	}
	return s.receive(t)
}

// Expect checks that the subscriber is sent want next, in order.
func (s *Subscriber) Expect(t *testing.T, want []Event) {
	t.Helper()
	for _, w := range want {
		if e := s.Next(t); e != w {
			t.Fatalf("sent %+v, want %+v", e, w)
		}
	}
}

// receive reads the next Event from the connection.
func (s *Subscriber) receive(t *testing.T) Event {
	t.Helper()
	s.Conn.SetReadDeadline(time.Now().Add(wait))
	text, err := s.Conn.ReceiveText(1 << 16)
	if err != nil {
		code, reason := s.Conn.GetStatus()
		t.Fatalf("receive: %v (status %d %q)", err, code, reason)
	}
	var e Event
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
	hubs := []*Instance{StartInstance(t, connect(t)), StartInstance(t, connect(t))}
	topic := Topic(t)
	var subs []*Subscriber
	for i := range 6 {
		subs = append(subs, hubs[i%2].Join(t, topic, fmt.Sprintf("member%d", i), nil))
	}

	present, err := hubs[1].Hub.Presence(ctxFor(t), topic)
	must(t, err)
	if len(present) != 6 || string(present["member0"]) != "info of member0" {
		t.Fatalf("presence %q, want the 6 members of both instances", present)
	}

	// A name in use on the first instance, refused on the second.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dup, err := websocket.Dial(ctx, hubs[1].URL+"/?"+url.Values{"topic": {topic}, "name": {"member0"}}.Encode(), nil)
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
				_, err := in.Hub.Publish(ctx, topic, websocket.Text, fmt.Appendf(nil, "%c-%d", 'A'+i, n))
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
func checkStream(t *testing.T, s *Subscriber, n int, next map[byte]int) Event {
	t.Helper()
	last := s.at
	for range n {
		e := s.Next(t)
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
	a, b := StartInstance(t, connect(t)), StartInstance(t, connect(t))
	topic := Topic(t)
	ctx := ctxFor(t)
	pub := func(in *Instance, n int) {
		t.Helper()
		if _, err := in.Hub.Publish(ctx, topic, websocket.Text, fmt.Appendf(nil, "A-%d", n)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	s := a.Join(t, topic, "roamer", nil)
	for n := range 3 {
		pub(b, n)
	}
	last := checkStream(t, s, 3, map[byte]int{'A': 0})
	s.Conn.Close(websocket.StatusGoingAway, "")
	for n := 3; n < 7; n++ {
		pub(b, n)
	}

	since := hub.Position{Offset: last.Offset, Epoch: last.Epoch}
	back := b.Join(t, topic, "roamer", &since)
	if back.Hello.Gap || back.Hello.Offset != 7 || len(back.early) != 4 {
		t.Fatalf("recovery from a position within the history: hello %+v after %d messages, want offset 7 after 4", back.Hello, len(back.early))
	}
	back.at = Event{Offset: since.Offset, Epoch: since.Epoch}
	next := map[byte]int{'A': 3}
	checkStream(t, back, 4, next)
	pub(a, 7)
	checkStream(t, back, 1, next)

	lost := a.Join(t, topic, "stranger", &hub.Position{Offset: 1, Epoch: "an epoch long gone"})
	if !lost.Hello.Gap {
		t.Fatal("recovery from a position of another epoch reported no gap")
	}
}
