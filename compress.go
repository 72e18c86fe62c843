package websocket

import (
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/gowebsock/websocket/internal/wire"
)

// CompressionOptions tunes permessage-deflate (RFC 7692), which
// Handler.EnableCompression and DialOptions.EnableCompression switch on.
// The zero value gives the defaults.
type CompressionOptions struct {
	// Level is the compress/flate level of the messages sent: 1
	// (flate.BestSpeed) to 9 (flate.BestCompression), -1
	// (flate.DefaultCompression) or -2 (flate.HuffmanOnly).  Zero, and
	// any other value, means 1.
	Level int

	// Threshold is the size in bytes below which a message goes out
	// uncompressed, as compressing it would gain little.  Zero means
	// 512; a negative value compresses every message.
	Threshold int

	// ServerContextTakeover and ClientContextTakeover let the server,
	// or the client, keep its compression context from one message to
	// the next, which compresses similar messages much better but
	// costs each connection a compressor or decompressor of its own
	// for as long as it lives: a compressor of compress/flate takes
	// 1.2 MB at level 1 and 0.8 MB at the others, a decompressor with
	// its window about 100 KB.  Without context takeover they come
	// from pools for the length of a message.  By default both
	// are off, and a server answers server_no_context_takeover and
	// client_no_context_takeover.  Each is taken up only where the
	// peer's offer allows it too.
	ServerContextTakeover bool
	ClientContextTakeover bool

	// ServerMaxWindowBits and ClientMaxWindowBits bound the LZ77 window
	// of the server's and the client's compressor to 2^bits bytes, 8 to
	// 15, which bounds the memory of the peer's decompressor.  Zero
	// means 15.  A client offers them; a server asks the client for
	// ClientMaxWindowBits if its offer allows it, and keeps to
	// ServerMaxWindowBits where the offer has server_max_window_bits.
	// compress/flate always looks back 2^15 bytes, so an end that is
	// to keep to a smaller window compresses by Huffman coding alone,
	// without back-references: correct for any window, but it
	// compresses text about half as well.
	ServerMaxWindowBits int
	ClientMaxWindowBits int
}

const (
	defaultCompressionLevel     = flate.BestSpeed
	defaultCompressionThreshold = 512
)

// deflateTail is what a sync flush ends with, and what RFC 7692,
// section 7.2.1, has the sender remove from a message and the receiver
// add back.
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is what the receiver adds: deflateTail, and then an empty
// final block (as flate.Writer.Close writes it).  The decompressor thus
// ends a whole message with io.EOF, and one whose data was cut off inside
// a block with io.ErrUnexpectedEOF, which tells them apart.  A message
// that has a final block of its own (RFC 7692, section 7.2.3.3) ends
// there, and the rest is skipped.
var inflateTail = [6]byte{0x00, 0x00, 0xff, 0xff, 0x03, 0x00}

// compressors are pooled per level, decompressors in one pool: without
// context takeover, a connection holds one only while it sends, or
// receives, a compressed message.
var (
	compressorPools [12]sync.Pool // index level+2
	decompressors   sync.Pool
)

// deflate is a connection's permessage-deflate state, made at the
// handshake if the extension was agreed on.
type deflate struct {
	level, threshold int
	negotiated

	// The sending side, used under the write lock.  With write
	// takeover, fw is the connection's own; else it comes from the pool
	// for one message.
	fw  *flate.Writer
	out deflateBuffer

	// The receiving side, used by the owner of the read side.  With
	// read takeover, fr stays and dict holds the last 32 KiB of what it
	// inflated; else fr comes from the pool for one message.
	fr   io.ReadCloser
	dict []byte
	src  inflateSource
}

// newDeflate makes the state for an agreed permessage-deflate.
func newDeflate(opts *CompressionOptions, n negotiated) *deflate {
	d := &deflate{level: opts.Level, threshold: opts.Threshold, negotiated: n}
	switch {
	case n.writeSmallWindow:
		d.level = flate.HuffmanOnly // no back-references, see negotiated
	case d.level == 0 || d.level < flate.HuffmanOnly || d.level > flate.BestCompression:
		d.level = defaultCompressionLevel
	}
	switch {
	case d.threshold == 0:
		d.threshold = defaultCompressionThreshold
	case d.threshold < 0:
		d.threshold = 0
	}
	return d
}

// compresses reports whether a message of size bytes is to be sent
// compressed.
func (d *deflate) compresses(size int) bool { return d != nil && size >= d.threshold }

// --- sending ---

// deflateBuffer collects a compressor's output in a pooled buffer, after
// room for a frame header.
type deflateBuffer struct {
	bufp *[]byte
	n    int // bytes of output, after the header room
}

func (b *deflateBuffer) Write(p []byte) (int, error) {
	need := wire.MaxHeaderSize + b.n + len(p)
	if b.bufp == nil || len(*b.bufp) < need {
		bigger := getBuffer(max(need, 2*wire.MaxHeaderSize+2*b.n, 4096))
		if b.bufp != nil {
			copy(*bigger, (*b.bufp)[:wire.MaxHeaderSize+b.n])
			putBuffer(b.bufp)
		}
		b.bufp = bigger
	}
	copy((*b.bufp)[wire.MaxHeaderSize+b.n:], p)
	b.n += len(p)
	return len(p), nil
}

// held returns the output with the header room before it, in the form
// that writeHeldLocked takes.
func (b *deflateBuffer) held() []byte {
	if b.bufp == nil {
		b.Write(nil)
	}
	return (*b.bufp)[:wire.MaxHeaderSize+b.n]
}

// reset drops the output, keeping the buffer.
func (b *deflateBuffer) reset() { b.n = 0 }

// release gives the buffer back.
func (b *deflateBuffer) release() {
	if b.bufp != nil {
		putBuffer(b.bufp)
		b.bufp, b.n = nil, 0
	}
}

// compressor returns the compressor for the message that begins, which
// writes into d.out.  c.writeMu is held.
func (d *deflate) compressor() *flate.Writer {
	if d.fw != nil {
		return d.fw
	}
	pool := &compressorPools[d.level+2]
	if fw, ok := pool.Get().(*flate.Writer); ok {
		fw.Reset(&d.out)
		d.fw = fw
	} else {
		d.fw, _ = flate.NewWriter(&d.out, d.level) // the level was checked
	}
	return d.fw
}

// endMessage ends a compressed message that was sent: without write
// takeover the compressor goes back to the pool.
func (d *deflate) endMessage() {
	if !d.writeTakeover && d.fw != nil {
		compressorPools[d.level+2].Put(d.fw)
		d.fw = nil
	}
	d.out.release()
}

// compress compresses a whole message into d.out, without its tail, and
// returns it with the header room before it.  c.writeMu is held.
func (d *deflate) compress(payload []byte) ([]byte, error) {
	fw := d.compressor()
	d.out.reset()
	if _, err := fw.Write(payload); err != nil {
		return nil, err
	}
	return d.finish()
}

// finish flushes the compressor and removes the tail of the flush from
// the output, which it returns with the header room before it.
func (d *deflate) finish() ([]byte, error) {
	if err := d.fw.Flush(); err != nil {
		return nil, err
	}
	held := d.out.held()
	if len(held) < wire.MaxHeaderSize+len(deflateTail) || [4]byte(held[len(held)-4:]) != deflateTail {
		return nil, errors.New("websocket: compress/flate's flush did not end as RFC 7692 expects")
	}
	d.out.n -= len(deflateTail)
	return held[:len(held)-len(deflateTail)], nil
}

// --- receiving ---

// inflateSource feeds a decompressor the payload of the compressed
// message being read, unmasked, and then inflateTail.  It reads frame by frame from the connection, whose read side
// its reader holds.  As an io.ByteReader, it lets the decompressor read
// no further than it needs.
//
// The chunk it hands out lies in the input buffer, consumed while a read
// inflates; between reads the read side is let go, and an empty input
// buffer goes back to the pool, so giveBack returns what is left of the
// chunk to the input, unmasked already.
type inflateSource struct {
	c        *Conn
	chunk    []byte // unmasked payload (or tail) being handed out
	unmasked int    // bytes at the front of the input unmasked already
	tail     int    // bytes of inflateTail handed out
	done     bool   // all of it handed out
	err      error  // the error that ended the source early
}

// more makes the next piece of the message available in chunk.
func (s *inflateSource) more() error {
	c := s.c
	for c.msg.remaining == 0 {
		if c.msg.final {
			return io.EOF
		}
		if err := c.nextFragment(); err != nil {
			return err
		}
	}
	b := c.in.buffered()
	if len(b) == 0 {
		if err := c.fill(0); err != nil {
			return err
		}
		b = c.in.buffered()
	}
	b = b[:min(int64(len(b)), c.msg.remaining)]
	if c.msg.masked && len(b) > s.unmasked {
		c.msg.keyPos = wire.Mask(c.msg.key, c.msg.keyPos, b[s.unmasked:])
	}
	s.unmasked = 0
	c.in.consume(len(b))
	c.msg.remaining -= int64(len(b))
	s.chunk = b
	return nil
}

func (s *inflateSource) ReadByte() (byte, error) {
	for len(s.chunk) == 0 {
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	b := s.chunk[0]
	s.chunk = s.chunk[1:]
	return b, nil
}

func (s *inflateSource) Read(p []byte) (int, error) {
	for len(s.chunk) == 0 {
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.chunk)
	s.chunk = s.chunk[n:]
	return n, nil
}

// giveBack returns the rest of a chunk of payload to the input, where
// the next read finds it.  The bytes are still there, just before the
// unconsumed ones, as nothing read the network since they were consumed.
func (s *inflateSource) giveBack() {
	if s.tail > 0 || len(s.chunk) == 0 {
		return // nothing, or the tail, which is not in the input
	}
	n := len(s.chunk)
	s.c.in.r -= n
	s.c.msg.remaining += int64(n)
	s.unmasked = n
	s.chunk = nil
}

// next makes more of the message, or of its tail, available.
func (s *inflateSource) next() error {
	if s.err != nil {
		return s.err
	}
	if s.tail < len(inflateTail) {
		switch err := s.more(); err {
		case nil:
			return nil
		case io.EOF:
			s.chunk = inflateTail[s.tail:]
			s.tail = len(inflateTail)
			return nil
		default:
			s.err = err
			return err
		}
	}
	s.done = true
	return io.EOF
}

// errInvalidCompressed fails a connection whose peer sent a compressed
// message that does not inflate.
var errInvalidCompressed = &closeError{code: StatusInvalidData, reason: "compressed message is not valid DEFLATE data"}

// readInflated reads the next bytes of a compressed message, inflated,
// into p.  It returns io.EOF together with the last of them.  The read
// limit applies to the inflated size: a small frame that inflates to a
// huge one is stopped at the limit, without being inflated further.
func (c *Conn) readInflated(p []byte) (int, error) {
	if !c.msg.active {
		return 0, io.EOF
	}
	d := c.dfl
	if d.fr == nil || d.src.c == nil {
		d.startInflating(c)
	}
	n, err := c.inflate(p)
	if d.src.c != nil {
		d.src.giveBack()
	}
	return n, err
}

// inflate is readInflated for a message whose decompressor is ready.
func (c *Conn) inflate(p []byte) (int, error) {
	d := c.dfl
	if limit := c.readLimit.Load(); limit > 0 && int64(len(p)) > limit-c.msg.inflated+1 {
		// Inflate no further than one byte past the limit.
		p = p[:max(limit-c.msg.inflated+1, 1)]
	}
	n, err := d.fr.Read(p)
	if n > 0 {
		c.msg.inflated += int64(n)
		if limit := c.readLimit.Load(); limit > 0 && c.msg.inflated > limit {
			return 0, c.tooLarge()
		}
		if c.msg.typ == Text && !c.msg.utf8.Write(p[:n]) {
			return 0, errInvalidUTF8
		}
		if d.readTakeover {
			d.keep(p[:n])
		}
	}
	switch {
	case err == nil:
		return n, nil
	case d.src.err != nil:
		return 0, d.src.err // the network, not the data
	case err == io.EOF:
		// The data ended at a final block: the one of the tail, or
		// the message's own, after which the rest is skipped.
		for !d.src.done {
			if _, err := d.src.ReadByte(); err != nil && !d.src.done {
				return 0, err
			}
		}
		d.stopInflating()
		if err := c.endOfMessage(); err != io.EOF {
			return 0, err
		}
		return n, io.EOF
	}
	return 0, errInvalidCompressed
}

// skipInflated drops the rest of a compressed message.  Without read
// takeover, its payload is skipped as it is; with it, the message must
// be inflated all the same, to keep the context.
func (c *Conn) skipInflated() (bool, error) {
	d := c.dfl
	var scratch [4096]byte
	if !d.readTakeover {
		// Whether anything is left only inflating tells: the
		// compressed data may go on past the message's last byte (an
		// empty final block, the flush's empty stored block), as it
		// does after a message that exactly fills the caller's buffer.
		// One inflated byte tells; the rest is skipped as it is.
		for {
			n, err := c.readInflated(scratch[:1])
			if n > 0 && err == nil {
				break
			}
			if err != nil {
				return n > 0, err
			}
		}
		d.stopInflating()
		c.msg.compressed = false // the raw payload, unchecked
		c.msg.typ = Binary
		_, err := c.skipPayload()
		return true, err
	}
	skipped := false
	for {
		n, err := c.readInflated(scratch[:])
		skipped = skipped || n > 0
		if err != nil {
			return skipped, err
		}
	}
}

// startInflating takes a decompressor for the message that begins.
func (d *deflate) startInflating(c *Conn) {
	d.src = inflateSource{c: c}
	var dict []byte
	if d.readTakeover {
		dict = d.dict
	}
	if d.fr == nil {
		if fr, ok := decompressors.Get().(io.ReadCloser); ok {
			d.fr = fr
		} else {
			d.fr = flate.NewReader(&d.src)
		}
	}
	d.fr.(flate.Resetter).Reset(&d.src, dict)
}

// stopInflating ends a compressed message that was read: without read
// takeover the decompressor goes back to the pool.
func (d *deflate) stopInflating() {
	d.src = inflateSource{}
	if !d.readTakeover {
		decompressors.Put(d.fr)
		d.fr = nil
	}
}

// keep remembers the last 32 KiB of what was inflated, the context of the
// next message.
func (d *deflate) keep(p []byte) {
	const window = 32 << 10
	if d.dict == nil {
		d.dict = make([]byte, 0, 2*window)
	}
	if len(p) >= window {
		d.dict = append(d.dict[:0], p[len(p)-window:]...)
		return
	}
	if len(d.dict)+len(p) > cap(d.dict) {
		n := copy(d.dict, d.dict[len(d.dict)-(window-len(p)):])
		d.dict = d.dict[:n]
	}
	d.dict = append(d.dict, p...)
}
