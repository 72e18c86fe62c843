package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// serverFrames encodes payload as unmasked server frames of at most
// chunk bytes, with a ping between the first two.
func serverFrames(payload []byte, chunk int) []byte {
	var b []byte
	for first := true; ; first = false {
		n := min(chunk, len(payload))
		op := byte(0)
		if first {
			op = 2
		}
		if n == len(payload) {
			op |= 0x80
		}
		b = append(b, op)
		switch {
		case n < 126:
			b = append(b, byte(n))
		case n < 1<<16:
			b = append(b, 126)
			b = binary.BigEndian.AppendUint16(b, uint16(n))
		default:
			b = append(b, 127)
			b = binary.BigEndian.AppendUint64(b, uint64(n))
		}
		b = append(b, payload[:n]...)
		payload = payload[n:]
		if first {
			b = append(b, 0x89, 0) // a ping, which the parser skips
		}
		if len(payload) == 0 {
			return b
		}
	}
}

func TestReadEcho(t *testing.T) {
	*lib = "ours"
	for _, size := range []int{0, 16, 125, 126, 70000} {
		m := newMessage(size)
		payload := m.frame[len(m.frame)-size:]
		plain := bytes.Clone(payload)
		for i := range plain {
			plain[i] ^= []byte{0x12, 0x34, 0x56, 0x78}[i%4]
		}
		for _, chunk := range []int{max(size, 1), 1000, 4096} {
			c := &client{br: bufio.NewReader(bytes.NewReader(serverFrames(plain, chunk)))}
			if err := c.readEcho(m); err != nil {
				t.Errorf("size %d in frames of %d: %v", size, chunk, err)
			}
		}
		if size > 0 {
			bad := bytes.Clone(plain)
			bad[size/2] ^= 1
			c := &client{br: bufio.NewReader(bytes.NewReader(serverFrames(bad, size)))}
			if err := c.readEcho(m); err == nil || !strings.Contains(err.Error(), "CRC") {
				t.Errorf("size %d: a corrupted echo passed: %v", size, err)
			}
			c = &client{br: bufio.NewReader(bytes.NewReader(serverFrames(plain[:size-1], size)))}
			if err := c.readEcho(m); err == nil {
				t.Errorf("size %d: a short echo passed", size)
			}
		}
	}
}

func TestReadEchoTCP(t *testing.T) {
	*lib = "tcp"
	defer func() { *lib = "" }()
	m := newMessage(300)
	c := &client{br: bufio.NewReader(bytes.NewReader(m.frame))}
	if err := c.readEcho(m); err != nil {
		t.Errorf("the TCP echo of a frame: %v", err)
	}
}
