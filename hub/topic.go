package hub

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"

	"github.com/gowebsock/websocket"
)

// ErrSubscribed is returned when a connection subscribes to a topic it
// is subscribed to already.
var ErrSubscribed = errors.New("hub: connection already subscribed to the topic")

// SubscribeOptions are the optional parts of a subscription.
type SubscribeOptions struct {
	// Client names the subscriber in the topic's presence, which lists
	// the clients of every instance; "" leaves it out of the presence.
	Client string
	// Info is what the presence shows of the client.
	Info []byte
	// Unique refuses the subscription with ErrClientTaken if Client is
	// present in the topic already, on any instance.
	Unique bool
	// Since, if set, is the position of the last publication that the
	// subscriber received before it reconnected: it is sent what it
	// missed since, from the history, before anything newer.  If the
	// history no longer reaches back that far, it is subscribed all
	// the same, sent nothing of the history, and SubscribeWith returns
	// ErrRecoveryGap.
	Since *Position
}

// topic is the local state of one topic that this instance's
// connections subscribe to.
type topic struct {
	name string

	// deliverMu serializes the publications sent to the subscribers,
	// which go out in the order of their positions, each once: last
	// is the position of the last one sent.
	deliverMu sync.Mutex
	last      Position
	known     bool // last is set

	// Guarded by Hub.mu.
	subs     map[*websocket.Conn]*subscription
	conns    []*websocket.Conn // the subscribers; replaced, never changed
	skipping int               // subscribers with skipTo set
	pending  int               // subscriptions under way

	subscribed bool // to the broker; guarded by Hub.brokerSubMu
}

// subscription is one connection's subscription to one topic.
type subscription struct {
	conn   *websocket.Conn
	topic  string
	client string
	stored []byte // the presence info, claim token first
	unique bool
	skipTo uint64 // publications up to this offset reached it already
}

// Subscribe subscribes conn to topic: it is sent every message published
// to topic from now on, until Unsubscribe or Leave, or until conn ends.
// When a handler returns, its connection should Leave the hub; a hub
// unsubscribes ended connections itself too, at its next publication or
// presence refresh.
func (h *Hub) Subscribe(conn *websocket.Conn, topic string) error {
	ctx, cancel := h.brokerContext()
	defer cancel()
	_, err := h.SubscribeWith(ctx, conn, topic, SubscribeOptions{})
	return err
}

// SubscribeWith subscribes conn to topic with opts: a name in the
// presence, and recovery from a position.  It returns the position after
// which conn is sent every publication.
func (h *Hub) SubscribeWith(ctx context.Context, conn *websocket.Conn, name string, opts SubscribeOptions) (Position, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return Position{}, ErrClosed
	}
	if h.byConn[conn][name] != nil {
		h.mu.Unlock()
		return Position{}, ErrSubscribed
	}
	t := h.topics[name]
	if t == nil {
		t = &topic{name: name, subs: make(map[*websocket.Conn]*subscription)}
		h.topics[name] = t
	}
	t.pending++
	h.mu.Unlock()

	s := &subscription{conn: conn, topic: name, client: opts.Client, unique: opts.Unique}
	start, err := h.subscribe(ctx, t, s, opts)
	h.mu.Lock()
	t.pending--
	h.mu.Unlock()
	if err != nil && err != ErrRecoveryGap {
		h.release(t)
		if errors.Is(err, ErrClientTaken) {
			return Position{}, ErrClientTaken
		}
		return Position{}, err
	}
	return start, err
}

// subscribe does SubscribeWith's work while t.pending holds the topic:
// it adds s to t's subscribers unless it fails.
func (h *Hub) subscribe(ctx context.Context, t *topic, s *subscription, opts SubscribeOptions) (Position, error) {
	if s.client != "" {
		s.stored = newClaim(opts.Info)
		ttl := h.opts.PresenceTTL
		if err := h.broker.AddPresence(ctx, t.name, s.client, s.stored, ttl, s.unique); err != nil {
			return Position{}, err
		}
	}
	if err := h.subscribeBroker(ctx, t); err != nil {
		h.removePresence(s)
		return Position{}, err
	}

	t.deliverMu.Lock()
	defer t.deliverMu.Unlock()
	var gap error
	if !t.known || opts.Since != nil {
		after := uint64(math.MaxUint64)
		if opts.Since != nil {
			after = opts.Since.Offset
		}
		pubs, current, err := h.broker.History(ctx, t.name, after)
		if err != nil {
			h.removePresence(s)
			return Position{}, err
		}
		switch {
		case !t.known:
			t.last, t.known = current, true
		case current.Epoch != t.last.Epoch:
			// The broker lost the topic's history and this instance
			// has not yet been delivered the new epoch (its broker is
			// reconnecting): catch up first, so that positions of the
			// new epoch compare.
			h.catchUpTopic(t)
		}
		if opts.Since != nil {
			gap = h.recover(t, s, *opts.Since, pubs, current)
		}
	}

	h.mu.Lock()
	err := h.addLocked(t, s)
	h.mu.Unlock()
	if err != nil {
		h.removePresence(s)
		return Position{}, err
	}
	return t.last, gap
}

// addLocked adds s to t's subscribers; h.mu is held.  The connection
// may have subscribed to t meanwhile, by a call made at the same time.
func (h *Hub) addLocked(t *topic, s *subscription) error {
	if h.closed {
		return ErrClosed
	}
	if t.subs[s.conn] != nil {
		return ErrSubscribed
	}
	t.subs[s.conn] = s
	t.conns = append(slices.Clip(t.conns), s.conn)
	if s.skipTo > 0 {
		t.skipping++
	}
	if h.byConn[s.conn] == nil {
		h.byConn[s.conn] = make(map[string]*subscription)
	}
	h.byConn[s.conn][t.name] = s
	return nil
}

// recover sends s what it missed since a position, from pubs, the
// history after it; t.deliverMu is held.  What the hub has not yet sent
// to its subscribers (after t.last) it will send to s with them, and
// what s received from another instance already it will not be sent
// again.
func (h *Hub) recover(t *topic, s *subscription, since Position, pubs []Publication, current Position) error {
	reaches := since.Epoch == current.Epoch && since.Epoch == t.last.Epoch && since.Offset <= current.Offset &&
		(since.Offset == current.Offset || len(pubs) > 0 && pubs[0].Position.Offset == since.Offset+1)
	if !reaches {
		return ErrRecoveryGap
	}
	for i := range pubs {
		if pubs[i].Position.Offset > t.last.Offset {
			break
		}
		h.send(&pubs[i], []*websocket.Conn{s.conn})
	}
	if since.Offset > t.last.Offset {
		s.skipTo = since.Offset
	}
	return nil
}

// subscribeBroker subscribes this instance to t's publications, if it
// is not subscribed already.
func (h *Hub) subscribeBroker(ctx context.Context, t *topic) error {
	h.brokerSubMu.Lock()
	defer h.brokerSubMu.Unlock()
	if t.subscribed {
		return nil
	}
	if err := h.broker.Subscribe(ctx, t.name); err != nil {
		return err
	}
	t.subscribed = true
	return nil
}

// Unsubscribe ends conn's subscription to topic, if it has one.
func (h *Hub) Unsubscribe(conn *websocket.Conn, topic string) {
	h.mu.Lock()
	s := h.byConn[conn][topic]
	t := h.topics[topic]
	if s == nil || t == nil {
		h.mu.Unlock()
		return
	}
	delete(h.byConn[conn], topic)
	if len(h.byConn[conn]) == 0 {
		delete(h.byConn, conn)
	}
	delete(t.subs, conn)
	t.conns = slices.DeleteFunc(slices.Clone(t.conns), func(c *websocket.Conn) bool { return c == conn })
	if s.skipTo > 0 {
		t.skipping--
	}
	h.mu.Unlock()
	h.removePresence(s)
	h.release(t)
}

// Leave ends every subscription of conn: a handler calls it when its
// connection ends.
func (h *Hub) Leave(conn *websocket.Conn) {
	h.mu.Lock()
	var topics []string
	for name := range h.byConn[conn] {
		topics = append(topics, name)
	}
	h.mu.Unlock()
	for _, name := range topics {
		h.Unsubscribe(conn, name)
	}
}

// release unsubscribes this instance from t if nobody here subscribes to
// it any longer.
func (h *Hub) release(t *topic) {
	// The decision is made under brokerSubMu, so that a new topic of
	// the same name subscribes to the broker only after this one has
	// unsubscribed.
	h.brokerSubMu.Lock()
	defer h.brokerSubMu.Unlock()
	h.mu.Lock()
	if h.topics[t.name] != t || len(t.subs) > 0 || t.pending > 0 {
		h.mu.Unlock()
		return
	}
	delete(h.topics, t.name)
	h.mu.Unlock()
	if !t.subscribed {
		return
	}
	t.subscribed = false
	ctx, cancel := h.brokerContext()
	defer cancel()
	if err := h.broker.Unsubscribe(ctx, t.name); err != nil && !errors.Is(err, ErrClosed) {
		h.opts.ErrorLog(err)
	}
}

// removePresence takes s's client out of the topic's presence.
func (h *Hub) removePresence(s *subscription) {
	if s.client == "" {
		return
	}
	ctx, cancel := h.brokerContext()
	defer cancel()
	if err := h.broker.RemovePresence(ctx, s.topic, s.client, s.stored); err != nil && !errors.Is(err, ErrClosed) {
		h.opts.ErrorLog(err)
	}
}
