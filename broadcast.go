package websocket

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gowebsock/websocket/internal/wire"
)

// maxQueued bounds the broadcast frames, in bytes, that may wait for one
// connection: a connection that falls further behind is failed with
// StatusPolicyViolation, so that it holds up nobody and nothing.
const maxQueued = 1 << 20

// errSendQueueFull is why a connection that fell too far behind ended.
var errSendQueueFull = &closeError{code: StatusPolicyViolation, reason: "too slow: the send queue is full"}

// BroadcastText sends msg as a text message to every connection in conns.
// It returns the errors by index in conns; connections that are not in
// the map were sent the message, or have it queued.  See BroadcastBinary.
func BroadcastText(ctx context.Context, conns []*Conn, msg string) map[int]error {
	return broadcast(ctx, conns, wire.Text, unsafe.Slice(unsafe.StringData(msg), len(msg)))
}

// BroadcastBinary sends msg as a binary message to every connection in
// conns.  It returns the errors by index in conns; connections that are
// not in the map were sent the message, or have it queued.
//
// The frame is encoded once for all server connections.  It goes out at
// once to every connection whose socket takes it; for the others it is
// queued, behind what is queued already, and a goroutine of that
// connection writes the queue out, bounded by its write timeout.  A slow
// receiver thus never delays the others, nor the call.  A connection
// whose queue exceeds 1 MiB is failed with StatusPolicyViolation, and
// its error is ErrConnClosed, like that of a connection that had ended.
// Messages that a connection was sent by broadcasts go out in the order
// of the calls, and before what the connection is sent afterwards.
//
// ctx bounds the call: once it is done, the connections not yet reached
// are skipped and get ctx's error.
func BroadcastBinary(ctx context.Context, conns []*Conn, msg []byte) map[int]error {
	return broadcast(ctx, conns, wire.Binary, msg)
}

func broadcast(ctx context.Context, conns []*Conn, op wire.Opcode, payload []byte) map[int]error {
	errs := make(map[int]error)
	var shared *sharedFrame // for server connections, made on first use
	// Compressed, once per level, for the connections that compress it
	// without context takeover; with it, a message must be compressed
	// in the connection's own order, so they are sent it uncompressed,
	// which RFC 7692 allows.
	var compressed [12]*sharedFrame
	for i, c := range conns {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				for j := i; j < len(conns); j++ {
					errs[j] = err
				}
				break
			}
		}
		if c == nil || !c.usable() {
			errs[i] = ErrConnClosed
			continue
		}
		var f *sharedFrame
		switch d := c.dfl; {
		case c.client:
			f = newSharedFrame(op, payload, true) // masked: its own
		case d.compresses(len(payload)) && !d.writeTakeover:
			slot := &compressed[d.level+2]
			if *slot == nil {
				if *slot = newDeflatedFrame(op, payload, d.level); *slot == nil {
					errs[i] = ErrConnClosed // compress/flate failed
					continue
				}
			}
			f = *slot
			f.refs.Add(1)
		default:
			if shared == nil {
				shared = newSharedFrame(op, payload, false)
			}
			f = shared
			f.refs.Add(1)
		}
		if err := c.sendShared(f); err != nil {
			errs[i] = err
		}
	}
	if shared != nil {
		shared.release() // the broadcaster's own reference
	}
	for _, f := range compressed {
		if f != nil {
			f.release()
		}
	}
	return errs
}

// newDeflatedFrame encodes a server frame of a message compressed at the
// given level, with one reference; nil if compress/flate failed.
func newDeflatedFrame(op wire.Opcode, payload []byte, level int) *sharedFrame {
	d := &deflate{level: level}
	held, err := d.compress(payload)
	if err != nil {
		d.endMessage()
		return nil
	}
	size := wire.HeaderSize(int64(len(held)-wire.MaxHeaderSize), false)
	start := wire.MaxHeaderSize - size
	wire.PutHeader(held[start:], wire.FirstByte(true, wire.RSV1, op), false, [4]byte{}, int64(len(held)-wire.MaxHeaderSize))
	f := &sharedFrame{bufp: d.out.bufp, frame: held[start:]}
	f.refs.Store(1)
	d.out.bufp = nil // the frame owns the buffer now
	d.endMessage()
	return f
}

// sharedFrame is an encoded frame on its way to one or more connections.
// It is freed when the last of them has written it.
type sharedFrame struct {
	bufp  *[]byte
	frame []byte
	refs  atomic.Int32
}

// newSharedFrame encodes a frame, with one reference.
func newSharedFrame(op wire.Opcode, payload []byte, masked bool) *sharedFrame {
	size := wire.HeaderSize(int64(len(payload)), masked)
	f := &sharedFrame{bufp: getBuffer(size + len(payload))}
	var key [4]byte
	if masked {
		rand.Read(key[:])
	}
	n := wire.PutHeader(*f.bufp, wire.FirstByte(true, 0, op), masked, key, int64(len(payload)))
	copy((*f.bufp)[n:], payload)
	if masked {
		wire.Mask(key, 0, (*f.bufp)[n:n+len(payload)])
	}
	f.frame = (*f.bufp)[:n+len(payload)]
	f.refs.Store(1)
	return f
}

func (f *sharedFrame) release() {
	if f.refs.Add(-1) == 0 {
		putBuffer(f.bufp)
	}
}

// sendQueue holds the broadcast frames that a connection could not write
// at once.  They are whole messages, so they go out between messages
// only, by whoever holds the sender token: the goroutine that drains the
// queue, or a sender before its own message.  The head may be a frame
// that went out in part, which happens only between messages: it must be
// completed before any other frame, control frames included, and may be
// completed by anyone who holds the write lock.
type sendQueue struct {
	mu       sync.Mutex
	frames   []queuedFrame
	bytes    int
	draining bool        // a drainQueue goroutine runs
	busy     atomic.Bool // frames are queued: a quick check without mu
	partial  atomic.Bool // the head went out in part
}

type queuedFrame struct {
	f   *sharedFrame
	off int // bytes written already
}

// sendShared sends f, taking over one reference to it: at once if the
// socket takes it, else through the queue.
func (c *Conn) sendShared(f *sharedFrame) error {
	if c.isClosingNow() {
		f.release()
		return ErrConnClosed
	}
	off := 0
	if c.rio != nil && c.tryAcquireSender() {
		if c.writeMu.TryLock() {
			var err error
			off, err = c.writeNowLocked(f)
			if err != nil {
				c.writeFailed(err)
			}
			c.unlockWrite()
		}
		c.releaseSender()
		if off == len(f.frame) {
			f.release()
			return nil
		}
	}
	q := c.sendQueue()
	q.mu.Lock()
	defer q.mu.Unlock()
	if c.isClosingNow() {
		f.release()
		return ErrConnClosed
	}
	if q.bytes+len(f.frame)-off > maxQueued {
		f.release()
		// The close frame waits behind what the peer does not
		// read; nobody else should wait for it.
		c.beginClosing(errSendQueueFull)
		go c.fail(errSendQueueFull)
		return ErrConnClosed
	}
	q.frames = append(q.frames, queuedFrame{f, off})
	q.bytes += len(f.frame) - off
	q.busy.Store(true)
	if !q.draining {
		q.draining = true
		go c.drainQueue()
	}
	return nil
}

// writeNowLocked writes as much of f as the socket takes without
// waiting, if nothing else waits to be written before it.  The caller
// holds the sender token and the write lock.  If f goes out in part,
// the rest is queued at the head here, before anyone else can write.
func (c *Conn) writeNowLocked(f *sharedFrame) (int, error) {
	if c.writeErr != nil || c.closeSent || c.outLen > 0 {
		return 0, nil
	}
	if q := c.queue.Load(); q != nil {
		q.mu.Lock()
		queued := len(q.frames) > 0
		q.mu.Unlock()
		if queued {
			return 0, nil
		}
	}
	n, err := c.rawWriteNow(f.frame)
	if err != nil || n == 0 || n == len(f.frame) {
		return n, err
	}
	// In part: the rest must come first, also before frames that
	// other broadcasts queued meanwhile, which wait for the sender
	// token that the caller holds.
	q := c.sendQueue()
	q.mu.Lock()
	defer q.mu.Unlock()
	f.refs.Add(1)
	q.frames = append([]queuedFrame{{f, n}}, q.frames...)
	q.bytes += len(f.frame) - n
	q.busy.Store(true)
	q.partial.Store(true)
	if !q.draining {
		q.draining = true
		go c.drainQueue()
	}
	return len(f.frame), nil
}

// tryAcquireSender takes the sender token if nobody holds it.
func (c *Conn) tryAcquireSender() bool { return c.senderToken.tryAcquire() }

// drainQueue writes the queue out, on a goroutine of its own: a frame
// that went out in part at once, the others once no message is being
// sent.
func (c *Conn) drainQueue() {
	q := c.queue.Load()
	for {
		c.writeMu.Lock()
		err := c.writeQueuedLocked(false)
		c.unlockWrite()
		if err == nil {
			err = c.senderToken.acquire(&c.closing, nil, "write")
			if err == nil {
				c.writeMu.Lock()
				err = c.writeQueuedLocked(true)
				c.unlockWrite()
				c.releaseSender()
			}
		}
		q.mu.Lock()
		if err != nil || len(q.frames) == 0 {
			q.draining = false
			q.mu.Unlock()
			if err != nil {
				q.discard()
			}
			return
		}
		q.mu.Unlock() // more came meanwhile
	}
}

// writeQueuedLocked writes queued frames out, blocking as needed;
// c.writeMu is held.  With all, the caller holds the sender token
// between messages, and the whole queue goes out; else only the rest of
// a frame that went out in part.  Every writer calls it before its own
// frame, so that frames keep their order.
func (c *Conn) writeQueuedLocked(all bool) error {
	q := c.queue.Load()
	for {
		// Take the head out, and with it its reference: discard,
		// when the connection ends meanwhile, then leaves it to us.
		q.mu.Lock()
		if len(q.frames) == 0 || (!all && q.frames[0].off == 0) {
			if len(q.frames) == 0 {
				q.frames = nil
				q.busy.Store(false)
			}
			q.partial.Store(false)
			q.mu.Unlock()
			return nil
		}
		if c.closeSent && q.frames[0].off == 0 {
			// No message may follow the close frame.
			q.mu.Unlock()
			q.discard()
			return nil
		}
		head := q.frames[0]
		q.frames[0] = queuedFrame{}
		q.frames = q.frames[1:]
		q.bytes -= len(head.f.frame) - head.off
		q.mu.Unlock()

		var err error
		if c.writeErr != nil {
			err = c.writeErr
		} else if err = c.flushOut(nil, false); err == nil {
			err = c.writeNet(head.f.frame[head.off:], nil, false)
		}
		head.f.release()
		if err != nil {
			q.discard()
			return err
		}
	}
}

// sendQueue returns the connection's queue, made on first use.
func (c *Conn) sendQueue() *sendQueue {
	if q := c.queue.Load(); q != nil {
		return q
	}
	c.queue.CompareAndSwap(nil, new(sendQueue))
	return c.queue.Load()
}

// queueBusy reports whether broadcast frames wait to be written.
func (c *Conn) queueBusy() bool {
	q := c.queue.Load()
	return q != nil && q.busy.Load()
}

// queuePartial reports whether a frame that went out in part waits to be
// completed, before any other frame.
func (c *Conn) queuePartial() bool {
	q := c.queue.Load()
	return q != nil && q.partial.Load()
}

// discard drops whatever is queued, when the connection ends.  q may be
// nil.
func (q *sendQueue) discard() {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, qf := range q.frames {
		qf.f.release()
	}
	q.frames, q.bytes = nil, 0
	q.busy.Store(false)
	q.partial.Store(false)
}

// String describes the queue, for debugging.
func (q *sendQueue) String() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return fmt.Sprintf("%d frames, %d bytes, draining %v", len(q.frames), q.bytes, q.draining)
}
