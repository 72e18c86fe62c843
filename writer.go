package websocket

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"
)

// errCloseSent tells sendClose's callers that a close frame was already
// sent, after which RFC 6455, section 5.5.1, allows no more frames.
var errCloseSent = fmt.Errorf("websocket: close frame already sent: %w", ErrConnClosed)

// errWriterClosed is returned by a message writer used after Close.
var errWriterClosed = errors.New("websocket: write to a closed message writer")

// fragmentSize is how much a message writer collects before it sends a
// fragment.  Smaller writes are joined, so that a stream of small
// writes does not turn into a stream of tiny frames.
const fragmentSize = 32768

var fragmentPool = sync.Pool{
	New: func() any {
		b := make([]byte, 0, fragmentSize)
		return &b
	},
}

// SendText sends msg as one text message.  msg must be valid UTF-8.
func (c *Conn) SendText(msg string) error {
	// The payload is only read, never changed, so the bytes of the
	// string can be used without a copy.
	return c.sendWhole(opText, unsafe.Slice(unsafe.StringData(msg), len(msg)))
}

// SendBinary sends msg as one binary message.  To send a message in
// pieces, as they become available, use SendMessage.
func (c *Conn) SendBinary(msg []byte) error {
	return c.sendWhole(opBinary, msg)
}

// sendWhole sends a message as a single frame.
func (c *Conn) sendWhole(op opcode, payload []byte) error {
	if err := c.acquireSender(); err != nil {
		return err
	}
	defer c.releaseSender()
	return c.writeFrame(true, op, payload)
}

// SendMessage starts a message of type tp and returns a writer for its
// payload.  The message is sent in fragments as it is written and ends
// when the writer is closed; no other message can be sent until then,
// while pings and pongs still go out in between.  Text must be written
// as UTF-8.  tp must be Text or Binary, otherwise ErrMessageType is
// returned.
func (c *Conn) SendMessage(tp MessageType) (io.WriteCloser, error) {
	if tp != Text && tp != Binary {
		return nil, ErrMessageType
	}
	if err := c.acquireSender(); err != nil {
		return nil, err
	}
	return &messageWriter{c: c, op: opcode(tp), buf: fragmentPool.Get().(*[]byte)}, nil
}

// acquireSender waits until no other message is being sent.  Once the
// connection is closing it fails, even if no message is being sent.
func (c *Conn) acquireSender() error {
	if c.done == nil {
		return ErrConnClosed // used before the handshake completed
	}
	select {
	case c.senderToken <- struct{}{}:
	case <-c.closing:
		return c.closedError()
	}
	select {
	case <-c.closing:
		c.releaseSender()
		return c.closedError()
	default:
		return nil
	}
}

func (c *Conn) releaseSender() { <-c.senderToken }

// messageWriter is the io.WriteCloser that SendMessage returns.
type messageWriter struct {
	c   *Conn
	op  opcode  // of the next frame: the message type, then continuation
	buf *[]byte // payload collected for the next frame; nil once closed
}

// Write adds p to the message.  Data is sent whenever a fragment's
// worth has been collected.
func (w *messageWriter) Write(p []byte) (int, error) {
	if w.buf == nil {
		return 0, errWriterClosed
	}
	if w.c.isClosingNow() {
		return 0, ErrConnClosed
	}
	buf := *w.buf
	written := 0
	if len(buf)+len(p) > cap(buf) && len(buf) > 0 {
		k := copy(buf[len(buf):cap(buf)], p)
		if err := w.flushFragment(buf[:cap(buf)], false); err != nil {
			return 0, err
		}
		buf, p, written = buf[:0], p[k:], k
	}
	if len(p) >= cap(buf) {
		// Too big to collect: send it as it is, without a copy.
		if err := w.flushFragment(p, false); err != nil {
			return written, err
		}
		written += len(p)
		p = nil
	}
	*w.buf = append(buf, p...)
	return written + len(p), nil
}

// ReadFrom adds everything that r yields to the message, reading
// straight into the fragment buffer, so that io.Copy needs no buffer
// of its own.
func (w *messageWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.buf == nil {
		return 0, errWriterClosed
	}
	var total int64
	for {
		buf := *w.buf
		if len(buf) == cap(buf) {
			if err := w.flushFragment(buf, false); err != nil {
				return total, err
			}
			buf = buf[:0]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		*w.buf = buf[:len(buf)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close sends what remains of the message, ending it.  Closing twice
// does nothing more; once the connection has ended, Close returns
// ErrConnClosed.
func (w *messageWriter) Close() error {
	if w.buf == nil {
		if w.c.isClosingNow() {
			return ErrConnClosed
		}
		return nil
	}
	err := w.flushFragment(*w.buf, true)
	*w.buf = (*w.buf)[:0]
	fragmentPool.Put(w.buf)
	w.buf = nil
	w.c.releaseSender()
	return err
}

func (w *messageWriter) flushFragment(payload []byte, fin bool) error {
	err := w.c.writeFrame(fin, w.op, payload)
	w.op = opContinuation
	return err
}

// sendPong answers a ping.  It must not wait for the write lock: the
// reader calls it, and a writer blocked on a peer that does not read
// until we read would make both sides wait forever.  So a busy writer
// leaves the pong to a goroutine that sends it once the lock is free;
// answering only the latest of several pings is allowed (section
// 5.5.3).
func (c *Conn) sendPong(payload []byte) {
	if c.writeMu.TryLock() {
		defer c.writeMu.Unlock()
		if !c.closeSent {
			c.writeFrameLocked(true, opPong, payload)
		}
		return
	}
	c.pongMu.Lock()
	defer c.pongMu.Unlock()
	c.pongPayload = append(c.pongPayload[:0], payload...)
	if !c.pongQueued {
		c.pongQueued = true
		go c.sendQueuedPong()
	}
}

// sendQueuedPong sends the pong that sendPong could not send at once.
func (c *Conn) sendQueuedPong() {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	// Take the payload out, so that the reader never waits for
	// pongMu while this write is stuck.
	var buf [maxControlPayload]byte
	c.pongMu.Lock()
	payload := buf[:copy(buf[:], c.pongPayload)]
	c.pongQueued = false
	c.pongMu.Unlock()
	if !c.closeSent {
		c.writeFrameLocked(true, opPong, payload)
	}
}

// writeFrame sends one data frame.
func (c *Conn) writeFrame(fin bool, op opcode, payload []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closeSent {
		return ErrConnClosed
	}
	return c.writeFrameLocked(fin, op, payload)
}

// sendClose sends a close frame with the given payload, unless one was
// sent already, and then allows no more frames.  With shutdown, it also
// ends our direction of the TCP connection.  The write is bounded by
// closeTimeout, also for a data frame that is still being written.
func (c *Conn) sendClose(payload []byte, shutdown bool) error {
	c.netConn.SetWriteDeadline(closeDeadline())
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closeSent {
		return errCloseSent
	}
	c.closeSent = true
	err := c.writeFrameLocked(true, opClose, payload)
	if cw, ok := c.netConn.(interface{ CloseWrite() error }); ok && shutdown && err == nil {
		cw.CloseWrite()
	}
	return err
}

// writeFrameLocked encodes and sends one frame; c.writeMu is held.
// Frames go out at once, since a WebSocket peer waits for every one.
func (c *Conn) writeFrameLocked(fin bool, op opcode, payload []byte) error {
	if c.writeErr != nil {
		return ErrConnClosed
	}
	var key [4]byte
	if c.client {
		// Clients mask with a fresh unpredictable key for every
		// frame (section 5.3).
		rand.Read(key[:])
	}
	c.bw.Write(appendFrameHeader(c.bw.AvailableBuffer(), fin, op, c.client, key, len(payload)))
	if c.client {
		c.writeMasked(key, payload)
	} else {
		c.bw.Write(payload)
	}
	if err := c.bw.Flush(); err != nil {
		// A failed write leaves the peer with a partial frame: the
		// connection is unusable from here on.
		c.writeErr = fmt.Errorf("websocket: write: %w: %w", ErrConnClosed, err)
		c.beginClosing(c.writeErr)
		c.netConn.Close()
		return ErrConnClosed
	}
	return nil
}

// writeMasked copies payload into the write buffer, masking it on the
// way, so the caller's bytes stay untouched.
func (c *Conn) writeMasked(key [4]byte, payload []byte) {
	pos := 0
	for len(payload) > 0 {
		if c.bw.Available() == 0 {
			if c.bw.Flush() != nil {
				return // the error is sticky; the final Flush reports it
			}
		}
		chunk := c.bw.AvailableBuffer()[:min(len(payload), c.bw.Available())]
		copy(chunk, payload)
		pos = maskBytes(key, pos, chunk)
		c.bw.Write(chunk)
		payload = payload[len(chunk):]
	}
}
