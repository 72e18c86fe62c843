package wire

import "unicode/utf8"

// UTF8Validator checks that a byte stream arriving in pieces is valid
// UTF-8.  A character may be split across pieces (and so across frames),
// and an invalid sequence is reported as soon as its first wrong byte
// arrives, which lets a connection fail fast as RFC 6455, section 8.1,
// asks.
type UTF8Validator struct {
	// need is the number of continuation bytes still expected for the
	// character that the last piece left unfinished.
	need int
	// lo and hi bound the next continuation byte.  They are narrower
	// than 0x80..0xBF only for the second byte of a sequence, where
	// they rule out overlong forms, surrogates and values above
	// U+10FFFF (RFC 3629, section 4).
	lo, hi byte
}

// Reset prepares v for a new message.
func (v *UTF8Validator) Reset() { *v = UTF8Validator{} }

// Complete reports whether the stream so far ends on a character
// boundary.
func (v *UTF8Validator) Complete() bool { return v.need == 0 }

// Write checks the next piece of the stream and reports whether it is
// still valid.
func (v *UTF8Validator) Write(p []byte) bool {
	// Finish a character left open by the previous piece.
	for v.need > 0 && len(p) > 0 {
		if !v.feed(p[0]) {
			return false
		}
		p = p[1:]
	}
	if len(p) == 0 {
		return true
	}
	// The bulk goes through the standard library's fast check; only an
	// unfinished character at the very end needs the byte-wise path.
	tail := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				tail = i
			}
			break
		}
	}
	if !utf8.Valid(p[:tail]) {
		return false
	}
	for _, b := range p[tail:] {
		if !v.feed(b) {
			return false
		}
	}
	return true
}

// feed advances the validator by one byte.
func (v *UTF8Validator) feed(b byte) bool {
	if v.need > 0 {
		if b < v.lo || b > v.hi {
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xBF
		return true
	}
	v.lo, v.hi = 0x80, 0xBF
	switch {
	case b < 0x80:
		return true
	case b >= 0xC2 && b <= 0xDF:
		v.need = 1
	case b == 0xE0:
		v.need, v.lo = 2, 0xA0
	case b == 0xED:
		v.need, v.hi = 2, 0x9F
	case b >= 0xE1 && b <= 0xEF:
		v.need = 2
	case b == 0xF0:
		v.need, v.lo = 3, 0x90
	case b == 0xF4:
		v.need, v.hi = 3, 0x8F
	case b >= 0xF1 && b <= 0xF3:
		v.need = 3
	default:
		return false
	}
	return true
}
