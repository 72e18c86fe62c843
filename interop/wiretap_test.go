package interop

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireTap is a TCP relay on 127.0.0.1 that sits between a WebSocket client
// and its server and reads the frame headers going each way, so that a test
// can see what went over the wire: the Sec-WebSocket-Extensions answer of
// the handshake, which messages were compressed (RSV1 on their first frame),
// how they were fragmented, and whether RSV1 turned up where RFC 7692 does
// not allow it.  A relay rather than a wrapped net.Conn, so that both ends
// keep their plain TCP connections (the library reads and writes those
// through syscall.RawConn, which a wrapper would turn off).  The parser is
// written here from RFC 6455, section 5.2, independently of the library's.
type wireTap struct {
	target string // host:port the relay connects to
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*tappedConn
	open  map[net.Conn]bool // both ends of every relayed connection, for Cleanup
	done  bool
}

// tappedConn is one relayed TCP connection: what the client sent and what
// the server sent.
type tappedConn struct {
	toServer, toClient frameLog
}

// startWireTap relays connections to target until the test ends, when the
// relay and all its connections are closed and its goroutines waited for.
func startWireTap(t *testing.T, target string) *wireTap {
	t.Helper()
	w := &wireTap{target: target, ln: loopbackListener(t), open: map[net.Conn]bool{}}
	w.wg.Add(1)
	go w.accept()
	t.Cleanup(w.close)
	return w
}

// Addr is the host:port that clients connect to instead of the target.
func (w *wireTap) Addr() string { return w.ln.Addr().String() }

func (w *wireTap) accept() {
	defer w.wg.Done()
	for {
		client, err := w.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", w.target, 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		tc := &tappedConn{}
		w.mu.Lock()
		if w.done {
			w.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		w.conns = append(w.conns, tc)
		w.open[client], w.open[server] = true, true
		w.wg.Add(1)
		w.mu.Unlock()
		go w.relay(client, server, tc)
	}
}

// relay copies both ways, passing a half-close on, and closes both ends
// once both directions ended (or one of them failed).
func (w *wireTap) relay(client, server net.Conn, tc *tappedConn) {
	defer w.wg.Done()
	var both sync.WaitGroup
	both.Add(2)
	pipe := func(dst, src net.Conn, log *frameLog) {
		defer both.Done()
		// The log first: whatever a peer has received, the log has
		// seen.
		_, err := io.Copy(io.MultiWriter(log, dst), src)
		if err != nil {
			// A reset or a failed write: the other direction has
			// nothing left to do either.
			client.Close()
			server.Close()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	go pipe(server, client, &tc.toServer)
	go pipe(client, server, &tc.toClient)
	both.Wait()
	client.Close()
	server.Close()
	w.mu.Lock()
	delete(w.open, client)
	delete(w.open, server)
	w.mu.Unlock()
}

func (w *wireTap) close() {
	w.mu.Lock()
	w.done = true
	w.ln.Close()
	for c := range w.open {
		c.Close()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// wsConn is what the relay saw of one WebSocket connection.
type wsConn struct {
	Target   string // the request line's target, such as "/echo?id=x"
	Request  http.Header
	Response http.Header
	ToServer wireStats
	ToClient wireStats
}

// Answer is the server's Sec-WebSocket-Extensions, "" if it sent none.
func (c *wsConn) Answer() string {
	return strings.Join(c.Response.Values("Sec-WebSocket-Extensions"), ", ")
}

// Offer is the client's Sec-WebSocket-Extensions.
func (c *wsConn) Offer() string {
	return strings.Join(c.Request.Values("Sec-WebSocket-Extensions"), ", ")
}

// WebSockets returns the relayed connections that became WebSocket
// connections (101 answer), in the order they were accepted.  The other
// ones (page loads and the like) are left out.
func (w *wireTap) WebSockets() []wsConn {
	w.mu.Lock()
	conns := append([]*tappedConn(nil), w.conns...)
	w.mu.Unlock()
	var out []wsConn
	for _, tc := range conns {
		reqLine, req := tc.toServer.handshake()
		respLine, resp := tc.toClient.handshake()
		if !strings.HasPrefix(respLine, "HTTP/1.1 101 ") {
			continue
		}
		target := ""
		if f := strings.Fields(reqLine); len(f) == 3 {
			target = f[1]
		}
		out = append(out, wsConn{Target: target, Request: req, Response: resp,
			ToServer: tc.toServer.stats(), ToClient: tc.toClient.stats()})
	}
	return out
}

// wireStats counts the frames of one direction.
type wireStats struct {
	Bytes      int64 // on the wire, after the handshake
	Frames     int   // all frames, control frames included
	Messages   int   // data messages begun (text or binary first frames)
	Compressed int   // of those, the ones with RSV1 (permessage-deflate)
	Fragmented int   // data messages of more than one frame
	// CompressedFragmented counts compressed messages of more than one
	// frame, whose continuation frames must not have RSV1.
	CompressedFragmented int
	Errors               []string // frames that break RFC 6455 or RFC 7692
}

func (s wireStats) String() string {
	return fmt.Sprintf("%d bytes, %d frames, %d messages (%d compressed, %d fragmented, %d both)",
		s.Bytes, s.Frames, s.Messages, s.Compressed, s.Fragmented, s.CompressedFragmented)
}

// frameLog parses one direction of a relayed connection as it passes: the
// HTTP head of the handshake, then frame headers, skipping the payloads.
type frameLog struct {
	mu       sync.Mutex
	head     []byte // the handshake's head, up to its empty line
	headDone bool
	hdr      []byte // a frame header being collected
	skip     uint64 // payload bytes of the current frame still to come

	inMessage  bool // a data message has begun and not ended
	compressed bool // and it has RSV1
	frames     int  // frames of the message in progress
	st         wireStats
}

const maxHead = 16 << 10

func (l *frameLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for !l.headDone && len(p) > 0 {
		l.head = append(l.head, p[0])
		p = p[1:]
		l.headDone = bytes.HasSuffix(l.head, []byte("\r\n\r\n")) || len(l.head) >= maxHead
	}
	l.st.Bytes += int64(len(p))
	for len(p) > 0 {
		if l.skip > 0 {
			k := uint64(len(p))
			if k > l.skip {
				k = l.skip
			}
			l.skip -= k
			p = p[k:]
			continue
		}
		l.hdr = append(l.hdr, p[0])
		p = p[1:]
		if need := frameHeaderLen(l.hdr); need > 0 && len(l.hdr) == need {
			l.frame(l.hdr)
			l.hdr = l.hdr[:0]
		}
	}
	return n, nil
}

// frameHeaderLen returns the length of the frame header that hdr begins,
// or 0 if hdr is too short to tell.
func frameHeaderLen(hdr []byte) int {
	if len(hdr) < 2 {
		return 0
	}
	n := 2
	switch hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if hdr[1]&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

// frame takes in a whole frame header.
func (l *frameLog) frame(hdr []byte) {
	fin, rsv1, rsv23, op := hdr[0]&0x80 != 0, hdr[0]&0x40 != 0, hdr[0]&0x30 != 0, hdr[0]&0x0f
	var size uint64
	switch n := hdr[1] & 0x7f; n {
	case 126:
		size = uint64(hdr[2])<<8 | uint64(hdr[3])
	case 127:
		for _, b := range hdr[2:10] {
			size = size<<8 | uint64(b)
		}
	default:
		size = uint64(n)
	}
	l.skip = size
	l.st.Frames++
	fail := func(format string, args ...any) {
		if len(l.st.Errors) < 10 {
			l.st.Errors = append(l.st.Errors, fmt.Sprintf("frame %d: ", l.st.Frames)+fmt.Sprintf(format, args...))
		}
	}
	if rsv23 {
		fail("RSV2 or RSV3 set (%#x)", hdr[0])
	}
	switch {
	case op >= 0x8: // control
		if rsv1 {
			fail("RSV1 on control frame %#x", op)
		}
		if !fin {
			fail("fragmented control frame %#x", op)
		}
		return
	case op == 0x1 || op == 0x2:
		if l.inMessage {
			fail("data frame %#x inside a fragmented message", op)
		}
		l.st.Messages++
		if rsv1 {
			l.st.Compressed++
		}
		l.inMessage, l.compressed, l.frames = true, rsv1, 0
	case op == 0x0:
		if rsv1 {
			fail("RSV1 on a continuation frame (RFC 7692, section 6: first frame only)")
		}
		if !l.inMessage {
			fail("continuation frame outside a message")
		}
	default:
		fail("reserved opcode %#x", op)
		return
	}
	l.frames++
	if fin && l.inMessage {
		if l.frames > 1 {
			l.st.Fragmented++
			if l.compressed {
				l.st.CompressedFragmented++
			}
		}
		l.inMessage = false
	}
}

// handshake returns the first line of the head and its header fields.
func (l *frameLog) handshake() (string, http.Header) {
	l.mu.Lock()
	head := string(l.head)
	l.mu.Unlock()
	line, rest, _ := strings.Cut(head, "\r\n")
	h := http.Header{}
	for _, field := range strings.Split(rest, "\r\n") {
		if name, value, ok := strings.Cut(field, ":"); ok {
			h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	}
	return line, h
}

func (l *frameLog) stats() wireStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Errors = append([]string(nil), st.Errors...)
	return st
}
