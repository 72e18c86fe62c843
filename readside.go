package websocket

import (
	"errors"
	"os"
	"time"

	"github.com/gowebsock/websocket/internal/wire"
)

// The read side of a connection (the network's input, the input buffer
// and the state of the message being read) has one owner at a time,
// the holder of readMu:
//
//   - an application goroutine, for the length of one receive call or of
//     one Read of a message reader;
//   - else, once nobody has taken the read side for receiverGrace, the
//     background reader, which reads on so that pings are answered and
//     the peer's close frame is seen, holding the data messages that
//     arrive meanwhile up to the read-ahead bound;
//   - the goroutine that completes the closing handshake.
//
// A goroutine that wants the read side while the background reader has
// it counts itself in readWaiters and cuts the background reader's
// network read short with a past deadline; the background reader gives
// way whenever it sees a waiter.

// receiverGrace is how long the read side must have been free before the
// background reader takes it.  An application that receives in a loop
// thus reads every message itself, without a goroutine hand-over, and one
// that stops receiving has its pings answered soon after.
//
// The idle timer that watches for this fires at most once per grace
// period.  When it finds the application still receiving, it waits
// twice as long the next time, up to maxGraceShift doublings (64 ms),
// so that a busy connection costs a timer's goroutine a few times a
// second rather than hundreds.  A new connection starts with the longest
// wait, as its application is about to receive most likely.  A peer's
// ping is thus answered within 64 ms even while nobody receives.
const (
	receiverGrace   = 2 * time.Millisecond
	maxGraceShift   = 5
	startGraceShift = maxGraceShift
)

// lockRead takes the read side for an application goroutine, or for the
// closing handshake, and sets the network's read deadline for it.
func (c *Conn) lockRead() {
	if !c.readMu.TryLock() {
		c.readWaiters.Add(1)
		c.deadlineMu.Lock()
		if c.bgReading {
			c.setNetReadDeadlineLocked(pastDeadline)
		}
		c.deadlineMu.Unlock()
		c.readMu.Lock()
		c.readWaiters.Add(-1)
	}
	c.deadlineMu.Lock()
	c.setNetReadDeadlineLocked(c.ownerDeadlineLocked())
	c.deadlineMu.Unlock()
	c.readStalled.Store(false)
}

// ownerDeadlineLocked is the read deadline for an application goroutine
// or the closing handshake: the application's, or once closing has
// begun, the bound of the closing handshake.  c.deadlineMu is held.
func (c *Conn) ownerDeadlineLocked() int64 {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.isClosing {
		return c.closeBy
	}
	return c.readDeadline
}

// setNetReadDeadlineLocked sets the network's read deadline, unless it
// is set to that already; c.deadlineMu is held.
func (c *Conn) setNetReadDeadlineLocked(deadline int64) {
	if deadline != c.netReadDeadline {
		c.netConn.SetReadDeadline(timeOf(deadline))
		c.netReadDeadline = deadline
	}
}

// unlockRead gives the read side back, and arms the timer that starts
// the background reader should nobody take it again.
func (c *Conn) unlockRead() {
	c.settleInput()
	c.inputPending.Store(c.moreInput())
	c.releases.Add(1)
	c.readMu.Unlock()
	c.armIdle()
}

// settleInput gives the input buffer back when it is no longer needed,
// as its owner lets go of the read side: when it is empty, or when the
// connection is finished, unless it holds messages from before the
// peer's close frame.  While closing, it keeps the input for whoever
// completes the closing handshake: the peer's close frame may be in it.
func (c *Conn) settleInput() {
	switch {
	case c.in.end && c.in.r < c.in.w:
	case c.done.isSet():
		c.in.release()
	case c.isClosingNow():
	default:
		c.in.releaseIfEmpty()
	}
}

// receiveEnded reports whether receiving has come to its end: the
// connection is closing and holds no message from before the peer's
// close frame.  The caller owns the read side.
func (c *Conn) receiveEnded() bool {
	return c.isClosingNow() && !(c.in.end && c.in.r < c.in.w)
}

// moreInput reports whether the input holds more than the rest of the
// current frame: requests that the application will read next.
func (c *Conn) moreInput() bool {
	n := int64(c.in.w - c.in.r)
	if c.msg.active {
		n -= min(n, c.msg.remaining)
	}
	return n > 0
}

// armIdle arms the idle timer, unless it is armed already.
func (c *Conn) armIdle() {
	if !c.idleArmed.Swap(true) {
		c.idleTimer.Reset(receiverGrace << c.graceShift.Load())
	}
}

// stopIdle stops the idle timer, as the application is about to receive:
// an application that receives in a loop thus never has it fire.
func (c *Conn) stopIdle() {
	if c.idleArmed.Load() && c.idleTimer.Stop() {
		c.idleArmed.Store(false)
	}
}

// slowIdle makes the idle timer wait longer: it found the application
// receiving.
func (c *Conn) slowIdle() {
	if shift := c.graceShift.Load(); shift < maxGraceShift {
		c.graceShift.Store(shift + 1)
	}
}

// onIdle runs when the idle timer fires.  If the read side has been
// free for receiverGrace, it becomes the background reader.
func (c *Conn) onIdle() {
	armedAt := c.releases.Load()
	c.idleArmed.Store(false)
	if c.isClosingNow() {
		return
	}
	if c.readWaiters.Load() > 0 || !c.readMu.TryLock() {
		// Whoever reads re-arms the timer when done.
		c.slowIdle()
		return
	}
	if c.releases.Load() != armedAt {
		// Released again since the timer was armed; that release
		// found it armed, so arm it anew.
		c.readMu.Unlock()
		c.slowIdle()
		c.armIdle()
		return
	}
	c.graceShift.Store(0)
	c.readInBackground()
	c.readMu.Unlock()
}

// readInBackground reads and scans the input while nobody else wants
// the read side; c.readMu is held.  It returns when a goroutine waits
// for the read side, when the connection closes, or when the read-ahead
// bound is reached: the data then waits in the network until the
// application receives.
func (c *Conn) readInBackground() {
	defer func() {
		c.deadlineMu.Lock()
		c.bgReading = false
		c.deadlineMu.Unlock()
		c.inputPending.Store(false) // nobody is about to read it
		c.settleInput()
	}()
	for {
		if err := c.scanInput(); err == errCloseDeferred {
			c.readStalled.Store(true)
			return
		} else if err != nil {
			c.failRead(err)
			return
		}
		c.deadlineMu.Lock()
		if c.readWaiters.Load() > 0 || c.isClosingNow() {
			c.deadlineMu.Unlock()
			return
		}
		c.bgReading = true
		c.setNetReadDeadlineLocked(0)
		c.deadlineMu.Unlock()

		err := c.fill(c.cfg.readAhead)
		switch {
		case err == nil:
		case err == errInputFull:
			c.readStalled.Store(true)
			return
		case c.isClosingNow():
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			// A waiter cut the read short, or the application's
			// deadline, meant for its own reads, had passed.
		default:
			c.failRead(readError(err))
			return
		}
	}
}

// scanInput handles the control frames among the buffered input that the
// background reader has not looked at yet, and cuts them out, so that an
// application that receives later finds only data frames.  It stops at
// the first incomplete frame.
func (c *Conn) scanInput() error {
	in := &c.in
	if in.bufp == nil {
		return nil
	}
	pos := max(in.scanned, in.r)
	if c.msg.remaining > 0 {
		// The rest of the current frame's payload comes first.
		if int64(in.w-in.r) < c.msg.remaining {
			in.scanned = in.w
			return nil
		}
		pos = max(pos, in.r+int(c.msg.remaining))
	}
	for pos < in.w && !c.isClosingNow() {
		buf := (*in.bufp)[:in.w]
		h, n, err := parseHeader(buf[pos:])
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if err := c.checkHeader(h); err != nil {
			return err
		}
		if int64(in.w-pos-n) < h.Length {
			break
		}
		end := pos + n + int(h.Length)
		if !h.Op.IsControl() {
			pos = end
			continue
		}
		if h.Op == wire.Close && pos > in.r && !c.closeDue.Load() {
			// Messages that arrived before the peer's close frame
			// are yet to be received: the close is left for the
			// receiver that reaches it in order, so that what the
			// application sends in answer to them still goes out.
			in.scanned = pos
			c.deferClose()
			return errCloseDeferred
		}
		err = c.handleControl(h, buf[pos+n:end])
		in.cut(pos, end)
		if err == errPeerClosed {
			// Nothing after the close frame counts (RFC 6455,
			// section 1.4); the messages before it can still be
			// received.
			in.w, in.end = pos, true
		}
		if err != nil {
			return err
		}
	}
	in.scanned = pos
	return nil
}

// closeDeferral bounds how long the peer's close frame waits for the
// application to receive the messages that came before it (see
// scanInput): RFC 6455 lets an endpoint finish what it is sending before
// it answers a close, but the peer waits for the answer.  After that the
// background reader takes the close all the same.
const closeDeferral = time.Second

// errCloseDeferred stops the background reader at a close frame that
// waits for the messages before it to be received.
var errCloseDeferred = errors.New("websocket: close frame behind unreceived messages")

// deferClose arms the timer that makes the background reader take the
// peer's close frame after closeDeferral, if no receiver reached it.
func (c *Conn) deferClose() {
	c.closeDueOnce.Do(func() {
		time.AfterFunc(closeDeferral, func() {
			c.closeDue.Store(true)
			if c.isClosingNow() || c.readWaiters.Load() > 0 || !c.readMu.TryLock() {
				return // a receiver has the read side, and the close
			}
			c.readInBackground()
			c.readMu.Unlock()
		})
	})
}
