// Package wire is the WebSocket frame codec of RFC 6455, section 5:
// frame headers, masking and the streaming UTF-8 check of text.  It
// does no I/O; the connection feeds it bytes and writes what it
// encodes.
package wire

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Opcode is the four-bit frame type of RFC 6455, section 5.2.
type Opcode byte

// The opcodes that RFC 6455 defines.
const (
	Continuation Opcode = 0x0
	Text         Opcode = 0x1
	Binary       Opcode = 0x2
	Close        Opcode = 0x8
	Ping         Opcode = 0x9
	Pong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode, which have the high
// bit of the four set (section 5.5).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsKnown reports whether RFC 6455 defines op; the others are reserved
// for future use (section 5.2).
func (op Opcode) IsKnown() bool { return op <= Binary || (op >= Close && op <= Pong) }

func (op Opcode) String() string {
	switch op {
	case Continuation:
		return "continuation"
	case Text:
		return "text"
	case Binary:
		return "binary"
	case Close:
		return "close"
	case Ping:
		return "ping"
	case Pong:
		return "pong"
	}
	return "opcode " + strconv.Itoa(int(op))
}

const (
	finBit = 0x80
	// RSV1 is the first reserved bit, which permessage-deflate uses
	// (RFC 7692); RSVBits are all three.
	RSV1    = 0x40
	RSVBits = 0x70
	maskBit = 0x80

	// MaxControlPayload is the largest payload a control frame may
	// carry (section 5.5).
	MaxControlPayload = 125

	// MaxHeaderSize is the size of the longest frame header: two
	// fixed bytes, a 64-bit length and a masking key.
	MaxHeaderSize = 2 + 8 + 4
)

// Header is the decoded fixed part of a frame, everything before the
// payload.
type Header struct {
	Fin    bool
	RSV    byte // the three reserved bits, in place (RSVBits)
	Op     Opcode
	Masked bool
	Key    [4]byte
	Length int64
}

// ErrLengthTopBit means that a frame's 64-bit length had its most
// significant bit set, which section 5.2 forbids.
var ErrLengthTopBit = errors.New("frame length has its most significant bit set")

// ParseHeader decodes the frame header at the start of b and returns it
// with its size in bytes.  If b holds less than a whole header, n is 0.
// It checks only what it must to decode; whether the header is
// acceptable is for the caller to decide.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	n = 2
	switch b[1] & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&maskBit != 0 {
		n += 4
	}
	if len(b) < n {
		return h, 0, nil
	}
	h.Fin = b[0]&finBit != 0
	h.RSV = b[0] & RSVBits
	h.Op = Opcode(b[0] & 0x0F)
	h.Masked = b[1]&maskBit != 0
	pos := 2
	switch length := b[1] & 0x7F; length {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		pos += 2
	case 127:
		l := binary.BigEndian.Uint64(b[2:])
		if l > 1<<63-1 {
			return h, n, ErrLengthTopBit
		}
		h.Length = int64(l)
		pos += 8
	default:
		h.Length = int64(length)
	}
	if h.Masked {
		copy(h.Key[:], b[pos:pos+4])
	}
	return h, n, nil
}

// HeaderSize returns the size of the header of a frame with a payload of
// length bytes.
func HeaderSize(length int64, masked bool) int {
	n := 2
	switch {
	case length > 0xFFFF:
		n += 8
	case length > 125:
		n += 2
	}
	if masked {
		n += 4
	}
	return n
}

// PutHeader encodes a frame header into the start of b, which must have
// room for HeaderSize(length, masked) bytes, and returns its size.
// first is the first byte: FIN, the reserved bits and the opcode.
func PutHeader(b []byte, first byte, masked bool, key [4]byte, length int64) int {
	var b1 byte
	if masked {
		b1 = maskBit
	}
	b[0] = first
	n := 2
	switch {
	case length <= 125:
		b[1] = b1 | byte(length)
	case length <= 0xFFFF:
		b[1] = b1 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(length))
		n += 2
	default:
		b[1] = b1 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(length))
		n += 8
	}
	if masked {
		copy(b[n:], key[:])
		n += 4
	}
	return n
}

// FirstByte returns the first header byte of a frame.
func FirstByte(fin bool, rsv byte, op Opcode) byte {
	b := rsv | byte(op)
	if fin {
		b |= finBit
	}
	return b
}

// AppendHeader appends the encoding of a frame header to buf.
func AppendHeader(buf []byte, fin bool, op Opcode, masked bool, key [4]byte, length int64) []byte {
	var hdr [MaxHeaderSize]byte
	n := PutHeader(hdr[:], FirstByte(fin, 0, op), masked, key, length)
	return append(buf, hdr[:n]...)
}
