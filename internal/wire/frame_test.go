package wire

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestHeaderEncoding(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	cases := []struct {
		fin    bool
		op     Opcode
		masked bool
		length int64
		want   []byte
	}{
		{true, Text, false, 5, []byte{0x81, 0x05}},
		{false, Binary, false, 0, []byte{0x02, 0x00}},
		{true, Ping, true, 125, []byte{0x89, 0xFD, 1, 2, 3, 4}},
		{true, Binary, false, 126, []byte{0x82, 0x7E, 0x00, 0x7E}},
		{true, Binary, false, 65535, []byte{0x82, 0x7E, 0xFF, 0xFF}},
		{true, Binary, true, 65536, []byte{0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}},
		{false, Continuation, false, 1 << 40, []byte{0x00, 0x7F, 0, 0, 1, 0, 0, 0, 0, 0}},
	}
	for _, tc := range cases {
		got := AppendHeader(nil, tc.fin, tc.op, tc.masked, key, tc.length)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("header(%v, %v, %v, %d) = % x, want % x", tc.fin, tc.op, tc.masked, tc.length, got, tc.want)
			continue
		}
		if size := HeaderSize(tc.length, tc.masked); size != len(got) {
			t.Errorf("HeaderSize(%d, %v) = %d, want %d", tc.length, tc.masked, size, len(got))
		}
		h, n, err := ParseHeader(append(got, "payload"...))
		if err != nil || n != len(got) || h.Fin != tc.fin || h.Op != tc.op || h.Masked != tc.masked || h.Length != tc.length || h.RSV != 0 {
			t.Errorf("decoding % x: %+v, %d, %v", got, h, n, err)
		}
		if tc.masked && h.Key != key {
			t.Errorf("decoding % x: key %v", got, h.Key)
		}
		// Every proper prefix is an incomplete header.
		for i := range len(got) {
			if _, n, err := ParseHeader(got[:i]); n != 0 || err != nil {
				t.Errorf("prefix % x of % x decoded: %d, %v", got[:i], got, n, err)
			}
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	h, n, err := ParseHeader([]byte{0xF1, 0x00})
	if err != nil || n != 2 || h.RSV != 0x70 {
		t.Errorf("RSV bits: %+v, %d, %v", h, n, err)
	}
	if _, _, err := ParseHeader([]byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}); err != ErrLengthTopBit {
		t.Errorf("length with top bit: %v, want ErrLengthTopBit", err)
	}
}

func TestOpcodes(t *testing.T) {
	for op := range Opcode(16) {
		known := op == Continuation || op == Text || op == Binary || op == Close || op == Ping || op == Pong
		if op.IsKnown() != known {
			t.Errorf("%v.IsKnown() = %v", op, op.IsKnown())
		}
		if op.IsControl() != (op >= 8) {
			t.Errorf("%v.IsControl() = %v", op, op.IsControl())
		}
	}
}

func TestMask(t *testing.T) {
	key := [4]byte{0xA1, 0xB2, 0xC3, 0xD4}
	rng := rand.New(rand.NewPCG(3, 4))
	for size := range 100 {
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
			pos := Mask(key, 0, got[:split])
			Mask(key, pos, got[split:])
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d split %d: % x, want % x", size, split, got, want)
			}
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x82, 0x7E, 0x01, 0x00})
	f.Add([]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, n, err := ParseHeader(data)
		if err != nil || n == 0 {
			return
		}
		if h.Length < 0 || n > len(data) || n > MaxHeaderSize {
			t.Fatalf("% x: length %d, size %d", data, h.Length, n)
		}
		// Whatever decodes re-encodes to the same bytes, unless the
		// sender used a longer length form than needed.
		enc := AppendHeader(nil, h.Fin, h.Op, h.Masked, h.Key, h.Length)
		enc[0] |= h.RSV
		if !bytes.Equal(data[:n], enc) && data[1]&0x7F <= 125 {
			t.Fatalf("% x re-encoded as % x", data[:n], enc)
		}
	})
}

func BenchmarkMask(b *testing.B) {
	key := [4]byte{1, 2, 3, 4}
	for _, size := range []int{16, 1024, 64 << 10} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			data := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				Mask(key, 1, data)
			}
		})
	}
}
