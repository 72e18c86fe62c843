package natsbroker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/nats-io/nats.go/jetstream"
)

// TestTopicExpires checks that a topic whose TTL ended starts a new epoch
// that History and Publish agree on, on every instance.
func TestTopicExpires(t *testing.T) {
	s := startServer(t, true)
	connect := connector(t, s, Options{})
	a, b := connect(t), connect(t)
	for _, br := range []hub.Broker{a, b} {
		if err := br.Start(nopReceiver{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	const topic = "expiring"
	h := hub.HistoryOptions{Size: 10, TTL: 300 * time.Millisecond}
	var first hub.Position
	for range 3 {
		pos, err := a.Publish(ctx, hub.Publication{Topic: topic, Type: websocket.Text, Payload: []byte("x")}, h)
		if err != nil {
			t.Fatal(err)
		}
		first = pos
	}
	if first.Offset != 3 {
		t.Fatalf("third publication at %+v", first)
	}
	time.Sleep(h.TTL + 100*time.Millisecond)
	pubs, current, err := b.History(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 0 || current.Offset != 0 || current.Epoch == first.Epoch || current.Epoch == "" {
		t.Fatalf("expired topic: %d kept, position %+v (the old one %+v)", len(pubs), current, first)
	}
	pos, err := a.Publish(ctx, hub.Publication{Topic: topic, Type: websocket.Binary, Payload: []byte{1}}, h)
	if err != nil {
		t.Fatal(err)
	}
	if pos != (hub.Position{Offset: 1, Epoch: current.Epoch}) {
		t.Fatalf("first publication after the TTL at %+v, want offset 1 in %q", pos, current.Epoch)
	}
	pubs, current, err = b.History(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 1 || current != pos || pubs[0].Position != pos || pubs[0].Type != websocket.Binary {
		t.Fatalf("history of the new epoch: %+v, position %+v", pubs, current)
	}
}

// TestTrim checks that the stream keeps not many more of a topic than
// its history, and that topics of any name work.
func TestTrim(t *testing.T) {
	s := startServer(t, true)
	prefix := randomPrefix()
	connect := connector(t, s, Options{Prefix: prefix})
	b := connect(t)
	if err := b.Start(nopReceiver{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	jsb := b.(*Broker).backend.(*jsBackend)
	for _, topic := range []string{"", "a.b c*>", "ünï\x00"} {
		for i := range 100 {
			if _, err := b.Publish(ctx, hub.Publication{Topic: topic, Payload: fmt.Append(nil, i)}, hub.HistoryOptions{Size: 20}); err != nil {
				t.Fatalf("Publish to %q: %v", topic, err)
			}
		}
		pubs, current, err := b.History(ctx, topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pubs) != 20 || current.Offset != 100 || pubs[0].Position.Offset != 81 || string(pubs[19].Payload) != "99" {
			t.Fatalf("history of %q: %d from %+v, position %+v", topic, len(pubs), pubs[0].Position, current)
		}
		subject := jsb.names.subject(topic)
		info, err := jsb.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		if n := info.State.Subjects[subject]; n < 20 || n > 20+16 {
			t.Fatalf("%d publications of %q stored, want 20 to 36", n, topic)
		}
		if err := b.AddPresence(ctx, topic, topic, []byte("info"), time.Minute, true); err != nil {
			t.Fatal(err)
		}
		present, err := b.Presence(ctx, topic)
		if err != nil || len(present) != 1 || string(present[topic]) != "info" {
			t.Fatalf("presence in %q: %q, %v", topic, present, err)
		}
	}
}
