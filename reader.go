package websocket

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync/atomic"

	"github.com/gowebsock/websocket/internal/wire"
)

// inbound is the state of the message being read.  It belongs to the
// owner of the read side.
type inbound struct {
	active    bool // a message has begun and not yet ended
	typ       MessageType
	remaining int64 // payload bytes of the current frame not yet read
	final     bool  // the current frame is the last of the message
	masked    bool
	key       [4]byte
	keyPos    int   // position of the next payload byte within the key
	size      int64 // payload bytes announced so far, for the read limit
	utf8      wire.UTF8Validator
	// compressed marks a message of permessage-deflate (RSV1 on its
	// first frame), whose payload is read through the decompressor;
	// inflated counts its bytes after decompression, for the limit.
	compressed bool
	inflated   int64
	// generation counts the messages that ended, so that a reader of
	// a message cut off by closing knows it is stale.
	generation uint64
}

// messageReader is the io.Reader that ReceiveMessage returns.  The
// connection has one and hands it out for every message.
type messageReader struct {
	c          *Conn
	generation uint64
	// finished is set once the message has been read to its end.  It
	// is checked without the read side, which the background reader
	// may hold while it waits for data.
	finished atomic.Bool
}

// Read reads payload bytes of the message.  It returns io.EOF at the end
// of the message, and ErrConnClosed if the connection ended before that.
func (r *messageReader) Read(p []byte) (int, error) {
	if r.finished.Load() {
		return 0, io.EOF
	}
	c := r.c
	c.lockRead()
	defer c.unlockRead()
	if r.generation != c.msg.generation || c.receiveEnded() {
		return 0, ErrConnClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.readPayload(p)
	if err == io.EOF {
		c.endMessage(r)
	} else if err != nil {
		c.failRead(midMessage(err))
		err = ErrConnClosed
	}
	return n, err
}

// endMessage marks the message of r as read to its end and lets the next
// receiver in; the caller holds the read side.
func (c *Conn) endMessage(r *messageReader) {
	r.finished.Store(true)
	c.msg.generation++
	c.releaseReceiver()
}

// errReadTimeout fails a connection whose read deadline passed in the
// middle of a message.
var errReadTimeout = &closeError{code: StatusPolicyViolation, reason: "message not completed before the read deadline"}

// midMessage turns a read deadline that passed in the middle of a
// message into a reason to fail the connection: the message cannot be
// resumed by the application.
func midMessage(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errReadTimeout
	}
	return err
}

// startMessage reads up to the first frame of the next message and
// makes it the current one; the caller holds the read side and the
// receiver token.  The read limit applies as it is now, when the
// application takes the message.
func (c *Conn) startMessage() (MessageType, error) {
	h, err := c.nextDataFrame()
	if err != nil {
		return 0, err
	}
	if h.Op == wire.Continuation {
		return 0, protocolError("continuation frame without a message to continue")
	}
	c.msg.active = true
	c.msg.typ = MessageType(h.Op)
	c.msg.size = 0
	c.msg.utf8.Reset()
	c.msg.compressed = h.RSV&wire.RSV1 != 0
	c.msg.inflated = 0
	if err := c.acceptFrame(h); err != nil {
		return 0, err
	}
	return c.msg.typ, nil
}

// nextFragment reads the header of the next frame of a fragmented
// message, which must be a continuation frame, and makes it current.
func (c *Conn) nextFragment() error {
	h, err := c.nextDataFrame()
	if err != nil {
		return err
	}
	if h.Op != wire.Continuation {
		return protocolError(fmt.Sprintf("%v frame inside a fragmented message", h.Op))
	}
	return c.acceptFrame(h)
}

// readPayload reads the next bytes of the current message into p,
// crossing into continuation frames as needed.  It returns io.EOF
// together with the last bytes of the message.
func (c *Conn) readPayload(p []byte) (int, error) {
	if c.msg.compressed {
		return c.readInflated(p)
	}
	for c.msg.remaining == 0 {
		if c.msg.final {
			return 0, c.endOfMessage()
		}
		if err := c.nextFragment(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.msg.remaining {
		p = p[:c.msg.remaining]
	}
	var n int
	if b := c.in.buffered(); len(b) > 0 {
		n = copy(p, b)
		c.in.consume(n)
	} else if len(p) >= inputSize/2 {
		// Large reads go straight into the caller's buffer.
		var err error
		if n, err = c.readNet(p); err != nil {
			return 0, err
		}
	} else {
		if err := c.fill(0); err != nil {
			return 0, err
		}
		n = copy(p, c.in.buffered())
		c.in.consume(n)
	}
	return c.payloadRead(p[:n])
}

// payloadRead accounts for payload bytes that were just read into p:
// unmasks and checks them.
func (c *Conn) payloadRead(p []byte) (int, error) {
	c.msg.remaining -= int64(len(p))
	if c.msg.masked {
		c.msg.keyPos = wire.Mask(c.msg.key, c.msg.keyPos, p)
	}
	if c.msg.typ == Text && !c.msg.utf8.Write(p) {
		return 0, errInvalidUTF8
	}
	if c.msg.remaining == 0 && c.msg.final {
		if err := c.endOfMessage(); err != io.EOF {
			return 0, err
		}
		return len(p), io.EOF
	}
	return len(p), nil
}

// skipPayload reads and drops the rest of the current message, checking
// that text is valid UTF-8.  It reports whether there was anything left.
func (c *Conn) skipPayload() (bool, error) {
	if c.msg.compressed {
		return c.skipInflated()
	}
	skipped := false
	for {
		for c.msg.remaining == 0 {
			if c.msg.final {
				return skipped, c.endOfMessage()
			}
			if err := c.nextFragment(); err != nil {
				return skipped, err
			}
		}
		b := c.in.buffered()
		if len(b) == 0 {
			if err := c.fill(0); err != nil {
				return skipped, err
			}
			continue
		}
		b = b[:min(int64(len(b)), c.msg.remaining)]
		skipped = true
		if c.msg.typ == Text {
			// Text is unmasked in place, to be checked; the
			// bytes are consumed anyway.
			if _, err := c.payloadRead(b); err != nil && err != io.EOF {
				return skipped, err
			}
		} else {
			c.msg.remaining -= int64(len(b))
		}
		c.in.consume(len(b))
	}
}

var errInvalidUTF8 = &closeError{code: StatusInvalidData, reason: "text message is not valid UTF-8"}

// endOfMessage checks the message that was just read to its end, and
// marks it as ended; it returns io.EOF if all is well.
func (c *Conn) endOfMessage() error {
	c.msg.active = false
	if c.msg.typ == Text && !c.msg.utf8.Complete() {
		return errInvalidUTF8
	}
	return io.EOF
}

// acceptFrame makes h the current frame of the message being read, and
// checks the message's size against the read limit.
func (c *Conn) acceptFrame(h wire.Header) error {
	c.in.sizeFor(h.Length)
	c.msg.remaining = h.Length
	c.msg.final = h.Fin
	c.msg.masked = h.Masked
	c.msg.key = h.Key
	c.msg.keyPos = 0
	if h.Length > math.MaxInt64-c.msg.size {
		// Only a hostile peer announces this much; the sum would
		// overflow.
		return c.tooLarge()
	}
	c.msg.size += h.Length
	if limit := c.readLimit.Load(); limit > 0 && c.msg.size > limit && !c.msg.compressed {
		// The limit of a compressed message applies to what it
		// inflates to, see readInflated.
		return c.tooLarge()
	}
	return nil
}

func (c *Conn) tooLarge() error {
	limit := c.readLimit.Load()
	if limit <= 0 {
		return &closeError{code: StatusTooLarge, reason: "message longer than 2^63 bytes"}
	}
	return &closeError{code: StatusTooLarge, reason: fmt.Sprintf("message exceeds the limit of %d bytes", limit)}
}

// nextDataFrame reads frame headers until one of a data frame comes,
// handling the control frames on the way, and returns it.  A frame's
// header is consumed only once all of it is there, and a control
// frame's only with its payload, so that a read deadline that passes in
// here leaves the input ready for the next attempt.
func (c *Conn) nextDataFrame() (wire.Header, error) {
	for {
		b := c.in.buffered()
		h, n, err := parseHeader(b)
		if err != nil {
			return h, err
		}
		if n == 0 {
			if err := c.fill(0); err != nil {
				return h, err
			}
			continue
		}
		if err := c.checkHeader(h); err != nil {
			return h, err
		}
		if !h.Op.IsControl() {
			c.in.consume(n)
			return h, nil
		}
		if int64(len(b)-n) < h.Length {
			if err := c.fill(0); err != nil {
				return h, err
			}
			continue
		}
		payload := b[n : n+int(h.Length)]
		c.in.consume(n + len(payload))
		if err := c.handleControl(h, payload); err != nil {
			return h, err
		}
	}
}

// parseHeader decodes the frame header at the start of b; n is 0 if b
// holds less than a whole header.
func parseHeader(b []byte) (wire.Header, int, error) {
	h, n, err := wire.ParseHeader(b)
	if err != nil {
		return h, n, protocolError(err.Error())
	}
	return h, n, nil
}

// checkHeader enforces the rules of RFC 6455, section 5, that apply to
// a single frame header.
func (c *Conn) checkHeader(h wire.Header) error {
	switch {
	case h.RSV == wire.RSV1 && c.dfl != nil && (h.Op == wire.Text || h.Op == wire.Binary):
		// permessage-deflate marks the first frame of a compressed
		// message so (RFC 7692, section 6).
	case h.RSV == wire.RSV1 && c.dfl != nil:
		return protocolError(fmt.Sprintf("RSV1 set on a %v frame", h.Op))
	case h.RSV != 0:
		return protocolError("reserved bits set without a negotiated extension")
	case !h.Op.IsKnown():
		return protocolError(fmt.Sprintf("unknown %v", h.Op))
	case !c.client && !h.Masked:
		return protocolError("unmasked frame from a client")
	case c.client && h.Masked:
		return protocolError("masked frame from a server")
	case h.Op.IsControl() && !h.Fin:
		return protocolError("fragmented control frame")
	case h.Op.IsControl() && h.Length > wire.MaxControlPayload:
		return protocolError("control frame payload longer than 125 bytes")
	}
	return nil
}

// handleControl acts on a control frame whose payload, still masked, is
// in the input buffer.
func (c *Conn) handleControl(h wire.Header, payload []byte) error {
	if h.Masked {
		wire.Mask(h.Key, 0, payload)
	}
	switch h.Op {
	case wire.Ping:
		c.sendPong(payload)
	case wire.Pong:
		c.pongReceived()
	case wire.Close:
		return c.handleClose(payload)
	}
	return nil
}

// readError describes an error of the network connection as the reason
// the connection ended.
func readError(err error) error {
	var ce *closeError
	if errors.As(err, &ce) || errors.Is(err, ErrConnClosed) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("websocket: read: %w: %w", ErrConnClosed, err)
}

// isTimeout reports whether err is a read deadline that passed.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
