package redisbroker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/brokertest"
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
	alice := a.Join(t, topic, "alice", nil)
	bob := b.Join(t, topic, "bob", nil)

	var published []brokertest.Event // what Publish said it published, in order
	publish := func(h *brokertest.Instance, text string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		pos, err := h.Hub.Publish(ctx, topic, websocket.Text, []byte(text))
		if err == nil {
			published = append(published, brokertest.Event{Offset: pos.Offset, Epoch: pos.Epoch, Text: text})
		}
		return err
	}
	for i := range 3 {
		if err := publish([]*brokertest.Instance{a, b}[i%2], fmt.Sprint("before ", i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	alice.Expect(t, published)
	bob.Expect(t, published)
	before, n := published[len(published)-1], len(published)

	srv.kill()
	// The hub's connections learn of it at their next use.  While Redis
	// is away, every publication fails, on both instances.
	for i := range 4 {
		start := time.Now()
		err := publish([]*brokertest.Instance{a, b}[i%2], fmt.Sprint("while away ", i))
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
		if err := publish([]*brokertest.Instance{a, b}[i%2], fmt.Sprint("after ", i)); err != nil {
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
	alice.Expect(t, after)
	bob.Expect(t, after)

	// A subscriber that lost its connection before Redis did comes back
	// with the last position it has.
	carol := b.Join(t, topic, "carol", &hub.Position{Offset: before.Offset, Epoch: before.Epoch})
	if keepsData {
		if carol.Hello.Gap {
			t.Fatal("recovery from a position that the history still holds reported a gap")
		}
		carol.Expect(t, after)
	} else if !carol.Hello.Gap {
		t.Fatal("recovery from a position of an epoch that Redis lost reported no gap")
	}
	if last := published[len(published)-1]; carol.Hello.Offset != last.Offset || carol.Hello.Epoch != last.Epoch {
		t.Fatalf("carol's subscription starts at %d/%s, want %d/%s", carol.Hello.Offset, carol.Hello.Epoch, last.Offset, last.Epoch)
	}
	// One from the new epoch recovers.
	dave := a.Join(t, topic, "dave", &hub.Position{Offset: first.Offset, Epoch: first.Epoch})
	if dave.Hello.Gap {
		t.Fatal("recovery from a position after the restart reported a gap")
	}
	dave.Expect(t, after[1:])
	// Nobody was sent anything twice.
	if err := publish(b, "last"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for _, c := range []*brokertest.Subscriber{alice, bob, carol, dave} {
		c.Expect(t, published[len(published)-1:])
	}

	// The hubs refresh the presence that Redis may have lost.
	deadline = time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		present, err := a.Hub.Presence(ctx, topic)
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

// startHub starts a hub instance on a broker of its own, on Redis at
// addr, with the suite's WebSocket endpoint.
func startHub(t *testing.T, addr, prefix string) *brokertest.Instance {
	t.Helper()
	b, err := New(Options{Addr: addr, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return brokertest.StartInstance(t, b)
}
