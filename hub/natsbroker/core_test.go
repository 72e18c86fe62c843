package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

// queue is a Receiver that sends what it is delivered on.
type queue chan hub.Publication

func (q queue) Deliver(p hub.Publication) { q <- p }
func (q queue) Resubscribed()             {}

// next returns the next n publications delivered to q.
func (q queue) next(t *testing.T, n int) []hub.Publication {
	t.Helper()
	var pubs []hub.Publication
	timeout := time.After(wait)
	for len(pubs) < n {
		select {
		case p := <-q:
			pubs = append(pubs, p)
		case <-timeout:
			t.Fatalf("%d publications delivered after %v, want %d", len(pubs), wait, n)
		}
	}
	return pubs
}

// TestWithoutJetStream checks the broker on a server without JetStream:
// every instance is delivered every publication once, in each
// publisher's order, at gap-free positions of its own, which its own
// Publish returned for its own publications; history is the instance's;
// presence is gathered from every instance.
func TestWithoutJetStream(t *testing.T) {
	s := startServer(t, false)
	connect := connector(t, s, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var brokers []hub.Broker
	var queues []queue
	for range 3 {
		b := connect(t)
		if b.(*Broker).JetStream() {
			t.Fatal("JetStream on a server without it")
		}
		q := make(queue, 1000)
		if err := b.Start(q); err != nil {
			t.Fatal(err)
		}
		brokers, queues = append(brokers, b), append(queues, q)
	}
	const topic, each = "plain", 100
	for _, b := range brokers[:2] {
		if err := b.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}

	// The first two publish at once; the third, which does not
	// subscribe, publishes too.
	var wg sync.WaitGroup
	returned := make([]map[string]hub.Position, 3)
	for i, b := range brokers {
		returned[i] = make(map[string]hub.Position)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				text := fmt.Sprintf("%c%03d", 'a'+i, n)
				pos, err := b.Publish(ctx, hub.Publication{Topic: topic, Type: websocket.Text, Payload: []byte(text)}, hub.HistoryOptions{Size: 50})
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				returned[i][text] = pos
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, q := range queues[:2] {
		pubs := q.next(t, 3*each)
		next := map[byte]int{}
		for j, p := range pubs {
			if p.Position.Offset != uint64(j+1) || p.Position.Epoch != pubs[0].Position.Epoch {
				t.Fatalf("instance %d: publication %d at %+v, want offset %d in epoch %q", i, j, p.Position, j+1, pubs[0].Position.Epoch)
			}
			from := p.Payload[0]
			if want := fmt.Sprintf("%c%03d", from, next[from]); string(p.Payload) != want {
				t.Fatalf("instance %d: publication %d is %q, want %q", i, j, p.Payload, want)
			}
			next[from]++
			if pos, own := returned[i][string(p.Payload)]; own && pos != p.Position {
				t.Fatalf("instance %d: %q delivered at %+v, Publish returned %+v", i, p.Payload, p.Position, pos)
			}
		}
		pubs, current, err := brokers[i].History(ctx, topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		if current != pubs[len(pubs)-1].Position || current.Offset != 3*each || len(pubs) != 50 || pubs[0].Position.Offset != 3*each-49 {
			t.Fatalf("instance %d: history of %d from %+v, position %+v", i, len(pubs), pubs[0].Position, current)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(queues[2]); n != 0 {
		t.Fatalf("an instance that did not subscribe was delivered %d publications", n)
	}

	// Presence.
	a, b := brokers[0], brokers[1]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.AddPresence(ctx, topic, "alice", []byte("A"), time.Minute, true))
	must(b.AddPresence(ctx, topic, "bob", []byte("B"), time.Minute, true))
	must(a.AddPresence(ctx, topic, "alice", []byte("A"), time.Minute, true)) // a refresh
	for i, br := range brokers {
		present, err := br.Presence(ctx, topic)
		must(err)
		if len(present) != 2 || string(present["alice"]) != "A" || string(present["bob"]) != "B" {
			t.Fatalf("instance %d: presence %q", i, present)
		}
	}
	if err := b.AddPresence(ctx, topic, "alice", []byte("B2"), time.Minute, true); !errors.Is(err, hub.ErrClientTaken) {
		t.Fatalf("a name in use on another instance: %v, want ErrClientTaken", err)
	}
	must(a.RemovePresence(ctx, topic, "alice", []byte("other")))
	must(b.RemovePresence(ctx, topic, "alice", []byte("A"))) // not its claim
	must(a.RemovePresence(ctx, topic, "alice", []byte("A")))
	must(b.AddPresence(ctx, topic, "alice", []byte("B2"), time.Minute, true))
	present, err := brokers[2].Presence(ctx, topic)
	must(err)
	if len(present) != 2 || string(present["alice"]) != "B2" {
		t.Fatalf("after alice moved: %q", present)
	}
	brokers[1].Close()
	present, err = a.Presence(ctx, topic)
	must(err)
	if len(present) != 0 {
		t.Fatalf("presence of an instance that closed: %q", present)
	}
}
