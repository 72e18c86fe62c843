// Package brokertest checks an implementation of hub.Broker against the
// contract that the hub relies on: delivery in the order of positions,
// gap-free offsets, history, unique presence across instances, and two
// hubs that serve WebSocket subscribers as one.
package brokertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

// wait bounds every wait of the suite for something that must happen.
const wait = 10 * time.Second

// presenceTTL is the one TTL the suite gives presence, as some brokers
// keep one per bucket.
const presenceTTL = 2 * time.Second

// Run runs the suite.  connect returns a new broker instance, connected
// to the same server as every other it returns, not yet started; Run
// starts and closes it.
func Run(t *testing.T, connect func(t *testing.T) hub.Broker) {
	t.Run("DeliveryOrder", func(t *testing.T) { testDeliveryOrder(t, connect) })
	t.Run("Unsubscribe", func(t *testing.T) { testUnsubscribe(t, connect) })
	t.Run("History", func(t *testing.T) { testHistory(t, connect) })
	t.Run("Presence", func(t *testing.T) { testPresence(t, connect) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, connect) })
	t.Run("TwoHubs", func(t *testing.T) { testTwoHubs(t, connect) })
	t.Run("Recovery", func(t *testing.T) { testRecovery(t, connect) })
}

// Topic returns a topic name of its own for a test, so that tests on a
// shared server do not see each other's publications.
func Topic(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// recorder is a Receiver that keeps what it is delivered.
type recorder struct {
	mu      sync.Mutex
	pubs    []hub.Publication
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) Deliver(p hub.Publication) {
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Resubscribed() {}

// topic returns what r was delivered of topic.
func (r *recorder) topic(name string) []hub.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pubs []hub.Publication
	for _, p := range r.pubs {
		if p.Topic == name {
			pubs = append(pubs, p)
		}
	}
	return pubs
}

// await waits until r has n publications of topic.
func (r *recorder) await(t *testing.T, name string, n int) []hub.Publication {
	t.Helper()
	deadline := time.After(wait)
	for {
		if pubs := r.topic(name); len(pubs) >= n {
			return pubs
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("%d publications of %s delivered after %v, want %d", len(r.topic(name)), name, wait, n)
		}
	}
}

// started connects a broker and starts it with a recorder.
func started(t *testing.T, connect func(t *testing.T) hub.Broker) (hub.Broker, *recorder) {
	t.Helper()
	b := connect(t)
	r := newRecorder()
	if err := b.Start(r); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, r
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

var history = hub.HistoryOptions{Size: 100}

// testDeliveryOrder publishes from two instances at once: both deliver
// every publication once, in the order of gap-free offsets of one epoch,
// each publisher's in the order published, with the positions that
// Publish returned.
func testDeliveryOrder(t *testing.T, connect func(t *testing.T) hub.Broker) {
	a, ra := started(t, connect)
	b, rb := started(t, connect)
	ctx, topic := ctxFor(t), Topic(t)
	for _, br := range []hub.Broker{a, b} {
		if err := br.Subscribe(ctx, topic); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	}
	const each = 50
	var mu sync.Mutex
	returned := make(map[string]hub.Position)
	var wg sync.WaitGroup
	for i, br := range []hub.Broker{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				payload := fmt.Sprintf("%c%03d", 'a'+i, n)
				pos, err := br.Publish(ctx, hub.Publication{Topic: topic, Type: websocket.Text, Payload: []byte(payload)}, history)
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				mu.Lock()
				returned[payload] = pos
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, r := range []*recorder{ra, rb} {
		pubs := r.await(t, topic, 2*each)
		if len(pubs) != 2*each {
			t.Fatalf("delivered %d publications, want %d", len(pubs), 2*each)
		}
		next := map[byte]int{'a': 0, 'b': 0}
		for i, p := range pubs {
			if p.Position.Offset != uint64(i+1) || p.Position.Epoch != pubs[0].Position.Epoch || p.Position.Epoch == "" {
				t.Fatalf("publication %d at %+v, want offset %d in epoch %q", i, p.Position, i+1, pubs[0].Position.Epoch)
			}
			if p.Type != websocket.Text || p.Topic != topic {
				t.Fatalf("publication %d: type %v topic %q", i, p.Type, p.Topic)
			}
			want := fmt.Sprintf("%c%03d", p.Payload[0], next[p.Payload[0]])
			if string(p.Payload) != want {
				t.Fatalf("publication %d is %q, want %q: out of its publisher's order", i, p.Payload, want)
			}
			next[p.Payload[0]]++
			if returned[want] != p.Position {
				t.Fatalf("%q delivered at %+v, Publish returned %+v", want, p.Position, returned[want])
			}
		}
	}
}

// testUnsubscribe checks that an instance that unsubscribed, or never
// subscribed, is not delivered a topic's publications.
func testUnsubscribe(t *testing.T, connect func(t *testing.T) hub.Broker) {
	a, ra := started(t, connect)
	b, rb := started(t, connect)
	ctx, topic, other := ctxFor(t), Topic(t), Topic(t)
	must(t, a.Subscribe(ctx, topic))
	must(t, b.Subscribe(ctx, topic))
	must(t, b.Subscribe(ctx, other))
	publish(t, a, topic, "first")
	ra.await(t, topic, 1)
	rb.await(t, topic, 1)
	must(t, b.Unsubscribe(ctx, topic))
	publish(t, a, topic, "second")
	publish(t, a, other, "other")
	ra.await(t, topic, 2)
	rb.await(t, other, 1)
	// Deliveries of different topics need not keep their order, so
	// give a stray one a moment to arrive.
	time.Sleep(200 * time.Millisecond)
	if n := len(rb.topic(topic)); n != 1 {
		t.Errorf("an unsubscribed instance was delivered %d publications, want 1", n)
	}
	if n := len(ra.topic(other)); n != 0 {
		t.Errorf("an instance that never subscribed was delivered %d publications", n)
	}
}

// testHistory checks that the history keeps the last Size publications,
// returns those after a given offset, and that offsets count without a
// history.
func testHistory(t *testing.T, connect func(t *testing.T) hub.Broker) {
	a, _ := started(t, connect)
	b, _ := started(t, connect)
	ctx, topic := ctxFor(t), Topic(t)

	pubs, current, err := b.History(ctx, topic, 0)
	must(t, err)
	if len(pubs) != 0 || current.Offset != 0 || current.Epoch == "" {
		t.Fatalf("new topic: history %d, position %+v; want none, offset 0 and an epoch", len(pubs), current)
	}
	epoch := current.Epoch
	for i := range 10 {
		_, err := a.Publish(ctx, hub.Publication{Topic: topic, Type: websocket.Binary, Payload: []byte{byte(i)}}, hub.HistoryOptions{Size: 5})
		must(t, err)
	}
	for _, tc := range []struct {
		after uint64
		want  []uint64
	}{
		{0, []uint64{6, 7, 8, 9, 10}},
		{7, []uint64{8, 9, 10}},
		{10, nil},
		{1 << 40, nil},
	} {
		pubs, current, err := b.History(ctx, topic, tc.after)
		must(t, err)
		if current != (hub.Position{Offset: 10, Epoch: epoch}) {
			t.Fatalf("position %+v, want offset 10 in epoch %q", current, epoch)
		}
		var got []uint64
		for _, p := range pubs {
			got = append(got, p.Position.Offset)
			if p.Type != websocket.Binary || !bytes.Equal(p.Payload, []byte{byte(p.Position.Offset - 1)}) || p.Topic != topic {
				t.Fatalf("history after %d: %+v", tc.after, p)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("history after %d: offsets %v, want %v", tc.after, got, tc.want)
		}
	}

	none := Topic(t)
	for range 3 {
		_, err := a.Publish(ctx, hub.Publication{Topic: none, Type: websocket.Text, Payload: []byte("x")}, hub.HistoryOptions{})
		must(t, err)
	}
	pubs, current, err = b.History(ctx, none, 0)
	must(t, err)
	if len(pubs) != 0 || current.Offset != 3 {
		t.Errorf("without history: %d kept, offset %d; want none and 3", len(pubs), current.Offset)
	}
}

// testPresence checks presence across instances: unique claims,
// refreshes, compare-and-delete and expiry.
func testPresence(t *testing.T, connect func(t *testing.T) hub.Broker) {
	a, _ := started(t, connect)
	b, _ := started(t, connect)
	ctx, topic := ctxFor(t), Topic(t)
	must(t, a.AddPresence(ctx, topic, "alice", []byte("A1"), presenceTTL, true))
	must(t, b.AddPresence(ctx, topic, "bob", []byte("B1"), presenceTTL, true))
	for _, br := range []hub.Broker{a, b} {
		present, err := br.Presence(ctx, topic)
		must(t, err)
		if len(present) != 2 || string(present["alice"]) != "A1" || string(present["bob"]) != "B1" {
			t.Fatalf("presence %q, want alice A1 and bob B1", present)
		}
	}
	if err := b.AddPresence(ctx, topic, "alice", []byte("B2"), presenceTTL, true); !errors.Is(err, hub.ErrClientTaken) {
		t.Fatalf("claiming a name in use on another instance: %v, want ErrClientTaken", err)
	}
	must(t, a.AddPresence(ctx, topic, "alice", []byte("A1"), presenceTTL, true)) // a refresh
	must(t, b.RemovePresence(ctx, topic, "alice", []byte("B2")))                 // not its claim
	present, err := b.Presence(ctx, topic)
	must(t, err)
	if string(present["alice"]) != "A1" {
		t.Fatalf("a remove with other info removed the claim: %q", present)
	}
	must(t, a.RemovePresence(ctx, topic, "alice", []byte("A1")))
	must(t, b.AddPresence(ctx, topic, "alice", []byte("B2"), presenceTTL, true))
	present, err = a.Presence(ctx, topic)
	must(t, err)
	if len(present) != 2 || string(present["alice"]) != "B2" {
		t.Fatalf("after the name was freed and claimed again: %q", present)
	}

	// Not refreshed, both expire; the name can be claimed again.
	deadline := time.Now().Add(presenceTTL + wait)
	for {
		present, err = a.Presence(ctx, topic)
		must(t, err)
		if len(present) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence %q still there long after its TTL", present)
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, a.AddPresence(ctx, topic, "alice", []byte("A3"), presenceTTL, true))
}

// testClosed checks that a closed broker refuses to publish.
func testClosed(t *testing.T, connect func(t *testing.T) hub.Broker) {
	a, _ := started(t, connect)
	must(t, a.Close())
	_, err := a.Publish(ctxFor(t), hub.Publication{Topic: Topic(t), Type: websocket.Text, Payload: []byte("late")}, history)
	if err == nil {
		t.Fatal("a closed broker published")
	}
}

func publish(t *testing.T, b hub.Broker, topic, text string) hub.Position {
	t.Helper()
	pos, err := b.Publish(ctxFor(t), hub.Publication{Topic: topic, Type: websocket.Text, Payload: []byte(text)}, history)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return pos
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
