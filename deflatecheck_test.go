package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// maxBackReference walks DEFLATE data (RFC 1951) and returns the longest
// distance that any of its back-references reaches, so that tests can
// check that a sender kept to the window it agreed on; compress/flate
// has no way to tell.  The data may end at a block boundary without a
// final block, as a message of permessage-deflate does.
func maxBackReference(data []byte) (int, error) {
	br := bitReader{data: data}
	longest := 0
	for {
		if br.exhausted() {
			return longest, nil
		}
		final := br.bits(1)
		kind := br.bits(2)
		switch kind {
		case 0: // stored
			br.alignToByte()
			n := br.bits(16)
			if nn := br.bits(16); n != ^nn&0xffff {
				return 0, errors.New("stored block with a bad length")
			}
			br.skipBytes(int(n))
		case 1, 2:
			lit, dist := fixedCodes()
			if kind == 2 {
				var err error
				if lit, dist, err = br.dynamicCodes(); err != nil {
					return 0, err
				}
			}
			for {
				sym, err := br.decode(lit)
				if err != nil {
					return 0, err
				}
				if sym < 256 {
					continue
				}
				if sym == 256 {
					break
				}
				if sym > 285 {
					return 0, fmt.Errorf("length symbol %d", sym)
				}
				br.bits(lengthExtra[sym-257])
				dsym, err := br.decode(dist)
				if err != nil {
					return 0, err
				}
				if dsym > 29 {
					return 0, fmt.Errorf("distance symbol %d", dsym)
				}
				d := distBase[dsym] + int(br.bits(distExtra[dsym]))
				longest = max(longest, d)
			}
		default:
			return 0, errors.New("reserved block type")
		}
		if br.err != nil {
			return 0, br.err
		}
		if final == 1 {
			return longest, nil
		}
	}
}

var (
	lengthExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distExtra   = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	distBase    = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
)

// bitReader reads DEFLATE's bits, least significant first.
type bitReader struct {
	data []byte
	pos  int // in bits
	err  error
}

func (br *bitReader) exhausted() bool { return br.pos >= 8*len(br.data) }

func (br *bitReader) bits(n uint) uint32 {
	var v uint32
	for i := uint(0); i < n; i++ {
		if br.exhausted() {
			br.err = errors.New("data ends inside a block")
			return 0
		}
		v |= uint32(br.data[br.pos/8]>>(br.pos%8)&1) << i
		br.pos++
	}
	return v
}

func (br *bitReader) alignToByte() { br.pos = (br.pos + 7) &^ 7 }

func (br *bitReader) skipBytes(n int) { br.pos += 8 * n }

// huffman is a canonical Huffman code: counts of codes per length and
// the symbols in code order (as zlib's puff.c keeps them).
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) huffman {
	var h huffman
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	var offs [16]int
	h.symbol = make([]int, len(lengths))
	for l := 1; l < 16; l++ {
		offs[l] = offs[l-1] + h.count[l-1]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = sym
			offs[l]++
		}
	}
	return h
}

func (br *bitReader) decode(h huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		code |= int(br.bits(1))
		if br.err != nil {
			return 0, br.err
		}
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+(code-first)], nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

func fixedCodes() (huffman, huffman) {
	lengths := make([]int, 288)
	for i := range lengths {
		switch {
		case i < 144:
			lengths[i] = 8
		case i < 256:
			lengths[i] = 9
		case i < 280:
			lengths[i] = 7
		default:
			lengths[i] = 8
		}
	}
	dist := make([]int, 30)
	for i := range dist {
		dist[i] = 5
	}
	return newHuffman(lengths), newHuffman(dist)
}

func (br *bitReader) dynamicCodes() (huffman, huffman, error) {
	nlen := int(br.bits(5)) + 257
	ndist := int(br.bits(5)) + 1
	ncode := int(br.bits(4)) + 4
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	codeLengths := make([]int, 19)
	for i := 0; i < ncode; i++ {
		codeLengths[order[i]] = int(br.bits(3))
	}
	lencode := newHuffman(codeLengths)
	lengths := make([]int, nlen+ndist)
	for i := 0; i < nlen+ndist; {
		sym, err := br.decode(lencode)
		if err != nil {
			return huffman{}, huffman{}, err
		}
		if sym < 16 {
			lengths[i] = sym
			i++
			continue
		}
		repeat, value := 0, 0
		switch sym {
		case 16:
			if i == 0 {
				return huffman{}, huffman{}, errors.New("repeat with no previous length")
			}
			value, repeat = lengths[i-1], 3+int(br.bits(2))
		case 17:
			repeat = 3 + int(br.bits(3))
		default:
			repeat = 11 + int(br.bits(7))
		}
		if i+repeat > nlen+ndist {
			return huffman{}, huffman{}, errors.New("too many lengths")
		}
		for ; repeat > 0; repeat-- {
			lengths[i] = value
			i++
		}
	}
	return newHuffman(lengths[:nlen]), newHuffman(lengths[nlen:]), br.err
}

// TestMaxBackReference checks the checker on data of known distances.
func TestMaxBackReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	period := make([]byte, 1000)
	for i := range period {
		period[i] = byte(rng.Uint32())
	}
	repeated := bytes.Repeat(period, 40)
	cases := []struct {
		level int
		data  []byte
		want  int
	}{
		{flate.BestCompression, repeated, 1000},
		{flate.BestSpeed, repeated, -1}, // a multiple of 1000
		{flate.BestSpeed, bytes.Repeat([]byte("a"), 5000), 1},
		{flate.HuffmanOnly, repeated, 0},
		{flate.NoCompression, repeated, 0},
		{flate.BestSpeed, compressionCorpus(100<<10, true, 3), -1}, // some distance, checked by inflating
	}
	for _, tc := range cases {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, tc.level)
		fw.Write(tc.data)
		fw.Flush()
		got, err := maxBackReference(b.Bytes())
		if err != nil || (tc.want >= 0 && got != tc.want) || (tc.want < 0 && (got == 0 || got > 32768 || (len(tc.data) == len(repeated) && got%1000 != 0))) {
			t.Errorf("level %d, %d bytes: longest distance %d, %v; want %d", tc.level, len(tc.data), got, err, tc.want)
		}
		fw.Close() // a final block too
		if _, err := maxBackReference(b.Bytes()); err != nil {
			t.Errorf("level %d with a final block: %v", tc.level, err)
		}
	}
	if _, err := maxBackReference([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage walked")
	}
}
