package natsbroker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/nats-io/nats.go"
)

// coreBackend is the broker without JetStream: publications travel on
// core NATS subjects, and each instance is a hub.MemoryBroker of its own,
// which numbers, keeps and delivers the publications that the instance
// sees, in the order it sees them, and holds the presence of its own
// clients.  See the package documentation for what that loses.
type coreBackend struct {
	nc      *nats.Conn
	names   names
	id      string // this instance, in the headers of what it sends
	gather  time.Duration
	local   *hub.MemoryBroker
	gate    gate          // between local and the receiver
	closing chan struct{} // closed by close
	beating chan struct{} // closed when beat returns

	mu     sync.Mutex
	subs   map[string]*nats.Subscription // the topics subscribed to
	answer *nats.Subscription            // of presence requests
	roll   *nats.Subscription            // of the other instances' calls
	peers  map[string]time.Time          // the other instances: when each was last heard
}

// gate passes deliveries on to the receiver until it is closed, which
// waits for a delivery under way: the memory broker's Close does not.
type gate struct {
	mu     sync.RWMutex
	r      hub.Receiver
	closed bool
}

func (g *gate) Deliver(p hub.Publication) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.closed {
		g.r.Deliver(p)
	}
}

func (g *gate) Resubscribed() {}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Headers of a publication without JetStream, besides hdrType, hdrSize
// and hdrOrigin.
const hdrTTL = "Hub-TTL" // nanoseconds

func newCoreBackend(nc *nats.Conn, n names, gather time.Duration) (*coreBackend, error) {
	var id [8]byte
	rand.Read(id[:])
	return &coreBackend{
		nc:      nc,
		names:   n,
		id:      hex.EncodeToString(id[:]),
		gather:  gather,
		local:   hub.NewMemoryBroker(),
		subs:    make(map[string]*nats.Subscription),
		peers:   make(map[string]time.Time),
		closing: make(chan struct{}),
		beating: make(chan struct{}),
	}, nil
}

// start answers the presence requests of the other instances, calls the
// roll, and begins delivering.
func (c *coreBackend) start(r hub.Receiver) error {
	answer, err := c.nc.Subscribe(c.names.presence, c.answerPresence)
	if err != nil {
		return fmt.Errorf("natsbroker: %w", err)
	}
	roll, err := c.nc.Subscribe(c.names.roll, c.heard)
	if err != nil {
		answer.Unsubscribe()
		return fmt.Errorf("natsbroker: %w", err)
	}
	c.mu.Lock()
	c.answer, c.roll = answer, roll
	c.mu.Unlock()
	c.call(callHello)
	go c.beat()
	c.gate.r = r
	return c.local.Start(&c.gate)
}

// The roll: each instance calls its id on the roll subject, when it
// starts (hello, which the others answer with here, so that it learns of
// them), every peerBeat (here), and when it closes (bye).  Presence then
// knows which instances to wait for.
const (
	callHello = "hello"
	callHere  = "here"
	callBye   = "bye"
	peerBeat  = 2 * time.Second
	// An instance not heard for peerLost is taken for dead.
	peerLost = 3 * peerBeat
)

// call calls this instance's id on the roll.
func (c *coreBackend) call(what string) {
	m := nats.NewMsg(c.names.roll)
	m.Header.Set(hdrOrigin, c.id)
	m.Data = []byte(what)
	c.nc.PublishMsg(m) // a call lost while disconnected is made again
}

// heard records the call of another instance.
func (c *coreBackend) heard(m *nats.Msg) {
	id := m.Header.Get(hdrOrigin)
	if id == c.id || id == "" {
		return
	}
	c.mu.Lock()
	if string(m.Data) == callBye {
		delete(c.peers, id)
	} else {
		c.peers[id] = time.Now()
	}
	c.mu.Unlock()
	select {
	case <-c.closing:
	default:
		if string(m.Data) == callHello {
			c.call(callHere)
		}
	}
}

// beat calls the roll every peerBeat, and forgets the instances that
// were not heard for long, until close.
func (c *coreBackend) beat() {
	defer close(c.beating)
	tick := time.NewTicker(peerBeat)
	defer tick.Stop()
	for {
		select {
		case <-c.closing:
			return
		case now := <-tick.C:
			c.call(callHere)
			c.mu.Lock()
			for id, heard := range c.peers {
				if now.Sub(heard) > peerLost {
					delete(c.peers, id)
				}
			}
			c.mu.Unlock()
		}
	}
}

// publish sends p to the other instances, records it here, and returns
// once the server has it.
func (c *coreBackend) publish(ctx context.Context, p hub.Publication, h hub.HistoryOptions) (hub.Position, error) {
	m := nats.NewMsg(c.names.subject(p.Topic))
	m.Header.Set(hdrOrigin, c.id)
	m.Header.Set(hdrType, strconv.Itoa(int(p.Type)))
	m.Header.Set(hdrSize, strconv.Itoa(max(h.Size, 0)))
	m.Header.Set(hdrTTL, strconv.FormatInt(int64(max(h.TTL, 0)), 10))
	m.Data = p.Payload
	// The connection does not buffer while reconnecting, so a failure
	// shows here, before the publication is recorded.
	if err := c.nc.PublishMsg(m); err != nil {
		return hub.Position{}, fmt.Errorf("natsbroker: publish: %w", err)
	}
	pos, err := c.local.Publish(ctx, p, h)
	if err != nil {
		return hub.Position{}, err
	}
	// The server has the publication once it answers a ping sent after
	// it.
	if err := c.flush(ctx); err != nil {
		return hub.Position{}, fmt.Errorf("natsbroker: publish: %w", err)
	}
	return pos, nil
}

// flush returns once the server has processed what was sent before.
func (c *coreBackend) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		// FlushWithContext needs a deadline.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	return c.nc.FlushWithContext(ctx)
}

// receive records the publications of the other instances to topic.
func (c *coreBackend) receive(topic string) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Header.Get(hdrOrigin) == c.id {
			return // recorded when it was published
		}
		typ, err1 := strconv.ParseUint(m.Header.Get(hdrType), 10, 8)
		size, err2 := strconv.Atoi(m.Header.Get(hdrSize))
		ttl, err3 := strconv.ParseInt(m.Header.Get(hdrTTL), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return // not a publication of a hub
		}
		p := hub.Publication{Topic: topic, Type: websocket.MessageType(typ), Payload: m.Data}
		// Each subscription's handler runs on a goroutine of its
		// own, so a topic's publications are recorded in the order
		// they arrive.  The memory broker holds this handler up only
		// while its instance falls far behind in delivering.
		c.local.Publish(context.Background(), p, hub.HistoryOptions{Size: size, TTL: time.Duration(ttl)})
	}
}

func (c *coreBackend) subscribe(ctx context.Context, topic string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[topic] != nil {
		return nil
	}
	if err := c.local.Subscribe(ctx, topic); err != nil {
		return err
	}
	sub, err := c.nc.Subscribe(c.names.subject(topic), c.receive(topic))
	if err == nil {
		// What is published once Subscribe returns must reach this
		// instance: the server has to know of the subscription by
		// then.
		if err = c.flush(ctx); err != nil {
			sub.Unsubscribe()
		}
	}
	if err != nil {
		c.local.Unsubscribe(ctx, topic)
		return fmt.Errorf("natsbroker: subscribe: %w", err)
	}
	c.subs[topic] = sub
	return nil
}

func (c *coreBackend) unsubscribe(ctx context.Context, topic string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub := c.subs[topic]
	if sub == nil {
		return nil
	}
	delete(c.subs, topic)
	err := sub.Unsubscribe()
	c.local.Unsubscribe(ctx, topic)
	return err
}

func (c *coreBackend) history(ctx context.Context, topic string, after uint64) ([]hub.Publication, hub.Position, error) {
	return c.local.History(ctx, topic, after)
}

// addPresence records the claim here.  A unique claim that this instance
// does not hold already asks the others first: best-effort, as two
// instances may ask at the same moment.
func (c *coreBackend) addPresence(ctx context.Context, topic, client string, info []byte, ttl time.Duration, unique bool) error {
	if unique {
		here, err := c.local.Presence(ctx, topic)
		if err != nil {
			return err
		}
		if held, ok := here[client]; !ok || !bytes.Equal(held, info) {
			others, err := c.gatherOthers(ctx, topic)
			if err != nil {
				return err
			}
			if other, ok := others[client]; ok && !bytes.Equal(other, info) {
				return hub.ErrClientTaken
			}
		}
	}
	return c.local.AddPresence(ctx, topic, client, info, ttl, unique)
}

func (c *coreBackend) removePresence(ctx context.Context, topic, client string, info []byte) error {
	return c.local.RemovePresence(ctx, topic, client, info)
}

func (c *coreBackend) presence(ctx context.Context, topic string) (map[string][]byte, error) {
	present, err := c.gatherOthers(ctx, topic)
	if err != nil {
		return nil, err
	}
	here, err := c.local.Presence(ctx, topic)
	if err != nil {
		return nil, err
	}
	for client, info := range here {
		present[client] = info
	}
	return present, nil
}

// presenceAnswer is what an instance answers a presence request with.
type presenceAnswer struct {
	Clients map[string][]byte `json:"clients"`
}

// answerPresence answers another instance's presence request with this
// one's claims in the topic.
func (c *coreBackend) answerPresence(m *nats.Msg) {
	if m.Header.Get(hdrOrigin) == c.id || m.Reply == "" {
		return // this instance's own request, which it answers itself
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.gather)
	defer cancel()
	here, err := c.local.Presence(ctx, string(m.Data))
	if err != nil {
		return
	}
	if data, err := json.Marshal(presenceAnswer{Clients: here}); err == nil {
		reply := nats.NewMsg(m.Reply)
		reply.Header.Set(hdrOrigin, c.id)
		reply.Data = data
		c.nc.PublishMsg(reply)
	}
}

// gatherOthers asks the other instances for their claims in topic, and
// takes the answers until every instance on the roll answered, or for
// c.gather at most.
func (c *coreBackend) gatherOthers(ctx context.Context, topic string) (map[string][]byte, error) {
	c.mu.Lock()
	missing := make(map[string]bool, len(c.peers))
	for id := range c.peers {
		missing[id] = true
	}
	c.mu.Unlock()
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: presence: %w", err)
	}
	defer sub.Unsubscribe()
	m := nats.NewMsg(c.names.presence)
	m.Reply = inbox
	m.Header.Set(hdrOrigin, c.id)
	m.Data = []byte(topic)
	if err := c.nc.PublishMsg(m); err != nil {
		return nil, fmt.Errorf("natsbroker: presence: %w", err)
	}
	wait, cancel := context.WithTimeout(ctx, c.gather)
	defer cancel()
	present := make(map[string][]byte)
	for len(missing) > 0 {
		answer, err := sub.NextMsgWithContext(wait)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			break // the time is up: those missing are left out
		}
		var a presenceAnswer
		if json.Unmarshal(answer.Data, &a) == nil {
			delete(missing, answer.Header.Get(hdrOrigin))
			for client, info := range a.Clients {
				present[client] = info
			}
		}
	}
	return present, nil
}

// reconnected has nothing to do: nats.go subscribes again by itself, and
// what was published meanwhile is lost to this instance.
func (c *coreBackend) reconnected(ctx context.Context) {}

func (c *coreBackend) close() {
	c.mu.Lock()
	started := c.answer != nil
	c.mu.Unlock()
	close(c.closing)
	if started {
		// Off the roll before the answers stop, so that nobody
		// waits for them.
		<-c.beating
		c.call(callBye)
		c.flush(context.Background())
	}
	c.mu.Lock()
	subs := c.subs
	c.subs = make(map[string]*nats.Subscription)
	if started {
		subs[c.names.presence], subs[c.names.roll] = c.answer, c.roll
	}
	c.mu.Unlock()
	for _, sub := range subs {
		sub.Unsubscribe()
	}
	c.local.Close()
	c.gate.close()
}
