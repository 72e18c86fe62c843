// Package natsbroker is a hub.Broker that connects the instances of a
// github.com/gowebsock/websocket/hub through a NATS server.
//
// # With JetStream
//
// When the server has JetStream (nats-server -js), each topic's
// publications go into one stream, "<Prefix>_hub" (with the prefix's
// dots made underscores), on subjects "<Prefix>.t.<topic>" (with the
// topic in unpadded base64url, "=" if it is empty), which keeps the
// history and gives positions that every instance agrees on:
//
//   - Offsets: every publication carries its offset and epoch in headers.
//     A publisher reads the last message of the topic's subject, gives
//     the new one the next offset, and publishes it with the header
//     Nats-Expected-Last-Subject-Sequence set to that message's stream
//     sequence.  The server stores it only if no other publication of the
//     topic came in between; if one did, the publisher reads the last
//     message again and retries.  So the stream holds a topic's
//     publications in the order of their offsets, each one more than the
//     one before: gap-free, and in the order in which they are delivered.
//   - Delivery: each instance follows each topic it subscribes to with an
//     ephemeral pull consumer on the topic's subject, which hands the
//     stored messages over in stream order, so in offset order.  Messages
//     that the server refused (a lost race) are never stored and so never
//     delivered.  A consumer that loses messages or its server is
//     replaced by one that starts after the last message delivered.
//   - History: the last Size publications of a topic are kept; the
//     broker trims older ones from time to time, so a few more may be
//     stored, but History returns only the last Size.  The last
//     publication of a topic is always kept, as it holds the topic's
//     position: a topic that was published to costs one stored message
//     even after its TTL.
//   - Epochs: a topic's epoch is derived from the stream's creation time,
//     and from the stream sequence of the publication that expired when
//     the TTL ended the previous epoch: every instance derives the same
//     one without storing it, and a stream that was lost and made anew
//     starts new epochs.  The TTL is measured with the clock of the
//     publisher that set it, so the instances' clocks should agree.
//   - Presence: a key-value bucket, "<Prefix>_presence", holds one key per
//     topic and client, with the claim's expiry in the value.  A unique
//     claim is made with an atomic create, or an update of the revision
//     that was read; RemovePresence deletes only the revision whose info
//     it matched.  Expired claims are left out by Presence, which deletes
//     them; the bucket's own MaxAge (Options.PresenceMaxAge) removes what
//     nobody reads any more.
//
// # Without JetStream
//
// A server without JetStream has no storage, so there is nothing that
// every instance could agree on positions with.  The broker then works
// on core NATS alone: publications travel on the same subjects, and each
// instance keeps a hub.MemoryBroker of its own, which numbers, keeps and
// delivers what the instance sees.  This is lost:
//
//   - Positions are each instance's own: an instance numbers the
//     publications it sees of a topic (its own, and those it receives
//     because it subscribes) in the order it sees them, in an epoch of
//     its own.  A position is therefore meaningful only on the instance
//     that gave it: a subscriber that recovers with SubscribeOptions.Since
//     on another instance gets hub.ErrRecoveryGap.
//   - History is what this instance saw, kept in its memory, and lost
//     with it.
//   - What was published while an instance was disconnected from the
//     server never reaches it, and it cannot see that: its positions
//     count what it received, so they show no gap.
//   - Presence is gathered from every instance with a request that each
//     answers with its own clients.  The instances call a roll (when
//     they start, every two seconds, and when they close), and the
//     request waits for the answers of those on the roll, for
//     Options.GatherWait at most: an instance that does not answer in
//     time, or that started a moment ago and is not on the roll yet, is
//     left out.  A unique claim asks the others first, but two instances
//     that claim the same name at the same moment may both succeed:
//     uniqueness across instances is best-effort (within an instance it
//     holds).  The clients of an instance that dies leave the presence
//     at once, and Presence waits for its answer until it is off the
//     roll, six seconds after its last call.
//
// Delivery, exactly once and in each publisher's order, holds in both
// modes while the connection holds; with JetStream it holds across
// reconnects too, as each follower goes on after the last message it
// delivered, and the hub drops what it was sent already.
//
// # Connection
//
// nats.go reconnects by itself.  A publication is not buffered while
// the connection is down: Publish fails instead, so that none is lost
// unreported (a connection given in Options.Conn should be made with
// nats.ReconnectBufSize(-1) for the same reason).  After a reconnect the
// broker calls hub.Receiver.Resubscribed, and the hub catches up from the
// history.
package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gowebsock/websocket/hub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configures a Broker.
type Options struct {
	// URL is the NATS server to connect to, such as
	// "nats://127.0.0.1:4222"; see nats.Connect.  It is ignored when
	// Conn is set.
	URL string
	// NATSOptions are added to the broker's own options when it
	// connects to URL, after them, so that they can override them.
	NATSOptions []nats.Option
	// Conn is a connection to use instead of making one: the broker
	// does not close it.  It should not buffer publications while
	// reconnecting (nats.ReconnectBufSize(-1)), or a publication made
	// then may be reported as failed and still be published later.
	Conn *nats.Conn

	// Prefix starts every subject the broker uses, and names its
	// stream and bucket, so that several sets of hubs can share a
	// server.  It is made of tokens of letters, digits, '-' and '_'
	// separated by dots; "" means "hub".
	Prefix string

	// Replicas is the number of replicas of the stream and bucket that
	// the broker creates if they do not exist, for a JetStream
	// cluster; zero means 1.
	Replicas int
	// MemoryStorage keeps the stream and bucket in the servers' memory
	// rather than in files: faster, and lost when a server restarts,
	// which starts new epochs.
	MemoryStorage bool
	// PresenceMaxAge is how long the presence bucket keeps a claim that
	// nobody refreshes, whatever its TTL, so that the claims of
	// instances that died and of topics that nobody reads are removed
	// in the end.  It must be longer than the time between two
	// refreshes of a claim (a third of hub.Options.PresenceTTL); zero
	// means 24 hours.  It applies only when the broker creates the
	// bucket.
	PresenceMaxAge time.Duration

	// GatherWait is, without JetStream, how long Presence waits at
	// most for the answer of an instance that it knows of; zero means
	// one second.
	GatherWait time.Duration
}

// Broker is a hub.Broker over NATS; see the package documentation.  Each
// hub instance needs a Broker of its own.
type Broker struct {
	nc     *nats.Conn
	ownsNC bool
	names  names

	// backend is the JetStream or the core-NATS half of the broker,
	// chosen by New.
	backend backend

	mu       sync.Mutex
	closed   bool
	status   chan nats.Status   // nil until Start
	watching chan struct{}      // closed when watch returns
	closing  chan struct{}      // closed by Close
	receiver hub.Receiver       // set by Start
	recovery context.CancelFunc // ends a reconnect's recovery
}

// backend is what differs between the broker with JetStream and the one
// without.  The Broker checks ctx and closing before calling it.
type backend interface {
	start(r hub.Receiver) error
	publish(ctx context.Context, p hub.Publication, h hub.HistoryOptions) (hub.Position, error)
	subscribe(ctx context.Context, topic string) error
	unsubscribe(ctx context.Context, topic string) error
	history(ctx context.Context, topic string, after uint64) ([]hub.Publication, hub.Position, error)
	addPresence(ctx context.Context, topic, client string, info []byte, ttl time.Duration, unique bool) error
	removePresence(ctx context.Context, topic, client string, info []byte) error
	presence(ctx context.Context, topic string) (map[string][]byte, error)
	// reconnected brings the backend back after the connection was
	// lost and made again, before the hub catches up.
	reconnected(ctx context.Context)
	// close ends the backend's goroutines and subscriptions, and waits
	// for them; it is called once.
	close()
}

// setupTimeout bounds what New does on the server.
const setupTimeout = 10 * time.Second

// New connects to the server, or uses opts.Conn, and returns a broker
// that uses JetStream if the server has it, and core NATS alone if it
// does not (see the package documentation for what that loses).
func New(opts Options) (*Broker, error) {
	if opts.Prefix == "" {
		opts.Prefix = "hub"
	}
	if !validPrefix.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("natsbroker: invalid prefix %q", opts.Prefix)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.PresenceMaxAge <= 0 {
		opts.PresenceMaxAge = 24 * time.Hour
	}
	if opts.GatherWait <= 0 {
		opts.GatherWait = time.Second
	}
	b := &Broker{nc: opts.Conn, names: newNames(opts.Prefix), closing: make(chan struct{})}
	if b.nc == nil {
		nopts := append([]nats.Option{
			nats.Name("gowebsock hub"),
			// A publication made while reconnecting fails at once
			// rather than waiting in a buffer: see the package
			// documentation.
			nats.ReconnectBufSize(-1),
			nats.MaxReconnects(-1),
		}, opts.NATSOptions...)
		nc, err := nats.Connect(opts.URL, nopts...)
		if err != nil {
			return nil, fmt.Errorf("natsbroker: %w", err)
		}
		b.nc, b.ownsNC = nc, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	backend, err := b.newBackend(ctx, opts)
	if err != nil {
		if b.ownsNC {
			b.nc.Close()
		}
		return nil, err
	}
	b.backend = backend
	return b, nil
}

// newBackend returns the JetStream backend if the server has JetStream,
// and the core one if it says that it has not.
func (b *Broker) newBackend(ctx context.Context, opts Options) (backend, error) {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: %w", err)
	}
	_, err = js.AccountInfo(ctx)
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return newCoreBackend(b.nc, b.names, opts.GatherWait)
	case err != nil:
		// Not an answer about JetStream: falling back to core NATS
		// would lose the history without anyone asking for it.
		return nil, fmt.Errorf("natsbroker: asking for JetStream: %w", err)
	}
	return newJSBackend(ctx, js, b.names, opts)
}

// validPrefix matches the prefixes that make valid subjects, and stream
// and bucket names once their dots are replaced.
var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// JetStream reports whether the broker keeps its history in JetStream,
// rather than in the memory of each instance.
func (b *Broker) JetStream() bool {
	_, ok := b.backend.(*jsBackend)
	return ok
}

// Start implements hub.Broker: it begins delivering to r, and watches the
// connection to tell r when it was made again.
func (b *Broker) Start(r hub.Receiver) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return hub.ErrClosed
	}
	if b.receiver != nil {
		return errors.New("natsbroker: started twice")
	}
	if err := b.backend.start(r); err != nil {
		return err
	}
	b.receiver = r
	b.status = b.nc.StatusChanged(nats.CONNECTED)
	b.watching = make(chan struct{})
	go b.watch(b.status)
	return nil
}

// watch brings the broker back after each reconnect, until Close removes
// the status listener, which closes the channel.
func (b *Broker) watch(status chan nats.Status) {
	defer close(b.watching)
	for range status {
		ctx, cancel := context.WithCancel(context.Background())
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			cancel()
			continue // until the channel is closed
		}
		b.recovery = cancel
		b.mu.Unlock()
		b.backend.reconnected(ctx)
		cancel()
		// The subscriptions are back: what was published meanwhile
		// comes from the history.
		b.receiver.Resubscribed()
	}
}

// Publish implements hub.Broker.
func (b *Broker) Publish(ctx context.Context, p hub.Publication, h hub.HistoryOptions) (hub.Position, error) {
	if err := b.check(ctx); err != nil {
		return hub.Position{}, err
	}
	pos, err := b.backend.publish(ctx, p, h)
	return pos, b.closedErr(err)
}

// Subscribe implements hub.Broker.
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.closedErr(b.backend.subscribe(ctx, topic))
}

// Unsubscribe implements hub.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, topic string) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.closedErr(b.backend.unsubscribe(ctx, topic))
}

// History implements hub.Broker.
func (b *Broker) History(ctx context.Context, topic string, after uint64) ([]hub.Publication, hub.Position, error) {
	if err := b.check(ctx); err != nil {
		return nil, hub.Position{}, err
	}
	pubs, current, err := b.backend.history(ctx, topic, after)
	return pubs, current, b.closedErr(err)
}

// AddPresence implements hub.Broker.
func (b *Broker) AddPresence(ctx context.Context, topic, client string, info []byte, ttl time.Duration, unique bool) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.closedErr(b.backend.addPresence(ctx, topic, client, info, ttl, unique))
}

// RemovePresence implements hub.Broker.
func (b *Broker) RemovePresence(ctx context.Context, topic, client string, info []byte) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.closedErr(b.backend.removePresence(ctx, topic, client, info))
}

// Presence implements hub.Broker.
func (b *Broker) Presence(ctx context.Context, topic string) (map[string][]byte, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	present, err := b.backend.presence(ctx, topic)
	return present, b.closedErr(err)
}

// Close implements hub.Broker: it ends the subscriptions and goroutines
// of the broker, waits for a delivery under way to return, and closes
// the connection if the broker made it.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.closing)
	if b.recovery != nil {
		b.recovery()
	}
	status := b.status
	b.mu.Unlock()
	if status != nil {
		b.nc.RemoveStatusListener(status)
		<-b.watching
	}
	b.backend.close()
	if b.ownsNC {
		b.nc.Close()
	}
	return nil
}

// closedErr returns err, and says that the broker was closed if Close
// interrupted the call that failed: the hub takes hub.ErrClosed for what
// it is.
func (b *Broker) closedErr(err error) error {
	if err != nil && !errors.Is(err, hub.ErrClosed) && b.check(context.Background()) != nil {
		return fmt.Errorf("%w (%w)", hub.ErrClosed, err)
	}
	return err
}

// check returns why a call cannot be made, if it cannot.
func (b *Broker) check(ctx context.Context) error {
	select {
	case <-b.closing:
		return hub.ErrClosed
	default:
		return ctx.Err()
	}
}

// names are the subjects, stream and bucket of a prefix.
type names struct {
	prefix   string // of subjects
	stream   string // the stream of publications
	bucket   string // the presence bucket
	presence string // the subject of presence requests, without JetStream
	roll     string // the subject of the instances' roll, without JetStream
}

func newNames(prefix string) names {
	base := strings.ReplaceAll(prefix, ".", "_")
	return names{prefix: prefix, stream: base + "_hub", bucket: base + "_presence", presence: prefix + ".presence", roll: prefix + ".roll"}
}

// subject returns the subject of a topic's publications.  Topics are
// encoded, as a topic may hold anything, and a subject token may not
// hold dots, spaces or wildcards.
func (n names) subject(topic string) string { return n.prefix + ".t." + token(topic) }
