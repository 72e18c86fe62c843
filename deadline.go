package websocket

import "time"

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
	c.readDeadline = t
	if !c.bgReading && !c.isClosingNow() {
		// An application goroutine may be waiting in a read now.
		c.setNetReadDeadlineLocked(t)
	}
	return nil
}

// currentReadDeadline returns the application's read deadline.
func (c *Conn) currentReadDeadline() time.Time {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	return c.readDeadline
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
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.writeDeadline.Store(ns)
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
func (c *Conn) userWriteDeadline() time.Time {
	if ns := c.writeDeadline.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// writeDeadlineIsZero reports whether the application has no write
// deadline.
func (c *Conn) writeDeadlineIsZero() bool { return c.writeDeadline.Load() == 0 }
