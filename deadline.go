package websocket

import (
	"math"
	"time"
)

// SetReadDeadline sets the time by which a receive call must have a
// message; the zero time means no deadline.  It applies to the receive
// calls in progress and to later ones.
//
// A receive whose deadline passes before a message has begun returns an
// error satisfying errors.Is(err, os.ErrDeadlineExceeded), and the
// connection stays usable: the next receive gets the next message.  If
// the deadline passes in the middle of a message, which can then not be
// completed, the connection fails with StatusPolicyViolation.
//
// The deadline bounds the application's receiving only: the connection's
// own reading while nobody receives (pings, the peer's close frame) does
// not stop at it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if !c.usable() {
		return ErrConnClosed
	}
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.readDeadline = nanos(t)
	if !c.bgReading && !c.isClosingNow() {
		// An application goroutine may be waiting in a read now.
		c.setNetReadDeadlineLocked(c.readDeadline)
	}
	c.receiveTok.wakeWaiters() // or for the message before its own
	return nil
}

// currentReadDeadline returns the application's read deadline.
func (c *Conn) currentReadDeadline() time.Time {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	return timeOf(c.readDeadline)
}

// SetWriteDeadline sets the time by which a send must be done; the zero
// time means no deadline.  It applies to the sends in progress and to
// later ones.
//
// A send whose deadline passes before any of its message went out, while
// it waits for another message to be sent for example, returns an error
// satisfying errors.Is(err, os.ErrDeadlineExceeded), and the connection
// stays usable.  If the deadline passes in the middle of a message or of
// a frame, the peer cannot be given the rest, and the connection ends.
//
// Independently of the deadline, a send that makes no progress for the
// write timeout (Handler.WriteTimeout) ends the connection.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.usable() {
		return ErrConnClosed
	}
	c.writeDeadline.Store(nanos(t))
	c.senderToken.wakeWaiters() // a send may wait for the message before its own
	// A send may be waiting in a write now; the next write sets the
	// deadline anew from both bounds.
	c.writeDeadlineDirty.Store(true)
	if !t.IsZero() {
		if wt := c.cfg.writeTimeout; wt > 0 && time.Until(t) > wt {
			t = time.Now().Add(wt) // the write timeout still bounds it
		}
		c.netConn.SetWriteDeadline(t)
	}
	return nil
}

// userWriteDeadline returns the application's write deadline.
func (c *Conn) userWriteDeadline() time.Time { return timeOf(c.writeDeadline.Load()) }

// Deadlines are kept as Unix nanoseconds, 0 meaning none: a time.Time
// takes three times the room, in every connection.

// pastDeadline is a deadline that has passed: setting it cuts a blocked
// network read short.
const pastDeadline = int64(1)

// nanos returns t as a deadline in Unix nanoseconds.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Year() < 1970:
		return pastDeadline
	case t.Year() > 2200:
		return math.MaxInt64 // UnixNano could not hold it
	}
	return t.UnixNano()
}

// timeOf turns a deadline in Unix nanoseconds back into a time.
func timeOf(deadline int64) time.Time {
	if deadline == 0 {
		return time.Time{}
	}
	return time.Unix(0, deadline)
}

// writeDeadlineIsZero reports whether the application has no write
// deadline.
func (c *Conn) writeDeadlineIsZero() bool { return c.writeDeadline.Load() == 0 }
