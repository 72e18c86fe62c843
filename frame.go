package websocket

import (
	"bufio"
	"encoding/binary"
	"fmt"
)

// opcode is the four-bit frame type of RFC 6455, section 5.2.
type opcode byte

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

// isControl reports whether op is one of the control opcodes, which have
// the high bit of the four set.
func (op opcode) isControl() bool { return op&0x8 != 0 }

func (op opcode) String() string {
	switch op {
	case opContinuation:
		return "continuation"
	case opText:
		return "text"
	case opBinary:
		return "binary"
	case opClose:
		return "close"
	case opPing:
		return "ping"
	case opPong:
		return "pong"
	}
	return fmt.Sprintf("opcode %#x", byte(op))
}

const (
	finBit  = 0x80
	rsvBits = 0x70
	maskBit = 0x80

	// maxControlPayload is the largest payload a control frame may
	// carry (RFC 6455, section 5.5).
	maxControlPayload = 125

	// maxHeaderSize is the size of the longest frame header: two
	// fixed bytes, a 64-bit length and a masking key.
	maxHeaderSize = 2 + 8 + 4
)

// frameHeader is the decoded fixed part of a frame, everything before
// the payload.
type frameHeader struct {
	fin    bool
	rsv    byte // the three reserved bits, still in place (0x70)
	op     opcode
	masked bool
	key    [4]byte
	length int64
}

// readFrameHeader decodes the next frame header from br.  It checks
// only what is needed to decode it; whether the header is acceptable is
// for the caller to decide.
func readFrameHeader(br *bufio.Reader) (frameHeader, error) {
	var h frameHeader
	b, err := br.Peek(2)
	if err != nil {
		return h, err
	}
	h.fin = b[0]&finBit != 0
	h.rsv = b[0] & rsvBits
	h.op = opcode(b[0] & 0x0F)
	h.masked = b[1]&maskBit != 0
	size := 2
	switch b[1] & 0x7F {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if h.masked {
		size += 4
	}
	if b, err = br.Peek(size); err != nil {
		return h, err
	}
	pos := 2
	switch n := b[1] & 0x7F; n {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		pos += 2
	case 127:
		length := binary.BigEndian.Uint64(b[2:])
		if length > 1<<63-1 {
			// The most significant bit must be zero (section 5.2).
			br.Discard(size)
			return h, protocolError("frame length has its most significant bit set")
		}
		h.length = int64(length)
		pos += 8
	default:
		h.length = int64(n)
	}
	if h.masked {
		copy(h.key[:], b[pos:pos+4])
	}
	_, err = br.Discard(size)
	return h, err
}

// appendFrameHeader appends the encoding of a frame header to buf.
func appendFrameHeader(buf []byte, fin bool, op opcode, masked bool, key [4]byte, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= finBit
	}
	var b1 byte
	if masked {
		b1 = maskBit
	}
	switch {
	case length <= 125:
		buf = append(buf, b0, b1|byte(length))
	case length <= 0xFFFF:
		buf = append(buf, b0, b1|126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(length))
	default:
		buf = append(buf, b0, b1|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(length))
	}
	if masked {
		buf = append(buf, key[:]...)
	}
	return buf
}
