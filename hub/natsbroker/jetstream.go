package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gowebsock/websocket/hub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsBackend is the broker with JetStream: see the package documentation
// for how it keeps positions gap-free and in delivery order.
type jsBackend struct {
	js    jetstream.JetStream
	names names
	opts  Options

	mu        sync.Mutex
	stream    jetstream.Stream
	kv        jetstream.KeyValue
	receiver  hub.Receiver
	followers map[string]*follower // the topics this instance subscribes to
	pubs      map[string]*pubTopic // the topics being published to
	closed    bool
	running   sync.WaitGroup // the followers' goroutines
}

// pubTopic serializes this instance's publications to a topic, so that
// they do not race each other for the next offset, and remembers the
// topic's last publication, which saves reading it again when nobody
// else published since.
type pubTopic struct {
	lock chan struct{} // holds a token while a publication is made
	last *lastMsg      // nil: to be read; guarded by lock
	refs int           // guarded by jsBackend.mu
}

// lastMsg is the last stored publication of a topic.
type lastMsg struct {
	seq uint64 // its stream sequence; 0: the topic has none
	stored
	data []byte // its payload, when it was read from the stream
}

// Timing of the consumers that follow topics.
const (
	// pullExpiry and pullHeartbeat make a follower notice within two
	// heartbeats that its consumer is gone without the connection
	// being lost (after a reconnect, followers start new consumers at
	// once), at the cost of a heartbeat per topic and instance.
	pullExpiry    = 30 * time.Second
	pullHeartbeat = 5 * time.Second
	// consumerIdle is how long the server keeps a consumer whose
	// instance stopped pulling without deleting it: one that died.
	consumerIdle = time.Minute
	// requestTimeout bounds the requests the broker makes on its own,
	// outside any call with a context.
	requestTimeout = 5 * time.Second
	// Retries of a follower whose consumer could not be made wait from
	// retryMin, doubling up to retryMax.
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
	// historyBatch is the most messages History fetches at once.
	historyBatch = 256
)

func newJSBackend(ctx context.Context, js jetstream.JetStream, n names, opts Options) (*jsBackend, error) {
	b := &jsBackend{js: js, names: n, opts: opts, followers: make(map[string]*follower), pubs: make(map[string]*pubTopic)}
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// ensure makes the stream and the presence bucket, unless they exist.
func (b *jsBackend) ensure(ctx context.Context) error {
	if _, err := b.ensureStream(ctx); err != nil {
		return err
	}
	kv, err := b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.names.bucket,
		Description: "presence of github.com/gowebsock/websocket/hub clients",
		History:     1,
		TTL:         b.opts.PresenceMaxAge,
		Storage:     b.storage(),
		Replicas:    b.opts.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		// Made by another instance, maybe with other settings,
		// which are left as they are.
		kv, err = b.js.KeyValue(ctx, b.names.bucket)
	}
	if err != nil {
		return fmt.Errorf("natsbroker: presence bucket: %w", err)
	}
	b.mu.Lock()
	b.kv = kv
	b.mu.Unlock()
	return nil
}

// ensureStream makes the stream of publications unless it exists, and
// returns it.
func (b *jsBackend) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	s, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        b.names.stream,
		Description: "publications of github.com/gowebsock/websocket/hub topics",
		Subjects:    []string{b.names.prefix + ".t.*"},
		Storage:     b.storage(),
		Replicas:    b.opts.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = b.js.Stream(ctx, b.names.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("natsbroker: stream: %w", err)
	}
	b.mu.Lock()
	b.stream = s
	b.mu.Unlock()
	return s, nil
}

// storage returns where the stream and bucket are to be kept.
func (b *jsBackend) storage() jetstream.StorageType {
	if b.opts.MemoryStorage {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// handles returns the stream and the bucket.
func (b *jsBackend) handles() (jetstream.Stream, jetstream.KeyValue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stream, b.kv
}

// created returns when the stream was made, as the server says now: the
// base of every epoch, which changes when the stream is lost and made
// anew.
func (b *jsBackend) created(ctx context.Context) (time.Time, error) {
	s, err := b.js.Stream(ctx, b.names.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = b.ensureStream(ctx)
	}
	if err != nil {
		return time.Time{}, err
	}
	return s.CachedInfo().Created, nil
}

// epoch returns the epoch of a topic that has no publication since seq,
// the stream sequence of the one whose TTL ended (0: it had none) in a
// stream made at created.  Every instance derives the same one.
func epoch(created time.Time, seq uint64) string {
	return fmt.Sprintf("%x-%x", created.UnixNano(), seq)
}

// position returns the topic's current position from its last
// publication.
func (b *jsBackend) position(ctx context.Context, l lastMsg) (hub.Position, error) {
	if l.seq != 0 && !l.expired(time.Now()) {
		return l.pos, nil
	}
	created, err := b.created(ctx)
	if err != nil {
		return hub.Position{}, err
	}
	return hub.Position{Epoch: epoch(created, l.seq)}, nil
}

// last reads the last stored publication of subject.
func (b *jsBackend) last(ctx context.Context, subject string) (lastMsg, error) {
	s, _ := b.handles()
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// Lost with the server's data, or deleted: made anew.
		if s, err = b.ensureStream(ctx); err == nil {
			m, err = s.GetLastMsgForSubject(ctx, subject)
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return lastMsg{}, nil
	}
	if err != nil {
		return lastMsg{}, err
	}
	st, err := parseStored(m.Header)
	if err != nil {
		return lastMsg{}, fmt.Errorf("%w on %s at %d", err, subject, m.Sequence)
	}
	return lastMsg{seq: m.Sequence, stored: st, data: m.Data}, nil
}

func (b *jsBackend) start(r hub.Receiver) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.receiver = r
	return nil
}

// publish appends p to the topic's subject at the offset after the last
// one stored, on condition that the last one is still the last: see the
// package documentation.
func (b *jsBackend) publish(ctx context.Context, p hub.Publication, h hub.HistoryOptions) (hub.Position, error) {
	subject := b.names.subject(p.Topic)
	t := b.acquire(p.Topic)
	defer b.release(p.Topic, t)
	// A lock that gives up when ctx is done.
	select {
	case t.lock <- struct{}{}:
		defer func() { <-t.lock }()
	case <-ctx.Done():
		return hub.Position{}, ctx.Err()
	}
	for {
		if t.last == nil {
			l, err := b.last(ctx, subject)
			if err != nil {
				return hub.Position{}, fmt.Errorf("natsbroker: publish: %w", err)
			}
			t.last = &l
		}
		l := *t.last
		current, err := b.position(ctx, l)
		if err != nil {
			return hub.Position{}, fmt.Errorf("natsbroker: publish: %w", err)
		}
		st := stored{
			pos:     hub.Position{Offset: current.Offset + 1, Epoch: current.Epoch},
			typ:     p.Type,
			size:    max(h.Size, 0),
			expires: expiry(time.Now(), h),
		}
		// Whether it is published or not, the last publication is
		// known only from the answer.
		t.last = nil
		ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: st.header(), Data: p.Payload},
			jetstream.WithExpectStream(b.names.stream),
			jetstream.WithExpectLastSequencePerSubject(l.seq))
		if wrongLast(err) {
			continue // another publication came first: after it, then
		}
		if err != nil {
			return hub.Position{}, fmt.Errorf("natsbroker: publish: %w", err)
		}
		t.last = &lastMsg{seq: ack.Sequence, stored: st}
		b.trim(ctx, subject, st)
		return st.pos, nil
	}
}

// wrongLast reports whether err says that the last publication of a
// subject was not the one expected.
func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// trim removes the publications of a topic that its history no longer
// keeps.  It does so only every so often, to spare a request per
// publication, so up to trimEvery more are stored than kept; History
// returns only the last st.size.  The last publication is never removed:
// it holds the topic's position.  An error is left alone, as the next
// trim removes what this one left.
func (b *jsBackend) trim(ctx context.Context, subject string, st stored) {
	keep := uint64(max(st.size, 1))
	every := max(keep/4, 16)
	if st.pos.Offset <= keep || (st.pos.Offset-keep)%every != 0 {
		return
	}
	s, _ := b.handles()
	s.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeKeep(keep))
}

// acquire returns the publishing state of a topic, held until release.
func (b *jsBackend) acquire(topic string) *pubTopic {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.pubs[topic]
	if t == nil {
		t = &pubTopic{lock: make(chan struct{}, 1)}
		b.pubs[topic] = t
	}
	t.refs++
	return t
}

// pubTopicsKept is how many topics' last publications are remembered
// while nobody publishes to them, beyond which they are forgotten.
const pubTopicsKept = 1024

func (b *jsBackend) release(topic string, t *pubTopic) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t.refs--
	if len(b.pubs) <= pubTopicsKept {
		return
	}
	for name, t := range b.pubs {
		if t.refs == 0 {
			delete(b.pubs, name)
		}
	}
}

// history returns the topic's last publications after an offset, within
// the size that its last publication asked for.
func (b *jsBackend) history(ctx context.Context, topic string, after uint64) ([]hub.Publication, hub.Position, error) {
	subject := b.names.subject(topic)
	l, err := b.last(ctx, subject)
	if err != nil {
		return nil, hub.Position{}, fmt.Errorf("natsbroker: history: %w", err)
	}
	current, err := b.position(ctx, l)
	if err != nil {
		return nil, hub.Position{}, fmt.Errorf("natsbroker: history: %w", err)
	}
	if l.size == 0 || after >= current.Offset {
		return nil, current, nil
	}
	// Offsets from first to current.Offset are kept.
	first := after + 1
	if size := uint64(l.size); current.Offset >= size && first < current.Offset-size+1 {
		first = current.Offset - size + 1
	}
	if first == current.Offset {
		return []hub.Publication{{Topic: topic, Position: l.pos, Type: l.typ, Payload: l.data}}, current, nil
	}
	pubs, err := b.fetch(ctx, topic, l, first)
	if err != nil {
		return nil, hub.Position{}, fmt.Errorf("natsbroker: history: %w", err)
	}
	return pubs, current, nil
}

// fetch returns the stored publications of topic from offset first to
// l, with a consumer that reads the topic's subject from its start.
func (b *jsBackend) fetch(ctx context.Context, topic string, l lastMsg, first uint64) ([]hub.Publication, error) {
	s, _ := b.handles()
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     b.names.subject(topic),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, err
	}
	defer b.deleteConsumer(cons)
	var pubs []hub.Publication
	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		// The messages are there already: a fetch that does not
		// wait for more, in case a trim removed some meanwhile.
		batch, err := cons.FetchNoWait(int(min(pending, historyBatch)))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil || meta.Sequence.Stream > l.seq {
				continue
			}
			st, err := parseStored(m.Headers())
			if err == nil && st.pos.Epoch == l.pos.Epoch && st.pos.Offset >= first && st.pos.Offset <= l.pos.Offset {
				pubs = append(pubs, hub.Publication{Topic: topic, Position: st.pos, Type: st.typ, Payload: m.Data()})
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			break // the rest was trimmed
		}
		pending -= uint64(n)
	}
	return pubs, nil
}

// deleteConsumer removes a consumer that the broker is done with, or
// leaves it to expire when the server cannot be reached.
func (b *jsBackend) deleteConsumer(cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	s, _ := b.handles()
	s.DeleteConsumer(ctx, cons.CachedInfo().Name)
}

// createConsumer makes the consumer of a follower, which starts at the
// stream sequence start, or with what is published next if start is 0.
func (b *jsBackend) createConsumer(ctx context.Context, subject string, start uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: consumerIdle,
	}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	s, _ := b.handles()
	return s.CreateConsumer(ctx, cfg)
}

// subscribe starts a follower of the topic, unless there is one.
func (b *jsBackend) subscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	for {
		f := b.followers[topic]
		if f == nil {
			break
		}
		if f.ctx.Err() == nil {
			b.mu.Unlock()
			return nil
		}
		// One that Unsubscribe stopped is still ending: two must
		// never deliver the same topic at once.
		b.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}
	if b.closed {
		b.mu.Unlock()
		return hub.ErrClosed
	}
	f := &follower{b: b, topic: topic, subject: b.names.subject(topic), done: make(chan struct{})}
	f.ctx, f.stop = context.WithCancel(context.Background())
	b.followers[topic] = f
	b.running.Add(1)
	b.mu.Unlock()

	// The consumer is made before Subscribe returns, so that what is
	// published after is delivered.
	created, err := b.created(ctx)
	var cons jetstream.Consumer
	if err == nil {
		cons, err = b.createConsumer(ctx, f.subject, 0)
	}
	if err != nil {
		f.stop()
		f.exit()
		return fmt.Errorf("natsbroker: subscribe: %w", err)
	}
	go f.run(cons, cons.CachedInfo().Delivered.Stream+1, created)
	return nil
}

// unsubscribe stops the topic's follower and waits for it to end.
func (b *jsBackend) unsubscribe(ctx context.Context, topic string) error {
	b.mu.Lock()
	f := b.followers[topic]
	b.mu.Unlock()
	if f == nil {
		return nil
	}
	f.stop()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reconnected makes the stream and bucket again if the server lost them,
// and has every follower start a new consumer at once rather than when
// its old one is missed.
func (b *jsBackend) reconnected(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	b.ensure(ctx) // on failure, the calls that need them make them
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.followers {
		f.restart()
	}
}

func (b *jsBackend) close() {
	b.mu.Lock()
	b.closed = true
	for _, f := range b.followers {
		f.stop()
	}
	b.mu.Unlock()
	b.running.Wait()
}

// follower delivers a topic's publications to the receiver, from a
// consumer of the topic's subject, and replaces the consumer when it
// misses a message or fails.  It is the only one to deliver the topic,
// so deliveries are in stream order, which is offset order, and never
// concurrent.
type follower struct {
	b       *jsBackend
	topic   string
	subject string
	ctx     context.Context // ends with stop
	stop    context.CancelFunc
	done    chan struct{} // closed when it has ended

	mu    sync.Mutex
	reset context.CancelFunc // ends the current consumer, if one runs
}

// run follows the topic until stop, starting with cons, which delivers
// from the stream sequence next of the stream made at created.
func (f *follower) run(cons jetstream.Consumer, next uint64, created time.Time) {
	defer f.exit()
	for {
		next = f.consume(cons, next)
		f.b.deleteConsumer(cons)
		if cons, next, created = f.replace(next, created); cons == nil {
			return
		}
	}
}

// exit unregisters the follower once it has ended.
func (f *follower) exit() {
	f.b.mu.Lock()
	if f.b.followers[f.topic] == f {
		delete(f.b.followers, f.topic)
	}
	f.b.mu.Unlock()
	close(f.done)
	f.b.running.Done()
}

// restart ends the current consumer, so that run replaces it.
func (f *follower) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reset != nil {
		f.reset()
	}
}

// consume delivers what cons hands over until it fails, misses a message
// or is restarted, and returns the stream sequence to go on from.
func (f *follower) consume(cons jetstream.Consumer, next uint64) uint64 {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	f.mu.Lock()
	f.reset = cancel
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.reset = nil
		f.mu.Unlock()
	}()
	it, err := cons.Messages(jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return next
	}
	defer it.Stop()
	var delivered uint64 // by this consumer
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return next
		}
		meta, err := m.Metadata()
		if err != nil || meta.Sequence.Consumer != delivered+1 {
			// A message was lost on the way, which a consumer
			// without acks never sends again: start again after
			// the last one delivered.
			return next
		}
		delivered++
		next = meta.Sequence.Stream + 1
		st, err := parseStored(m.Headers())
		if err != nil {
			continue // not a publication of a hub
		}
		f.b.receiver.Deliver(hub.Publication{Topic: f.topic, Position: st.pos, Type: st.typ, Payload: m.Data()})
	}
}

// replace makes a consumer that goes on from the stream sequence next,
// retrying until it succeeds or the follower stops (then it returns nil).
// A stream that was made anew since created starts again from its first
// message, as its sequences do.
func (f *follower) replace(next uint64, created time.Time) (jetstream.Consumer, uint64, time.Time) {
	wait := retryMin
	for f.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(f.ctx, requestTimeout)
		now, err := f.b.created(ctx)
		if err == nil {
			if !now.Equal(created) {
				next, created = 1, now
			}
			var cons jetstream.Consumer
			if cons, err = f.b.createConsumer(ctx, f.subject, next); err == nil {
				cancel()
				return cons, next, created
			}
		}
		cancel()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-f.ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, retryMax)
	}
	return nil, 0, time.Time{}
}
