package websocket

import (
	"io"
	"unicode/utf8"
)

// ReceiveMessage waits for the next message from the peer and returns
// its type and a reader for its payload.  The payload is streamed from
// the network as it is read, never held in memory as a whole.
//
// The reader must be read to its end (io.EOF) before another message
// can be received: the connection delivers messages strictly in order.
// The connection reuses the reader for its next message, so it must not
// be used after that.  Once the connection has ended, ReceiveMessage
// returns ErrConnClosed.
//
// If the read deadline (see SetReadDeadline) passes before a message
// begins, ReceiveMessage returns an error satisfying
// errors.Is(err, os.ErrDeadlineExceeded) and the connection stays
// usable.  If it passes in the middle of a message, the connection
// fails.
func (c *Conn) ReceiveMessage() (MessageType, io.Reader, error) {
	if !c.usable() {
		return 0, nil, ErrConnClosed
	}
	if err := c.acquireReceiver(); err != nil {
		return 0, nil, err
	}
	c.lockRead()
	defer c.unlockRead()
	if err := c.awaitInput(); err != nil {
		return 0, nil, err
	}
	tp, err := c.beginReceive()
	if err != nil {
		return 0, nil, err
	}
	r := &c.reader
	r.c = c
	r.generation = c.msg.generation
	r.finished.Store(false)
	return tp, r, nil
}

// beginReceive starts the next message for a receive call, which holds
// the receiver token and the read side.  On failure it gives the token
// back and returns the error for the application.
func (c *Conn) beginReceive() (MessageType, error) {
	if c.receiveEnded() {
		c.releaseReceiver()
		return 0, ErrConnClosed
	}
	tp, err := c.startMessage()
	if err == nil {
		return tp, nil
	}
	return 0, c.receiveFailed(err)
}

// awaitInput waits until there is input to receive from.  A connection
// whose application waits for a message spends its idle time in here,
// with the stack it has here: the call is kept as shallow as it can be,
// so that the garbage collector can shrink the waiting goroutine's stack
// to the smallest size.  On failure it gives the receiver token back and
// returns the error for the application.
func (c *Conn) awaitInput() error {
	if c.receiveEnded() {
		return c.receiveFailed(ErrConnClosed)
	}
	if c.in.r < c.in.w {
		return nil
	}
	if err := c.fill(0); err != nil {
		return c.receiveFailed(err)
	}
	return nil
}

// receiveFailed handles an error met before a message began, for a
// receive call that holds the receiver token and the read side: it gives
// the token back and returns the error for the application.
func (c *Conn) receiveFailed(err error) error {
	if isTimeout(err) && !c.isClosingNow() {
		// No byte of a message has been taken: the next receive
		// can start where this one stopped.
		c.releaseReceiver()
		return err
	}
	// The token goes back only once closing is marked: no other
	// receiver may read on from a stream that just broke.
	c.failRead(err)
	c.releaseReceiver()
	return ErrConnClosed
}

// acquireReceiver waits until the message before has been read to its
// end, the connection closes, or the read deadline passes.
func (c *Conn) acquireReceiver() error {
	if err := c.receiveTok.acquire(&c.closing, c.currentReadDeadline, "read"); err != nil {
		return err
	}
	c.stopIdle()
	return nil
}

// releaseReceiver lets the next receiver in.
func (c *Conn) releaseReceiver() { c.receiveTok.release() }

// ReceiveBinary reads the next message into buf and returns its length.
// If the message is not binary, it is discarded and ErrMessageType is
// returned.  If it is longer than buf, buf holds its beginning, the rest
// is discarded, and ErrTooLarge is returned with n == len(buf).
func (c *Conn) ReceiveBinary(buf []byte) (n int, err error) {
	if !c.usable() {
		return 0, ErrConnClosed
	}
	if err := c.acquireReceiver(); err != nil {
		return 0, err
	}
	c.lockRead()
	defer c.unlockRead()
	if err := c.awaitInput(); err != nil {
		return 0, err
	}
	tp, err := c.beginReceive()
	if err != nil {
		return 0, err
	}
	if tp != Binary {
		return 0, c.finishReceive(ErrMessageType)
	}
	for n < len(buf) {
		k, err := c.readPayload(buf[n:])
		n += k
		if err == io.EOF {
			c.msg.generation++
			c.releaseReceiver()
			return n, nil
		}
		if err != nil {
			return n, c.finishReceive(err)
		}
	}
	return n, c.finishReceive(nil)
}

// ReceiveText reads the next message, which must be a text message, and
// returns it.  If the message is not text, it is discarded and
// ErrMessageType is returned.  If its UTF-8 encoding is longer than
// maxLength bytes, the text is cut to at most maxLength bytes, at a
// character boundary, the rest is discarded, and ErrTooLarge is
// returned together with the shortened text.
func (c *Conn) ReceiveText(maxLength int) (string, error) {
	if !c.usable() {
		return "", ErrConnClosed
	}
	if err := c.acquireReceiver(); err != nil {
		return "", err
	}
	c.lockRead()
	defer c.unlockRead()
	if err := c.awaitInput(); err != nil {
		return "", err
	}
	tp, err := c.beginReceive()
	if err != nil {
		return "", err
	}
	if tp != Text {
		return "", c.finishReceive(ErrMessageType)
	}
	maxLength = max(maxLength, 0)
	// The text is collected in a pooled buffer and copied into the
	// string once: a received text costs one allocation, its own.
	bufp := getBuffer(min(maxLength, int(min(c.msg.size, 1<<20)), 1<<20))
	defer func() { putBuffer(bufp) }()
	buf := (*bufp)[:0]
	for {
		if len(buf) == maxLength {
			err := c.finishReceive(nil)
			if err == ErrTooLarge {
				return string(trimPartialRune(buf)), err
			}
			if err != nil {
				return "", err
			}
			return string(buf), nil
		}
		if len(buf) == cap(buf) {
			// Grow, but never past maxLength, so that the message
			// is read no further than needed.
			bigger := getBuffer(min(2*cap(buf), maxLength))
			buf = append((*bigger)[:0], buf...)
			putBuffer(bufp)
			bufp = bigger
		}
		k, err := c.readPayload(buf[len(buf):min(cap(buf), maxLength)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			c.msg.generation++
			c.releaseReceiver()
			return string(buf), nil
		}
		if err != nil {
			return "", c.finishReceive(err)
		}
	}
}

// finishReceive ends a ReceiveText or ReceiveBinary that stops before
// the end of the message: it discards the rest of it and returns
// result, ErrTooLarge if result is nil and there was a rest, or
// ErrConnClosed if the connection failed.
func (c *Conn) finishReceive(result error) error {
	if result == nil || result == ErrMessageType || result == ErrTooLarge {
		more, err := c.skipPayload()
		if err == io.EOF {
			c.msg.generation++
			c.releaseReceiver()
			if result == nil && more {
				return ErrTooLarge
			}
			return result
		}
		result = err
	}
	c.failRead(midMessage(result))
	c.releaseReceiver()
	return ErrConnClosed
}

// trimPartialRune drops an incomplete UTF-8 character from the end of
// b, left there by cutting a valid text short.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
