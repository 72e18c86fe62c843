package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"hash/crc32"
	"testing"
)

func TestChatCorpus(t *testing.T) {
	a, b := chatCorpus(corpusSize), chatCorpus(corpusSize)
	total := 0
	for i, m := range a {
		if !bytes.Equal(m, b[i]) {
			t.Fatalf("message %d differs between two corpora", i)
		}
		if len(m) < 200 || len(m) > 2048 {
			t.Errorf("message %d has %d bytes: %s", i, len(m), m)
		}
		var msg chatMessage
		if err := json.Unmarshal(m, &msg); err != nil || msg.Text == "" {
			t.Errorf("message %d: %v: %s", i, err, m)
		}
		total += len(m)
	}
	if mean := total / len(a); mean < 500 || mean > 1200 {
		t.Errorf("mean size %d", mean)
	}
}

// TestDeflateStream inflates the compressed corpus twice over, as a
// connection's echoes would come, which checks that a stream with
// context takeover can be sent over and over.
func TestDeflateStream(t *testing.T) {
	payloads := chatCorpus(300)
	for _, takeover := range []bool{false, true} {
		bodies, err := deflateAll(payloads, 1, takeover)
		if err != nil {
			t.Fatal(err)
		}
		in := &inflater{takeover: takeover}
		for round := range 2 {
			for i, z := range bodies {
				out, err := in.inflate(bytes.Clone(z))
				if err != nil || !bytes.Equal(out, payloads[i]) {
					t.Fatalf("takeover %v, round %d, message %d: %v, %d bytes for %d", takeover, round, i, err, len(out), len(payloads[i]))
				}
			}
		}
		// Without the context, a message of the stream does not inflate
		// (or not to itself), unless it refers to nothing before it.
		if takeover {
			fresh := &inflater{}
			if out, err := fresh.inflate(bytes.Clone(bodies[5])); err == nil && bytes.Equal(out, payloads[5]) {
				t.Errorf("message 5 of the stream inflated without its context")
			}
		}
	}
}

// TestReadEchoCompressed reads compressed echoes, cut into frames with a
// ping between the first two, and rejects an uncompressed one.
func TestReadEchoCompressed(t *testing.T) {
	*lib = "ours"
	payloads := chatCorpus(20)
	bodies, err := deflateAll(payloads, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	for _, z := range bodies {
		f := serverFrames(z, 100)
		f[0] = f[0]&^0x0F | 0x40 | 1 // text, compressed
		stream = append(stream, f...)
	}
	c := &client{br: bufio.NewReader(bytes.NewReader(stream)), inf: &inflater{takeover: true}}
	for i, p := range payloads {
		m := &message{op: 1, size: len(p), crc: crc32.Checksum(p, crcTable)}
		if err := c.readEcho(m); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
	f := serverFrames(payloads[0], 1000)
	f[0] = f[0]&^0x0F | 1
	c = &client{br: bufio.NewReader(bytes.NewReader(f)), inf: &inflater{}}
	m := &message{op: 1, size: len(payloads[0]), crc: crc32.Checksum(payloads[0], crcTable)}
	if err := c.readEcho(m); err == nil {
		t.Errorf("an uncompressed echo passed")
	}
}

func TestCheckDeflateAnswer(t *testing.T) {
	for _, tc := range []struct {
		mode, answer string
		takeover, ok bool
	}{
		{"takeover", "permessage-deflate", true, true},
		{"takeover", "permessage-deflate; server_max_window_bits=12", true, true},
		{"takeover", "permessage-deflate; client_max_window_bits=15", true, true},
		{"takeover", "permessage-deflate; client_max_window_bits=12", false, false},
		{"takeover", "permessage-deflate; server_no_context_takeover", false, false},
		{"takeover", "permessage-deflate; client_no_context_takeover", false, false},
		{"notakeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, true},
		{"notakeover", "permessage-deflate;server_no_context_takeover", false, true},
		{"notakeover", "permessage-deflate; client_no_context_takeover", false, false},
		{"notakeover", "", false, false},
		{"notakeover", "x-webkit-deflate-frame", false, false},
	} {
		takeover, err := checkDeflateAnswer(tc.mode, tc.answer)
		if takeover != tc.takeover || (err == nil) != tc.ok {
			t.Errorf("%s, %q: %v, %v; want %v, ok %v", tc.mode, tc.answer, takeover, err, tc.takeover, tc.ok)
		}
	}
}
