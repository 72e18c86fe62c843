// Package window keeps the LZ77 window of a permessage-deflate stream
// with context takeover (RFC 7692, section 7.2.3.1): the last 32 KiB of
// what was inflated, which the next message may refer back to.  The
// decompressors of compress/flate and klauspost/compress/flate take it
// as the dictionary of Reset.
package window

// Size is the DEFLATE window, 2^15 bytes.
const Size = 32 << 10

// Window holds the last Size bytes written to it.
type Window struct {
	buf []byte
}

// Write appends p, dropping what falls out of the window.
func (w *Window) Write(p []byte) (int, error) {
	n := len(p)
	if w.buf == nil {
		w.buf = make([]byte, 0, 2*Size)
	}
	if len(p) >= Size {
		w.buf = append(w.buf[:0], p[len(p)-Size:]...)
		return n, nil
	}
	if len(w.buf)+len(p) > cap(w.buf) {
		w.buf = w.buf[:copy(w.buf, w.buf[len(w.buf)-(Size-len(p)):])]
	}
	w.buf = append(w.buf, p...)
	return n, nil
}

// Bytes returns the window, at most Size bytes, valid until the next
// Write.
func (w *Window) Bytes() []byte {
	if len(w.buf) > Size {
		return w.buf[len(w.buf)-Size:]
	}
	return w.buf
}
