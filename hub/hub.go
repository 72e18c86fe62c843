package hub

import (
	"context"
	"crypto/rand"
	"log"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gowebsock/websocket"
)

// Options configures a Hub.  The zero value gives the defaults.
type Options struct {
	// Broker carries publications between instances.  Nil means a
	// MemoryBroker of the hub's own: one process.
	Broker Broker

	// History is how much of each topic's stream the broker keeps for
	// subscribers that recover after a reconnect.  A zero Size means
	// 100 publications; a negative one keeps none.
	History HistoryOptions

	// PresenceTTL is how long a client stays present in a topic after
	// its instance last refreshed it, which the hub does every third
	// of it: an instance that dies takes its clients' presence with
	// it within PresenceTTL.  Zero means 30 seconds.
	PresenceTTL time.Duration

	// BrokerTimeout bounds each call that the hub makes to the broker
	// on its own: fetching what a subscriber missed, refreshing and
	// removing presence.  Zero means 5 seconds.
	BrokerTimeout time.Duration

	// Format returns the message that subscribers are sent for p, of
	// p's type; nil sends p.Payload as it is.  It is called once per
	// publication and instance, and a text message must be valid
	// UTF-8.  Applications that let clients recover put p.Position in
	// the message, so that a client knows where it is.
	Format func(p *Publication) []byte

	// ErrorLog receives the errors of the hub's own broker calls,
	// which have no caller to return to; nil means the log package.
	ErrorLog func(err error)
}

// Hub is a set of topics that WebSocket connections subscribe to.  A
// message published to a topic, on this instance or any other on the
// same broker, reaches every subscriber of the topic on every instance,
// once, in the order of the topic's positions.
//
// Each instance sends a publication to its own subscribers with
// websocket.BroadcastText or BroadcastBinary: the frame is encoded once,
// and a subscriber that reads slowly has it queued, up to a bound past
// which its connection is closed with StatusPolicyViolation and it is
// unsubscribed; it never delays the others.
//
// All methods may be called from several goroutines at once.
type Hub struct {
	broker Broker
	opts   Options

	// brokerSubMu serializes the broker's Subscribe and Unsubscribe
	// calls, so that a topic that loses its last subscriber and gains
	// a new one is subscribed to in the end.
	brokerSubMu sync.Mutex

	// mu guards the fields below.  Lock order: a topic's deliverMu,
	// then mu; never the other way round.
	mu      sync.Mutex
	topics  map[string]*topic
	byConn  map[*websocket.Conn]map[string]*subscription
	closed  bool
	refresh *time.Timer
}

// New returns a hub that delivers through opts.Broker.
func New(opts Options) (*Hub, error) {
	if opts.Broker == nil {
		opts.Broker = NewMemoryBroker()
	}
	switch {
	case opts.History.Size == 0:
		opts.History.Size = 100
	case opts.History.Size < 0:
		opts.History.Size = 0
	}
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = 30 * time.Second
	}
	if opts.BrokerTimeout <= 0 {
		opts.BrokerTimeout = 5 * time.Second
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = func(err error) { log.Printf("hub: %v", err) }
	}
	h := &Hub{
		broker: opts.Broker,
		opts:   opts,
		topics: make(map[string]*topic),
		byConn: make(map[*websocket.Conn]map[string]*subscription),
	}
	if err := h.broker.Start(receiver{h}); err != nil {
		return nil, err
	}
	h.refresh = time.AfterFunc(opts.PresenceTTL/3, h.refreshPresence)
	return h, nil
}

// Publish publishes a message to topic: every subscriber of the topic,
// on every instance, is sent it.  It returns the message's position, or
// an error if the broker did not take it, in which case nobody is sent
// it (or, if the broker failed half-way, subscribers see the gap in the
// positions).
func (h *Hub) Publish(ctx context.Context, topic string, typ websocket.MessageType, payload []byte) (Position, error) {
	if typ == websocket.Text && !utf8.Valid(payload) {
		return Position{}, ErrInvalidText
	}
	if h.isClosed() {
		return Position{}, ErrClosed
	}
	return h.broker.Publish(ctx, Publication{Topic: topic, Type: typ, Payload: payload}, h.opts.History)
}

// Presence returns the clients present in topic on every instance, with
// the info they subscribed with.
func (h *Hub) Presence(ctx context.Context, topic string) (map[string][]byte, error) {
	present, err := h.broker.Presence(ctx, topic)
	if err != nil {
		return nil, err
	}
	for client, stored := range present {
		present[client] = claimInfo(stored)
	}
	return present, nil
}

// Close removes this instance's clients from the presence of their
// topics and closes the broker.  It leaves the connections open: they
// belong to their handlers.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.closed = true
	h.refresh.Stop()
	var subs []*subscription
	for _, bySub := range h.byConn {
		for _, s := range bySub {
			subs = append(subs, s)
		}
	}
	h.topics = make(map[string]*topic)
	h.byConn = make(map[*websocket.Conn]map[string]*subscription)
	h.mu.Unlock()
	for _, s := range subs {
		h.removePresence(s)
	}
	return h.broker.Close()
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// brokerContext bounds a broker call that the hub makes on its own.
func (h *Hub) brokerContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.opts.BrokerTimeout)
}

// refreshPresence renews the presence of this instance's clients before
// it expires, and unsubscribes the connections that ended without
// anyone telling the hub.  It runs on a timer, every third of the TTL.
func (h *Hub) refreshPresence() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	var present []*subscription
	var ended []*websocket.Conn
	for conn, bySub := range h.byConn {
		if conn.Err() != nil {
			ended = append(ended, conn)
			continue
		}
		for _, s := range bySub {
			if s.client != "" {
				present = append(present, s)
			}
		}
	}
	h.mu.Unlock()
	for _, conn := range ended {
		h.Leave(conn)
	}
	for _, s := range present {
		ctx, cancel := h.brokerContext()
		err := h.broker.AddPresence(ctx, s.topic, s.client, s.stored, h.opts.PresenceTTL, s.unique)
		cancel()
		if err != nil {
			h.opts.ErrorLog(err)
		}
	}
	h.mu.Lock()
	if !h.closed {
		h.refresh.Reset(h.opts.PresenceTTL / 3)
	}
	h.mu.Unlock()
}

// newClaim returns the info stored for a client's presence: a random
// token that tells this subscription from any other that claims the
// same client name, then info.
func newClaim(info []byte) []byte {
	stored := make([]byte, claimTokenLen, claimTokenLen+len(info))
	rand.Read(stored)
	return append(stored, info...)
}

const claimTokenLen = 16

// claimInfo returns the info of a stored claim.
func claimInfo(stored []byte) []byte {
	if len(stored) < claimTokenLen {
		return nil
	}
	return stored[claimTokenLen:]
}

// receiver is how the broker reaches the hub, without the hub's exported
// surface having Deliver and Resubscribed.
type receiver struct{ h *Hub }

func (r receiver) Deliver(p Publication) { r.h.deliver(p) }
func (r receiver) Resubscribed()         { r.h.catchUp() }

// Subscribers returns the number of this instance's connections that
// subscribe to topic.
func (h *Hub) Subscribers(topic string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[topic]; t != nil {
		return len(t.subs)
	}
	return 0
}
