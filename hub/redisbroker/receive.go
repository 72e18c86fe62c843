package redisbroker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/redis/go-redis/v9"
)

// The broker's Pub/Sub connection is go-redis's PubSub, which redials
// and subscribes again by itself when its connection fails.  Two
// goroutines use it:
//
//   - receive reads it: it delivers the publications, keeps the
//     connection checked, and tells the hub when the connection is back
//     after a failure;
//   - subscriber subscribes and unsubscribes, one request at a time, in
//     the order they were made, so that a request whose caller gave up
//     cannot overtake a later one.
//
// Both learn what Redis has done from pings with payloads of their own:
// Redis answers the commands of a connection in order, so the answer to
// a ping sent after a SUBSCRIBE says that the SUBSCRIBE took effect, and
// the answer to one sent on a new connection, that the connection
// subscribed to every channel again.

// Subscribe implements hub.Broker.  It returns once Redis has subscribed
// the broker to the topic, so that every publication made after it
// returns is delivered.
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	return b.request(ctx, subOp{topic: topic, subscribe: true})
}

// Unsubscribe implements hub.Broker.  It returns once Redis has
// unsubscribed the broker, so that nothing published after it returns
// is delivered.
func (b *Broker) Unsubscribe(ctx context.Context, topic string) error {
	return b.request(ctx, subOp{topic: topic})
}

// subOp is a request to subscribe or unsubscribe.
type subOp struct {
	topic     string
	subscribe bool
	done      chan error // buffered: the subscriber does not wait for the caller
}

// request hands op to the subscriber and waits for the outcome, or for
// ctx.  A caller that gives up leaves the request to be carried out
// later: a subscription that it did not wait for costs deliveries that
// the hub ignores, as it has no subscriber for them.
func (b *Broker) request(ctx context.Context, op subOp) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	if !b.started.Load() {
		return errors.New("redisbroker: not started")
	}
	op.done = make(chan error, 1)
	select {
	case b.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return hub.ErrClosed
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return hub.ErrClosed
	}
}

// subscriber carries out the requests to subscribe and unsubscribe until
// Close.
func (b *Broker) subscriber() {
	defer b.wg.Done()
	subscribed := make(map[string]bool)
	for {
		select {
		case <-b.closed:
			return
		case op := <-b.ops:
			op.done <- b.apply(op, subscribed)
		}
	}
}

// apply carries out op; subscribed is the subscriber's record of the
// topics subscribed to.
func (b *Broker) apply(op subOp, subscribed map[string]bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout+b.pongTimeout)
	defer cancel()
	channel := b.channel(op.topic)
	var err error
	if op.subscribe {
		err = b.ps.Subscribe(ctx, channel)
	} else {
		// go-redis forgets the channel even if it cannot send the
		// UNSUBSCRIBE: a connection that it makes anew will not
		// subscribe to it.
		delete(subscribed, op.topic)
		err = b.ps.Unsubscribe(ctx, channel)
	}
	if err == nil {
		// Once Redis has carried the command out, no publication
		// made after Subscribe returns is missed, and none made
		// after Unsubscribe returns is delivered.
		err = b.roundTrip(ctx)
	}
	if err != nil {
		b.lost.Store(true)
		if op.subscribe && !subscribed[op.topic] {
			// go-redis keeps the channel, to subscribe to it on its
			// next connection, but the caller is told it failed.
			// ctx may have expired: a write with a deadline past
			// would fail, and make go-redis redial for nothing.
			ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
			b.ps.Unsubscribe(ctx, channel)
			cancel()
		}
		return b.failed(err)
	}
	if op.subscribe {
		subscribed[op.topic] = true
	}
	return nil
}

// roundTrip pings the Pub/Sub connection and waits for the answer, which
// comes after Redis carried out the commands sent before.
func (b *Broker) roundTrip(ctx context.Context) error {
	marker := b.newMarker()
	answered := make(chan struct{})
	b.mu.Lock()
	b.waiters[marker] = answered
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiters, marker)
		b.mu.Unlock()
	}()
	if err := b.ps.Ping(ctx, marker); err != nil {
		return err
	}
	select {
	case <-answered:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return hub.ErrClosed
	}
}

// newMarker returns a payload for a ping that no other ping of the
// broker has.
func (b *Broker) newMarker() string {
	return "redisbroker-" + strconv.FormatUint(b.markers.Add(1), 10)
}

// answered wakes whoever waits for the answer to the ping with payload
// marker.
func (b *Broker) answered(marker string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.waiters[marker]; c != nil {
		close(c)
		delete(b.waiters, marker)
	}
}

// receive reads the Pub/Sub connection until Close and delivers to r.
func (b *Broker) receive(r hub.Receiver) {
	defer b.wg.Done()
	var (
		ping     string // the payload of this goroutine's ping under way, if any
		resync   bool   // r is to be told of a reconnect when ping is answered
		lost     bool   // the connection failed since r was last told
		failures int    // attempts in a row that failed
	)
	for {
		select {
		case <-b.closed:
			return
		default:
		}
		if b.lost.Swap(false) {
			lost = true
		}
		if lost {
			// Once this ping is answered, the connection is one
			// that subscribed to every channel again.
			ping, resync = b.newMarker(), true
			if err := b.ping(ping); err != nil {
				b.pause(&failures)
				continue
			}
			lost = false
		}

		msg, err := b.read(ping != "")
		if err != nil {
			if b.isClosed() {
				return
			}
			var ne net.Error
			if ping == "" && errors.As(err, &ne) && ne.Timeout() {
				// Silent for a while: check that the
				// connection still works.
				ping = b.newMarker()
				if b.ping(ping) != nil {
					ping, lost = "", true
				}
				continue
			}
			ping, resync, lost = "", false, true
			b.pause(&failures)
			continue
		}
		failures = 0

		switch m := msg.(type) {
		case *redis.Message:
			if p, ok := b.decode(m); ok {
				r.Deliver(p)
			}
		case *redis.Pong:
			if m.Payload != ping {
				b.answered(m.Payload)
				break
			}
			ping = ""
			if resync {
				resync = false
				r.Resubscribed()
			}
		}
	}
}

// read returns the next message of the Pub/Sub connection.  While the
// broker waits for the answer to a ping, a message that does not come in
// time means that the connection is dead: go-redis is made to redial.
// Otherwise it means that the connection is silent, and read returns a
// timeout error.
func (b *Broker) read(pinged bool) (any, error) {
	if !pinged {
		return b.ps.ReceiveTimeout(context.Background(), b.idleCheck)
	}
	// A deadline from ctx, rather than a timeout, is what makes
	// go-redis take the connection for dead when nothing comes.
	ctx, cancel := context.WithTimeout(context.Background(), b.pongTimeout)
	defer cancel()
	return b.ps.ReceiveTimeout(ctx, 0)
}

// ping sends a ping with payload marker on the Pub/Sub connection,
// making the connection anew if it has none.
func (b *Broker) ping(marker string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	return b.ps.Ping(ctx, marker)
}

// pause waits before the next attempt to reach Redis, longer after each
// failure up to maxPause, or until Close.
func (b *Broker) pause(failures *int) {
	d := min(50*time.Millisecond<<min(*failures, 5), maxPause)
	*failures++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.closed:
	}
}

func (b *Broker) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// decode reads a publication from a Pub/Sub message: the channel names
// the topic, and the payload is EPOCH:OFFSET:TYPE:PAYLOAD.  A message
// that is not one of the broker's is ignored.
func (b *Broker) decode(m *redis.Message) (hub.Publication, bool) {
	topic, ok := strings.CutPrefix(m.Channel, b.prefix)
	epoch, rest, ok1 := strings.Cut(m.Payload, ":")
	offset, rest, ok2 := strings.Cut(rest, ":")
	typ, payload, ok3 := strings.Cut(rest, ":")
	n, err1 := strconv.ParseUint(offset, 10, 64)
	t, err2 := strconv.Atoi(typ)
	if !ok || !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil {
		return hub.Publication{}, false
	}
	return hub.Publication{
		Topic:    topic,
		Position: hub.Position{Offset: n, Epoch: epoch},
		Type:     websocket.MessageType(t),
		Payload:  []byte(payload),
	}, true
}
