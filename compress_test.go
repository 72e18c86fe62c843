package websocket

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseExtensions(t *testing.T) {
	cases := []struct {
		fields []string
		want   string // extensions as name(param=value,...) joined by " "
		bad    bool
	}{
		{[]string{"permessage-deflate"}, "permessage-deflate()", false},
		{[]string{"permessage-deflate; client_max_window_bits"}, "permessage-deflate(client_max_window_bits)", false},
		{[]string{"permessage-deflate;server_max_window_bits=10 ;client_no_context_takeover"}, "permessage-deflate(server_max_window_bits=10,client_no_context_takeover)", false},
		{[]string{`permessage-deflate; server_max_window_bits="10"`}, "permessage-deflate(server_max_window_bits=10)", false},
		{[]string{`foo; bar="a, b; c"`, "permessage-deflate"}, "foo(bar=a, b; c) permessage-deflate()", false},
		{[]string{"a, b", " ,c"}, "a() b() c()", false},
		{[]string{`x; y="\"q\""`}, `x(y="q")`, false},
		{[]string{"permessage-deflate; =10"}, "", true},
		{[]string{`permessage-deflate; a="open`}, "", true},
		{[]string{"permessage-deflate a"}, "", true},
		{[]string{"per message"}, "", true},
	}
	for _, tc := range cases {
		h := http.Header{"Sec-Websocket-Extensions": tc.fields}
		exts, err := parseExtensions(h)
		if tc.bad {
			if err == nil {
				t.Errorf("%q parsed", tc.fields)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.fields, err)
			continue
		}
		var got []string
		for _, e := range exts {
			var ps []string
			for _, p := range e.params {
				if p.hasValue {
					ps = append(ps, p.name+"="+p.value)
				} else {
					ps = append(ps, p.name)
				}
			}
			got = append(got, e.name+"("+strings.Join(ps, ",")+")")
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%q: %s, want %s", tc.fields, g, tc.want)
		}
	}
}

// TestAcceptDeflate covers the server's side of the negotiation: every
// parameter a client may offer, invalid and duplicate ones, and offers in
// order of preference (RFC 7692, sections 5 and 7).
func TestAcceptDeflate(t *testing.T) {
	defaults := CompressionOptions{}
	takeover := CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true}
	smallClient := CompressionOptions{ClientMaxWindowBits: 10}
	smallServer := CompressionOptions{ServerMaxWindowBits: 9}
	const none = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	cases := []struct {
		offer  string
		opts   CompressionOptions
		answer string // "" for declined
		write  bool   // the server takes over its context
		read   bool   // the client takes over its context
		small  bool   // the server keeps to a window below 2^15
	}{
		{"permessage-deflate", defaults, none, false, false, false},
		{"permessage-deflate", takeover, "permessage-deflate", true, true, false},
		{"permessage-deflate; server_no_context_takeover", takeover, "permessage-deflate; server_no_context_takeover", false, true, false},
		{"permessage-deflate; client_no_context_takeover", takeover, "permessage-deflate; client_no_context_takeover", true, false, false},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", takeover, none, false, false, false},
		{"permessage-deflate; client_max_window_bits", defaults, none, false, false, false},
		{"permessage-deflate; client_max_window_bits", smallClient, none + "; client_max_window_bits=10", false, false, false},
		{"permessage-deflate; client_max_window_bits=9", smallClient, none + "; client_max_window_bits=9", false, false, false},
		{"permessage-deflate; client_max_window_bits=12", smallClient, none + "; client_max_window_bits=10", false, false, false},
		{"permessage-deflate; client_max_window_bits=8", defaults, none, false, false, false},
		{"permessage-deflate; server_max_window_bits=15", takeover, "permessage-deflate; server_max_window_bits=15", true, true, false},
		{`permessage-deflate; server_max_window_bits="15"`, takeover, "permessage-deflate; server_max_window_bits=15", true, true, false},
		// Smaller windows are kept to by compressing without
		// back-references.
		{"permessage-deflate; server_max_window_bits=10", defaults, none + "; server_max_window_bits=10", false, false, true},
		{"permessage-deflate; server_max_window_bits=8", takeover, "permessage-deflate; server_max_window_bits=8", true, true, true},
		{"permessage-deflate; server_max_window_bits=12", smallServer, none + "; server_max_window_bits=9", false, false, true},
		{"permessage-deflate; server_max_window_bits=8", smallServer, none + "; server_max_window_bits=8", false, false, true},
		{"permessage-deflate", smallServer, none, false, false, false}, // not asked, not answered
		// The first acceptable offer is taken.
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate", takeover, "permessage-deflate; server_max_window_bits=10", true, true, true},
		{"permessage-deflate; mystery, permessage-deflate", takeover, "permessage-deflate", true, true, false},
		{"x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover", takeover, "permessage-deflate; client_no_context_takeover", true, false, false},
		// Invalid offers are declined.
		{"permessage-deflate; server_max_window_bits", defaults, "", false, false, false},
		{"permessage-deflate; server_max_window_bits=16", defaults, "", false, false, false},
		{"permessage-deflate; server_max_window_bits=7", defaults, "", false, false, false},
		{"permessage-deflate; client_max_window_bits=7", defaults, "", false, false, false},
		{"permessage-deflate; client_max_window_bits=010", defaults, "", false, false, false},
		{"permessage-deflate; client_max_window_bits=1x", defaults, "", false, false, false},
		{"permessage-deflate; server_no_context_takeover=1", defaults, "", false, false, false},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", defaults, "", false, false, false},
		{"permessage-deflate; server_max_window_bits=10; server_max_window_bits=10", defaults, "", false, false, false},
		{"permessage-deflate; mystery", defaults, "", false, false, false},
		{"x-webkit-deflate-frame", defaults, "", false, false, false},
	}
	for _, tc := range cases {
		exts, err := parseExtensions(http.Header{"Sec-Websocket-Extensions": {tc.offer}})
		if err != nil {
			t.Fatalf("%q: %v", tc.offer, err)
		}
		answer, n, ok := acceptDeflate(exts, &tc.opts)
		if !ok {
			answer = ""
		}
		if answer != tc.answer {
			t.Errorf("%q with %+v: answer %q, want %q", tc.offer, tc.opts, answer, tc.answer)
			continue
		}
		if ok && (n != negotiated{tc.write, tc.read, tc.small}) {
			t.Errorf("%q with %+v: %+v, want write %v read %v small %v", tc.offer, tc.opts, n, tc.write, tc.read, tc.small)
		}
	}
}

// TestDeflateAnswer covers the client's check of the server's answer.
func TestDeflateAnswer(t *testing.T) {
	defaults := CompressionOptions{}
	takeover := CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true}
	small := CompressionOptions{ServerMaxWindowBits: 10}
	smallClient := CompressionOptions{ClientMaxWindowBits: 11}
	const none = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	cases := []struct {
		answer             string
		opts               CompressionOptions
		ok                 bool
		write, read, small bool
	}{
		{none, defaults, true, false, false, false},
		{"permessage-deflate; server_no_context_takeover", defaults, true, false, false, false},
		{"permessage-deflate", defaults, false, false, false, false}, // lacks the server_no_context_takeover offered
		{"permessage-deflate", takeover, true, true, true, false},
		{"permessage-deflate; client_no_context_takeover", takeover, true, false, true, false},
		{"permessage-deflate; server_max_window_bits=12", takeover, true, true, true, false},
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=10", small, true, false, false, false},
		{"permessage-deflate; server_no_context_takeover", small, false, false, false, false},
		{"permessage-deflate; server_no_context_takeover; server_max_window_bits=12", small, false, false, false, false},
		// The server may ask the client for a smaller window.
		{"permessage-deflate; client_max_window_bits=10", takeover, true, true, true, true},
		{"permessage-deflate; client_max_window_bits=15", takeover, true, true, true, false},
		{"permessage-deflate; client_max_window_bits", takeover, false, false, false, false},
		{none, smallClient, true, false, false, true},
		{none + "; client_max_window_bits=9", smallClient, true, false, false, true},
		{none + "; client_max_window_bits=12", smallClient, false, false, false, false},
		{"permessage-deflate; mystery", takeover, false, false, false, false},
		{"permessage-deflate, permessage-deflate", takeover, false, false, false, false},
		{"x-webkit-deflate-frame", takeover, false, false, false, false},
	}
	for _, tc := range cases {
		exts, err := parseExtensions(http.Header{"Sec-Websocket-Extensions": {tc.answer}})
		if err != nil {
			t.Fatalf("%q: %v", tc.answer, err)
		}
		n, err := checkDeflateAnswer(exts, &tc.opts)
		if (err == nil) != tc.ok {
			t.Errorf("%q with %+v: %v", tc.answer, tc.opts, err)
			continue
		}
		if tc.ok && (n != negotiated{tc.write, tc.read, tc.small}) {
			t.Errorf("%q with %+v: %+v, want write %v read %v small %v", tc.answer, tc.opts, n, tc.write, tc.read, tc.small)
		}
	}
}

// compressionCorpus returns text of a JSON-ish kind, which compresses
// well, or random bytes, which do not.
func compressionCorpus(n int, text bool, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	if !text {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	words := []string{`{"user":"ann","text":"`, "hello", "world", "Grüße", "привет", "💬", `"},`, "the", "chat", "message", " "}
	var b []byte
	for len(b) < n {
		b = append(b, words[rng.IntN(len(words))]...)
	}
	for b = b[:n]; !utf8Complete(b); b = b[:len(b)-1] {
	}
	for len(b) < n {
		b = append(b, ' ')
	}
	return b
}

func utf8Complete(b []byte) bool { return len(trimPartialRune(b)) == len(b) }

// TestDeflateEcho sends messages from 1 byte to 1 MiB, text and binary,
// whole and streamed in fragments, between a compressing client and a
// compressing server, with and without context takeover each way.
func TestDeflateEcho(t *testing.T) {
	checkGoroutines(t)
	for _, opts := range []CompressionOptions{
		{},
		{ServerContextTakeover: true},
		{ClientContextTakeover: true},
		{ServerContextTakeover: true, ClientContextTakeover: true, Threshold: -1},
		// Small windows both ways: Huffman coding alone.
		{ServerContextTakeover: true, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9},
	} {
		t.Run(fmt.Sprintf("server%v-client%v", opts.ServerContextTakeover, opts.ClientContextTakeover), func(t *testing.T) {
			url := startServer(t, &Handler{EnableCompression: true, CompressionOptions: opts, Handle: echoHandler})
			conn := dialTest(t, url, &DialOptions{EnableCompression: true, CompressionOptions: opts})
			if conn.dfl == nil {
				t.Fatal("permessage-deflate was not agreed on")
			}
			if small := opts.ClientMaxWindowBits != 0; small != (conn.dfl.level == flate.HuffmanOnly) {
				t.Errorf("client compresses at level %d with ClientMaxWindowBits %d", conn.dfl.level, opts.ClientMaxWindowBits)
			}
			seed := uint64(0)
			for _, size := range []int{0, 1, 100, 511, 512, 4000, 64 << 10, 100 << 10, 1 << 20} {
				for _, text := range []bool{true, false} {
					seed++
					msg := compressionCorpus(size, text, seed)
					// Whole, and streamed in pieces of odd sizes.
					for _, streamed := range []bool{false, true} {
						tp := Binary
						if text {
							tp = Text
						}
						if streamed {
							w, err := conn.SendMessage(tp)
							if err != nil {
								t.Fatal(err)
							}
							for rest := msg; len(rest) > 0; {
								k := min(len(rest), 1+int(seed*7919)%70000)
								w.Write(rest[:k])
								rest = rest[k:]
							}
							if err := w.Close(); err != nil {
								t.Fatal(err)
							}
						} else if text {
							conn.SendText(string(msg))
						} else {
							conn.SendBinary(msg)
						}
						gotType, r, err := conn.ReceiveMessage()
						if err != nil {
							t.Fatalf("size %d, text %v, streamed %v: %v", size, text, streamed, err)
						}
						got, err := io.ReadAll(r)
						if err != nil || gotType != tp || !bytes.Equal(got, msg) {
							t.Fatalf("size %d, text %v, streamed %v: echo of %d bytes (%v), %v", size, text, streamed, len(got), gotType, err)
						}
					}
				}
			}
			// Without context takeover, nothing is held while idle:
			// the client's compressor stays only with client
			// takeover, its decompressor only with server takeover.
			if (conn.dfl.fw != nil) != opts.ClientContextTakeover {
				t.Errorf("idle client holds a compressor: %v", conn.dfl.fw != nil)
			}
			if (conn.dfl.fr != nil) != opts.ServerContextTakeover {
				t.Errorf("idle client holds a decompressor: %v", conn.dfl.fr != nil)
			}
		})
	}
}

// deflateServer runs h with compression on and returns a raw peer that
// negotiated it with offer.
func deflateServer(t *testing.T, h *Handler, offer string) *rawPeer {
	h.EnableCompression = true
	url := startServer(t, h)
	return dialRawHeader(t, url, "Sec-WebSocket-Extensions: "+offer+"\r\n")
}

// compressMessage compresses payload as RFC 7692 has a sender do: a sync
// flush, without its tail.
func compressMessage(t *testing.T, payload []byte) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	fw.Write(payload)
	fw.Flush()
	out := b.Bytes()
	if !bytes.HasSuffix(out, deflateTail[:]) {
		t.Fatal("no sync flush tail")
	}
	return out[:len(out)-4]
}

func inflateMessage(t *testing.T, payload []byte) []byte {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader(deflateTail[:])))
	out, err := io.ReadAll(r)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflating: %v", err)
	}
	return out
}

// TestDeflateFrames checks the frames on the wire: RSV1 on the first
// frame of a compressed message only, fragmented compressed messages,
// uncompressed messages among compressed ones, and small messages sent
// as they are.
func TestDeflateFrames(t *testing.T) {
	checkGoroutines(t)
	p := deflateServer(t, &Handler{Handle: echoHandler}, "permessage-deflate; client_max_window_bits")
	big := compressionCorpus(2000, true, 9)
	z := compressMessage(t, big)
	// A compressed message in three fragments, then an uncompressed
	// one, then a compressed one in one frame.
	p.write(encodeFrame(0x40|byte(opText), z[:10], true),
		encodeFrame(byte(opContinuation), z[10:20], true),
		encodeFrame(0x80|byte(opContinuation), z[20:], true))
	p.write(frame(true, opText, "plain"))
	p.write(encodeFrame(0x80|0x40|byte(opBinary), z, true))
	// A message that ends with a final block rather than a sync flush
	// (RFC 7692, section 7.2.3.3), and one with both.
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(big)
	fw.Close()
	p.write(encodeFrame(0x80|0x40|byte(opText), b.Bytes(), true))
	fw.Reset(&b)
	b.Reset()
	fw.Write(big[:1000])
	fw.Flush()
	fw.Close()
	p.write(encodeFrame(0x80|0x40|byte(opText), b.Bytes(), true))
	for i, want := range []string{string(big), "plain", string(big), string(big), string(big[:1000])} {
		hdr, payload := p.readRawFrame()
		rsv1 := hdr[0]&0x40 != 0
		if len(want) >= 512 != rsv1 {
			t.Errorf("reply %d: RSV1 %v for %d bytes", i, rsv1, len(want))
		}
		if rsv1 {
			payload = inflateMessage(t, payload)
		}
		if string(payload) != want {
			t.Errorf("reply %d: %d bytes, want %d", i, len(payload), len(want))
		}
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectClose(StatusOK)
}

// TestDeflateExactFit checks that a compressed message that exactly fills
// the room ReceiveText and ReceiveBinary are given is not ErrTooLarge,
// with and without read context takeover.  Its DEFLATE data may go on
// after its last byte, with blocks that inflate to nothing: an empty
// stored block after the flush, as zlib sends it, or an empty final block.
func TestDeflateExactFit(t *testing.T) {
	checkGoroutines(t)
	for _, offer := range []string{"permessage-deflate", "permessage-deflate; client_no_context_takeover"} {
		t.Run(offer, func(t *testing.T) {
			type result struct {
				text string
				err  error
			}
			results := make(chan result, 16)
			h := &Handler{Handle: func(c *Conn) {
				defer c.Close(StatusOK, "")
				for _, size := range []int{0, 5, 5, 0} {
					text, err := c.ReceiveText(size)
					results <- result{text, err}
				}
				buf := make([]byte, 5)
				n, err := c.ReceiveBinary(buf)
				results <- result{string(buf[:n]), err}
			}}
			p := deflateServer(t, h, offer)
			zlibStyle := func(data string) []byte {
				// Two flushes, the second cut as RFC 7692 says.
				z := compressMessage(t, []byte(data))
				return append(append(z, deflateTail[:]...), 0)
			}
			finalBlock := func(data string) []byte {
				var b bytes.Buffer
				fw, _ := flate.NewWriter(&b, flate.BestSpeed)
				fw.Write([]byte(data))
				fw.Flush()
				fw.Close()
				return b.Bytes()
			}
			p.write(encodeFrame(0x80|0x40|byte(opText), zlibStyle(""), true),
				encodeFrame(0x80|0x40|byte(opText), zlibStyle("hello"), true),
				encodeFrame(0x80|0x40|byte(opText), finalBlock("hello"), true),
				encodeFrame(0x80|0x40|byte(opText), finalBlock(""), true),
				encodeFrame(0x80|0x40|byte(opBinary), zlibStyle("hello"), true))
			for i, want := range []string{"", "hello", "hello", "", "hello"} {
				select {
				case r := <-results:
					if r.err != nil || r.text != want {
						t.Errorf("message %d: %q, %v; want %q", i, r.text, r.err, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("message %d was not received", i)
				}
			}
			p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
			p.expectClose(StatusOK)
		})
	}
}

// farDistance returns a compressed message whose first symbol is a
// back-reference, to data before the message.
func farDistance(t *testing.T) []byte {
	dict := compressionCorpus(1000, true, 5)
	var b bytes.Buffer
	fw, _ := flate.NewWriterDict(&b, flate.BestCompression, dict)
	fw.Write(dict[:200])
	fw.Flush()
	if _, err := maxBackReference(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), deflateTail[:])
}

// TestDeflateViolations: RSV1 where it may not be, and data that does
// not inflate.
func TestDeflateViolations(t *testing.T) {
	cases := []struct {
		name   string
		frames [][]byte
		want   Status
	}{
		{"RSV1 on a continuation frame", [][]byte{frame(false, opText, "a"), encodeFrame(0x80|0x40, []byte("b"), true)}, StatusProtocolError},
		{"RSV1 on a ping", [][]byte{encodeFrame(0x80|0x40|byte(opPing), nil, true)}, StatusProtocolError},
		{"RSV2", [][]byte{encodeFrame(0x80|0x20|byte(opText), []byte("x"), true)}, StatusProtocolError},
		{"not DEFLATE", [][]byte{encodeFrame(0x80|0x40|byte(opBinary), []byte{0xff, 0xff, 0xff, 0xff, 0x00}, true)}, StatusInvalidData},
		{"invalid UTF-8 inflated", [][]byte{encodeFrame(0x80|0x40|byte(opText), compressMessage(t, []byte("ok \xff")), true)}, StatusInvalidData},
		{"cut off inside a block", [][]byte{encodeFrame(0x80|0x40|byte(opText), compressMessage(t, compressionCorpus(5000, true, 4))[:500], true)}, StatusInvalidData},
		{"a reserved block type", [][]byte{encodeFrame(0x80|0x40|byte(opBinary), []byte{0x07, 0x00}, true)}, StatusInvalidData},
		{"a stored block with a bad length", [][]byte{encodeFrame(0x80|0x40|byte(opBinary), []byte{0x00, 0x05, 0x00, 0x00, 0x00, 'a'}, true)}, StatusInvalidData},
		{"a distance too far back", [][]byte{encodeFrame(0x80|0x40|byte(opBinary), farDistance(t), true)}, StatusInvalidData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			p := deflateServer(t, &Handler{Handle: echoHandler}, "permessage-deflate")
			p.write(tc.frames...)
			p.expectClose(tc.want)
		})
	}
	// Without the extension, RSV1 is a protocol error as before.
	url := startServer(t, &Handler{Handle: echoHandler})
	p := dialRaw(t, url, nil)
	p.write(encodeFrame(0x80|0x40|byte(opText), compressMessage(t, []byte("hi")), true))
	p.expectClose(StatusProtocolError)
}

// bomb returns a compressed message that inflates to n zero bytes, n a
// multiple of 16 MiB, from pieces that each inflate to 16 MiB.
func bomb(t *testing.T, n int64) []byte {
	piece := compressMessage(t, make([]byte, 16<<20))
	piece = append(piece, deflateTail[:]...) // a sync flush between the pieces
	return bytes.Repeat(piece, int(n/(16<<20)))[:len(piece)*int(n/(16<<20))-4]
}

// TestDeflateBomb: a message of a few MiB that inflates to 4 GiB is
// stopped at the read limit with 1009, without being inflated further.
func TestDeflateBomb(t *testing.T) {
	checkGoroutines(t)
	z := bomb(t, 4<<30)
	t.Logf("a frame of %d KiB that inflates to 4 GiB", len(z)>>10)
	results := make(chan error, 1)
	p := deflateServer(t, &Handler{ReadLimit: 1 << 20, Handle: func(c *Conn) {
		defer c.Close(StatusOK, "")
		_, r, err := c.ReceiveMessage()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		results <- err
	}}, "permessage-deflate")
	go p.conn.Write(encodeFrame(0x80|0x40|byte(opBinary), z, true))
	start := time.Now()
	if err := <-results; err != ErrConnClosed {
		t.Errorf("reading the bomb: %v, want ErrConnClosed", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("stopping the bomb took %v: it was inflated beyond the limit", d)
	}
	p.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	p.expectClose(StatusTooLarge)
}

// TestDeflateBoundedReceive: without a read limit, ReceiveText and
// ReceiveBinary stop at their bounds and drop the rest of a compressed
// message without inflating it; streaming it takes constant memory.
func TestDeflateBoundedReceive(t *testing.T) {
	checkGoroutines(t)
	z := bomb(t, 256<<20)
	results := make(chan string, 3)
	p := deflateServer(t, &Handler{Handle: func(c *Conn) {
		defer c.Close(StatusOK, "")
		text, err := c.ReceiveText(100)
		results <- fmt.Sprintf("%d %v", len(text), err)
		buf := make([]byte, 100)
		n, err := c.ReceiveBinary(buf)
		results <- fmt.Sprintf("%d %v", n, err)
		_, r, err := c.ReceiveMessage()
		var total int64
		if err == nil {
			total, err = io.Copy(io.Discard, r)
		}
		results <- fmt.Sprintf("%d %v", total, err)
	}}, "permessage-deflate")
	// Zeros are valid UTF-8, so the bomb serves as text too.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() {
		p.conn.Write(encodeFrame(0x80|0x40|byte(opText), z, true))
		p.conn.Write(encodeFrame(0x80|0x40|byte(opBinary), z, true))
		p.conn.Write(encodeFrame(0x80|0x40|byte(opBinary), z, true))
	}()
	for _, want := range []string{"100 message too large", "100 message too large", fmt.Sprint(256<<20, " <nil>")} {
		select {
		case got := <-results:
			if got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("no result")
		}
	}
	// 768 MiB inflated, or skipped, in 3 messages: what was allocated
	// meanwhile is a few buffers and a decompressor, not the messages.
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 32<<20 {
		t.Errorf("receiving allocated %d MiB", grown>>20)
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	p.expectClose(StatusOK)
}

// dialRawHeader is dialRaw with extra handshake header fields.
func dialRawHeader(t *testing.T, wsURL, extra string) *rawPeer {
	t.Helper()
	return dialRawWith(t, wsURL, nil, extra)
}

// TestDialDeflateAnswers: the client's offer, and its handshake failing on
// an answer it did not offer or that breaks the offer.
func TestDialDeflateAnswers(t *testing.T) {
	checkGoroutines(t)
	cases := []struct {
		opts   *DialOptions
		answer string
		offer  string // what the client must offer
		err    string // in the error; "" for success
	}{
		{&DialOptions{}, "permessage-deflate", "", "the server chose an extension that was not offered"},
		{&DialOptions{EnableCompression: true}, "permessage-deflate; server_no_context_takeover",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits", ""},
		{&DialOptions{EnableCompression: true}, "",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits", ""},
		{&DialOptions{EnableCompression: true, CompressionOptions: CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true, ServerMaxWindowBits: 12, ClientMaxWindowBits: 11}},
			"permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=12; client_max_window_bits=11", ""},
		{&DialOptions{EnableCompression: true}, "permessage-deflate", "", "lacks the server_no_context_takeover"},
		{&DialOptions{EnableCompression: true}, "permessage-deflate; server_no_context_takeover; x=1", "", "unknown parameter x"},
		{&DialOptions{EnableCompression: true}, "permessage-deflate; server_no_context_takeover; client_max_window_bits", "", "without a value"},
		{&DialOptions{EnableCompression: true}, "x-webkit-deflate-frame", "", "not offered"},
		{&DialOptions{EnableCompression: true}, `permessage-deflate; server_no_context_takeover; a="`, "", "malformed"},
	}
	for _, tc := range cases {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		offers := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				return
			}
			offers <- req.Header.Get("Sec-WebSocket-Extensions")
			resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
			if tc.answer != "" {
				resp += "Sec-WebSocket-Extensions: " + tc.answer + "\r\n"
			}
			io.WriteString(c, resp+"\r\n")
			io.Copy(io.Discard, c)
		}()
		conn, err := Dial(context.Background(), "ws://"+ln.Addr().String()+"/", tc.opts)
		offer := <-offers
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("answer %q: %v", tc.answer, err)
		case tc.err != "" && (!errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("answer %q: %v, want ErrBadHandshake with %q", tc.answer, err, tc.err)
		case tc.offer != "" && offer != tc.offer:
			t.Errorf("offered %q, want %q", offer, tc.offer)
		}
		if conn != nil {
			if (conn.dfl != nil) != (tc.answer != "") {
				t.Errorf("answer %q: compression on: %v", tc.answer, conn.dfl != nil)
			}
			conn.drop(ErrConnClosed)
		}
		ln.Close()
	}
}
