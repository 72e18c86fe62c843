package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryBroker is the broker of a hub that runs in one process: it needs
// no server, and is what New uses when Options.Broker is nil.  Its
// history and presence live in memory and are lost with the process.
//
// Peer returns a second broker that shares the same topics, history and
// presence, as a second instance connected to the same server would:
// two hubs on a MemoryBroker and its peer behave as two instances.
type MemoryBroker struct {
	shared  *memShared
	queue   memQueue
	closed  chan struct{}
	done    chan struct{} // the delivering goroutine has returned
	started atomic.Bool   // the delivering goroutine runs
	once    sync.Once
}

// memQueueLimit is how many deliveries may wait for one instance before
// publishers wait for it.
const memQueueLimit = 4096

// memShared is what the brokers of one process share.
type memShared struct {
	mu       sync.Mutex
	topics   map[string]*memTopic
	presence map[string]map[string]memPresence // topic → client
}

type memTopic struct {
	pos         Position
	history     []Publication // oldest first
	expires     time.Time     // zero: never
	subscribers map[*MemoryBroker]bool
}

type memPresence struct {
	info    []byte
	expires time.Time
}

// NewMemoryBroker returns a broker for hubs in this process.
func NewMemoryBroker() *MemoryBroker {
	return newMemoryBroker(&memShared{topics: make(map[string]*memTopic), presence: make(map[string]map[string]memPresence)})
}

func newMemoryBroker(s *memShared) *MemoryBroker {
	b := &MemoryBroker{shared: s, closed: make(chan struct{}), done: make(chan struct{})}
	b.queue.init()
	return b
}

// Peer returns a new broker that shares b's topics, history and presence.
func (b *MemoryBroker) Peer() *MemoryBroker { return newMemoryBroker(b.shared) }

// Start implements Broker.
func (b *MemoryBroker) Start(r Receiver) error {
	b.started.Store(true)
	go b.deliver(r)
	return nil
}

// deliver hands the queued publications to r, in order, until Close.
func (b *MemoryBroker) deliver(r Receiver) {
	defer close(b.done)
	for {
		select {
		case <-b.closed:
			return
		case <-b.queue.wake:
		}
		for _, p := range b.queue.takeAll() {
			r.Deliver(p)
		}
	}
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(ctx context.Context, p Publication, h HistoryOptions) (Position, error) {
	if err := b.check(ctx); err != nil {
		return Position{}, err
	}
	p.Payload = bytes.Clone(p.Payload)
	s := b.shared
	s.mu.Lock()
	t := s.topic(p.Topic, time.Now(), true)
	t.pos.Offset++
	p.Position = t.pos
	if h.TTL > 0 {
		t.expires = time.Now().Add(h.TTL)
	} else {
		t.expires = time.Time{}
	}
	if h.Size > 0 {
		t.history = append(t.history, p)
		if n := len(t.history) - h.Size; n > 0 {
			t.history = append(t.history[:0:0], t.history[n:]...)
		}
	} else {
		t.history = nil
	}
	// Queued under s.mu, so that every instance has the topic's
	// publications queued in the order of their positions.
	var full []*MemoryBroker
	for sub := range t.subscribers {
		if sub.queue.put(p) {
			full = append(full, sub)
		}
	}
	s.mu.Unlock()
	// A subscriber that has fallen far behind holds up its publishers
	// rather than its memory growing without bound.
	for _, sub := range full {
		if err := sub.queue.waitRoom(ctx, sub.closed); err != nil && ctx.Err() != nil {
			return p.Position, err
		}
	}
	return p.Position, nil
}

// topic returns the topic's state, made anew when it has none or its
// history expired; it returns nil if there is none and create is false.
// s.mu is held.
func (s *memShared) topic(name string, now time.Time, create bool) *memTopic {
	t := s.topics[name]
	if t != nil && !t.expires.IsZero() && now.After(t.expires) {
		t.pos = Position{Epoch: newEpoch()}
		t.history = nil
		t.expires = time.Time{}
	}
	if t == nil && create {
		t = &memTopic{pos: Position{Epoch: newEpoch()}, subscribers: make(map[*MemoryBroker]bool)}
		s.topics[name] = t
	}
	return t
}

// Subscribe implements Broker.
func (b *MemoryBroker) Subscribe(ctx context.Context, topic string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	b.shared.mu.Lock()
	defer b.shared.mu.Unlock()
	b.shared.topic(topic, time.Now(), true).subscribers[b] = true
	return nil
}

// Unsubscribe implements Broker.
func (b *MemoryBroker) Unsubscribe(ctx context.Context, topic string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	b.shared.mu.Lock()
	defer b.shared.mu.Unlock()
	if t := b.shared.topics[topic]; t != nil {
		delete(t.subscribers, b)
	}
	return nil
}

// History implements Broker.
func (b *MemoryBroker) History(ctx context.Context, topic string, after uint64) ([]Publication, Position, error) {
	if err := b.check(ctx); err != nil {
		return nil, Position{}, err
	}
	s := b.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topic(topic, time.Now(), true)
	var pubs []Publication
	for _, p := range t.history {
		if p.Position.Offset > after {
			pubs = append(pubs, p)
		}
	}
	return pubs, t.pos, nil
}

// AddPresence implements Broker.
func (b *MemoryBroker) AddPresence(ctx context.Context, topic, client string, info []byte, ttl time.Duration, unique bool) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	s := b.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	clients := s.presence[topic]
	if clients == nil {
		clients = make(map[string]memPresence)
		s.presence[topic] = clients
	}
	if old, ok := clients[client]; ok && unique && now.Before(old.expires) && !bytes.Equal(old.info, info) {
		return ErrClientTaken
	}
	clients[client] = memPresence{info: bytes.Clone(info), expires: now.Add(ttl)}
	return nil
}

// RemovePresence implements Broker.
func (b *MemoryBroker) RemovePresence(ctx context.Context, topic, client string, info []byte) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	s := b.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.presence[topic][client]; ok && bytes.Equal(old.info, info) {
		delete(s.presence[topic], client)
		if len(s.presence[topic]) == 0 {
			delete(s.presence, topic)
		}
	}
	return nil
}

// Presence implements Broker.
func (b *MemoryBroker) Presence(ctx context.Context, topic string) (map[string][]byte, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	s := b.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	present := make(map[string][]byte)
	for client, p := range s.presence[topic] {
		if now.Before(p.expires) {
			present[client] = bytes.Clone(p.info)
		} else {
			delete(s.presence[topic], client)
		}
	}
	return present, nil
}

// Close implements Broker: the instance's subscriptions end, and it
// returns once the last delivery has.  It must not be called from
// within Receiver.Deliver.
func (b *MemoryBroker) Close() error {
	b.once.Do(func() {
		b.shared.mu.Lock()
		for _, t := range b.shared.topics {
			delete(t.subscribers, b)
		}
		b.shared.mu.Unlock()
		close(b.closed)
	})
	// Nothing is delivered once Close has returned.
	if b.started.Load() {
		<-b.done
	}
	return nil
}

// check returns why a call cannot be made, if it cannot.
func (b *MemoryBroker) check(ctx context.Context) error {
	select {
	case <-b.closed:
		return ErrClosed
	default:
		return ctx.Err()
	}
}

// memQueue holds the publications waiting to be delivered to one
// instance.
type memQueue struct {
	mu    sync.Mutex
	items []Publication
	wake  chan struct{} // has a token when items has some
	room  chan struct{} // closed while items is below the limit
}

func (q *memQueue) init() {
	q.wake = make(chan struct{}, 1)
	q.room = make(chan struct{})
	close(q.room)
}

// put queues p and reports whether the queue is full now.
func (q *memQueue) put(p Publication) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, p)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if len(q.items) == memQueueLimit {
		q.room = make(chan struct{})
	}
	return len(q.items) >= memQueueLimit
}

// takeAll empties the queue.
func (q *memQueue) takeAll() []Publication {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	if len(items) >= memQueueLimit {
		close(q.room)
	}
	return items
}

// waitRoom waits until the queue is below its limit, ctx is done or the
// broker closed.
func (q *memQueue) waitRoom(ctx context.Context, closed <-chan struct{}) error {
	q.mu.Lock()
	room := q.room
	q.mu.Unlock()
	select {
	case <-room:
		return nil
	case <-closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newEpoch returns a fresh random epoch.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
