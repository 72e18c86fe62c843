package websocket

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestFrameHeaderEncoding(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	cases := []struct {
		fin    bool
		op     opcode
		masked bool
		length int
		want   []byte
	}{
		{true, opText, false, 5, []byte{0x81, 0x05}},
		{false, opBinary, false, 0, []byte{0x02, 0x00}},
		{true, opPing, true, 125, []byte{0x89, 0xFD, 1, 2, 3, 4}},
		{true, opBinary, false, 126, []byte{0x82, 0x7E, 0x00, 0x7E}},
		{true, opBinary, false, 65535, []byte{0x82, 0x7E, 0xFF, 0xFF}},
		{true, opBinary, true, 65536, []byte{0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}},
		{false, opContinuation, false, 1 << 40, []byte{0x00, 0x7F, 0, 0, 1, 0, 0, 0, 0, 0}},
	}
	for _, tc := range cases {
		got := appendFrameHeader(nil, tc.fin, tc.op, tc.masked, key, tc.length)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("header(%v, %v, %v, %d) = % x, want % x", tc.fin, tc.op, tc.masked, tc.length, got, tc.want)
			continue
		}
		h, err := readFrameHeader(bufio.NewReader(bytes.NewReader(got)))
		if err != nil || h.fin != tc.fin || h.op != tc.op || h.masked != tc.masked || h.length != int64(tc.length) || h.rsv != 0 {
			t.Errorf("decoding % x: %+v, %v", got, h, err)
		}
		if tc.masked && h.key != key {
			t.Errorf("decoding % x: key %v", got, h.key)
		}
	}
}

func TestFrameHeaderErrors(t *testing.T) {
	// A truncated header is an I/O error, not a protocol error.
	for _, b := range [][]byte{{}, {0x81}, {0x81, 0x7E, 0x00}, {0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 9}} {
		if _, err := readFrameHeader(bufio.NewReader(bytes.NewReader(b))); err == nil {
			t.Errorf("truncated header % x decoded", b)
		}
	}
	h, err := readFrameHeader(bufio.NewReader(bytes.NewReader([]byte{0xF1, 0x00})))
	if err != nil || h.rsv != 0x70 {
		t.Errorf("RSV bits: %+v, %v", h, err)
	}
	_, err = readFrameHeader(bufio.NewReader(bytes.NewReader([]byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0})))
	var ce *closeError
	if !errors.As(err, &ce) || ce.code != StatusProtocolError {
		t.Errorf("length with top bit: %v, want a protocol error", err)
	}
}

func TestMaskBytes(t *testing.T) {
	key := [4]byte{0xA1, 0xB2, 0xC3, 0xD4}
	rng := rand.New(rand.NewPCG(3, 4))
	for size := range 70 {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		want := make([]byte, size)
		for i := range data {
			want[i] = data[i] ^ key[i%4]
		}
		// Mask in two pieces split at every point, to exercise the
		// key phase carried between calls.
		for split := 0; split <= size; split++ {
			got := bytes.Clone(data)
			pos := maskBytes(key, 0, got[:split])
			maskBytes(key, pos, got[split:])
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d split %d: % x, want % x", size, split, got, want)
			}
		}
	}
}

func FuzzFrameHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x82, 0x7E, 0x01, 0x00})
	f.Add([]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readFrameHeader(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if h.length < 0 {
			t.Fatalf("negative length %d", h.length)
		}
		// Whatever decodes re-encodes to the same bytes, unless the
		// sender used a longer length form than needed.
		enc := appendFrameHeader(nil, h.fin, h.op, h.masked, h.key, int(h.length))
		enc[0] |= h.rsv
		if !bytes.HasPrefix(data, enc) && len(enc) >= 2 && data[1]&0x7F <= 125 {
			t.Fatalf("% x re-encoded as % x", data, enc)
		}
	})
}
