package websocket

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
)

// inboundMessage is the state of the message being read.  It belongs to
// the holder of Conn.readMu.
type inboundMessage struct {
	typ       MessageType
	remaining int64 // payload bytes not yet read from the current frame
	final     bool  // the current frame is the last of the message
	masked    bool
	key       [4]byte
	keyPos    int   // position of the next payload byte within the key
	size      int64 // payload bytes announced so far, for the read limit
	utf8      utf8Validator
	// generation counts the messages handed out, so that a reader
	// for a finished message, or one cut off by closing, knows it is
	// stale.
	generation uint64
}

// messageReader is the io.Reader that ReceiveMessage returns.
type messageReader struct {
	c          *Conn
	generation uint64
	typ        MessageType
	// finished is set once the message has been read to its end.  It
	// is checked without c.readMu, which readLoop may hold for long
	// while it waits for the next message.
	finished atomic.Bool
}

// Read reads payload bytes of the message.  It returns io.EOF at the end
// of the message, and ErrConnClosed if the connection ended before that.
func (r *messageReader) Read(p []byte) (int, error) {
	c := r.c
	if r.finished.Load() {
		return 0, io.EOF
	}
	if c.isClosingNow() {
		// Once closing, the rest of the stream belongs to the
		// closing handshake.
		return 0, c.closedError()
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if r.generation != c.in.generation {
		return 0, c.closedError()
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.readPayload(p)
	switch err {
	case nil:
	case io.EOF:
		r.finished.Store(true)
		c.in.generation++
		<-c.receiverToken
		select {
		case c.messageEnded <- struct{}{}:
		default: // readLoop has yet to see an earlier message end
		}
	default:
		c.fail(err)
		err = c.closedError()
	}
	return n, err
}

// startMessage reads up to the first frame of the next message.  The
// read limit is left to the receiver, which may have changed it by the
// time it takes the message.
func (c *Conn) startMessage() (*messageReader, error) {
	h, err := c.nextDataFrame()
	if err != nil {
		return nil, err
	}
	if h.op == opContinuation {
		c.in.remaining = h.length
		return nil, protocolError("continuation frame without a message to continue")
	}
	c.in.typ = MessageType(h.op)
	c.in.size = 0
	c.in.utf8.reset()
	if err := c.acceptFrame(h); err != nil {
		return nil, err
	}
	return &messageReader{c: c, generation: c.in.generation, typ: c.in.typ}, nil
}

// readPayload reads the next bytes of the current message into p,
// crossing into continuation frames as needed.  It returns io.EOF
// together with the last bytes of the message.
func (c *Conn) readPayload(p []byte) (int, error) {
	for c.in.remaining == 0 {
		if c.in.final {
			return 0, c.endOfMessage()
		}
		h, err := c.nextDataFrame()
		if err != nil {
			return 0, err
		}
		if h.op != opContinuation {
			c.in.remaining = h.length
			return 0, protocolError(fmt.Sprintf("%v frame inside a fragmented message", h.op))
		}
		if err := c.acceptFrame(h); err != nil {
			return 0, err
		}
		if err := c.checkReadLimit(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.in.remaining {
		p = p[:c.in.remaining]
	}
	n, err := c.br.Read(p)
	if err != nil {
		return 0, readError(err)
	}
	c.in.remaining -= int64(n)
	if c.in.masked {
		c.in.keyPos = maskBytes(c.in.key, c.in.keyPos, p[:n])
	}
	if c.in.typ == Text && !c.in.utf8.write(p[:n]) {
		return 0, errInvalidUTF8
	}
	if c.in.remaining == 0 && c.in.final {
		if err := c.endOfMessage(); err != io.EOF {
			return 0, err
		}
		return n, io.EOF
	}
	return n, nil
}

var errInvalidUTF8 = &closeError{code: StatusInvalidData, reason: "text message is not valid UTF-8"}

// endOfMessage checks the message that was just read to its end; it
// returns io.EOF if all is well.
func (c *Conn) endOfMessage() error {
	if c.in.typ == Text && !c.in.utf8.complete() {
		return errInvalidUTF8
	}
	return io.EOF
}

// acceptFrame makes h the current frame of the message being read.  It
// fails only if the message's size overflows; the caller checks it
// against the read limit.
func (c *Conn) acceptFrame(h frameHeader) error {
	c.in.remaining = h.length
	c.in.final = h.fin
	c.in.masked = h.masked
	c.in.key = h.key
	c.in.keyPos = 0
	if h.length > math.MaxInt64-c.in.size {
		// Only a hostile peer announces this much; the sum would
		// overflow.
		return c.tooLarge()
	}
	c.in.size += h.length
	return nil
}

// checkReadLimit fails a message whose announced size is above the
// current read limit.
func (c *Conn) checkReadLimit() error {
	if limit := c.readLimit.Load(); limit > 0 && c.in.size > limit {
		return c.tooLarge()
	}
	return nil
}

func (c *Conn) tooLarge() error {
	return &closeError{code: StatusTooLarge, reason: fmt.Sprintf("message exceeds the limit of %d bytes", c.readLimit.Load())}
}

// nextDataFrame reads frame headers until one of a data frame comes,
// handling the control frames on the way.
func (c *Conn) nextDataFrame() (frameHeader, error) {
	for {
		h, err := readFrameHeader(c.br)
		if err != nil {
			return h, readError(err)
		}
		if err := c.checkHeader(h); err != nil {
			// Remember the payload, so that the closing handshake
			// can skip it and find the peer's close frame.
			c.in.remaining = h.length
			return h, err
		}
		if !h.op.isControl() {
			return h, nil
		}
		if err := c.handleControl(h); err != nil {
			return h, err
		}
	}
}

// checkHeader enforces the rules of RFC 6455, section 5, that apply to
// a single frame header.
func (c *Conn) checkHeader(h frameHeader) error {
	switch {
	case h.rsv != 0:
		return protocolError("reserved bits set without a negotiated extension")
	case h.op > opBinary && h.op < opClose || h.op > opPong:
		return protocolError(fmt.Sprintf("unknown %v", h.op))
	case !c.client && !h.masked:
		return protocolError("unmasked frame from a client")
	case c.client && h.masked:
		return protocolError("masked frame from a server")
	case h.op.isControl() && !h.fin:
		return protocolError("fragmented control frame")
	case h.op.isControl() && h.length > maxControlPayload:
		return protocolError("control frame payload longer than 125 bytes")
	}
	return nil
}

// handleControl reads the payload of a control frame and acts on it.
func (c *Conn) handleControl(h frameHeader) error {
	payload := c.ctrlBuf[:h.length]
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return readError(err)
	}
	if h.masked {
		maskBytes(h.key, 0, payload)
	}
	switch h.op {
	case opPing:
		c.sendPong(payload)
	case opClose:
		return c.handleClose(payload)
	}
	// Unsolicited pongs are allowed and ignored (section 5.5.3).
	return nil
}

// skipFrame discards the payload of the current frame, or else reads
// the next frame header.  It is used while closing, when data no longer
// matters but the peer's close frame does.
func (c *Conn) skipFrame() error {
	if c.in.remaining > 0 {
		n, err := c.br.Discard(int(min(c.in.remaining, 1<<30)))
		c.in.remaining -= int64(n)
		if err != nil {
			return readError(err)
		}
		return nil
	}
	h, err := c.nextDataFrame()
	if err != nil {
		return err
	}
	c.in.remaining = h.length
	return nil
}

// readError wraps an error of the network connection.
func readError(err error) error {
	var ce *closeError
	if errors.As(err, &ce) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %w", ErrConnClosed, err)
}
