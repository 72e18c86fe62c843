package wire

import "encoding/binary"

// Mask applies the XOR masking of RFC 6455, section 5.3, to b in place.
// pos is the offset of b[0] within the frame payload, so that a payload
// can be masked in pieces; the offset after b, modulo 4, is returned.
// Masking and unmasking are the same operation.
func Mask(key [4]byte, pos int, b []byte) int {
	// Bring the key into the phase of b[0], so that the word loop
	// below can use it unchanged.
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	i := 0
	if len(b) >= 8 {
		k32 := uint64(binary.LittleEndian.Uint32(k[:]))
		k64 := k32 | k32<<32
		for ; i+32 <= len(b); i += 32 {
			s := b[i : i+32 : i+32]
			binary.LittleEndian.PutUint64(s[0:], binary.LittleEndian.Uint64(s[0:])^k64)
			binary.LittleEndian.PutUint64(s[8:], binary.LittleEndian.Uint64(s[8:])^k64)
			binary.LittleEndian.PutUint64(s[16:], binary.LittleEndian.Uint64(s[16:])^k64)
			binary.LittleEndian.PutUint64(s[24:], binary.LittleEndian.Uint64(s[24:])^k64)
		}
		for ; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= k[i&3]
	}
	return (pos + len(b)) & 3
}
