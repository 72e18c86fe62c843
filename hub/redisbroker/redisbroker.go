// Package redisbroker is a hub.Broker that connects the instances of a
// github.com/gowebsock/websocket/hub through Redis (6.2 or later; the
// tests run on 7.0):
//
//   - publications go out on Pub/Sub, one channel per topic;
//   - each topic's position and history are a hash and a stream, changed
//     together with the publishing in one Lua script, so that Pub/Sub
//     carries a topic's publications in the order of their offsets;
//   - presence is a hash and a sorted set of expiry times, whose keys
//     expire with their last client.
//
// A Broker reconnects by itself after Redis restarts.  What is
// published while Redis is away fails with an error to its publisher;
// nothing is lost silently.  The hub learns of the reconnect
// (Receiver.Resubscribed) and fetches what its subscribers missed from
// the history.  A Redis that lost its data starts new epochs, so that
// clients that recover from a position of before see the gap
// (hub.ErrRecoveryGap).
//
// Each hub instance has a Broker of its own:
//
//	b, err := redisbroker.New(redisbroker.Options{Addr: "127.0.0.1:6379"})
//	...
//	h, err := hub.New(hub.Options{Broker: b})
package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/redis/go-redis/v9"
)

// Options configures a Broker.
type Options struct {
	// Addr is the address of the Redis server, host:port, used when
	// Client is nil.  The broker then makes a client of its own,
	// with timeouts short enough that a call to a Redis that is
	// away fails within a second or two, and closes it on Close.
	Addr string

	// Client, if not nil, is the Redis client to use instead; the
	// broker does not close it.  Its ContextTimeoutEnabled should be
	// set, so that calls end when their context does.
	Client redis.UniversalClient

	// Prefix is put before every key and channel name of the broker,
	// so that several hubs can share a Redis.  Empty means "hub:".
	Prefix string
}

// Timeouts of the client that New makes from Options.Addr.
const (
	dialTimeout = time.Second
	ioTimeout   = 2 * time.Second
)

// Timeouts of the Pub/Sub connection.
const (
	// idleCheck is how long the Pub/Sub connection may stay silent
	// before the broker pings it, to learn whether it still works.
	idleCheck = 3 * time.Second
	// pongTimeout is how long the broker waits for the answer to a
	// ping before it takes the connection for dead and reconnects.
	pongTimeout = 3 * time.Second
	// maxPause is the longest pause between two attempts to reach a
	// Redis that is away.
	maxPause = time.Second
)

// Broker is a hub.Broker on Redis.  Its methods may be called from
// several goroutines at once.
type Broker struct {
	client    redis.UniversalClient
	ownClient bool
	prefix    string
	ps        *redis.PubSub

	ops     chan subOp // subscriptions to make, in the order asked for
	started atomic.Bool
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup // the goroutines of Start

	// lost is set by whoever learns that the Pub/Sub connection
	// failed, for the receiving goroutine to tell the hub once the
	// connection is back.
	lost atomic.Bool

	markers atomic.Uint64 // numbers the payloads of pings

	// idleCheck and pongTimeout are those constants, which tests
	// shorten.
	idleCheck, pongTimeout time.Duration

	mu      sync.Mutex
	waiters map[string]chan struct{} // ping payload → closed when its pong came
}

// New returns a broker for one hub instance; hub.New starts it.
func New(opts Options) (*Broker, error) {
	b := &Broker{
		client:  opts.Client,
		prefix:  opts.Prefix,
		ops:     make(chan subOp),
		closed:  make(chan struct{}),
		waiters: make(map[string]chan struct{}),

		idleCheck:   idleCheck,
		pongTimeout: pongTimeout,
	}
	if b.prefix == "" {
		b.prefix = "hub:"
	}
	if b.client == nil {
		if opts.Addr == "" {
			return nil, errors.New("redisbroker: neither Addr nor Client given")
		}
		b.client = redis.NewClient(&redis.Options{
			Addr:                  opts.Addr,
			DialTimeout:           dialTimeout,
			DialerRetries:         2,
			ReadTimeout:           ioTimeout,
			WriteTimeout:          ioTimeout,
			ContextTimeoutEnabled: true,
			// For the calls that may safely run twice; Publish
			// is never retried (see noRetry).
			MaxRetries: 2,
		})
		b.ownClient = true
	}
	// No channel yet, so no connection either: the receiving goroutine
	// makes it.
	b.ps = b.client.Subscribe(context.Background())
	return b, nil
}

// Start implements hub.Broker: it starts delivering to r.
func (b *Broker) Start(r hub.Receiver) error {
	if b.started.Swap(true) {
		return errors.New("redisbroker: started twice")
	}
	select {
	case <-b.closed:
		return hub.ErrClosed
	default:
	}
	b.wg.Add(2)
	go b.receive(r)
	go b.subscriber()
	return nil
}

// Close implements hub.Broker: it ends the Pub/Sub connection and the
// broker's goroutines, and closes the client if New made it.
func (b *Broker) Close() error {
	b.once.Do(func() {
		close(b.closed)
		b.ps.Close() // ends a Receive under way
		b.wg.Wait()
		if b.ownClient {
			b.client.Close()
		}
	})
	return nil
}

// Publish implements hub.Broker.
func (b *Broker) Publish(ctx context.Context, p hub.Publication, h hub.HistoryOptions) (hub.Position, error) {
	if err := b.check(ctx); err != nil {
		return hub.Position{}, err
	}
	k := b.keys(p.Topic)
	reply, err := b.eval(ctx, publishScript, true, []string{k.position, k.history},
		newEpoch(), max(h.Size, 0), milliseconds(h.TTL), int(p.Type), p.Payload, b.channel(p.Topic))
	if err != nil {
		return hub.Position{}, b.failed(err)
	}
	v, _ := reply.([]any)
	if len(v) != 2 {
		return hub.Position{}, fmt.Errorf("redisbroker: publish: unexpected reply %v", reply)
	}
	return position(v[0], v[1])
}

// History implements hub.Broker.
func (b *Broker) History(ctx context.Context, topic string, after uint64) ([]hub.Publication, hub.Position, error) {
	if err := b.check(ctx); err != nil {
		return nil, hub.Position{}, err
	}
	k := b.keys(topic)
	reply, err := b.eval(ctx, historyScript, false, []string{k.position, k.history},
		newEpoch(), strconv.FormatUint(after, 10))
	if err != nil {
		return nil, hub.Position{}, b.failed(err)
	}
	v, _ := reply.([]any)
	if len(v) != 3 {
		return nil, hub.Position{}, fmt.Errorf("redisbroker: history: unexpected reply %v", reply)
	}
	current, err := position(v[0], v[1])
	if err != nil {
		return nil, hub.Position{}, err
	}
	entries, _ := v[2].([]any)
	pubs := make([]hub.Publication, 0, len(entries))
	for _, e := range entries {
		p, err := historyEntry(e)
		if err != nil {
			return nil, hub.Position{}, err
		}
		p.Topic, p.Position.Epoch = topic, current.Epoch
		pubs = append(pubs, p)
	}
	return pubs, current, nil
}

// AddPresence implements hub.Broker.
func (b *Broker) AddPresence(ctx context.Context, topic, client string, info []byte, ttl time.Duration, unique bool) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	k := b.keys(topic)
	u := "0"
	if unique {
		u = "1"
	}
	reply, err := b.eval(ctx, addPresenceScript, false, []string{k.presence, k.expiry},
		client, info, milliseconds(ttl), u)
	if err != nil {
		return b.failed(err)
	}
	if reply == int64(0) {
		return hub.ErrClientTaken
	}
	return nil
}

// RemovePresence implements hub.Broker.
func (b *Broker) RemovePresence(ctx context.Context, topic, client string, info []byte) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	k := b.keys(topic)
	_, err := b.eval(ctx, removePresenceScript, false, []string{k.presence, k.expiry}, client, info)
	return b.failed(err)
}

// Presence implements hub.Broker.
func (b *Broker) Presence(ctx context.Context, topic string) (map[string][]byte, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	k := b.keys(topic)
	reply, err := b.eval(ctx, presenceScript, false, []string{k.presence, k.expiry})
	if err != nil {
		return nil, b.failed(err)
	}
	v, _ := reply.([]any)
	present := make(map[string][]byte, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		client, _ := v[i].(string)
		info, _ := v[i+1].(string)
		present[client] = []byte(info)
	}
	return present, nil
}

// topicKeys are the Redis keys of a topic.
type topicKeys struct {
	position, history, presence, expiry string
}

func (b *Broker) keys(topic string) topicKeys {
	base := b.prefix + "{" + topic + "}:"
	return topicKeys{
		position: base + "position",
		history:  base + "history",
		presence: base + "presence",
		expiry:   base + "presence-expiry",
	}
}

// channel returns the Pub/Sub channel of a topic.
func (b *Broker) channel(topic string) string { return b.prefix + topic }

// eval runs s with keys and args, by its hash if Redis has it cached
// and by its source if not (a restarted Redis has forgotten it).  once
// forbids go-redis to send it again after a failure.
func (b *Broker) eval(ctx context.Context, s script, once bool, keys []string, args ...any) (any, error) {
	tail := make([]any, 0, 1+len(keys)+len(args))
	tail = append(tail, len(keys))
	for _, k := range keys {
		tail = append(tail, k)
	}
	tail = append(tail, args...)
	run := func(how ...any) (any, error) {
		cmd := redis.NewCmd(ctx, append(how, tail...)...)
		var c redis.Cmder = cmd
		if once {
			c = noRetry{cmd}
		}
		_ = b.client.Process(ctx, c)
		return cmd.Result()
	}
	reply, err := run("evalsha", s.hash)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Not run: safe to send again, whatever once says.
		reply, err = run("eval", s.src)
	}
	return reply, err
}

// noRetry keeps go-redis from sending a command again after a failure.
// A publication whose reply was lost may have been published, and a
// second try would publish it twice, at two positions; its publisher is
// told of the failure instead.
type noRetry struct{ *redis.Cmd }

// NoRetry tells go-redis not to retry the command.
func (noRetry) NoRetry() bool { return true }

// check returns why a call cannot be made, if it cannot.
func (b *Broker) check(ctx context.Context) error {
	select {
	case <-b.closed:
		return hub.ErrClosed
	default:
		return ctx.Err()
	}
}

// failed returns err as the caller is to see it: hub.ErrClosed once the
// broker is closed, whatever the client said about it.
func (b *Broker) failed(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-b.closed:
		return hub.ErrClosed
	default:
		return fmt.Errorf("redisbroker: %w", err)
	}
}

// position reads a position from a script's reply.
func position(epoch, offset any) (hub.Position, error) {
	e, _ := epoch.(string)
	o, _ := offset.(string)
	n, err := strconv.ParseUint(o, 10, 64)
	if e == "" || err != nil {
		return hub.Position{}, fmt.Errorf("redisbroker: bad position %v/%v", offset, epoch)
	}
	return hub.Position{Offset: n, Epoch: e}, nil
}

// historyEntry reads a publication, without topic and epoch, from an
// entry of a history stream: [0-OFFSET [t TYPE d PAYLOAD]].
func historyEntry(entry any) (hub.Publication, error) {
	var p hub.Publication
	e, _ := entry.([]any)
	if len(e) != 2 {
		return p, fmt.Errorf("redisbroker: bad history entry %v", entry)
	}
	id, _ := e[0].(string)
	offset, err := strconv.ParseUint(strings.TrimPrefix(id, "0-"), 10, 64)
	if err != nil {
		return p, fmt.Errorf("redisbroker: bad history entry ID %q", id)
	}
	p.Position.Offset = offset
	fields, _ := e[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		value, _ := fields[i+1].(string)
		switch fields[i] {
		case "t":
			typ, _ := strconv.Atoi(value)
			p.Type = websocket.MessageType(typ)
		case "d":
			p.Payload = []byte(value)
		}
	}
	return p, nil
}

// milliseconds returns d in whole milliseconds, rounded up so that a
// positive duration stays positive.
func milliseconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// newEpoch returns a fresh random epoch, which a script takes if the
// topic needs a new one.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
