package websocket

import (
	"errors"
	"io"

	"github.com/gowebsock/websocket/internal/wire"
)

// inputSize is the size of the buffer that a connection takes for its
// input when data arrives.
const inputSize = 4096

// input holds what was read from the network and not yet consumed.  It
// holds a buffer only while it holds bytes: a connection waiting for
// data has none.  It belongs to the owner of the read side.
type input struct {
	bufp *[]byte // nil while empty
	r, w int     // the unconsumed bytes are (*bufp)[r:w]
	// scanned is how far the background reader has looked ahead:
	// (*bufp)[r:scanned] holds only the rest of the current frame
	// and whole data frames, all control frames among them having
	// been handled and cut out.
	scanned int
	// size is the size of the buffer to take when data arrives: more
	// than inputSize while the peer sends large frames, so that one
	// read takes a whole frame.
	size int
	// end says that the input ends at w: the background reader met
	// the peer's close frame there.  The messages before it can still
	// be received.
	end bool
	// room bounds what the read in progress may add, so that the
	// input holds no more than the limit of fill.
	room int
}

// maxInputSize bounds the input buffer that large frames make the
// connection take, and inputSize is the least.
const maxInputSize = holdSize + 2*wire.MaxHeaderSize

// errInputFull means that the input holds as much as it may.
var errInputFull = errors.New("websocket: input buffer full")

// errEOF is the end of the network connection.  It is not io.EOF,
// which marks the end of a message.
var errEOF = io.ErrUnexpectedEOF

// buffered returns the unconsumed bytes, valid until the next call that
// reads or consumes.
func (in *input) buffered() []byte {
	if in.bufp == nil {
		return nil
	}
	return (*in.bufp)[in.r:in.w]
}

// consume drops the first n unconsumed bytes.
func (in *input) consume(n int) {
	in.r += n
	in.scanned = max(in.scanned, in.r)
}

// free returns the room behind the unconsumed bytes, taking a buffer
// from the pool if there is none.  It is empty if the buffer is full.
func (in *input) free() []byte {
	if in.bufp == nil {
		in.bufp = getBuffer(max(in.size, inputSize))
		in.r, in.w, in.scanned = 0, 0, 0
	}
	free := (*in.bufp)[in.w:]
	if len(free) > in.room {
		free = free[:in.room]
	}
	return free
}

// sizeFor adapts the size of the next input buffer to a data frame of
// length bytes that just began.
func (in *input) sizeFor(length int64) {
	if length > inputSize {
		in.size = int(min(length+2*wire.MaxHeaderSize, maxInputSize))
	} else {
		in.size = 0
	}
}

// makeRoom makes sure that there is free room behind the unconsumed
// bytes, moving them to the front or into a larger buffer, the whole
// input being at most limit bytes.  It returns errInputFull if the
// input already holds limit bytes.
func (in *input) makeRoom(limit int) error {
	if in.w-in.r >= limit {
		return errInputFull
	}
	if in.bufp == nil || in.w < len(*in.bufp) {
		return nil
	}
	buf := *in.bufp
	if in.r > 0 {
		n := copy(buf, buf[in.r:in.w])
		in.scanned -= in.r
		in.r, in.w = 0, n
		return nil
	}
	bigger := getBuffer(min(2*len(buf), limit))
	in.w = copy(*bigger, buf[:in.w])
	putBuffer(in.bufp)
	in.bufp = bigger
	return nil
}

// releaseIfEmpty gives the buffer back to the pool if it holds nothing.
func (in *input) releaseIfEmpty() {
	if in.bufp != nil && in.r == in.w {
		in.release()
	}
}

// release gives the buffer back, dropping whatever it holds.
func (in *input) release() {
	if in.bufp != nil {
		putBuffer(in.bufp)
	}
	in.bufp = nil
	in.r, in.w, in.scanned = 0, 0, 0
}

// preload puts bytes that were read before the connection started into
// the input.
func (in *input) preload(early []byte) {
	in.bufp = getBuffer(max(len(early), inputSize))
	in.r, in.scanned = 0, 0
	in.w = copy(*in.bufp, early)
}

// cut removes the bytes [from, to) of the buffer, which lie between
// scanned and w, by moving what follows them forward.
func (in *input) cut(from, to int) {
	buf := *in.bufp
	n := copy(buf[from:], buf[to:in.w])
	in.w = from + n
}

// fill reads more from the network into the input, which may grow up
// to limit bytes; 0 means the size for the frames that arrive.  It
// returns errInputFull, having read nothing, if the input holds limit
// bytes already.
func (c *Conn) fill(limit int) error {
	if c.in.end {
		return errEOF // nothing more counts
	}
	if limit == 0 {
		limit = max(c.in.size, inputSize)
	}
	if err := c.in.makeRoom(limit); err != nil {
		return err
	}
	c.in.room = limit - (c.in.w - c.in.r)
	c.beforeWait()
	var n int
	var err error
	if c.rio != nil {
		// The raw read takes a buffer only once data is there.
		n, err = c.rawRead(nil)
	} else {
		n, err = c.netConn.Read(c.in.free())
		err = netReadError(n, err)
	}
	if n > 0 {
		c.in.w += n
		c.noteRead()
	}
	if n > 0 && err != nil {
		// Keep the bytes; the error comes back on the next read.
		return nil
	}
	return err
}

// readNet reads from the network straight into p, bypassing the input
// buffer, which must be empty.
func (c *Conn) readNet(p []byte) (int, error) {
	if c.in.end {
		return 0, errEOF
	}
	c.beforeWait()
	var n int
	var err error
	if c.rio != nil {
		n, err = c.rawRead(p)
	} else {
		n, err = c.netConn.Read(p)
		err = netReadError(n, err)
	}
	if n > 0 {
		c.noteRead()
		err = nil // it comes back on the next read
	}
	return n, err
}

// beforeWait is called before a read that may wait for the network: the
// input that the application was about to read is used up, so replies
// held back for it go out now.
func (c *Conn) beforeWait() {
	if c.inputPending.Load() {
		c.inputPending.Store(false)
	}
	c.flushCorked()
}

// netReadError returns the error of a read from a net.Conn as the read
// side sees it: the end of the connection is errEOF.
func netReadError(n int, err error) error {
	switch {
	case err == io.EOF:
		return errEOF
	case n == 0 && err == nil:
		return io.ErrNoProgress
	}
	return err
}
