package websocket

import (
	"io"
	"slices"
	"unicode/utf8"
)

// ReceiveMessage waits for the next message from the peer and returns
// its type and a reader for its payload.  The payload is streamed from
// the network as it is read, never held in memory as a whole.
//
// The reader must be read to its end (io.EOF) before another message
// can be received: the connection delivers messages strictly in order.
// Once the connection has ended, ReceiveMessage returns ErrConnClosed.
func (c *Conn) ReceiveMessage() (MessageType, io.Reader, error) {
	if c.done == nil {
		return 0, nil, ErrConnClosed // used before the handshake completed
	}
	// Wait for the message before ours to be read to its end.
	select {
	case c.receiverToken <- struct{}{}:
	case <-c.closing:
		return 0, nil, c.closedError()
	}
	mr, err := c.takeMessage()
	if err != nil {
		// Only now that the connection is marked as closing may the
		// next receiver come: it must not read on from a stream that
		// just broke.
		<-c.receiverToken
		return 0, nil, err
	}
	return mr.typ, mr, nil
}

// takeMessage returns the message that readLoop left pending, or reads
// the start of the next one.  The caller holds the receiver token.
func (c *Conn) takeMessage() (*messageReader, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.isClosingNow() {
		return nil, c.closedError()
	}
	mr, err := c.pending, error(nil)
	c.pending = nil
	if mr == nil {
		mr, err = c.startMessage()
	}
	if err == nil {
		// The limit applies as it is now, when the application
		// takes the message, however early its start was read.
		err = c.checkReadLimit()
	}
	if err != nil {
		c.fail(err)
		return nil, c.closedError()
	}
	return mr, nil
}

// ReceiveBinary reads the next message into buf and returns its length.
// If the message is not binary, it is discarded and ErrMessageType is
// returned.  If it is longer than buf, buf holds its beginning, the rest
// is discarded, and ErrTooLarge is returned with n == len(buf).
func (c *Conn) ReceiveBinary(buf []byte) (n int, err error) {
	tp, r, err := c.ReceiveMessage()
	if err != nil {
		return 0, err
	}
	if tp != Binary {
		if _, err := drainMessage(r); err != nil {
			return 0, err
		}
		return 0, ErrMessageType
	}
	n, err = io.ReadFull(r, buf)
	switch err {
	case io.EOF, io.ErrUnexpectedEOF:
		return n, nil
	case nil:
		return n, tooLargeIfMore(r)
	}
	return n, err
}

// ReceiveText reads the next message, which must be a text message, and
// returns it.  If the message is not text, it is discarded and
// ErrMessageType is returned.  If its UTF-8 encoding is longer than
// maxLength bytes, the text is cut to at most maxLength bytes, at a
// character boundary, the rest is discarded, and ErrTooLarge is
// returned together with the shortened text.
func (c *Conn) ReceiveText(maxLength int) (string, error) {
	tp, r, err := c.ReceiveMessage()
	if err != nil {
		return "", err
	}
	if tp != Text {
		if _, err := drainMessage(r); err != nil {
			return "", err
		}
		return "", ErrMessageType
	}
	maxLength = max(maxLength, 0)
	buf := make([]byte, 0, min(maxLength, 512))
	for {
		if len(buf) == cap(buf) {
			if len(buf) == maxLength {
				return string(trimPartialRune(buf)), tooLargeIfMore(r)
			}
			// Grow, but never past maxLength, so that the
			// message is read no further than needed.
			buf = slices.Grow(buf, min(len(buf), maxLength-len(buf)))
			buf = buf[:len(buf):min(cap(buf), maxLength)]
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			return string(buf), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// tooLargeIfMore discards the rest of a message that filled the
// caller's buffer, and returns ErrTooLarge if there was any rest.
func tooLargeIfMore(r io.Reader) error {
	more, err := drainMessage(r)
	switch {
	case err != nil:
		return err
	case more:
		return ErrTooLarge
	}
	return nil
}

// drainMessage reads the rest of a message, throws it away, and
// reports whether there was anything left.
func drainMessage(r io.Reader) (bool, error) {
	n, err := io.Copy(io.Discard, r)
	return n > 0, err
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
