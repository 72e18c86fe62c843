package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/brokertest"
	"github.com/nats-io/nats.go"
)

// client is a subscriber of a hub instance, with what it was sent.
type client struct {
	*brokertest.Subscriber
	last brokertest.Event // the last one received
	n    int              // events received
	seen map[string]bool
}

// expect reads from the client until it has been sent texts, and checks
// that they come in their order, each once, at the position after the
// one before (in the epoch of the first).  Those of maybe may come
// between them: publications whose Publish failed, which may have been
// published all the same.
func (c *client) expect(t *testing.T, texts []string, maybe map[string]bool) {
	t.Helper()
	var got []string
	for len(got) < len(texts) {
		e := c.Next(t)
		if c.last.Epoch != "" && (e.Epoch != c.last.Epoch || e.Offset != c.last.Offset+1) {
			t.Fatalf("after %d/%s came %d/%s", c.last.Offset, c.last.Epoch, e.Offset, e.Epoch)
		}
		if c.seen[e.Text] {
			t.Fatalf("%q came twice", e.Text)
		}
		c.seen[e.Text], c.last = true, e
		c.n++
		if !maybe[e.Text] {
			got = append(got, e.Text)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(texts) {
		t.Fatalf("came %q, want %q", got, texts)
	}
}

// restartable starts a server of the test's own, two hubs on it, and n
// clients of topic, on both hubs in turn.
func restartable(t *testing.T, topic string, n int) (*server, *hub.Hub, *hub.Hub, []*client) {
	t.Helper()
	s := startServer(t, true)
	if s.cmd == nil {
		t.Skip("the server of $NATS_URL cannot be restarted")
	}
	connect := connector(t, s, Options{NATSOptions: []nats.Option{nats.ReconnectWait(50 * time.Millisecond)}})
	in1, in2 := brokertest.StartInstance(t, connect(t)), brokertest.StartInstance(t, connect(t))
	var clients []*client
	for i := range n {
		sub := []*brokertest.Instance{in1, in2}[i%2].Join(t, topic, fmt.Sprint("client", i), nil)
		clients = append(clients, &client{Subscriber: sub, seen: make(map[string]bool)})
	}
	return s, in1.Hub, in2.Hub, clients
}

// TestServerRestart kills the server under two hubs with subscribers,
// and starts it again on the same port and store: publications fail
// while it is down, the hubs recover by themselves, and what is
// published then reaches every subscriber, after what came before.
func TestServerRestart(t *testing.T) {
	const topic = "restart"
	s, h1, h2, clients := restartable(t, topic, 3)
	publish := func(h *hub.Hub, text string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := h.Publish(ctx, topic, websocket.Text, []byte(text))
		return err
	}
	var before []string
	for i := range 10 {
		text := fmt.Sprint("before-", i)
		if err := publish([]*hub.Hub{h1, h2}[i%2], text, wait); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		before = append(before, text)
	}
	for _, c := range clients {
		c.expect(t, before, nil)
	}

	s.stop()
	for i, h := range []*hub.Hub{h1, h2, h1} {
		if err := publish(h, fmt.Sprint("down-", i), time.Second); err == nil {
			t.Fatal("published while the server was down")
		}
	}

	s.start()
	// The first publications after the restart fail until the hub's
	// connection is back, which must be within the bound.
	start := time.Now()
	failed := make(map[string]bool)
	var after []string
	for i := range 10 {
		after = append(after, publishUntil(t, []*hub.Hub{h1, h2}[i%2], topic, fmt.Sprint("after-", i), failed))
	}
	for _, c := range clients {
		c.expect(t, after, failed)
	}
	t.Logf("recovered in %v", time.Since(start).Round(time.Millisecond))
}

// publishUntil publishes text to topic, with a suffix of its own for each
// try, until a try succeeds within the bound, and returns the text of
// that one; failed gets the others.
func publishUntil(t *testing.T, h *hub.Hub, topic, text string, failed map[string]bool) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for try := 0; ; try++ {
		text := fmt.Sprint(text, ".", try)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := h.Publish(ctx, topic, websocket.Text, []byte(text))
		cancel()
		if err == nil {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish still failing %v after the restart: %v", wait, err)
		}
		failed[text] = true
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClosedErrors checks that a call that the closing of the broker
// interrupts reports hub.ErrClosed.
func TestClosedErrors(t *testing.T) {
	s := startServer(t, true)
	b := connector(t, s, Options{})(t)
	if err := b.Start(nopReceiver{}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for name, err := range map[string]error{
		"Subscribe":      b.Subscribe(ctx, "x"),
		"Unsubscribe":    b.Unsubscribe(ctx, "x"),
		"AddPresence":    b.AddPresence(ctx, "x", "c", nil, time.Second, true),
		"RemovePresence": b.RemovePresence(ctx, "x", "c", nil),
		"Close":          b.Close(),
	} {
		if name == "Close" {
			if err != nil {
				t.Errorf("a second Close: %v", err)
			}
			continue
		}
		if !errors.Is(err, hub.ErrClosed) {
			t.Errorf("%s after Close: %v, want hub.ErrClosed", name, err)
		}
	}
}

// nopReceiver drops what it is delivered.
type nopReceiver struct{}

func (nopReceiver) Deliver(hub.Publication) {}
func (nopReceiver) Resubscribed()           {}

// TestServerLosesData restarts the server with an empty store: the hubs
// recover by themselves, and the subscribers are sent the new
// publications in a new epoch, from offset 1.
func TestServerLosesData(t *testing.T) {
	const topic = "lost"
	s, h1, _, clients := restartable(t, topic, 2)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, text := range []string{"old-0", "old-1", "old-2"} {
		if _, err := h1.Publish(ctx, topic, websocket.Text, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		c.expect(t, []string{"old-0", "old-1", "old-2"}, nil)
	}
	old := clients[0].last.Epoch

	s.stop()
	for i, a := range s.args {
		if a == "-sd" {
			s.args[i+1] = t.TempDir()
		}
	}
	s.start()
	failed := make(map[string]bool)
	var after []string
	for i := range 5 {
		after = append(after, publishUntil(t, h1, topic, fmt.Sprint("new-", i), failed))
	}
	for _, c := range clients {
		c.last, c.n = brokertest.Event{}, 0
		c.expect(t, after, failed)
		if c.last.Epoch == old || c.last.Offset != uint64(c.n) {
			t.Fatalf("after the data was lost: %d events, the last at %d/%s (the old epoch %s)", c.n, c.last.Offset, c.last.Epoch, old)
		}
	}
}
