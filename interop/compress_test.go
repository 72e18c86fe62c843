package interop

// permessage-deflate (RFC 7692) against other implementations: the Node.js
// ws library as client and as server, our own client against our own
// server, and headless Chromium (TestChromiumDeflate, in
// chromium_deflate_test.go).  Every connection goes through a wireTap, which
// checks on the wire that the extension was agreed on as expected and that
// messages went compressed (RSV1) both ways, fragmented ones among them.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
)

// deflatePeer is one configuration of permessage-deflate against ws.
type deflatePeer struct {
	name string
	ours websocket.CompressionOptions // the Handler's or DialOptions'
	node map[string]any               // ws's perMessageDeflate options
	// answer is the Sec-WebSocket-Extensions that the server is to
	// answer with.
	answer string
	huge   bool // also 16 MiB messages
}

// deflateTestTimeout bounds each test of compression with Node.js peers,
// and deflateConnTimeout each of their connections: compress/flate is
// slow under the race detector, which makes them take a while.
const (
	deflateTestTimeout = 3 * time.Minute
	deflateConnTimeout = time.Minute
)

// takeover is the start of the options that allow context takeover both
// ways and compress every message.
var takeover = websocket.CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true, Threshold: -1}

// withWindows returns opts with the given window bits.
func withWindows(opts websocket.CompressionOptions, server, client int) websocket.CompressionOptions {
	opts.ServerMaxWindowBits, opts.ClientMaxWindowBits = server, client
	return opts
}

// deflateCommon are the configurations that run against ws both as client
// and as server: the defaults (no context takeover, a threshold of 512
// bytes) and context takeover both ways.  ws compresses every message
// (threshold 0) in all configurations.
var deflateCommon = []deflatePeer{{
	name:   "defaults",
	node:   map[string]any{"threshold": 0},
	answer: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
	huge:   true,
}, {
	name:   "takeover",
	ours:   takeover,
	node:   map[string]any{"threshold": 0},
	answer: "permessage-deflate",
}}

// nodeClientDeflate are the configurations of ws as client against our
// Handler.  ws offers what its options say, "client_max_window_bits"
// without a value unless clientMaxWindowBits is set; threshold 0 makes it
// compress every message.
var nodeClientDeflate = append(slices.Clip(deflateCommon), []deflatePeer{{
	name:   "server-takeover-only",
	ours:   websocket.CompressionOptions{ServerContextTakeover: true, Threshold: -1},
	node:   map[string]any{"threshold": 0},
	answer: "permessage-deflate; client_no_context_takeover",
}, {
	name:   "client-takeover-only",
	ours:   websocket.CompressionOptions{ClientContextTakeover: true, Threshold: -1},
	node:   map[string]any{"threshold": 0},
	answer: "permessage-deflate; server_no_context_takeover",
}, {
	name:   "ws-declines-takeover",
	ours:   takeover,
	node:   map[string]any{"threshold": 0, "serverNoContextTakeover": true, "clientNoContextTakeover": true},
	answer: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
}, {
	// ws asks for a server window of 2^10 and keeps its own to 2^9,
	// which it offers; we ask for no client window.
	name:   "ws-small-windows",
	ours:   takeover,
	node:   map[string]any{"threshold": 0, "serverMaxWindowBits": 10, "clientMaxWindowBits": 9},
	answer: "permessage-deflate; server_max_window_bits=10",
}, {
	// ws allows 2^12 for the server, we keep to 2^9 and ask ws for 2^11.
	name:   "our-small-windows",
	ours:   withWindows(takeover, 9, 11),
	node:   map[string]any{"threshold": 0, "serverMaxWindowBits": 12},
	answer: "permessage-deflate; server_max_window_bits=9; client_max_window_bits=11",
}, {
	// The smallest windows: ws asks for a server window of 2^8 and
	// offers 2^9 for itself; we ask for 2^8.
	name:   "windows-8",
	ours:   websocket.CompressionOptions{ServerMaxWindowBits: 8, ClientMaxWindowBits: 8, ClientContextTakeover: true},
	node:   map[string]any{"threshold": 0, "serverMaxWindowBits": 8, "clientMaxWindowBits": 9},
	answer: "permessage-deflate; server_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8",
}}...)

// TestNodeDeflateClient runs node/client.js's deflate cases against our
// Handler: for each configuration, on a connection of its own, every size
// from 1 B to 1 MiB of compressible and random text and binary, twice up
// to 64 KiB (context takeover); on another, fragmented messages from ws
// ({fin:false}), with a ping between fragments; with the defaults, 16 MiB
// of compressible text and of random binary.  Our echo streams its
// answers, so large ones go back compressed in several frames.
func TestNodeDeflateClient(t *testing.T) {
	ctx, nodeBin, dir := startNodeTest(t, deflateTestTimeout)

	type clientConfig struct {
		Name    string         `json:"name"`
		Path    string         `json:"path"`
		Options map[string]any `json:"options"`
		Huge    bool           `json:"huge"`
	}
	var configs []clientConfig
	srv := &goServer{}
	mux := http.NewServeMux()
	for _, c := range nodeClientDeflate {
		path := "/deflate/" + c.name
		mux.Handle(path, &websocket.Handler{EnableCompression: true, CompressionOptions: c.ours, Handle: srv.track(echo)})
		configs = append(configs, clientConfig{c.name, path, c.node, c.huge})
	}
	srv.start(t, mux)
	tap := startWireTap(t, srv.Listener.Addr().String())
	env, err := json.Marshal(configs)
	if err != nil {
		t.Fatal(err)
	}
	runNodeClient(t, ctx, nodeBin, dir, "ws://"+tap.Addr(), 2*len(configs), "GOWEBSOCK_DEFLATE="+string(env),
		fmt.Sprintf("GOWEBSOCK_CASE_TIMEOUT_MS=%d", deflateConnTimeout.Milliseconds()))

	for _, c := range nodeClientDeflate {
		t.Run("wire/"+c.name, func(t *testing.T) {
			checkDeflateWire(t, tap, "/deflate/"+c.name, c.answer,
				deflateWant{all: true, fragmented: true},
				deflateWant{all: c.ours.Threshold < 0, fragmented: true})
		})
	}
}

// nodeServerDeflate are the configurations of our Dial against a ws
// server.  Our offer has server_no_context_takeover and
// client_no_context_takeover unless the options allow takeover, the window
// bits the options ask for, and "client_max_window_bits" without a value
// if they do not ask for a client window.
var nodeServerDeflate = append(slices.Clip(deflateCommon), []deflatePeer{{
	name:   "ws-declines-client-takeover",
	ours:   takeover,
	node:   map[string]any{"threshold": 0, "clientNoContextTakeover": true},
	answer: "permessage-deflate; client_no_context_takeover",
}, {
	name:   "ws-declines-server-takeover",
	ours:   takeover,
	node:   map[string]any{"threshold": 0, "serverNoContextTakeover": true},
	answer: "permessage-deflate; server_no_context_takeover",
}, {
	// We offer a server window of 2^10 and keep ours to 2^9.
	name:   "our-small-windows",
	ours:   withWindows(takeover, 10, 9),
	node:   map[string]any{"threshold": 0},
	answer: "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
}, {
	// We allow a server window of 2^12, ws keeps to 2^11 and asks us
	// for 2^10.
	name:   "ws-small-windows",
	ours:   withWindows(takeover, 12, 0),
	node:   map[string]any{"threshold": 0, "serverMaxWindowBits": 11, "clientMaxWindowBits": 10},
	answer: "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10",
}}...)

// TestGoDialDeflateNodeServer dials a ws server with permessage-deflate in
// each configuration: the echo matrix (echoDeflateMatrix), once echoed
// whole and once echoed by ws in three fragments each, and the cases of
// TestGoDialAgainstNodeServer that send and receive data, now compressed.
func TestGoDialDeflateNodeServer(t *testing.T) {
	ctx, nodeBin, dir := startNodeTest(t, deflateTestTimeout)

	for _, c := range nodeServerDeflate {
		t.Run(c.name, func(t *testing.T) {
			options, err := json.Marshal(c.node)
			if err != nil {
				t.Fatal(err)
			}
			server := startNodeServer(t, ctx, nodeBin, dir, "GOWEBSOCK_DEFLATE="+string(options))
			tap := startWireTap(t, fmt.Sprintf("127.0.0.1:%d", server.Port))
			d := &dialer{ctx: ctx, server: server, limit: deflateConnTimeout, opts: &websocket.DialOptions{
				EnableCompression: true, CompressionOptions: c.ours, NetDialContext: tap.dial}}

			// ws echoes in three fragments on /echo-fragmented.
			for path, sizes := range map[string][]int{"/echo": deflateSizes, "/echo-fragmented": deflateSizes[:4]} {
				t.Run("matrix"+strings.ReplaceAll(path, "/", "-"), func(t *testing.T) {
					id := connID(t, "")
					conn := d.dial(t, path, id, nil)
					echoDeflateMatrix(t, conn, sizes)
					d.closeAndCheck(t, conn, id)
				})
			}
			cases := append([]dialerCase{{"receive-calls", testDeflateReceiveCalls}}, nodeDataCases...)
			if c.huge {
				cases = append(cases, dialerCase{"echo-16MiB", testDeflateHuge})
			}
			runDialerCases(t, d, cases)

			t.Run("wire", func(t *testing.T) {
				checkDeflateWire(t, tap, "", c.answer,
					deflateWant{all: c.ours.Threshold < 0, fragmented: true},
					deflateWant{all: true, fragmented: true})
			})
		})
	}
}

// testDeflateHuge echoes 16 MiB of compressible text and binary.
// (compress/flate takes seconds for them under the race detector, so there
// are few of these; TestNodeDeflateClient and TestChromiumDeflate send 16
// MiB of random binary.)
func testDeflateHuge(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)
	for _, p := range []struct {
		typ websocket.MessageType
		msg []byte
	}{{websocket.Text, compressibleText(16*mib, 16)}, {websocket.Binary, compressibleBinary(16*mib, 17)}} {
		sent := sendAsync(conn, p.typ, [][]byte{p.msg})
		expectMessage(t, conn, p.typ, p.msg)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	d.closeAndCheck(t, conn, id)
}

// testDeflateReceiveCalls receives compressed messages with ReceiveText
// and ReceiveBinary, given one byte more than the message needs, then
// exactly the room it needs (see TestDeflateExactFit), and then too
// little room.
func testDeflateReceiveCalls(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)
	var bugs []string
	for _, size := range []int{0, 1, 1000, 65536} {
		text, bin := compressibleText(size, 5), pattern(size, 6)
		for _, room := range []int{size + 1, size} {
			if err := conn.SendText(string(text)); err != nil {
				t.Fatalf("SendText: %v", err)
			}
			got, err := conn.ReceiveText(room)
			if err != nil && room == size && errors.Is(err, websocket.ErrTooLarge) && got == string(text) {
				bugs = append(bugs, fmt.Sprintf("ReceiveText(%d) of a compressed text of %d bytes: %v", room, size, err))
			} else if err != nil {
				t.Fatalf("ReceiveText(%d) of %d bytes: %v", room, size, err)
			}
			if d := firstDiff([]byte(got), text); d != "" {
				t.Errorf("ReceiveText(%d): %s", room, d)
			}

			if err := conn.SendBinary(bin); err != nil {
				t.Fatalf("SendBinary: %v", err)
			}
			buf := make([]byte, room)
			n, err := conn.ReceiveBinary(buf)
			if err != nil && room == size && errors.Is(err, websocket.ErrTooLarge) && n == size {
				bugs = append(bugs, fmt.Sprintf("ReceiveBinary of a compressed message of %d bytes into %d bytes: %v", size, room, err))
			} else if err != nil {
				t.Fatalf("ReceiveBinary of %d bytes into %d: %v", size, room, err)
			}
			if d := firstDiff(buf[:n], bin); d != "" {
				t.Errorf("ReceiveBinary into %d bytes: %s", room, d)
			}
		}
	}

	// A message cut short: its rest is discarded, and with context
	// takeover it must still be inflated, as the next message (the same
	// text, which compresses to back-references to it) refers to it.
	text := compressibleText(65536, 7)
	for i := 0; i < 2; i++ {
		if err := conn.SendText(string(text)); err != nil {
			t.Fatalf("SendText: %v", err)
		}
	}
	if got, err := conn.ReceiveText(100); !errors.Is(err, websocket.ErrTooLarge) || got != string(text[:100]) {
		t.Errorf("ReceiveText(100) of 65536 bytes = %d bytes, %v; want the first 100 and ErrTooLarge", len(got), err)
	}
	expectMessage(t, conn, websocket.Text, text)
	d.closeAndCheck(t, conn, id)
	if len(bugs) > 0 {
		t.Errorf("a compressed message that exactly fits (see TestDeflateExactFit):\n\t%s", strings.Join(bugs, "\n\t"))
	}
}

// goDeflate are the configurations of our Dial against our Handler.
var goDeflate = []struct {
	name           string
	server, client websocket.CompressionOptions
	answer         string
}{{
	name:   "defaults",
	answer: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
}, {
	// Takeover both ways, at other levels than the default.
	name:   "takeover",
	server: websocket.CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true, Level: flate.HuffmanOnly},
	client: websocket.CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true, Level: flate.DefaultCompression},
	answer: "permessage-deflate",
}, {
	// The client offers 2^12 and 2^11, the server takes 2^9 and asks
	// for 2^10.
	name:   "takeover-small-windows",
	server: withWindows(takeover, 9, 10),
	client: withWindows(takeover, 12, 11),
	answer: "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
}}

// TestGoDeflateGo is our client against our server with compression: the
// echo matrix with messages streamed in several frames each way.  The main
// module's tests cover the protocol in depth; this one shows the two
// ends agree on the wire.
func TestGoDeflateGo(t *testing.T) {
	checkGoroutines(t)
	for _, c := range goDeflate {
		t.Run(c.name, func(t *testing.T) {
			srv := &goServer{}
			srv.start(t, &websocket.Handler{EnableCompression: true, CompressionOptions: c.server, Handle: srv.track(echo)})
			tap := startWireTap(t, srv.Listener.Addr().String())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := websocket.Dial(ctx, "ws://"+tap.Addr()+"/echo", &websocket.DialOptions{
				EnableCompression: true, CompressionOptions: c.client})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			deadline := time.Now().Add(deflateConnTimeout)
			conn.SetReadDeadline(deadline)
			conn.SetWriteDeadline(deadline)

			echoDeflateMatrix(t, conn, []int{1, 100, 1000, 64 << 10, 256 << 10})
			if err := conn.Close(websocket.StatusOK, "bye"); err != nil {
				t.Errorf("Close: %v", err)
			}
			if status, reason := conn.GetStatus(); status != websocket.StatusOK {
				t.Errorf("GetStatus() after Close = %d %q, want the echoed 1000", status, reason)
			}
			checkDeflateWire(t, tap, "/echo", c.answer,
				deflateWant{all: c.client.Threshold < 0, fragmented: true},
				deflateWant{all: c.server.Threshold < 0, fragmented: true})
		})
	}
}

// --- messages ---

// deflatePayloads are the kinds of message of the echo matrix: text and
// binary, compressible and random.
var deflatePayloads = []struct {
	name string
	typ  websocket.MessageType
	make func(n int, seed uint32) []byte
}{
	{"text", websocket.Text, compressibleText},
	{"random-text", websocket.Text, randomUTF8},
	{"binary", websocket.Binary, compressibleBinary},
	{"random-binary", websocket.Binary, pattern},
}

// deflateSizes are the sizes of the echo matrix, in bytes.
var deflateSizes = []int{1, 100, 1000, 64 << 10, mib}

// takeoverWindow is the most that context takeover can refer back to:
// larger messages are not sent again.
const takeoverWindow = 64 << 10

// compressibleText returns n bytes of ASCII text whose lines repeat each
// other within less than the smallest window of RFC 7692 (2^8 bytes).
func compressibleText(n int, seed uint32) []byte {
	var lines []byte
	for i := range 40 {
		lines = fmt.Appendf(lines, "message %d line %d: the quick brown fox jumps over the lazy dog\n", seed, i)
	}
	return repeatTo(lines, n)
}

// compressibleBinary returns n bytes from a small alphabet, repeating every
// 251 bytes.
func compressibleBinary(n int, seed uint32) []byte {
	block := pattern(251, seed)
	for i, b := range block {
		block[i] = b & 0x0f * 3
	}
	return repeatTo(block, n)
}

// repeatTo returns n bytes of block repeated.
func repeatTo(block []byte, n int) []byte {
	return bytes.Repeat(block, n/len(block)+1)[:n]
}

// multibyte are the non-ASCII characters of randomUTF8.
var multibyte = []string{"é", "€", "😀"}

// randomUTF8 returns n bytes of random UTF-8 text: printable ASCII with 2-,
// 3- and 4-byte sequences mixed in.
func randomUTF8(n int, seed uint32) []byte {
	r := pattern(n, seed)
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		if c := int(r[i] % 13); c < len(multibyte) && len(out)+len(multibyte[c]) <= n {
			out = append(out, multibyte[c]...)
		} else {
			out = append(out, 0x21+r[i]%94)
		}
	}
	return out
}

// splitEvery cuts msg into parts of size bytes, the last one shorter.
func splitEvery(msg []byte, size int) [][]byte {
	parts := [][]byte{}
	for len(msg) > size {
		parts = append(parts, msg[:size])
		msg = msg[size:]
	}
	return append(parts, msg)
}

// echoDeflateMatrix sends messages of every kind in sizes (deflateSizes,
// or some of them) and checks the echoes.  Messages of up to 64 KiB go
// twice, so that with context
// takeover the second compresses to little more than a back-reference to
// the first: once whole (SendText, SendBinary) and once streamed in Writes
// of 40 000 bytes.  Larger ones go once, streamed, which sends them in
// several frames.
func echoDeflateMatrix(t *testing.T, conn *websocket.Conn, sizes []int) {
	t.Helper()
	for _, n := range sizes {
		for _, p := range deflatePayloads {
			msg := p.make(n, uint32(n+len(p.name)))
			sends := [][][]byte{{msg}, splitEvery(msg, 40_000)}
			if n > takeoverWindow {
				sends = sends[1:]
			}
			for _, parts := range sends {
				sent := sendAsync(conn, p.typ, parts)
				expectMessage(t, conn, p.typ, msg)
				if err := <-sent; err != nil {
					t.Fatalf("sending %d bytes of %s: %v", n, p.name, err)
				}
			}
		}
	}
}

// sendAsync sends parts as one message on a goroutine of its own, so that
// the echo can be received meanwhile, as a peer may echo a message before
// it has all of it: SendText or SendBinary for one part, else one Write
// each.
func sendAsync(conn *websocket.Conn, typ websocket.MessageType, parts [][]byte) <-chan error {
	sent := make(chan error, 1)
	go func() {
		switch {
		case len(parts) > 1:
			sent <- streamMessage(conn, typ, parts)
		case typ == websocket.Text:
			sent <- conn.SendText(string(parts[0]))
		default:
			sent <- conn.SendBinary(parts[0])
		}
	}()
	return sent
}

// --- the wire ---

// dial connects to the relay, whatever the address asked for: it is the
// DialOptions.NetDialContext of the clients that go through it.
func (w *wireTap) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, w.Addr())
}

// deflateWant is what one direction must show on the wire.
type deflateWant struct {
	// all: every data message is compressed; else some are, and some
	// below the sender's threshold are not.
	all bool
	// fragmented: some compressed message came in several frames.
	fragmented bool
}

// checkDeflateWire checks the WebSocket connections that the relay saw
// to path (all of them if path is ""): each had answer as its
// Sec-WebSocket-Extensions, no frame broke RFC 6455 or RFC 7692 (RSV1 on a
// continuation or control frame, among others), and the messages each way
// were compressed as toServer and toClient say.
func checkDeflateWire(t *testing.T, tap *wireTap, path, answer string, toServer, toClient deflateWant) {
	t.Helper()
	var up, down wireStats
	n := 0
	for _, c := range tap.WebSockets() {
		if target, _, _ := strings.Cut(c.Target, "?"); path != "" && target != path {
			continue
		}
		n++
		t.Logf("%s: offer %q, answer %q\n\tto the server: %v\n\tto the client: %v", c.Target, c.Offer(), c.Answer(), c.ToServer, c.ToClient)
		if c.Answer() != answer {
			t.Errorf("%s: Sec-WebSocket-Extensions answer %q to the offer %q, want %q", c.Target, c.Answer(), c.Offer(), answer)
		}
		for _, e := range slices.Concat(c.ToServer.Errors, c.ToClient.Errors) {
			t.Errorf("%s: %s", c.Target, e)
		}
		up.add(c.ToServer)
		down.add(c.ToClient)
	}
	if n == 0 {
		t.Fatalf("the relay saw no WebSocket connection to %q", path)
	}
	up.check(t, "to the server", toServer)
	down.check(t, "to the client", toClient)
}

func (s *wireStats) add(o wireStats) {
	s.Messages += o.Messages
	s.Compressed += o.Compressed
	s.CompressedFragmented += o.CompressedFragmented
}

func (s wireStats) check(t *testing.T, direction string, want deflateWant) {
	t.Helper()
	switch {
	case s.Compressed == 0:
		t.Errorf("%s: none of %d messages was compressed", direction, s.Messages)
	case want.all && s.Compressed != s.Messages:
		t.Errorf("%s: %d of %d messages compressed, want all", direction, s.Compressed, s.Messages)
	case !want.all && s.Compressed == s.Messages:
		t.Errorf("%s: all %d messages compressed, want the small ones not", direction, s.Messages)
	}
	if want.fragmented && s.CompressedFragmented == 0 {
		t.Errorf("%s: no compressed message came in several frames", direction)
	}
}

// TestDeflateExactFit checks that without read context takeover (the
// default), ReceiveText(n) of a compressed text of exactly n bytes,
// ReceiveText(0) of an empty one among them, and ReceiveBinary into a
// buffer of exactly the message's length succeed, as they do for an
// uncompressed message.  What is left of such a message's payload once it
// has filled the buffer is the end of its DEFLATE data, which inflates
// to nothing: an empty stored block, as zlib (ws, browsers) ends a flush
// with one, or the first byte of the one of the flush whose last four
// bytes RFC 7692 removes.  The library once skipped that rest raw and
// took it for more of the message (ErrTooLarge), as the receive-calls
// cases of TestGoDialDeflateNodeServer found against ws.
//
// The messages come from a raw peer, which compresses as zlib does, and
// from our own Handler.
func TestDeflateExactFit(t *testing.T) {
	checkGoroutines(t)
	for _, c := range []struct {
		name   string
		server bool // our Handler, else the raw peer
		client websocket.CompressionOptions
	}{
		{"raw-peer", false, websocket.CompressionOptions{}},
		{"raw-peer-read-takeover", false, websocket.CompressionOptions{ServerContextTakeover: true}},
		{"our-server", true, websocket.CompressionOptions{}},
		{"our-server-read-takeover", true, websocket.CompressionOptions{ServerContextTakeover: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			messages := []struct {
				typ  websocket.MessageType
				data string
			}{{websocket.Text, ""}, {websocket.Text, "hello"}, {websocket.Binary, "hello"}}
			var addr string
			if c.server {
				srv := &goServer{}
				srv.start(t, &websocket.Handler{EnableCompression: true, Handle: srv.track(echo),
					CompressionOptions: websocket.CompressionOptions{ServerContextTakeover: true, Threshold: -1}})
				addr = srv.Listener.Addr().String()
			} else {
				var frames [][]byte
				for _, m := range messages {
					frames = append(frames, zlibStyleFrame(m.typ, []byte(m.data)))
				}
				answer := "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
				if c.client.ServerContextTakeover {
					answer = "permessage-deflate; client_no_context_takeover"
				}
				addr = rawDeflatePeer(t, answer, frames)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := websocket.Dial(ctx, "ws://"+addr+"/", &websocket.DialOptions{
				EnableCompression: true, CompressionOptions: c.client})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close(websocket.StatusOK, "")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))

			var failures []string
			for _, m := range messages {
				if c.server {
					if err := <-sendAsync(conn, m.typ, [][]byte{[]byte(m.data)}); err != nil {
						t.Fatal(err)
					}
				}
				var got string
				var err error
				if m.typ == websocket.Text {
					got, err = conn.ReceiveText(len(m.data))
				} else {
					buf := make([]byte, len(m.data))
					var n int
					n, err = conn.ReceiveBinary(buf)
					got = string(buf[:n])
				}
				if err != nil || got != m.data {
					failures = append(failures, fmt.Sprintf("receiving %v message %q into exactly %d bytes: %q, %v",
						m.typ, m.data, len(m.data), got, err))
				}
			}
			if len(failures) > 0 {
				t.Errorf("a compressed message that exactly fits:\n\t%s", strings.Join(failures, "\n\t"))
			}
		})
	}
}

// zlibStyleFrame returns a compressed message as zlib sends it: the data,
// a flush, and a second flush's empty stored block, less its last four
// bytes (RFC 7692, section 7.2.1), in one frame from a server.
func zlibStyleFrame(typ websocket.MessageType, data []byte) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestSpeed)
	fw.Write(data)
	fw.Flush()
	fw.Flush()
	payload := b.Bytes()[:b.Len()-4]
	op := byte(0x1)
	if typ == websocket.Binary {
		op = 0x2
	}
	return append([]byte{0x80 | 0x40 | op, byte(len(payload))}, payload...)
}

// rawDeflatePeer serves one WebSocket connection by hand on 127.0.0.1:
// it answers with the Sec-WebSocket-Extensions answer, sends frames,
// answers the client's close frame and hangs up.  It returns its address.
func rawDeflatePeer(t *testing.T, answer string, frames [][]byte) string {
	l := loopbackListener(t)
	done := make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: %s\r\n"+
			"Sec-WebSocket-Extensions: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]), answer)
		c.Write(bytes.Join(frames, nil))
		c.Read(make([]byte, 256)) // the client's close frame
		c.Write([]byte{0x88, 0x00})
	}()
	return l.Addr().String()
}
