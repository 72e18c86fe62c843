package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
)

const wait = 10 * time.Second

// server is a hub with a WebSocket endpoint whose connections subscribe
// to the topic in their path.
type server struct {
	hub  *hub.Hub
	url  string
	done sync.WaitGroup // the handlers
}

func newServer(t *testing.T, opts hub.Options) *server {
	t.Helper()
	h, err := hub.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{hub: h}
	srv := httptest.NewServer(&websocket.Handler{Handle: func(conn *websocket.Conn) {
		s.done.Add(1)
		defer s.done.Done()
		defer conn.Close(websocket.StatusOK, "")
		defer h.Leave(conn)
		var opts hub.SubscribeOptions
		if q := conn.ResourceName.Query(); q.Has("epoch") {
			offset, _ := strconv.ParseUint(q.Get("offset"), 10, 64)
			opts.Since = &hub.Position{Offset: offset, Epoch: q.Get("epoch")}
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := h.SubscribeWith(ctx, conn, strings.TrimPrefix(conn.ResourceName.Path, "/"), opts)
		switch {
		case err == hub.ErrRecoveryGap:
			conn.SendText("gap")
		case err != nil:
			conn.Close(websocket.StatusInternalServerError, err.Error())
			return
		default:
			conn.SendText("subscribed")
		}
		for {
			if _, _, err := conn.ReceiveMessage(); err != nil {
				return
			}
		}
	}})
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return s
}

// subscribe connects a client to topic and waits until it is subscribed.
func (s *server) subscribe(t *testing.T, topic string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := websocket.Dial(ctx, s.url+"/"+topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusOK, "") })
	if text := receive(t, conn); text != "subscribed" {
		t.Fatalf("first message %q", text)
	}
	return conn
}

func receive(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	text, err := conn.ReceiveText(1 << 20)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return text
}

func publish(t *testing.T, h *hub.Hub, topic, text string) hub.Position {
	t.Helper()
	pos, err := h.Publish(context.Background(), topic, websocket.Text, []byte(text))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return pos
}

// TestSlowSubscriber checks that a subscriber that stops reading holds up
// nobody: the others are sent everything, and it is dropped with 1008
// once its queue is full, and unsubscribed.
func TestSlowSubscriber(t *testing.T) {
	s := newServer(t, hub.Options{History: hub.HistoryOptions{Size: -1}})
	fast := s.subscribe(t, "room")
	slow := s.subscribe(t, "room") // never reads again
	payload := strings.Repeat("x", 16<<10)
	const n = 400 // 6.4 MiB, far more than a queue and the socket buffers hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			if got := receive(t, fast); got != payload {
				t.Errorf("fast subscriber got %d bytes", len(got))
				return
			}
		}
	}()
	for range n {
		publish(t, s.hub, "room", payload)
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("the fast subscriber was held up")
	}
	// The slow one was dropped; reading now, it finds the close.
	slow.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, err := slow.ReceiveText(1 << 20); err != nil {
			break
		}
	}
	if code, _ := slow.GetStatus(); code != websocket.StatusPolicyViolation {
		t.Errorf("slow subscriber closed with %d, want %d", code, websocket.StatusPolicyViolation)
	}
}

// TestUnsubscribeAndLeave checks that connections stop being sent a
// topic's publications when unsubscribed, or when they end.
func TestUnsubscribeAndLeave(t *testing.T) {
	s := newServer(t, hub.Options{})
	a := s.subscribe(t, "t1")
	b := s.subscribe(t, "t1")
	if n := s.hub.Subscribers("t1"); n != 2 {
		t.Fatalf("%d subscribers, want 2", n)
	}
	publish(t, s.hub, "t1", "one")
	receive(t, a)
	receive(t, b)
	b.Close(websocket.StatusOK, "")
	awaitSubscribers(t, s.hub, "t1", 1)
	publish(t, s.hub, "t1", "two")
	if got := receive(t, a); got != "two" {
		t.Fatalf("got %q", got)
	}
	a.Close(websocket.StatusOK, "")
	awaitSubscribers(t, s.hub, "t1", 0)
	s.done.Wait()
}

func awaitSubscribers(t *testing.T, h *hub.Hub, topic string, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for h.Subscribers(topic) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers of %s, want %d", h.Subscribers(topic), topic, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lossyBroker is a MemoryBroker that fails to deliver the publications
// whose payload starts with "lost", as a broker does whose connection
// broke for a moment.
type lossyBroker struct {
	*hub.MemoryBroker
	receiver hub.Receiver
}

func (b *lossyBroker) Start(r hub.Receiver) error {
	b.receiver = r
	return b.MemoryBroker.Start(lossyReceiver{r})
}

type lossyReceiver struct{ hub.Receiver }

func (r lossyReceiver) Deliver(p hub.Publication) {
	if !strings.HasPrefix(string(p.Payload), "lost") {
		r.Receiver.Deliver(p)
	}
}

// TestGapFilled checks that publications the broker failed to deliver
// are fetched from the history: when the next arrives after the gap, and
// when the broker reports that it subscribed again.
func TestGapFilled(t *testing.T) {
	lossy := &lossyBroker{MemoryBroker: hub.NewMemoryBroker()}
	s := newServer(t, hub.Options{Broker: lossy})
	conn := s.subscribe(t, "t")
	for _, text := range []string{"one", "lost two", "lost three", "four"} {
		publish(t, s.hub, "t", text)
	}
	for _, want := range []string{"one", "lost two", "lost three", "four"} {
		if got := receive(t, conn); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	publish(t, s.hub, "t", "lost five")
	lossy.receiver.Resubscribed()
	if got := receive(t, conn); got != "lost five" {
		t.Fatalf("after a resubscription got %q, want the lost publication", got)
	}
}

// TestRecoveryInNewEpoch checks that a subscriber can recover from a
// position of a topic's new epoch on an instance that has not yet been
// delivered anything of that epoch, as happens while its broker
// reconnects after the server lost its data.
func TestRecoveryInNewEpoch(t *testing.T) {
	lossy := &lossyBroker{MemoryBroker: hub.NewMemoryBroker()}
	s := newServer(t, hub.Options{Broker: lossy})
	s.subscribe(t, "t")
	other, err := hub.New(hub.Options{Broker: lossy.Peer(), History: hub.HistoryOptions{Size: 10, TTL: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	first := publish(t, other, "t", "lost in the old epoch")
	time.Sleep(100 * time.Millisecond) // the history expires: a new epoch
	since := publish(t, other, "t", "lost one")
	publish(t, other, "t", "lost two")
	if since.Epoch == first.Epoch || since.Offset != 1 {
		t.Fatalf("after the history expired: %+v, then %+v", first, since)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := websocket.Dial(ctx, fmt.Sprintf("%s/t?offset=%d&epoch=%s", s.url, since.Offset, since.Epoch), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(websocket.StatusOK, "")
	for _, want := range []string{"lost two", "subscribed"} {
		if got := receive(t, conn); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestPublishErrors checks what Publish refuses.
func TestPublishErrors(t *testing.T) {
	h, err := hub.New(hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(context.Background(), "t", websocket.Text, []byte{0xff}); err != hub.ErrInvalidText {
		t.Errorf("invalid UTF-8: %v, want ErrInvalidText", err)
	}
	if _, err := h.Publish(context.Background(), "t", websocket.Binary, []byte{0xff}); err != nil {
		t.Errorf("binary: %v", err)
	}
	h.Close()
	if _, err := h.Publish(context.Background(), "t", websocket.Text, []byte("x")); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if err := h.Close(); !errors.Is(err, hub.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// TestNoGoroutineLeft checks that a hub that served connections leaves
// no goroutine behind once they ended and it was closed.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("serve", func(t *testing.T) {
		s := newServer(t, hub.Options{})
		for i := range 5 {
			s.subscribe(t, fmt.Sprint("t", i%2))
		}
		publish(t, s.hub, "t0", "x")
	})
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSubscribeTwice checks that a connection that subscribes to a topic
// twice, at once or one after the other, is subscribed once: the other
// call gets ErrSubscribed, and each publication is sent once.
func TestSubscribeTwice(t *testing.T) {
	h, err := hub.New(hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	results := make(chan error, 4)
	srv := httptest.NewServer(&websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		defer h.Leave(conn)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := h.SubscribeWith(context.Background(), conn, "t", hub.SubscribeOptions{})
				results <- err
			}()
		}
		wg.Wait()
		results <- h.Subscribe(conn, "t")
		conn.SendText("subscribed")
		for {
			if _, _, err := conn.ReceiveMessage(); err != nil {
				return
			}
		}
	}})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(websocket.StatusOK, "")
	if got := receive(t, conn); got != "subscribed" {
		t.Fatalf("got %q", got)
	}
	ok := 0
	for range 3 {
		switch err := <-results; err {
		case nil:
			ok++
		case hub.ErrSubscribed:
		default:
			t.Fatalf("subscribing: %v", err)
		}
	}
	if ok != 1 || h.Subscribers("t") != 1 {
		t.Fatalf("%d subscriptions succeeded, %d subscribers; want 1 and 1", ok, h.Subscribers("t"))
	}
	publish(t, h, "t", "one")
	publish(t, h, "t", "two")
	for _, want := range []string{"one", "two"} {
		if got := receive(t, conn); got != want {
			t.Fatalf("got %q, want %q: sent twice?", got, want)
		}
	}
}
