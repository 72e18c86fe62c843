package websocket

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gowebsock/websocket/internal/wire"
)

// The write side of a connection: writeMu makes each frame one unit on
// the wire and guards the output state (out, closeSent, writeErr, the
// network's write deadline).  The sender token is held by the one message
// being sent: by SendText and SendBinary for their frame, and from
// SendMessage to the Close of its writer.  Control frames (pongs, pings,
// the close frame) need writeMu only, so they go out between the
// fragments of a streamed message.  Whoever releases writeMu sends a pong
// that the read side left pending meanwhile (see unlockWrite).

// holdSize is how much of a message a message writer holds back before
// it sends a fragment: a message of up to this size goes out as one
// frame, in one write.
const holdSize = 64 << 10

// writevMin is the payload size from which a server frame is written
// from the caller's buffer with writev, rather than copied behind its
// header.
const writevMin = 16 << 10

// maskChunk is the size of the pieces in which a client masks a large
// payload, which it must copy to mask.
const maskChunk = 64 << 10

// errWriterClosed is returned by a message writer used after Close.
var errWriterClosed = errors.New("websocket: write to a closed message writer")

// errCloseSent tells sendClose's callers that a close frame was already
// sent, after which RFC 6455, section 5.5.1, allows no more frames.
var errCloseSent = errors.New("websocket: close frame already sent")

// SendText sends msg as one text message.  msg must be valid UTF-8.
func (c *Conn) SendText(msg string) error {
	// The payload is only read, never changed, so the bytes of the
	// string can be used without a copy.
	return c.sendWhole(wire.Text, unsafe.Slice(unsafe.StringData(msg), len(msg)))
}

// SendBinary sends msg as one binary message.  To send a message in
// pieces, as they become available, use SendMessage.
func (c *Conn) SendBinary(msg []byte) error {
	return c.sendWhole(wire.Binary, msg)
}

// sendWhole sends a message as a single frame.
func (c *Conn) sendWhole(op wire.Opcode, payload []byte) error {
	if err := c.acquireSender(); err != nil {
		return err
	}
	defer c.releaseSender()
	if c.dfl.compresses(len(payload)) {
		// Compressed under the sender token, so that with context
		// takeover the messages are compressed in the order they go
		// out.
		held, err := c.dfl.compress(payload)
		if err == nil {
			err = c.writeHeld(true, op, wire.RSV1, held, nil)
		}
		c.dfl.endMessage()
		return c.sendResult(err)
	}
	c.writeMu.Lock()
	defer c.unlockWrite()
	return c.sendResult(c.writeFrameLocked(true, op, payload, true))
}

// SendMessage starts a message of type tp and returns a writer for its
// payload; tp must be Text or Binary, otherwise ErrMessageType is
// returned.  Text must be written as UTF-8.  The message ends when the
// writer is closed, and no other message can be sent until then, while
// pings and pongs still go out in between.
//
// The writer holds up to 64 KiB before it sends anything: a message of
// that size or less, however it is written, goes out as one frame.
// Larger messages go out in fragments as they are written.  The
// connection reuses the writer for its next message, so it must not be
// used after Close.
func (c *Conn) SendMessage(tp MessageType) (io.WriteCloser, error) {
	if tp != Text && tp != Binary {
		return nil, ErrMessageType
	}
	if err := c.acquireSender(); err != nil {
		return nil, err
	}
	w := &c.writer
	*w = messageWriter{c: c, op: wire.Opcode(tp)}
	return w, nil
}

// acquireSender waits until no other message is being sent, the
// connection closes, or the write deadline passes.
func (c *Conn) acquireSender() error {
	if !c.usable() {
		return ErrConnClosed
	}
	if err := c.senderToken.acquire(&c.closing, c.userWriteDeadline, "write"); err != nil {
		return err
	}
	if c.isClosingNow() {
		c.releaseSender()
		return ErrConnClosed
	}
	return nil
}

func (c *Conn) releaseSender() { c.senderToken.release() }

// sendResult turns the result of a write into what a send returns:
// nil, a passed write deadline that left the connection intact, or
// ErrConnClosed.
func (c *Conn) sendResult(err error) error {
	if err == nil || (isTimeout(err) && !c.isClosingNow()) {
		return err
	}
	return ErrConnClosed
}

// messageWriter is the io.WriteCloser that SendMessage returns.  It
// holds up to holdSize bytes of payload behind room for a frame header,
// so that a frame goes out in one write.  The connection has one and
// hands it out for every message; it belongs to the sender token's
// holder.
type messageWriter struct {
	c  *Conn
	op wire.Opcode // of the next frame: the message type, then continuation
	// With permessage-deflate, whether the message is compressed is
	// decided when its first frame goes out: by its size if that is
	// the last, else it is.
	decided, deflating bool
	// The held payload is (*bufp)[off:off+n], with room for a header
	// before it: off is MaxHeaderSize in a buffer of the writer's own,
	// more in an input buffer that ReadFrom took over.
	bufp   *[]byte
	off, n int
	closed bool
	probe  [1]byte // for ReadFrom, to learn whether more is coming
}

// held returns the held payload with the room for its header before it.
func (w *messageWriter) held() []byte {
	if w.bufp == nil {
		return nil
	}
	return (*w.bufp)[w.off-wire.MaxHeaderSize : w.off+w.n]
}

// room returns the free room behind the held payload, taking a buffer
// of at least need bytes of payload room if there is not enough.
func (w *messageWriter) room(need int) []byte {
	if w.bufp == nil || len(*w.bufp)-w.off-w.n < need {
		bigger := getBuffer(wire.MaxHeaderSize + w.n + need)
		if w.bufp != nil {
			copy(*bigger, w.held())
			putBuffer(w.bufp)
		}
		w.bufp, w.off = bigger, wire.MaxHeaderSize
	}
	return (*w.bufp)[w.off+w.n:]
}

// check returns the error for a write to w, if any.
func (w *messageWriter) check() error {
	switch {
	case w.closed && w.c.isClosingNow():
		return ErrConnClosed
	case w.closed:
		return errWriterClosed
	case w.c.isClosingNow():
		return ErrConnClosed
	}
	return nil
}

// Write adds p to the message.  What does not fit into the held 64 KiB
// is sent at once, all but the tail of p, which is held for Close.
func (w *messageWriter) Write(p []byte) (int, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	if w.n+len(p) <= holdSize {
		w.n += copy(w.room(len(p)), p)
		return len(p), nil
	}
	// Send what is held and most of p as one frame; hold the tail, so
	// that Close has something to end the message with.
	tail := min(len(p), 4096)
	w.room(0) // the room for the frame's header, also when nothing is held
	if err := w.flush(p[:len(p)-tail]); err != nil {
		return 0, err
	}
	w.n += copy(w.room(tail), p[len(p)-tail:])
	return len(p), nil
}

// ReadFrom adds everything that r yields to the message, reading
// straight into the held buffer, so that io.Copy needs no buffer of its
// own.  A message of up to 64 KiB copied from a received message goes
// out as one frame.
func (w *messageWriter) ReadFrom(r io.Reader) (int64, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	if mr, ok := r.(*messageReader); ok && w.n == 0 && w.c.dfl == nil {
		if n, ok := w.takeOver(mr); ok {
			return int64(n), nil
		}
	}
	var total int64
	for {
		if w.n == holdSize {
			// Full: send it unless the source is at its end.
			k, err := r.Read(w.probe[:])
			if k == 0 && err == io.EOF {
				return total, nil
			}
			if k > 0 {
				if ferr := w.flush(nil); ferr != nil {
					return total, ferr
				}
				w.n = copy(w.room(1), w.probe[:k])
				total += int64(k)
			}
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
			continue
		}
		room := w.room(holdSize - w.n)[:holdSize-w.n]
		k, err := r.Read(room)
		w.n += k
		total += int64(k)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// flush sends what is held, followed by more, as a fragment.
func (w *messageWriter) flush(more []byte) error {
	if w.compressing(false) {
		return w.deflate(more, false)
	}
	err := w.c.writeHeld(false, w.op, 0, w.held(), more)
	w.op = wire.Continuation
	w.n = 0
	return err
}

// compressing decides, with the first frame of the message, whether it
// is compressed, and reports that.
func (w *messageWriter) compressing(last bool) bool {
	if !w.decided {
		w.decided = true
		w.deflating = w.c.dfl != nil && (!last || w.c.dfl.compresses(w.n))
	}
	return w.deflating
}

// deflate compresses what is held and more, and sends what came out as
// a frame: the last of the message if last.
func (w *messageWriter) deflate(more []byte, last bool) error {
	d := w.c.dfl
	fw := d.compressor()
	var err error
	if w.n > 0 {
		_, err = fw.Write((*w.bufp)[w.off : w.off+w.n])
		w.n = 0
	}
	if err == nil && len(more) > 0 {
		_, err = fw.Write(more)
	}
	held := d.out.held()
	if err == nil && last {
		held, err = d.finish()
	}
	if err != nil {
		d.endMessage()
		return w.c.sendResult(err)
	}
	if !last && d.out.n == 0 {
		return nil // the compressor holds it all yet
	}
	var rsv byte
	if w.op != wire.Continuation {
		rsv = wire.RSV1 // the first frame of a compressed message
	}
	err = w.c.writeHeld(last, w.op, rsv, held, nil)
	w.op = wire.Continuation
	d.out.reset()
	if last || err != nil {
		d.endMessage()
	}
	return err
}

// writeHeld sends a frame of a message writer under the write lock, and
// returns the result for the application.
func (c *Conn) writeHeld(fin bool, op wire.Opcode, rsv byte, held, more []byte) error {
	c.writeMu.Lock()
	defer c.unlockWrite()
	return c.sendResult(c.writeHeldLocked(fin, op, rsv, held, more))
}

// Close sends what is held as the last frame of the message, ending it.
// Closing twice does nothing more; once the connection has ended, Close
// returns ErrConnClosed.
func (w *messageWriter) Close() error {
	if w.closed {
		if w.c.isClosingNow() {
			return ErrConnClosed
		}
		return nil
	}
	c := w.c
	w.room(0) // the room for the header, also of an empty message
	var err error
	if w.compressing(true) {
		err = w.deflate(nil, true)
	} else {
		err = c.writeHeld(true, w.op, 0, w.held(), nil)
	}
	putBuffer(w.bufp)
	w.bufp, w.off, w.n, w.closed = nil, 0, 0, true
	c.releaseSender()
	return err
}

// takeOver is ReadFrom's fast way for the echo of a received message: if
// what remains of it is the rest of one final frame of up to holdSize
// bytes, it reads that into the source connection's input buffer,
// unmasks and checks it there, and takes the buffer over as the held
// payload, so that the message goes out without a copy, its header
// written where the peer's header was.  The source gets a fresh buffer
// for any bytes behind the frame.  It reports false, having consumed
// nothing, if the message is not like that.
func (w *messageWriter) takeOver(mr *messageReader) (int, bool) {
	if mr.finished.Load() {
		return 0, false
	}
	src := mr.c
	src.lockRead()
	defer src.unlockRead()
	m := &src.msg
	if mr.generation != m.generation || src.isClosingNow() || !m.active || !m.final || m.remaining > holdSize || m.compressed {
		return 0, false
	}
	need := int(m.remaining)
	for src.in.w-src.in.r < need {
		if src.fill(need+src.in.r+inputSize) != nil {
			return 0, false // Read meets the error again and handles it
		}
	}
	if src.in.r < wire.MaxHeaderSize {
		return 0, false // no room for our header before the payload
	}
	in := &src.in
	payload := (*in.bufp)[in.r : in.r+need]
	if _, err := src.payloadRead(payload); err != io.EOF {
		src.failRead(err)
		return 0, false // Read reports the end of the connection
	}
	if w.bufp != nil {
		putBuffer(w.bufp)
	}
	w.bufp, w.off, w.n = in.bufp, in.r, need
	rest := (*in.bufp)[in.r+need : in.w]
	in.bufp = nil
	in.r, in.w, in.scanned = 0, 0, 0
	if len(rest) > 0 {
		in.preload(rest)
	}
	src.endMessage(mr)
	return need, true
}

// pendingPong is the payload of a pong that waits to be sent.
// Answering only the latest of several pings is allowed (RFC 6455,
// section 5.5.3).
type pendingPong struct {
	mu      sync.Mutex
	n       int
	payload [wire.MaxControlPayload]byte
}

// Control frames from the read side (pongs) and from the keep-alive
// timer (pings) never wait for the write side: a reader that waited for
// a peer that does not read, until we read, would wait forever, and its
// read deadline would not hold.  They are marked pending, and whoever
// holds the write lock sends them: the goroutine that marked them if the
// lock is free (without waiting for the network, see releaseNoWait), or
// else the holder when it lets go (unlockWrite).  The marking comes
// before the try of the lock, and the holder looks after letting go, so
// that one of the two always sends them.

// sendPong answers a ping.
func (c *Conn) sendPong(payload []byte) {
	p := c.pong.Load()
	if p == nil {
		// Only the read side stores it, so there is no race.
		p = new(pendingPong)
		c.pong.Store(p)
	}
	p.mu.Lock()
	p.n = copy(p.payload[:], payload)
	p.mu.Unlock()
	c.pongWaiting.Store(true)
	c.sendControlSoon()
}

// sendPing sends an empty ping, for keep-alive.
func (c *Conn) sendPing() {
	c.pingWaiting.Store(true)
	c.sendControlSoon()
}

// sendControlSoon sends the pending control frames now if the write lock
// is free, without waiting for the network.  A frame that went out in
// part must be completed first: whoever does that sends them after it.
func (c *Conn) sendControlSoon() {
	if !c.queuePartial() && c.writeMu.TryLock() {
		c.releaseNoWait()
	}
}

// controlWaiting reports whether control frames wait to be sent.
func (c *Conn) controlWaiting() bool { return c.pongWaiting.Load() || c.pingWaiting.Load() }

// appendControlLocked puts the pending control frames into the output
// buffer, and reports whether there were any; c.writeMu is held.  They
// go out at once, not held back with replies: a pong that waited would
// be replaced by the next one.
func (c *Conn) appendControlLocked() bool {
	if c.closeSent {
		// No frame may follow the close frame.
		c.pongWaiting.Store(false)
		c.pingWaiting.Store(false)
		return false
	}
	if c.queuePartial() || !c.controlWaiting() {
		return false
	}
	if c.pongWaiting.Swap(false) {
		var payload [wire.MaxControlPayload]byte
		p := c.pong.Load()
		p.mu.Lock()
		n := copy(payload[:], p.payload[:p.n])
		p.mu.Unlock()
		c.appendFrameLocked(wire.FirstByte(true, 0, wire.Pong), payload[:n])
	}
	if c.pingWaiting.Swap(false) {
		c.appendFrameLocked(wire.FirstByte(true, 0, wire.Ping), nil)
	}
	return true
}

// unlockWrite lets go of the write lock.  Before, it sends the pending
// control frames and, by the rule of coalescing, what waits in the
// output, unless the application is about to read more requests that
// have arrived already.  The caller may wait for the network.
func (c *Conn) unlockWrite() {
	for {
		if c.outputDueLocked() {
			c.flushOut(nil, false)
		}
		c.writeMu.Unlock()
		if !c.controlWaiting() || c.queuePartial() || !c.writeMu.TryLock() {
			return
		}
	}
}

// outputDueLocked prepares the output for the write lock's release: it
// appends the pending control frames, drops what waits once the close
// frame has gone out, and reports whether the rest is to go out now.
func (c *Conn) outputDueLocked() bool {
	urgent := c.appendControlLocked()
	if c.isClosingNow() && c.closeSent {
		c.outLen = 0
		c.releaseOut()
		return false
	}
	return c.outLen > 0 && c.writeErr == nil && (urgent || !c.holdOutputLocked())
}

// releaseNoWait is unlockWrite for a goroutine that must not wait for
// the network: the read side and the keep-alive timer.  What waits goes
// out as far as the socket takes it at once; if more remains, a goroutine
// of its own writes the rest and then lets go of the lock.
func (c *Conn) releaseNoWait() {
	for {
		if c.outputDueLocked() {
			if c.rio != nil {
				n, err := c.rawWriteNow((*c.out)[:c.outLen])
				if err != nil && !isTimeout(err) {
					c.writeFailed(err)
				} else {
					c.consumeOut(n)
				}
			}
			if c.outLen > 0 && c.writeErr == nil {
				go c.unlockWrite() // it writes the rest, with the lock
				return
			}
		}
		c.writeMu.Unlock()
		if !c.controlWaiting() || c.queuePartial() || !c.writeMu.TryLock() {
			return
		}
	}
}

// consumeOut drops the first n bytes of the output, which went out.
func (c *Conn) consumeOut(n int) {
	if n == 0 {
		return
	}
	out := *c.out
	c.outLen = copy(out, out[n:c.outLen])
	if c.outLen == 0 {
		c.stopCork()
		c.releaseOut()
	}
}

// writeFrameLocked sends one frame; c.writeMu is held.  A small payload
// is copied behind its header and the two go out in one write; a large
// server payload goes out from where it is, with writev; a client masks
// a copy.  fresh says that the frame begins a message, so that a write
// deadline that passes before any of it went out may leave the
// connection intact.
func (c *Conn) writeFrameLocked(fin bool, op wire.Opcode, payload []byte, fresh bool) error {
	if c.writeErr != nil {
		return c.writeErr
	}
	if c.closeSent && op != wire.Close {
		return ErrConnClosed // no frame may follow the close frame
	}
	if c.queueBusy() {
		if err := c.writeQueuedLocked(op == wire.Text || op == wire.Binary); err != nil {
			return err
		}
	}
	if !op.IsControl() && c.deadlineExpired() {
		return errDeadline("write")
	}
	var key [4]byte
	if c.client {
		// Clients mask with a fresh unpredictable key for every
		// frame (section 5.3).
		rand.Read(key[:])
	}
	first := wire.FirstByte(fin, 0, op)
	size := wire.HeaderSize(int64(len(payload)), c.client)
	mark := c.outLen
	if !c.client && len(payload) >= writevMin {
		out := c.outRoom(size)
		wire.PutHeader(out, first, false, key, int64(len(payload)))
		c.outLen += size
		return c.withdrawOnTimeout(mark, c.flushOut(payload, fresh))
	}
	if c.client && len(payload) > maskChunk {
		return c.writeMaskedLocked(first, key, payload)
	}
	c.appendFrameKeyLocked(first, key, payload)
	return c.withdrawOnTimeout(mark, c.endFrameLocked(op, fresh))
}

// appendFrameLocked encodes a frame into the output buffer, masked with
// a fresh key on a client, without writing it; c.writeMu is held.
func (c *Conn) appendFrameLocked(first byte, payload []byte) {
	var key [4]byte
	if c.client {
		rand.Read(key[:])
	}
	c.appendFrameKeyLocked(first, key, payload)
}

// appendFrameKeyLocked encodes a frame with the given masking key.
func (c *Conn) appendFrameKeyLocked(first byte, key [4]byte, payload []byte) {
	size := wire.HeaderSize(int64(len(payload)), c.client)
	out := c.outRoom(size + len(payload))
	n := wire.PutHeader(out, first, c.client, key, int64(len(payload)))
	copy(out[n:], payload)
	if c.client {
		wire.Mask(key, 0, out[n:n+len(payload)])
	}
	c.outLen += size + len(payload)
}

// withdrawOnTimeout takes a frame out of the output again if a write
// deadline passed before any of it went out, which leaves the connection
// intact; mark is where the frame began.
func (c *Conn) withdrawOnTimeout(mark int, err error) error {
	if err != nil && c.writeErr == nil {
		c.outLen = mark
	}
	return err
}

// Coalescing, as uWebSockets' corking does: while the application is
// about to read requests that have arrived already (a pipelining peer),
// the replies wait in the output buffer and go out together.  They go out
// when the application has read what was there (at the next release of
// the write lock), before the read side would wait for the network, when
// corkLimit bytes wait, or when corkDelay has passed, whichever is
// first.  A lone request finds no other input waiting, so its reply goes
// out at once.
const (
	corkLimit    = 32 << 10
	corkFrameMax = inputSize // larger frames are never held back
)

// corkDelay is the longest that replies wait, in nanoseconds: 200 µs.
// It is a variable so that tests can change it, atomic since
// connections of earlier tests may still run.
var corkDelay atomic.Int64

func init() { corkDelay.Store(int64(200 * time.Microsecond)) }

// endFrameLocked ends a frame that was put into the output buffer: it
// goes out at once, with whatever waits before it, or waits there with
// the other replies.  c.writeMu is held.
func (c *Conn) endFrameLocked(op wire.Opcode, fresh bool) error {
	if op != wire.Close && c.holdOutputLocked() {
		return nil
	}
	return c.flushOut(nil, fresh)
}

// holdOutputLocked reports whether the output is to wait for more
// replies, and sees that it waits no longer than corkDelay.  c.writeMu
// is held.
func (c *Conn) holdOutputLocked() bool {
	if c.outLen >= corkLimit || !c.inputPending.Load() {
		return false
	}
	c.corked.Store(true)
	if !c.corkArmed {
		c.corkArmed = true
		d := time.Duration(corkDelay.Load())
		if c.corkTimer == nil {
			c.corkTimer = time.AfterFunc(d, c.onCorkDelay)
		} else {
			c.corkTimer.Reset(d)
		}
	}
	return true
}

// stopCork notes that nothing waits in the output any more.
func (c *Conn) stopCork() {
	if c.corkArmed {
		c.corkTimer.Stop()
		c.corkArmed = false
	}
	c.corked.Store(false)
}

// onCorkDelay sends what waits in the output buffer once corkDelay has
// passed.
func (c *Conn) onCorkDelay() {
	c.writeMu.Lock()
	c.corkArmed = false
	if c.outLen > 0 && c.writeErr == nil {
		c.flushOut(nil, false)
	}
	c.unlockWrite()
}

// flushCorked sends held replies before the read side waits for the
// network.  The caller has cleared inputPending first: if somebody holds
// the write lock, it sends them when it lets go.
func (c *Conn) flushCorked() {
	if c.corked.Load() && c.writeMu.TryLock() {
		c.releaseNoWait()
	}
}

// writeHeldLocked sends a frame whose payload is held[MaxHeaderSize:],
// followed by more; the header goes into the room before the payload, so
// that the frame needs no copy.  c.writeMu is held.
func (c *Conn) writeHeldLocked(fin bool, op wire.Opcode, rsv byte, held, more []byte) error {
	if c.writeErr != nil {
		return c.writeErr
	}
	if c.closeSent {
		return ErrConnClosed // no frame may follow the close frame
	}
	if c.queueBusy() {
		if err := c.writeQueuedLocked(op != wire.Continuation); err != nil {
			return err
		}
	}
	payload := held[wire.MaxHeaderSize:]
	length := int64(len(payload) + len(more))
	if c.client && len(more) > 0 {
		// Masking needs a copy anyway: send the two as one.
		joined := getBuffer(int(length))
		defer putBuffer(joined)
		n := copy(*joined, payload)
		copy((*joined)[n:], more)
		return c.writeFrameLocked(fin, op, (*joined)[:length], op != wire.Continuation)
	}
	var key [4]byte
	if c.client {
		rand.Read(key[:])
		wire.Mask(key, 0, payload)
	}
	size := wire.HeaderSize(length, c.client)
	start := wire.MaxHeaderSize - size
	wire.PutHeader(held[start:], wire.FirstByte(fin, rsv, op), c.client, key, length)
	frame := held[start:]
	fresh := op != wire.Continuation
	mark := c.outLen
	if more == nil && len(frame) <= corkFrameMax {
		// Small: it joins the output buffer, and may wait there
		// with other replies.
		copy(c.outRoom(len(frame)), frame)
		c.outLen += len(frame)
		return c.withdrawOnTimeout(mark, c.endFrameLocked(op, fresh))
	}
	if more == nil {
		// Large: out with what waits, in one writev.
		return c.withdrawOnTimeout(mark, c.flushOut(frame, fresh))
	}
	if err := c.flushOut(nil, false); err != nil {
		return err
	}
	return c.writeNet(frame, more, fresh)
}

// writeMaskedLocked sends a large client frame, masking its payload in
// pieces through the output buffer.  c.writeMu is held.
func (c *Conn) writeMaskedLocked(first byte, key [4]byte, payload []byte) error {
	size := wire.HeaderSize(int64(len(payload)), true)
	wire.PutHeader(c.outRoom(size), first, true, key, int64(len(payload)))
	c.outLen += size
	pos := 0
	fresh := first&0x0F != byte(wire.Continuation)
	for len(payload) > 0 {
		out := c.outRoom(min(len(payload), maskChunk))
		k := copy(out, payload)
		pos = wire.Mask(key, pos, out[:k])
		c.outLen += k
		payload = payload[k:]
		if err := c.flushOut(nil, fresh); err != nil {
			return err
		}
		fresh = false
	}
	return nil
}

// outRoom returns room for at least n more bytes behind the output
// waiting in c.out, taking or growing the buffer as needed.
func (c *Conn) outRoom(n int) []byte {
	if c.out == nil || len(*c.out)-c.outLen < n {
		bigger := getBuffer(c.outLen + n)
		if c.out != nil {
			copy(*bigger, (*c.out)[:c.outLen])
			putBuffer(c.out)
		}
		c.out = bigger
	}
	return (*c.out)[c.outLen:]
}

// releaseOut gives the output buffer back when it holds nothing.
func (c *Conn) releaseOut() {
	if c.out != nil && c.outLen == 0 {
		putBuffer(c.out)
		c.out = nil
	}
}

// flushOut writes the waiting output, followed by more if not nil, and
// gives the buffer back.  c.writeMu is held.
func (c *Conn) flushOut(more []byte, fresh bool) error {
	c.stopCork()
	if c.outLen == 0 && more == nil {
		return nil
	}
	var out []byte
	if c.out != nil {
		out = (*c.out)[:c.outLen]
	}
	err := c.writeNet(out, more, fresh)
	if err != nil && c.writeErr == nil {
		// A deadline passed before anything went out: the output
		// stays, for the caller to withdraw its part of it.
		return err
	}
	c.outLen = 0
	c.releaseOut()
	return err
}

// vectors are the two-element net.Buffers of writev.  WriteTo consumes
// the slice it is given, so each keeps the array under it; they are
// pooled, so that a large write allocates nothing.
type vectors struct {
	array [2][]byte
	bufs  net.Buffers
}

var vectorsPool = sync.Pool{New: func() any { return new(vectors) }}

// writeNet writes b, followed by more if not nil, to the network.  The
// write is bounded by the write timeout, which a write that makes
// progress renews, and by the application's write deadline.  If fresh
// (the data begins a message) and the deadline passes before any of it
// went out, the error is returned and the connection stays usable; any
// other failure ends the connection.  c.writeMu is held.
func (c *Conn) writeNet(b, more []byte, fresh bool) error {
	total := len(b) + len(more)
	written := 0
	if c.rio != nil && more == nil && c.writeDeadlineIsZero() {
		// Most writes go out at once; those need no deadline.  A
		// deadline of an earlier write that has passed since makes
		// this fail before writing: then the loop below sets it anew.
		n, err := c.rawWriteNow(b)
		if err != nil && !isTimeout(err) {
			return c.writeFailed(err)
		}
		written = n
	}
	for written < total {
		c.refreshWriteDeadline()
		var n int
		var err error
		switch {
		case written >= len(b):
			n, err = c.netConn.Write(more[written-len(b):])
		case more == nil:
			n, err = c.netConn.Write(b[written:])
		default:
			v := vectorsPool.Get().(*vectors)
			v.array = [2][]byte{b[written:], more}
			v.bufs = v.array[:]
			var n64 int64
			n64, err = v.bufs.WriteTo(c.netConn)
			n = int(n64)
			v.array, v.bufs = [2][]byte{}, nil
			vectorsPool.Put(v)
		}
		written += n
		if err == nil {
			continue
		}
		if !isTimeout(err) {
			return c.writeFailed(err)
		}
		switch {
		case c.userDeadlinePassed():
			if written == 0 && fresh && c.rio != nil {
				// Not a byte went out: the connection is intact.
				return err
			}
			return c.writeFailed(errWriteDeadline)
		case n > 0 && c.rio != nil:
			// Progress: the write timeout starts anew.
		default:
			return c.writeFailed(errWriteTimeout)
		}
	}
	return nil
}

var (
	errWriteTimeout  = errors.New("websocket: write timed out: the peer does not read")
	errWriteDeadline = errors.New("websocket: the write deadline passed in the middle of a frame or message")
)

// writeFailed ends the connection after a failed write, which leaves the
// peer with a partial frame, and returns the error for later writes.
// c.writeMu is held.
func (c *Conn) writeFailed(err error) error {
	c.writeErr = errors.Join(ErrConnClosed, err)
	c.outLen = 0
	c.releaseOut()
	c.drop(c.writeErr)
	return c.writeErr
}

// refreshWriteDeadline sets the network's write deadline for a write:
// the application's deadline, or the write timeout from now if that is
// sooner.  The timeout's deadline is renewed only once it is nearer than
// the timeout, so that most writes need no system call for it; a write
// that makes no progress thus fails after between one and 1.125 times
// the write timeout.  c.writeMu is held.
func (c *Conn) refreshWriteDeadline() {
	user := c.writeDeadline.Load()
	target := c.netWriteDeadline
	if t := c.cfg.writeTimeout; t > 0 {
		now := time.Now().UnixNano()
		if !c.netWriteByTimeout || c.netWriteDeadline-now < int64(t) {
			target = now + int64(t+t/8)
		}
		c.netWriteByTimeout = true
	} else {
		target = 0
		c.netWriteByTimeout = false
	}
	if user != 0 && (target == 0 || user < target) {
		target = user
		c.netWriteByTimeout = false
	}
	if by := c.closeWriteBy.Load(); by != 0 && (target == 0 || by < target) {
		// Once the close frame is due, nothing waits longer.
		target = by
		c.netWriteByTimeout = false
	}
	if target != c.netWriteDeadline || c.writeDeadlineDirty.Swap(false) {
		c.netConn.SetWriteDeadline(timeOf(target))
		c.netWriteDeadline = target
	}
}

// deadlineExpired reports whether the application's write deadline has
// passed already.
func (c *Conn) deadlineExpired() bool {
	d := c.userWriteDeadline()
	return !d.IsZero() && !time.Now().Before(d)
}

// userDeadlinePassed reports whether a write timed out because of the
// application's deadline rather than the write timeout.
func (c *Conn) userDeadlinePassed() bool {
	return c.deadlineExpired()
}

// errDeadline is the error of a call whose deadline passed before it
// could do anything; the connection stays usable.
func errDeadline(op string) error {
	return &net.OpError{Op: op, Net: "websocket", Err: os.ErrDeadlineExceeded}
}
