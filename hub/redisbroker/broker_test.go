package redisbroker

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

// recorder is a hub.Receiver that keeps what it is told.
type recorder struct {
	mu           sync.Mutex
	pubs         []hub.Publication
	resubscribed int
	changed      chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) Deliver(p hub.Publication) {
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) Resubscribed() {
	r.mu.Lock()
	r.resubscribed++
	r.mu.Unlock()
	r.notify()
}

func (r *recorder) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// await waits until ok holds of r, which it is given locked.
func (r *recorder) await(t *testing.T, what string, ok func(r *recorder) bool) {
	t.Helper()
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		done := ok(r)
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("no %s after %v", what, wait)
		}
	}
}

// hasPayload reports whether r was delivered a publication of payload;
// r.mu is held.
func (r *recorder) hasPayload(payload string) bool {
	for _, p := range r.pubs {
		if string(p.Payload) == payload {
			return true
		}
	}
	return false
}

// startBroker returns a broker on addr, tuned by tune if not nil, then
// started; it is closed when the test ends.
func startBroker(t *testing.T, addr, prefix string, r hub.Receiver, tune func(*Broker)) *Broker {
	t.Helper()
	b, err := New(Options{Addr: addr, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(b)
	}
	if err := b.Start(r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func publishText(ctx context.Context, b hub.Broker, topic, text string) (hub.Position, error) {
	return b.Publish(ctx, hub.Publication{Topic: topic, Type: websocket.Text, Payload: []byte(text)}, hub.HistoryOptions{Size: 10})
}

func mustPublish(t *testing.T, b hub.Broker, topic, text string) hub.Position {
	t.Helper()
	pos, err := publishText(ctxFor(t), b, topic, text)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return pos
}

// subscribedPair returns a broker x on xAddr, subscribed to topic, and
// a broker y on redisAddr that published "before" to it, which x has
// delivered.
func subscribedPair(t *testing.T, xAddr, redisAddr, topic string, tune func(*Broker)) (x *Broker, rx *recorder, y *Broker) {
	t.Helper()
	prefix := testPrefix()
	rx = newRecorder()
	x = startBroker(t, xAddr, prefix, rx, tune)
	y = startBroker(t, redisAddr, prefix, newRecorder(), nil)
	if err := x.Subscribe(ctxFor(t), topic); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, y, topic, "before")
	rx.await(t, "delivery", func(r *recorder) bool { return r.hasPayload("before") })
	return x, rx, y
}

// TestResubscribed restarts Redis under a subscribed broker: once the
// broker's Pub/Sub connection is back, it tells its receiver, and
// delivers again without being asked to subscribe.
func TestResubscribed(t *testing.T) {
	checkGoroutines(t)
	srv := startRedis(t)
	_, rx, y := subscribedPair(t, srv.addr, srv.addr, "t", nil)

	srv.kill()
	if _, err := publishText(ctxFor(t), y, "t", "away"); err == nil {
		t.Fatal("published while Redis was away")
	}
	srv.start(t)
	rx.await(t, "Resubscribed call", func(r *recorder) bool { return r.resubscribed > 0 })
	pos := mustPublish(t, y, "t", "after")
	rx.await(t, "delivery after the restart", func(r *recorder) bool { return r.hasPayload("after") })
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if rx.hasPayload("away") {
		t.Fatal("a publication that failed was delivered")
	}
	if rx.pubs[0].Position.Epoch == pos.Epoch {
		t.Fatal("a Redis that lost its data kept its epoch")
	}
}

// TestDeadConnection freezes the broker's connections to Redis, as a
// network that drops them without a word would: the broker finds out
// by itself, connects again and tells its receiver.
func TestDeadConnection(t *testing.T) {
	checkGoroutines(t)
	srv := startRedis(t)
	proxy := startProxy(t, srv.addr)
	_, rx, y := subscribedPair(t, proxy.addr(), srv.addr, "t", func(x *Broker) {
		x.idleCheck, x.pongTimeout = 200*time.Millisecond, 300*time.Millisecond
	})

	proxy.freeze()
	mustPublish(t, y, "t", "while frozen")
	rx.await(t, "Resubscribed call", func(r *recorder) bool { return r.resubscribed > 0 })
	mustPublish(t, y, "t", "after")
	rx.await(t, "delivery after the reconnect", func(r *recorder) bool { return r.hasPayload("after") })
}

// TestRedisAway checks that every call to a Redis that is away fails
// within its context, and that Close returns.
func TestRedisAway(t *testing.T) {
	checkGoroutines(t)
	srv := startRedis(t)
	b := startBroker(t, srv.addr, testPrefix(), newRecorder(), nil)
	srv.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	calls := map[string]func() error{
		"Subscribe":   func() error { return b.Subscribe(ctx, "t") },
		"Unsubscribe": func() error { return b.Unsubscribe(ctx, "t") },
		"Publish":     func() error { _, err := publishText(ctx, b, "t", "x"); return err },
		"History": func() error {
			_, _, err := b.History(ctx, "t", 0)
			return err
		},
		"AddPresence":    func() error { return b.AddPresence(ctx, "t", "c", nil, time.Second, true) },
		"RemovePresence": func() error { return b.RemovePresence(ctx, "t", "c", nil) },
		"Presence": func() error {
			_, err := b.Presence(ctx, "t")
			return err
		},
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s succeeded with Redis away", name)
			}
		case <-time.After(wait):
			t.Fatalf("%s did not return within %v with Redis away", name, wait)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := publishText(context.Background(), b, "t", "x"); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}

// proxy forwards TCP connections to a server, and can freeze those it
// has: they stay open, but carry nothing any more.
type proxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]*bool // → frozen
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, conns: make(map[net.Conn]*bool)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		frozen := new(bool)
		p.mu.Lock()
		p.conns[c], p.conns[up] = frozen, frozen
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up, frozen)
		go p.pipe(up, c, frozen)
	}
}

// pipe copies from src to dst until either ends, dropping what comes
// while the connection is frozen.
func (p *proxy) pipe(src, dst net.Conn, frozen *bool) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		drop := *frozen
		p.mu.Unlock()
		if n > 0 && !drop {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze freezes the connections the proxy has now; new ones work.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, frozen := range p.conns {
		*frozen = true
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
