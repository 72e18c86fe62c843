package websocket

// A battery of attacks by a hostile client against the server side:
// malformed frames, absurd lengths, slow and vanishing peers, floods,
// peers that never read, handshake abuse, Shutdown under stress and
// concurrent use of every method.  Every loop is bounded in count and
// time, and everything stays on 127.0.0.1.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------
// Helpers

// hostileKey is the masking key of the frames built here.
var hostileKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// hostileFrame builds a masked client frame whose header announces
// length in the given encoding (7, 16 or 64 bits), whatever the length
// of payload, which follows the header.
func hostileFrame(first byte, enc int, length uint64, payload []byte) []byte {
	b := []byte{first}
	switch enc {
	case 7:
		b = append(b, 0x80|byte(length))
	case 16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(length))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, length)
	}
	b = append(b, hostileKey[:]...)
	for i, c := range payload {
		b = append(b, c^hostileKey[i%4])
	}
	return b
}

// outcome is what a server-side handler saw of its connection.
type outcome struct {
	recvErr error // the error that ended receiving, if it received
	code    Status
	reason  string
	cause   error // conn.Err()
	elapsed time.Duration
}

// reportingHandle returns a Handle function that receives and discards
// messages until an error if receive is set, or else never receives,
// and reports the end of the connection on out.
func reportingHandle(out chan<- outcome, receive bool) func(*Conn) {
	return func(c *Conn) {
		start := time.Now()
		var err error
		if receive {
			for range 100000 {
				var r io.Reader
				if _, r, err = c.ReceiveMessage(); err != nil {
					break
				}
				if _, err = io.Copy(io.Discard, r); err != nil {
					break
				}
			}
		}
		code, reason := c.GetStatus()
		out <- outcome{err, code, reason, c.Err(), time.Since(start)}
		c.Close(StatusOK, "")
	}
}

// writeWhole writes b in writes of step each, completing one that its
// deadline cut off, so that a flooding peer's stream stays whole frames
// (a frame broken off would have the server read garbage).  It stops
// early when stop is closed, and returns the first error other than a
// deadline's.
func writeWhole(conn net.Conn, b []byte, step time.Duration, stop <-chan struct{}) error {
	for len(b) > 0 {
		select {
		case <-stop:
			return net.ErrClosed
		default:
		}
		conn.SetWriteDeadline(time.Now().Add(step))
		n, err := conn.Write(b)
		b = b[n:]
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return nil
}

// awaitOutcome waits for a handler's report.
func awaitOutcome(t *testing.T, out <-chan outcome, timeout time.Duration) outcome {
	t.Helper()
	select {
	case o := <-out:
		return o
	case <-time.After(timeout):
		buf := make([]byte, 1<<20)
		t.Fatalf("the server's handler did not finish within %v; goroutines:\n%s", timeout, buf[:runtime.Stack(buf, true)])
	}
	return outcome{}
}

// liveHeap returns the bytes of live heap objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rxFrame is a frame received by a raw peer.
type rxFrame struct {
	fin     bool
	op      opcode
	payload []byte
}

// collectFrames reads frames from p on a goroutine of its own until an
// error (the peer's deadline bounds it); the channel is closed then.
func collectFrames(p *rawPeer) <-chan rxFrame {
	ch := make(chan rxFrame, 1<<16)
	go func() {
		defer close(ch)
		for range 1 << 20 {
			fin, op, payload, err := p.readFrame()
			if err != nil {
				return
			}
			ch <- rxFrame{fin, op, payload}
		}
	}()
	return ch
}

// closeCode returns the status code in a close frame's payload.
func closeCode(payload []byte) Status {
	if len(payload) < 2 {
		return StatusNotSent
	}
	return Status(binary.BigEndian.Uint16(payload))
}

// waitCloseFrame reads frames until a close frame and returns its code,
// or fails after timeout.
func waitCloseFrame(t *testing.T, frames <-chan rxFrame, timeout time.Duration) Status {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("the connection ended without a close frame")
			}
			if f.op == opClose {
				return closeCode(f.payload)
			}
		case <-deadline:
			t.Fatalf("no close frame within %v", timeout)
		}
	}
}

// raceOn reports whether the race detector is on, which slows
// everything down by an order of magnitude.
var raceOn = func() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}()

// rst makes the next Close of the peer's socket send a TCP reset.
func rst(p *rawPeer) { p.conn.(*net.TCPConn).SetLinger(0) }

// serverTCP returns the TCP connection under a server-side Conn.
func serverTCP(c *Conn) *net.TCPConn { return c.netConn.(*net.TCPConn) }

// ---------------------------------------------------------------------
// Frame headers

// TestHostileEveryFirstByte sends one frame with every value of the
// first header byte (FIN, the three reserved bits, all 16 opcodes), to
// a handler that receives and to one that never does.  Reserved bits,
// reserved opcodes and fragmented control frames must fail with 1002;
// everything else must be handled and the closing handshake completed.
func TestHostileEveryFirstByte(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	for _, idle := range []bool{false, true} {
		out := make(chan outcome, 1)
		url := startServer(t, &Handler{Handle: func(c *Conn) {
			if !idle {
				echoHandler(c)
			}
			code, reason := c.GetStatus()
			out <- outcome{code: code, reason: reason, cause: c.Err()}
			c.Close(StatusOK, "")
		}})
		for first := range 256 {
			fin, rsv, op := first&0x80 != 0, first&0x70, opcode(first&0x0F)
			payload := "xy"
			switch op {
			case opClose:
				payload = closePayloadOf(StatusGoingAway, "bye")
			case opText, opContinuation:
				payload = "héllo"
			}
			name := fmt.Sprintf("idle=%v first=%#02x", idle, first)
			p := dialRaw(t, url, nil)
			p.write(encodeFrame(byte(first), []byte(payload), true))
			illegal := rsv != 0 || !op.IsKnown() || (op.IsControl() && !fin)
			want, wantStatus := StatusProtocolError, StatusDropped
			switch {
			case illegal:
			case op == opClose:
				want, wantStatus = StatusGoingAway, StatusGoingAway
			default:
				if op == opPing {
					if _, got, pl, err := p.readFrame(); err != nil || got != opPong || string(pl) != payload {
						t.Fatalf("%s: got %v %q %v, want the pong", name, got, pl, err)
					}
				}
				if !idle && fin && (op == opText || op == opBinary) {
					if got, msg := p.readMessage(); got != op || msg != payload {
						t.Fatalf("%s: echo %v %q", name, got, msg)
					}
				}
				p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
				want, wantStatus = StatusOK, StatusOK
				if op == opContinuation && !idle {
					// 1002.  Our close frame is already on its way;
					// whether the failed connection still reads it
					// is up to the server (RFC 6455, section 7.1.7,
					// lets it stop processing data): 1000 or 1006.
					want, wantStatus = StatusProtocolError, 0
				}
			}
			p.expectClose(want)
			o := awaitOutcome(t, out, 5*time.Second)
			if o.code != wantStatus && !(wantStatus == 0 && (o.code == StatusOK || o.code == StatusDropped)) {
				t.Errorf("%s: server GetStatus %v (%v), want %v", name, o.code, o.cause, wantStatus)
			}
		}
	}
}

// TestHostileHugeLengths announces 64-bit lengths near the int64 limit
// and with the top bit set, for data and control frames, first frames
// and continuations, against handlers with and without a read limit and
// with each receive call.  Nothing may panic or allocate by the
// announced length; the codes must be 1002 (top bit, control frame),
// 1009 (over the limit) or 1008 (the deadline passes in the payload).
func TestHostileHugeLengths(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	lengths := []uint64{1<<63 - 1, 1<<63 - 2, 1 << 62, 1 << 32, 1<<31 - 1, 1 << 31, 1 << 63, 1<<63 + 125, math.MaxUint64}
	receivers := map[string]func(*Conn) error{
		"ReceiveMessage": func(c *Conn) error {
			_, r, err := c.ReceiveMessage()
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			return err
		},
		"ReceiveText": func(c *Conn) error { _, err := c.ReceiveText(math.MaxInt); return err },
		"ReceiveBinary": func(c *Conn) error {
			_, err := c.ReceiveBinary(make([]byte, 1<<20))
			return err
		},
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for rname, receive := range receivers {
		for _, limit := range []int64{0, 1 << 20} {
			out := make(chan error, 1)
			url := startServer(t, &Handler{ReadLimit: limit, Handle: func(c *Conn) {
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				out <- receive(c)
				c.Close(StatusOK, "")
			}})
			for _, n := range lengths {
				for _, op := range []opcode{opBinary, opText, opPing, opClose, opContinuation} {
					for _, fragmented := range []bool{false, true} {
						if fragmented && op.IsControl() {
							continue
						}
						name := fmt.Sprintf("%s limit=%d len=%#x op=%v fragmented=%v", rname, limit, n, op, fragmented)
						var msg []byte
						first := byte(op) | 0x80
						if fragmented {
							// A complete first fragment, then the huge
							// continuation.
							ftype := op
							if op == opContinuation {
								ftype = opBinary
							}
							msg = frame(false, ftype, "0123456789")
							first = 0x80 | byte(opContinuation)
						}
						msg = append(msg, hostileFrame(first, 64, n, []byte("some bytes"))...)
						var want Status
						switch {
						case n >= 1<<63:
							want = StatusProtocolError
						case op.IsControl():
							want = StatusProtocolError
						case op == opContinuation && !fragmented:
							want = StatusProtocolError
						case fragmented && n > math.MaxInt64-10:
							want = StatusTooLarge // the sum overflows
						case limit > 0:
							want = StatusTooLarge
						default:
							want = StatusPolicyViolation // the deadline passes
						}
						p := dialRaw(t, url, nil)
						p.write(msg)
						p.expectClose(want)
						select {
						case err := <-out:
							if err == nil {
								t.Errorf("%s: the receive succeeded", name)
							}
						case <-time.After(5 * time.Second):
							t.Fatalf("%s: the receive did not return", name)
						}
					}
				}
			}
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 512<<20 {
		t.Errorf("the attacks allocated %d MiB in total", d>>20)
	}
}

// TestHostileHugeLengthIdle sends a data frame announcing 2^63-1 bytes
// to a handler that never receives, then a ping, which is payload now:
// no pong can come, and the connection must end when the peer goes.
func TestHostileHugeLengthIdle(t *testing.T) {
	checkGoroutines(t)
	out := make(chan outcome, 1)
	url := startServer(t, &Handler{Handle: reportingHandle(out, false)})
	p := dialRaw(t, url, nil)
	p.write(hostileFrame(0x82, 64, 1<<63-1, []byte("abc")), frame(true, opPing, "p"))
	p.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, op, _, err := p.readFrame(); err == nil {
		t.Fatalf("got a %v frame from inside a payload", op)
	}
	p.conn.Close()
	if o := awaitOutcome(t, out, 5*time.Second); o.code != StatusDropped {
		t.Errorf("GetStatus %v, want StatusDropped", o.code)
	}
}

// TestHostileControlFrameSizes sends control frames of 126 bytes and
// more, in every length encoding, and short ones in longer encodings
// than needed.
func TestHostileControlFrameSizes(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	p125 := []byte(strings.Repeat("p", 125))
	cases := []struct {
		name  string
		frame []byte
		want  Status // 0: must be accepted; the pong is checked for pings
		pong  string
	}{
		{"ping 125", hostileFrame(0x89, 7, 125, p125), 0, string(p125)},
		{"ping 126 (16-bit)", hostileFrame(0x89, 16, 126, []byte(strings.Repeat("p", 126))), StatusProtocolError, ""},
		{"pong 126 (16-bit)", hostileFrame(0x8A, 16, 126, []byte(strings.Repeat("p", 126))), StatusProtocolError, ""},
		{"close 126 (16-bit)", hostileFrame(0x88, 16, 126, []byte(closePayloadOf(1000, strings.Repeat("r", 124)))), StatusProtocolError, ""},
		{"ping 65535 announced", hostileFrame(0x89, 16, 65535, nil), StatusProtocolError, ""},
		{"ping 200 (64-bit)", hostileFrame(0x89, 64, 200, []byte(strings.Repeat("p", 200))), StatusProtocolError, ""},
		{"ping 2^63-1 announced", hostileFrame(0x89, 64, 1<<63-1, nil), StatusProtocolError, ""},
		{"close 2^40 announced", hostileFrame(0x88, 64, 1<<40, nil), StatusProtocolError, ""},
		{"close code+123-byte reason", hostileFrame(0x88, 7, 125, []byte(closePayloadOf(4000, strings.Repeat("r", 123)))), 4000, ""},
	}
	for _, idle := range []bool{false, true} {
		out := make(chan outcome, 1)
		url := startServer(t, &Handler{Handle: reportingHandle(out, !idle)})
		for _, tc := range cases {
			name := fmt.Sprintf("%s idle=%v", tc.name, idle)
			p := dialRaw(t, url, nil)
			p.write(tc.frame)
			want := tc.want
			if want == 0 {
				if _, op, pl, err := p.readFrame(); err != nil || op != opPong || string(pl) != tc.pong {
					t.Fatalf("%s: got %v %d bytes %v, want the pong", name, op, len(pl), err)
				}
				p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
				want = StatusOK
			}
			p.expectClose(want)
			awaitOutcome(t, out, 5*time.Second)
		}
		// Longer length encodings than needed: RFC 6455 asks for the
		// minimal one.  Accepting them is lenient but harmless; what
		// matters is an answer, not a hang.
		for _, enc := range []int{16, 64} {
			p := dialRaw(t, url, nil)
			p.write(hostileFrame(0x89, enc, 5, []byte("hello")))
			_, op, pl, err := p.readFrame()
			switch {
			case err != nil:
				t.Fatalf("non-minimal %d-bit ping: %v", enc, err)
			case op == opPong && string(pl) == "hello":
				p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
				p.expectClose(StatusOK)
			case op == opClose && closeCode(pl) == StatusProtocolError:
				p.expectEOF()
			default:
				t.Fatalf("non-minimal %d-bit ping: got %v %q", enc, op, pl)
			}
			awaitOutcome(t, out, 5*time.Second)
		}
	}
}

// TestHostileHeaderByteByByte sends every frame header one byte at a
// time with pauses longer than the receiver grace period (so that the
// read side changes hands between bytes), to a receiving handler, a
// handler whose receives time out between the bytes, and a handler
// that starts receiving late.
func TestHostileHeaderByteByByte(t *testing.T) {
	checkGoroutines(t)
	text300 := strings.Repeat("€uro", 50) // 300 bytes, 16-bit length
	bin := make([]byte, 70000)            // 64-bit length
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	frames := [][]byte{
		frame(true, opText, "hello"),
		frame(true, opPing, "p1"),
		frame(true, opText, text300),
		encodeFrame(0x82, bin, true),
		frame(false, opText, "ab"),
		frame(true, opPing, "p2"),
		frame(true, opContinuation, "cd"),
		frame(true, opPong, "unsolicited"),
	}
	wantMsgs := []string{"hello", text300, string(bin), "abcd"}
	headerLen := func(f []byte) int {
		n := 2 + 4
		switch f[1] & 0x7F {
		case 126:
			n += 2
		case 127:
			n += 8
		}
		return n
	}
	modes := map[string]func(*Conn){
		"echo": echoHandler,
		"deadlines": func(c *Conn) {
			// Every receive has a 1 ms deadline, which passes
			// between the header bytes; the deadline is cleared
			// once a message has begun.
			defer c.Close(StatusOK, "")
			for range 20000 {
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				tp, r, err := c.ReceiveMessage()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				if err != nil {
					return
				}
				c.SetReadDeadline(time.Time{})
				b, err := io.ReadAll(r)
				if err != nil {
					return
				}
				if tp == Text {
					c.SendText(string(b))
				} else {
					c.SendBinary(b)
				}
			}
		},
		"late": func(c *Conn) {
			time.Sleep(400 * time.Millisecond)
			echoHandler(c)
		},
	}
	for name, handle := range modes {
		statuses := make(chan [2]any, 1)
		h := handle
		// Keep-alive for the deadline mode only: the late handler would
		// (as documented) fail with 1008 once the 70000-byte frame
		// fills its read-ahead while the peer answers no pings.
		var ping time.Duration
		if name == "deadlines" {
			ping = 50 * time.Millisecond
		}
		url := startServer(t, &Handler{PingInterval: ping, Handle: func(c *Conn) {
			go func() {
				code, reason := c.GetStatus()
				statuses <- [2]any{code, reason}
			}()
			h(c)
		}})
		p := dialRaw(t, url, nil)
		p.conn.SetDeadline(time.Now().Add(30 * time.Second))
		rx := collectFrames(p)
		for _, f := range append(frames, frame(true, opClose, closePayloadOf(StatusOK, "done"))) {
			hl := headerLen(f)
			for i := range hl {
				if _, err := p.conn.Write(f[i : i+1]); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				time.Sleep(3 * time.Millisecond)
			}
			for off := hl; off < len(f); off += 16 << 10 {
				if _, err := p.conn.Write(f[off:min(off+16<<10, len(f))]); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				time.Sleep(time.Millisecond)
			}
		}
		var msgs []string
		var pongs []string
		var cur []byte
		closed := false
		for f := range rx {
			switch f.op {
			case opPong:
				pongs = append(pongs, string(f.payload))
			case opPing:
				// keep-alive pings: fine
			case opClose:
				if c := closeCode(f.payload); c != StatusOK {
					t.Errorf("%s: close code %v", name, c)
				}
				closed = true
			default:
				cur = append(cur, f.payload...)
				if f.fin {
					msgs = append(msgs, string(cur))
					cur = nil
				}
			}
		}
		if !closed {
			t.Errorf("%s: no close frame", name)
		}
		if len(msgs) != len(wantMsgs) {
			var lens []int
			for _, m := range msgs {
				lens = append(lens, len(m))
			}
			t.Errorf("%s: %d messages echoed, want %d: lengths %v, pongs %q, cur %d", name, len(msgs), len(wantMsgs), lens, pongs, len(cur))
		} else {
			for i := range msgs {
				if msgs[i] != wantMsgs[i] {
					t.Errorf("%s: message %d differs (%d bytes, want %d)", name, i, len(msgs[i]), len(wantMsgs[i]))
				}
			}
		}
		if strings.Join(pongs, ",") != "p1,p2" {
			t.Errorf("%s: pongs %q, want p1, p2", name, pongs)
		}
		select {
		case st := <-statuses:
			if st[0] != StatusOK || st[1] != "done" {
				t.Errorf("%s: GetStatus %v %q", name, st[0], st[1])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: GetStatus did not return", name)
		}
	}
}

// ---------------------------------------------------------------------
// Pings

// TestHostilePingFloodRead sends a flood of pings and reads the pongs,
// to a receiving and to an idle handler.  The answers may be coalesced
// (RFC 6455 allows answering only the latest), but the last ping must
// be answered, the server's memory must stay flat, and the flood must
// go through in bounded time.
func TestHostilePingFloodRead(t *testing.T) {
	checkGoroutines(t)
	n := 20000
	if raceOn {
		n = 5000
	}
	for _, idle := range []bool{false, true} {
		out := make(chan outcome, 1)
		url := startServer(t, &Handler{Handle: reportingHandle(out, !idle)})
		p := dialRaw(t, url, nil)
		p.conn.SetDeadline(time.Now().Add(60 * time.Second))
		rx := collectFrames(p)
		base := liveHeap()
		var peak atomic.Uint64
		stopSampling := make(chan struct{})
		go func() {
			for range 10000 {
				select {
				case <-stopSampling:
					return
				case <-time.After(20 * time.Millisecond):
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}()
		start := time.Now()
		batch := make([]byte, 0, 64<<10)
		for i := range n {
			batch = append(batch, frame(true, opPing, fmt.Sprintf("%0100d", i))...)
			if len(batch) > 60<<10 || i == n-1 {
				p.write(batch)
				batch = batch[:0]
			}
		}
		p.write(frame(true, opPing, "last"))
		pongs := 0
		var lastPong string
	wait:
		for {
			select {
			case f, ok := <-rx:
				if !ok {
					t.Fatalf("idle=%v: connection ended after %d pongs", idle, pongs)
				}
				if f.op != opPong {
					t.Fatalf("idle=%v: got %v", idle, f.op)
				}
				pongs++
				lastPong = string(f.payload)
				if lastPong == "last" {
					break wait
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("idle=%v: no pong for the last ping after %d pongs (last %q)", idle, pongs, lastPong)
			}
		}
		close(stopSampling)
		t.Logf("idle=%v: %d pings answered with %d pongs in %v; heap peak +%d KiB", idle, n+1, pongs, time.Since(start).Round(time.Millisecond), int64(peak.Load()-min(base, peak.Load()))>>10)
		if g := int64(peak.Load()) - int64(base); g > 16<<20 {
			t.Errorf("idle=%v: heap grew by %d MiB during the flood", idle, g>>20)
		}
		p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
		waitCloseFrame(t, rx, 5*time.Second)
		if o := awaitOutcome(t, out, 5*time.Second); o.code != StatusOK {
			t.Errorf("idle=%v: GetStatus %v", idle, o.code)
		}
	}
}

// TestHostilePingFloodNoRead floods pings and never reads the pongs,
// against a receiving handler, an idle one and one that also sends.
// The server must not queue pongs without bound: once the peer's
// socket is full, the write timeout must end the connection.
func TestHostilePingFloodNoRead(t *testing.T) {
	checkGoroutines(t)
	const writeTimeout = 500 * time.Millisecond
	modes := []string{"receiving", "idle", "sending"}
	for _, mode := range modes {
		out := make(chan outcome, 1)
		url := startServer(t, &Handler{WriteTimeout: writeTimeout, Handle: func(c *Conn) {
			serverTCP(c).SetWriteBuffer(8 << 10)
			if mode == "sending" {
				go func() {
					msg := strings.Repeat("s", 1000)
					for range 1 << 20 {
						if c.SendText(msg) != nil {
							return
						}
					}
				}()
			}
			reportingHandle(out, mode != "idle")(c)
		}})
		// The peer keeps its default receive buffer: one much smaller
		// than a loopback segment drops the server's segments, and
		// with them the window updates they carry, which stalls the
		// flood for the seconds of TCP's retransmission backoff.
		p := dialRaw(t, url, nil)
		base := liveHeap()
		var peak atomic.Uint64
		ping := frame(true, opPing, strings.Repeat("x", 125))
		batch := make([]byte, 0, len(ping)*256)
		for range 256 {
			batch = append(batch, ping...)
		}
		var sent atomic.Int64
		floodDone := make(chan struct{})
		go func() {
			defer close(floodDone)
			end := time.Now().Add(15 * time.Second)
			// A write cut off by its deadline is completed by the
			// next, so that the stream stays whole frames.
			rest := batch
			for time.Now().Before(end) {
				p.conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
				n, err := p.conn.Write(rest)
				sent.Add(int64(n))
				if rest = rest[n:]; len(rest) == 0 {
					rest = batch
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
				if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					return
				}
			}
		}()
		o := awaitOutcome(t, out, 20*time.Second)
		p.conn.Close()
		<-floodDone
		t.Logf("%s: %d KiB of pings sent; ended after %v with %v (%v); heap peak +%d KiB", mode, sent.Load()>>10,
			o.elapsed.Round(time.Millisecond), o.code, o.cause, (int64(peak.Load())-int64(base))>>10)
		if o.code != StatusDropped {
			t.Errorf("%s: GetStatus %v, want StatusDropped", mode, o.code)
		}
		if g := int64(peak.Load()) - int64(base); g > 16<<20 {
			t.Errorf("%s: heap grew by %d MiB", mode, g>>20)
		}
	}
}

// TestHostileReadDeadlineWhilePongBlocked: the peer floods pings and
// never reads, so that answering them blocks on a full socket.  A
// receive call whose read deadline is 200 ms must still return within
// about that time ("every wait is bounded by something the user can
// set"; SetReadDeadline "bounds the receive calls"), not after the
// write timeout.
func TestHostileReadDeadlineWhilePongBlocked(t *testing.T) {
	checkGoroutines(t)
	const writeTimeout = 4 * time.Second
	const readDeadline = 200 * time.Millisecond
	for _, idleFirst := range []bool{true, false} {
		type result struct {
			err     error
			elapsed time.Duration
		}
		start := make(chan struct{})
		results := make(chan result, 1)
		url := startServer(t, &Handler{WriteTimeout: writeTimeout, Handle: func(c *Conn) {
			defer c.Close(StatusOK, "")
			serverTCP(c).SetWriteBuffer(8 << 10)
			if idleFirst {
				<-start // nobody receives until the pongs are stuck
				t0 := time.Now()
				c.SetReadDeadline(t0.Add(readDeadline))
				_, err := c.ReceiveText(100)
				results <- result{err, time.Since(t0)}
				return
			}
			// Receives in a loop, each call bounded by the deadline.
			worst := result{}
			for range 1000 {
				t0 := time.Now()
				c.SetReadDeadline(t0.Add(readDeadline))
				_, err := c.ReceiveText(100)
				if d := time.Since(t0); d > worst.elapsed {
					worst = result{err, d}
				}
				if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
			}
			results <- worst
		}})
		p := dialRaw(t, url, nil)
		p.conn.(*net.TCPConn).SetReadBuffer(4096)
		ping := frame(true, opPing, strings.Repeat("x", 125))
		batch := make([]byte, 0, len(ping)*64)
		for range 64 {
			batch = append(batch, ping...)
		}
		// Flood until a write makes no progress for 300 ms: the
		// server has stopped reading, stuck on a pong.
		stuck := false
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
			p.conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := p.conn.Write(batch); err != nil {
				stuck = errors.Is(err, os.ErrDeadlineExceeded)
				break
			}
		}
		if !stuck {
			t.Fatalf("idleFirst=%v: the flood never stalled", idleFirst)
		}
		close(start)
		select {
		case r := <-results:
			results <- r
		case <-time.After(readDeadline + time.Second):
			// Still waiting, long past the deadline: show where.
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "ReceiveText") {
					t.Logf("idleFirst=%v: the receive, past its deadline:\n%s", idleFirst, g)
				}
			}
		}
		select {
		case r := <-results:
			t.Logf("idleFirst=%v: slowest receive took %v and returned %v", idleFirst, r.elapsed.Round(time.Millisecond), r.err)
			if r.elapsed > readDeadline+time.Second {
				t.Errorf("idleFirst=%v: a receive with a %v read deadline took %v (returned %v): the deadline did not bound it",
					idleFirst, readDeadline, r.elapsed.Round(time.Millisecond), r.err)
			}
		case <-time.After(writeTimeout + 10*time.Second):
			t.Fatalf("idleFirst=%v: the receive never returned", idleFirst)
		}
		p.conn.Close()
	}
}

// TestHostilePingsInsideFragments sends a text message in 200 fragments,
// its multi-byte characters split across fragment boundaries, with a
// ping between every two fragments and unsolicited pongs, to an echo
// handler, a ReceiveText handler and one that starts receiving late.
func TestHostilePingsInsideFragments(t *testing.T) {
	checkGoroutines(t)
	text := strings.Repeat("€", 200) // 600 bytes
	var frames []byte
	for i := range 200 {
		part := text[i*3 : i*3+3]
		// Split each character across two fragments.
		a, b := part[:1], part[1:]
		if i == 0 {
			frames = append(frames, frame(false, opText, a)...)
		} else {
			frames = append(frames, frame(false, opContinuation, a)...)
		}
		frames = append(frames, frame(true, opPing, fmt.Sprint(i))...)
		if i%3 == 0 {
			frames = append(frames, frame(true, opPong, "?")...)
		}
		frames = append(frames, frame(i == 199, opContinuation, b)...)
	}
	modes := map[string]func(*Conn){
		"echo": echoHandler,
		"ReceiveText": func(c *Conn) {
			defer c.Close(StatusOK, "")
			s, err := c.ReceiveText(1 << 20)
			if err == nil {
				c.SendText(s)
			}
			c.ReceiveMessage()
		},
		"late": func(c *Conn) { time.Sleep(300 * time.Millisecond); echoHandler(c) },
	}
	for name, h := range modes {
		url := startServer(t, &Handler{Handle: h})
		p := dialRaw(t, url, nil)
		rx := collectFrames(p)
		p.write(frames)
		var pongs []string
		var msg []byte
		for f := range rx {
			switch f.op {
			case opPong:
				pongs = append(pongs, string(f.payload))
			case opText, opContinuation:
				msg = append(msg, f.payload...)
				if f.fin {
					p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
				}
			case opClose:
				p.conn.Close()
			}
		}
		if string(msg) != text {
			t.Errorf("%s: echoed %d bytes, want %d", name, len(msg), len(text))
		}
		if len(pongs) != 200 || pongs[0] != "0" || pongs[199] != "199" {
			t.Errorf("%s: %d pongs (%v...), want 200 in order", name, len(pongs), pongs[:min(len(pongs), 3)])
		}
	}
}

// TestHostilePingWhileReaderPaused: the application has begun a message
// and stopped reading in its middle.  A ping that arrives behind the
// rest of the fragment must be answered while it pauses.
func TestHostilePingWhileReaderPaused(t *testing.T) {
	checkGoroutines(t)
	paused := make(chan struct{})
	done := make(chan string, 1)
	url := startServer(t, &Handler{Handle: func(c *Conn) {
		defer c.Close(StatusOK, "")
		_, r, err := c.ReceiveMessage()
		if err != nil {
			done <- err.Error()
			return
		}
		one := make([]byte, 1)
		io.ReadFull(r, one)
		close(paused)
		time.Sleep(500 * time.Millisecond)
		rest, err := io.ReadAll(r)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(one) + string(rest)
		c.ReceiveMessage()
	}})
	p := dialRaw(t, url, nil)
	first := frame(false, opBinary, "0123456789")
	p.write(first[:len(first)-5])
	<-paused
	p.write(first[len(first)-5:], frame(true, opPing, "while paused"), frame(true, opContinuation, "abc"))
	p.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, op, pl, err := p.readFrame()
	if err != nil || op != opPong || string(pl) != "while paused" {
		t.Errorf("ping during the pause: got %v %q %v, want the pong within 300 ms", op, pl, err)
	}
	if got := <-done; got != "0123456789abc" {
		t.Errorf("message %q", got)
	}
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectClose(StatusOK)
}

// ---------------------------------------------------------------------
// Closing

// TestHostileCloseFrames sends close frames with every kind of invalid
// code and reason, and valid ones, to receiving and idle handlers.
func TestHostileCloseFrames(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	type tc struct {
		payload string
		want    Status // the code the server answers with
		status  Status // what GetStatus reports
	}
	var cases []tc
	for _, code := range []int{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cases = append(cases, tc{closePayloadOf(Status(code), "x"), StatusProtocolError, StatusNotSent})
	}
	for _, code := range []Status{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999} {
		cases = append(cases, tc{closePayloadOf(code, "reason"), code, code})
	}
	for _, reason := range []string{"\xff", "\x80", "ok\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80", strings.Repeat("é", 61) + "\xc3"} {
		cases = append(cases, tc{closePayloadOf(StatusOK, reason), StatusInvalidData, StatusOK})
	}
	cases = append(cases,
		tc{"\x03", StatusProtocolError, StatusNotSent},
		tc{"", StatusNotSent, StatusNotSent},
		tc{closePayloadOf(StatusOK, strings.Repeat("é", 61)+"x"), StatusOK, StatusOK}, // 123 bytes
	)
	for _, idle := range []bool{false, true} {
		out := make(chan outcome, 1)
		url := startServer(t, &Handler{Handle: reportingHandle(out, !idle)})
		for _, c := range cases {
			name := fmt.Sprintf("idle=%v close % x", idle, c.payload[:min(len(c.payload), 8)])
			p := dialRaw(t, url, nil)
			p.write(frame(true, opClose, c.payload))
			p.expectClose(c.want)
			o := awaitOutcome(t, out, 5*time.Second)
			if o.code != c.status {
				t.Errorf("%s: GetStatus %v, want %v", name, o.code, c.status)
			}
			if !idle && o.recvErr != ErrConnClosed {
				t.Errorf("%s: receive returned %v", name, o.recvErr)
			}
		}
	}
}

// TestHostileDataAfterClose sends frames behind the close frame in the
// same write: a text message, garbage, and a megabyte of junk.  None of
// it may reach the application or change the answer.
func TestHostileDataAfterClose(t *testing.T) {
	checkGoroutines(t)
	junk := make([]byte, 1<<20)
	for i := range junk {
		junk[i] = byte(i*31 + 7)
	}
	tails := map[string][]byte{
		"text":    frame(true, opText, "after the close"),
		"illegal": encodeFrame(0xF3, []byte("reserved everything"), true),
		"junk":    junk,
	}
	for name, tail := range tails {
		for _, idle := range []bool{false, true} {
			received := make(chan string, 10)
			out := make(chan outcome, 1)
			url := startServer(t, &Handler{Handle: func(c *Conn) {
				if !idle {
					for range 10 {
						s, err := c.ReceiveText(100)
						if err != nil {
							break
						}
						received <- s
					}
				}
				code, reason := c.GetStatus()
				out <- outcome{code: code, reason: reason, cause: c.Err()}
			}})
			p := dialRaw(t, url, nil)
			go p.conn.Write(append(frame(true, opClose, closePayloadOf(StatusGoingAway, "bye")), tail...))
			// The close frame must come back; after it the server
			// closes, and with junk unread in its socket the kernel
			// sends a reset rather than a FIN, which is fine.
			if code := waitCloseFrame(t, collectFrames(p), 5*time.Second); code != StatusGoingAway {
				t.Errorf("%s idle=%v: close %v", name, idle, code)
			}
			o := awaitOutcome(t, out, 5*time.Second)
			if o.code != StatusGoingAway || o.reason != "bye" {
				t.Errorf("%s idle=%v: GetStatus %v %q", name, idle, o.code, o.reason)
			}
			select {
			case s := <-received:
				t.Errorf("%s idle=%v: the application received %q after the close frame", name, idle, s)
			default:
			}
		}
	}
}

// TestHostileVanish: the peer vanishes at every point of a sequence of
// frames, with a FIN or with a reset, against a receiving and an idle
// handler.  Each connection must end promptly with StatusDropped (or
// the peer's code when its close frame was complete), with nothing
// left behind.
func TestHostileVanish(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	var stream []byte
	for _, f := range [][]byte{
		frame(true, opText, "hello"),
		frame(true, opPing, "p"),
		frame(false, opBinary, strings.Repeat("b", 300)),
		frame(true, opPing, "q"),
		frame(true, opContinuation, "tail!"),
		frame(true, opClose, closePayloadOf(StatusGoingAway, "bye")),
	} {
		stream = append(stream, f...)
	}
	var cuts []int
	for i := 0; i <= len(stream); i++ {
		if i < 48 || i > len(stream)-48 || i%11 == 0 {
			cuts = append(cuts, i)
		}
	}
	for _, idle := range []bool{false, true} {
		out := make(chan outcome, 1)
		url := startServer(t, &Handler{Handle: reportingHandle(out, !idle)})
		for _, reset := range []bool{false, true} {
			for _, cut := range cuts {
				name := fmt.Sprintf("idle=%v reset=%v cut=%d/%d", idle, reset, cut, len(stream))
				p := dialRaw(t, url, nil)
				go collectFrames(p) // drain pongs so that nothing blocks
				if cut > 0 {
					p.write(stream[:cut])
				}
				if cut%3 == 0 {
					time.Sleep(3 * time.Millisecond) // let the read side change hands
				}
				if reset {
					rst(p)
				}
				p.conn.Close()
				o := awaitOutcome(t, out, 5*time.Second)
				switch {
				case cut == len(stream) && o.code == StatusGoingAway:
				case cut == len(stream) && o.code == StatusDropped:
					// A reset may overtake the close frame; and with
					// a FIN, the pong for "q" written to the closed
					// socket fails before the close frame is read.
				case cut < len(stream) && o.code == StatusDropped:
				default:
					t.Errorf("%s: GetStatus %v (%v)", name, o.code, o.cause)
				}
				if !idle && o.recvErr != ErrConnClosed {
					t.Errorf("%s: receive returned %v", name, o.recvErr)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------
// Stalls and floods

// TestHostileHugeHeaderStall: the peer announces a huge frame, sends a
// few bytes of it and stalls.  Each bound that the application can set
// must end the connection: the read deadline (1008), keep-alive
// (dropped) for a receiving and for an idle handler.
func TestHostileHugeHeaderStall(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	cases := []struct {
		name      string
		keepAlive time.Duration
		receive   func(*Conn) error
		wantClose Status // 0: the server drops without a close frame
		within    time.Duration
	}{
		{"ReceiveMessage with deadline", 0, func(c *Conn) error {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, r, err := c.ReceiveMessage()
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			return err
		}, StatusPolicyViolation, 2 * time.Second},
		{"ReceiveText with deadline", 0, func(c *Conn) error {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err := c.ReceiveText(math.MaxInt)
			return err
		}, StatusPolicyViolation, 2 * time.Second},
		{"ReceiveBinary with keep-alive", 200 * time.Millisecond, func(c *Conn) error {
			_, err := c.ReceiveBinary(make([]byte, 100))
			return err
		}, 0, 3 * time.Second},
		{"idle with keep-alive", 200 * time.Millisecond, nil, 0, 3 * time.Second},
		// No deadline, no keep-alive: the application set no bound,
		// so the receive waits until the peer goes (after 500 ms).
		{"ReceiveMessage, no bounds", -1, func(c *Conn) error {
			_, r, err := c.ReceiveMessage()
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			return err
		}, 0, 3 * time.Second},
	}
	for _, tc := range cases {
		for _, op := range []byte{0x81, 0x82, 0x01} {
			out := make(chan outcome, 1)
			h := &Handler{PingInterval: max(tc.keepAlive, 0), PongTimeout: max(tc.keepAlive, 0)}
			receive := tc.receive
			h.Handle = func(c *Conn) {
				start := time.Now()
				var err error
				if receive != nil {
					err = receive(c)
				}
				code, _ := c.GetStatus()
				out <- outcome{recvErr: err, code: code, cause: c.Err(), elapsed: time.Since(start)}
			}
			url := startServer(t, h)
			p := dialRaw(t, url, nil)
			rx := collectFrames(p)
			payload := []byte("1234567")
			if op == 0x81 {
				payload = []byte("valid text")
			}
			p.write(hostileFrame(op, 64, 1<<62, payload))
			if tc.keepAlive < 0 {
				time.Sleep(500 * time.Millisecond)
				select {
				case o := <-out:
					t.Fatalf("%s: ended with no bound set: %v", tc.name, o.cause)
				default:
				}
				p.conn.Close()
			}
			o := awaitOutcome(t, out, tc.within+5*time.Second)
			name := fmt.Sprintf("%s op=%#x", tc.name, op)
			if o.elapsed > tc.within {
				t.Errorf("%s: ended after %v, want within %v", name, o.elapsed, tc.within)
			}
			if receive != nil && o.recvErr != ErrConnClosed {
				t.Errorf("%s: receive returned %v", name, o.recvErr)
			}
			var got Status
			for f := range rx {
				if f.op == opClose {
					got = closeCode(f.payload)
				}
			}
			if got != tc.wantClose {
				t.Errorf("%s: close frame %v, want %v (Err: %v)", name, got, tc.wantClose, o.cause)
			}
		}
	}
}

// floodPeer writes binary frames of 8 KiB to p until a write makes no
// progress for stall, or until max bytes; it returns the bytes sent.
func floodPeer(p *rawPeer, max int, stall time.Duration) int {
	f := encodeFrame(0x82, make([]byte, 8<<10), true)
	batch := make([]byte, 0, 8*len(f))
	for range 8 {
		batch = append(batch, f...)
	}
	sent := 0
	for sent < max {
		p.conn.SetWriteDeadline(time.Now().Add(stall))
		n, err := p.conn.Write(batch)
		sent += n
		if err != nil {
			break
		}
	}
	p.conn.SetWriteDeadline(time.Time{})
	return sent
}

// TestHostileIdleFlood: 16 peers flood handlers that never receive.
// The server must hold at most ReadAhead (64 KiB) of each, stop reading,
// and leave the rest to TCP.
func TestHostileIdleFlood(t *testing.T) {
	checkGoroutines(t)
	const peers = 16
	h := &Handler{Handle: func(c *Conn) { c.GetStatus() }}
	url := startServer(t, h)
	ps := make([]*rawPeer, peers)
	for i := range ps {
		ps[i] = dialRaw(t, url, nil)
		ps[i].conn.SetDeadline(time.Time{})
	}
	waitFor(t, 5*time.Second, "the connections", func() bool { return h.open.Load() == peers })
	base := liveHeap()
	var wg sync.WaitGroup
	var total atomic.Int64
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			total.Add(int64(floodPeer(p, 256<<20, 500*time.Millisecond)))
		}()
	}
	wg.Wait()
	grown := int64(liveHeap()) - int64(base)
	var held int
	for _, c := range h.openConns() {
		c.readMu.Lock()
		if c.in.bufp != nil {
			held += len(*c.in.bufp)
		}
		c.readMu.Unlock()
	}
	t.Logf("%d peers flooded %d MiB in all; the server's input buffers hold %d KiB; heap grew by %d KiB",
		peers, total.Load()>>20, held>>10, grown>>10)
	if held > peers*(64<<10+64) {
		t.Errorf("input buffers hold %d KiB, want at most %d x 64 KiB", held>>10, peers)
	}
	if grown > peers*(64<<10)+4<<20 {
		t.Errorf("the heap grew by %d KiB for %d idle connections", grown>>10, peers)
	}
	for _, p := range ps {
		p.conn.Close()
	}
	// No keep-alive (the default): the stalled connections would see
	// the peer's going only if they read, and they stopped reading.
	// As documented, only keep-alive (or the application) frees them.
	time.Sleep(500 * time.Millisecond)
	t.Logf("500 ms after every peer closed, %d of %d stalled connections are still open (documented: keep-alive is off)",
		h.open.Load(), peers)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h.Shutdown(ctx)
}

// TestHostileIdleFloodKeepAlive: with keep-alive on, a connection whose
// read-ahead stays full because its handler never receives is failed
// with 1008, as Handler.ReadAhead promises.
func TestHostileIdleFloodKeepAlive(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	out := make(chan outcome, 4)
	url := startServer(t, &Handler{PingInterval: 200 * time.Millisecond, PongTimeout: 200 * time.Millisecond,
		Handle: reportingHandle(out, false)})
	for i := range 4 {
		p := dialRaw(t, url, nil)
		p.conn.SetDeadline(time.Now().Add(20 * time.Second))
		rx := collectFrames(p)
		start := time.Now()
		sent := floodPeer(p, 64<<20, 300*time.Millisecond)
		code := waitCloseFrame(t, rx, 5*time.Second)
		t.Logf("peer %d: %d KiB sent, close %v after %v", i, sent>>10, code, time.Since(start).Round(time.Millisecond))
		if code != StatusPolicyViolation {
			t.Errorf("peer %d: close code %v, want 1008", i, code)
		}
		p.conn.Close()
		o := awaitOutcome(t, out, 5*time.Second)
		if o.cause == nil || !strings.Contains(o.cause.Error(), "not received") {
			t.Errorf("peer %d: Err() = %v", i, o.cause)
		}
	}
}

// TestHostileIdleBelowReadAhead: below the read-ahead bound, an idle
// connection answers a ping behind 32 KiB of unreceived data, and sees
// the close frame.
func TestHostileIdleBelowReadAhead(t *testing.T) {
	checkGoroutines(t)
	out := make(chan outcome, 1)
	url := startServer(t, &Handler{Handle: reportingHandle(out, false)})
	p := dialRaw(t, url, nil)
	for range 4 {
		p.write(encodeFrame(0x82, make([]byte, 8<<10-20), true))
	}
	p.write(frame(true, opPing, "behind data"))
	if _, op, pl, err := p.readFrame(); err != nil || op != opPong || string(pl) != "behind data" {
		t.Fatalf("got %v %q %v, want the pong", op, pl, err)
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectClose(StatusOK)
	if o := awaitOutcome(t, out, 5*time.Second); o.code != StatusOK {
		t.Errorf("GetStatus %v", o.code)
	}
}

// TestHostileNoReadSend: the peer never reads while the handler sends,
// whole messages, streamed ones, and while the peer floods pings.  The
// write timeout must end the connection; nothing may grow.
func TestHostileNoReadSend(t *testing.T) {
	checkGoroutines(t)
	const writeTimeout = 300 * time.Millisecond
	senders := map[string]func(*Conn) error{
		"SendBinary": func(c *Conn) error {
			msg := make([]byte, 64<<10)
			for range 100000 {
				if err := c.SendBinary(msg); err != nil {
					return err
				}
			}
			return nil
		},
		"SendMessage": func(c *Conn) error {
			w, err := c.SendMessage(Binary)
			if err != nil {
				return err
			}
			// The first Write is small: a first Write of more than
			// 64 KiB panics (TestHostileFirstWriteOver64KiB).
			if _, err := w.Write([]byte("start")); err != nil {
				return err
			}
			chunk := make([]byte, 100<<10)
			for range 100000 {
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			return w.Close()
		},
		"SendText+pings": func(c *Conn) error {
			go func() {
				for {
					if _, _, err := c.ReceiveMessage(); err != nil {
						return
					}
				}
			}()
			msg := strings.Repeat("t", 10000)
			for range 100000 {
				if err := c.SendText(msg); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, send := range senders {
		type result struct {
			err     error
			code    Status
			cause   error
			elapsed time.Duration
		}
		results := make(chan result, 1)
		url := startServer(t, &Handler{WriteTimeout: writeTimeout, Handle: func(c *Conn) {
			start := time.Now()
			err := send(c)
			code, _ := c.GetStatus()
			results <- result{err, code, c.Err(), time.Since(start)}
		}})
		p := dialRaw(t, url, nil)
		p.conn.(*net.TCPConn).SetReadBuffer(4096)
		p.conn.SetDeadline(time.Time{})
		stopPings := make(chan struct{})
		pingsDone := make(chan struct{})
		go func() {
			defer close(pingsDone)
			if name != "SendText+pings" {
				return
			}
			ping := frame(true, opPing, strings.Repeat("x", 125))
			for range 100000 {
				select {
				case <-stopPings:
					return
				default:
				}
				if writeWhole(p.conn, ping, 100*time.Millisecond, stopPings) != nil {
					return
				}
			}
		}()
		select {
		case r := <-results:
			t.Logf("%s: ended after %v: %v, %v", name, r.elapsed.Round(time.Millisecond), r.err, r.cause)
			if r.err != ErrConnClosed || r.code != StatusDropped {
				t.Errorf("%s: %v, GetStatus %v; want ErrConnClosed, StatusDropped", name, r.err, r.code)
			}
			if r.cause == nil || !strings.Contains(r.cause.Error(), "does not read") {
				t.Errorf("%s: Err() = %v, want the write timeout", name, r.cause)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the send to a peer that never reads did not fail", name)
		}
		close(stopPings)
		<-pingsDone
		p.conn.Close()
	}
}

// TestHostileKeepAliveWithoutWriteTimeout: WriteTimeout < 0 (no bound
// on sends), keep-alive on, and a peer that neither reads nor sends
// anything, like one whose host vanished while the server was sending.
// PongTimeout promises that keep-alive drops a peer that does not
// answer within it.
func TestHostileKeepAliveWithoutWriteTimeout(t *testing.T) {
	checkGoroutines(t)
	type result struct {
		err     error
		elapsed time.Duration
	}
	results := make(chan result, 1)
	h := &Handler{WriteTimeout: -1, PingInterval: 100 * time.Millisecond, PongTimeout: 100 * time.Millisecond,
		Handle: func(c *Conn) {
			serverTCP(c).SetWriteBuffer(8 << 10)
			start := time.Now()
			msg := make([]byte, 64<<10)
			var err error
			for range 100000 {
				if err = c.SendBinary(msg); err != nil {
					break
				}
			}
			results <- result{err, time.Since(start)}
		}}
	url := startServer(t, h)
	p := dialRaw(t, url, nil)
	p.conn.(*net.TCPConn).SetReadBuffer(4096)
	p.conn.SetDeadline(time.Time{})
	select {
	case r := <-results:
		t.Logf("the send ended after %v: %v", r.elapsed.Round(time.Millisecond), r.err)
	case <-time.After(5 * time.Second):
		t.Errorf("keep-alive (100 ms + 100 ms) did not drop a peer that answers nothing within 5 s, because the write timeout is off")
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "onKeepAlive") {
				t.Logf("the keep-alive timer's goroutine:\n%s", g)
			}
		}
		// End it, so that nothing leaks.
		for _, c := range h.openConns() {
			c.drop(errors.New("test over"))
		}
		<-results
	}
}

// TestHostileBroadcastSlowReceiver broadcasts 32 MiB to five reading
// peers and one that never reads.  The stalled one must be failed once
// more than 1 MiB is queued for it; the others must get every message,
// in order, and no call may wait for the slow one.
func TestHostileBroadcastSlowReceiver(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	const readers = 5
	const msgSize = 16 << 10
	const count = 2048
	conns := make(chan *Conn, readers+1)
	h := &Handler{WriteTimeout: 5 * time.Second, Handle: func(c *Conn) {
		serverTCP(c).SetWriteBuffer(16 << 10)
		conns <- c
	}}
	url := startServer(t, h)
	slow := dialRaw(t, url, nil)
	slow.conn.(*net.TCPConn).SetReadBuffer(4096)
	slow.conn.SetDeadline(time.Time{})
	slowConn := <-conns
	list := []*Conn{slowConn}
	var wg sync.WaitGroup
	readErrs := make(chan error, readers)
	var progress [readers]atomic.Int64 // messages read by each reader
	for i := range readers {
		p := dialRaw(t, url, nil)
		p.conn.SetDeadline(time.Now().Add(60 * time.Second))
		list = append(list, <-conns)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range count {
				_, pl, err := p.readFrameSized()
				if err != nil {
					readErrs <- fmt.Errorf("reader %d, message %d: %v", i, j, err)
					return
				}
				if len(pl) != msgSize || binary.BigEndian.Uint32(pl) != uint32(j) {
					readErrs <- fmt.Errorf("reader %d: message %d out of order or damaged", i, j)
					return
				}
				progress[i].Store(int64(j + 1))
			}
		}()
	}
	base := liveHeap()
	var peak uint64
	msg := make([]byte, msgSize)
	failedAt := -1
	var slowest time.Duration
	for j := range count {
		// The broadcaster is paced by the readers, 16 messages
		// (256 KiB) ahead at most: they keep up, the stalled
		// peer falls behind.
		for i := range readers {
			for wait := 0; progress[i].Load() < int64(j-16) && wait < 10000; wait++ {
				time.Sleep(time.Millisecond)
			}
		}
		binary.BigEndian.PutUint32(msg, uint32(j))
		start := time.Now()
		errs := BroadcastBinary(context.Background(), list, msg)
		slowest = max(slowest, time.Since(start))
		for i, err := range errs {
			if i != 0 {
				t.Fatalf("message %d: reader %d (which keeps up) failed: %v", j, i, err)
			}
			if failedAt < 0 {
				failedAt = j
			}
		}
		if j%64 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	wg.Wait()
	close(readErrs)
	for err := range readErrs {
		t.Error(err)
	}
	t.Logf("slow receiver failed at message %d (%d KiB); slowest broadcast %v; heap peak +%d KiB",
		failedAt, failedAt*msgSize>>10, slowest, (int64(peak)-int64(base))>>10)
	if failedAt < 0 {
		t.Errorf("the receiver that never reads was never failed")
	}
	if g := int64(peak) - int64(base); g > 24<<20 {
		t.Errorf("the heap grew by %d MiB", g>>20)
	}
	if slowest > 2*time.Second {
		t.Errorf("a broadcast took %v", slowest)
	}
	done := make(chan Status, 1)
	go func() { code, _ := slowConn.GetStatus(); done <- code }()
	select {
	case <-done:
		if err := slowConn.Err(); err == nil || !strings.Contains(err.Error(), "too slow") {
			t.Errorf("the slow connection's Err() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the failed slow connection did not finish")
	}
	for _, c := range list {
		c.Close(StatusOK, "")
	}
}

// readFrameSized is readFrame for a reader of data frames that skips
// control frames.
func (p *rawPeer) readFrameSized() (opcode, []byte, error) {
	for {
		_, op, pl, err := p.readFrame()
		if err != nil || !op.IsControl() {
			return op, pl, err
		}
	}
}

// TestHostileBroadcastQueueNoRead: a broadcast that stays below the
// queue limit to a peer that never reads leaves a goroutine writing the
// queue; the write timeout must end it and the connection.
func TestHostileBroadcastQueueNoRead(t *testing.T) {
	checkGoroutines(t)
	conns := make(chan *Conn, 1)
	url := startServer(t, &Handler{WriteTimeout: 300 * time.Millisecond, Handle: func(c *Conn) {
		serverTCP(c).SetWriteBuffer(8 << 10)
		conns <- c
	}})
	p := dialRaw(t, url, nil)
	p.conn.(*net.TCPConn).SetReadBuffer(4096)
	p.conn.SetDeadline(time.Time{})
	c := <-conns
	msg := strings.Repeat("q", 32<<10)
	for range 8 {
		if errs := BroadcastText(context.Background(), []*Conn{c}, msg); len(errs) > 0 {
			break
		}
	}
	done := make(chan Status, 1)
	go func() { code, _ := c.GetStatus(); done <- code }()
	select {
	case code := <-done:
		if code != StatusDropped {
			t.Errorf("GetStatus %v", code)
		}
		t.Logf("ended: %v", c.Err())
	case <-time.After(10 * time.Second):
		t.Errorf("the queue's writer did not time out")
		c.drop(errors.New("test over"))
	}
}

// ---------------------------------------------------------------------
// Handshake abuse

// TestHostileEarlyBytes sends frames in the same write as the request:
// more than net/http buffers, a partial header completed later, and a
// pipelined second HTTP request.
func TestHostileEarlyBytes(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	url := startServer(t, &Handler{Handle: echoHandler})
	big := make([]byte, 10<<10)
	for i := range big {
		big[i] = byte(i)
	}
	early := append(encodeFrame(0x82, big, true), frame(true, opPing, "early")...)
	early = append(early, frame(true, opText, "second")...)
	p := dialRaw(t, url, early)
	rx := collectFrames(p)
	var got []string
	for f := range rx {
		switch f.op {
		case opPong:
			got = append(got, "pong "+string(f.payload))
		case opBinary:
			got = append(got, fmt.Sprintf("binary %d %v", len(f.payload), string(f.payload) == string(big)))
		case opText:
			got = append(got, "text "+string(f.payload))
			p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
		case opClose:
			got = append(got, fmt.Sprintf("close %d", closeCode(f.payload)))
		}
	}
	// The pong may overtake the echo of the binary message.
	joined := strings.Join(got, "; ")
	if !strings.Contains(joined, "binary 10240 true") || !strings.Contains(joined, "pong early") ||
		!strings.Contains(joined, "text second") || !strings.HasSuffix(joined, "close 1000") {
		t.Errorf("got %s", joined)
	}

	// Half a header as early bytes, the rest later.
	msg := frame(true, opText, "split")
	p = dialRaw(t, url, msg[:3])
	time.Sleep(100 * time.Millisecond)
	p.write(msg[3:])
	if op, s := p.readMessage(); op != opText || s != "split" {
		t.Errorf("split early header: %v %q", op, s)
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectClose(StatusOK)

	// A pipelined request is not a frame: 'G' has RSV2 set.
	host := strings.TrimPrefix(url, "ws://")
	p = dialRaw(t, url, []byte("GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n"))
	p.expectClose(StatusProtocolError)
}

// TestHostileHalfHandshakes opens 100 connections that stop in the
// middle of their request, 100 that complete it and reset at once, and
// 100 that complete it and then neither read nor send, against a
// server with a header timeout and keep-alive.  Everything must be
// freed.
func TestHostileHalfHandshakes(t *testing.T) {
	checkGoroutines(t)
	var handled atomic.Int32
	h := &Handler{PingInterval: 100 * time.Millisecond, PongTimeout: 100 * time.Millisecond, Handle: func(c *Conn) {
		handled.Add(1)
		echoHandler(c)
	}}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadHeaderTimeout = 500 * time.Millisecond
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	req := "GET /x HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c
	}
	var halves, silent []net.Conn
	for i := range 100 {
		c := dial()
		c.Write([]byte(req[:1+i*(len(req)-2)/100]))
		halves = append(halves, c)
	}
	for range 100 {
		c := dial()
		c.Write([]byte(req))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	for range 100 {
		c := dial()
		c.Write([]byte(req))
		silent = append(silent, c)
	}
	// The half requests time out in net/http; the silent connections
	// are dropped by keep-alive.  Both end with the server closing.
	for _, list := range [][]net.Conn{halves, silent} {
		for i, c := range list {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("connection %d was not closed by the server: %v", i, err)
				break
			}
			c.Close()
		}
	}
	waitFor(t, 10*time.Second, "every connection to be freed", func() bool { return h.open.Load() == 0 })
	t.Logf("%d connections reached the handler", handled.Load())
}

// TestHostileHandshakeBodies: a handshake request with a body must be
// refused, as the body would be taken for frames.
func TestHostileHandshakeBodies(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Handler{Handle: echoHandler})
	host := strings.TrimPrefix(url, "ws://")
	base := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n"
	for name, tail := range map[string]string{
		"Content-Length": "Content-Length: 6\r\n\r\n\x81\x80abcd",
		"chunked":        "Transfer-Encoding: chunked\r\n\r\n6\r\n\x81\x80abcd\r\n0\r\n\r\n",
		"huge header":    "X-Junk: " + strings.Repeat("j", 2<<20) + "\r\n\r\n",
	} {
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go c.Write([]byte(base + tail))
		buf := make([]byte, 12)
		n, _ := io.ReadFull(c, buf)
		if s := string(buf[:n]); !strings.HasPrefix(s, "HTTP/1.1 4") {
			t.Errorf("%s: answered %q", name, s)
		}
		c.Close()
	}
}

// ---------------------------------------------------------------------
// Shutdown

// TestHostileShutdownMisbehaving shuts a handler down while its peers
// misbehave in every way at once.  Shutdown must return when its
// context ends (plus a little), not after the closing timeout or the
// write timeout, and every connection must be gone.
func TestHostileShutdownMisbehaving(t *testing.T) {
	checkGoroutines(t)
	h := &Handler{WriteTimeout: 30 * time.Second}
	h.Handle = func(c *Conn) {
		serverTCP(c).SetWriteBuffer(8 << 10)
		switch c.ResourceName.Path {
		case "/send": // sends to a peer that never reads
			msg := make([]byte, 64<<10)
			for range 100000 {
				if c.SendBinary(msg) != nil {
					return
				}
			}
		case "/idle": // never receives
			c.GetStatus()
		case "/stream": // streams a message, never ends it
			w, err := c.SendMessage(Binary)
			if err != nil {
				return
			}
			for range 100000 {
				if _, err := w.Write(make([]byte, 32<<10)); err != nil {
					return
				}
			}
		default:
			echoHandler(c)
		}
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var peers []*rawPeer
	add := func(path string) *rawPeer {
		p := dialRaw(t, url+path, nil)
		p.conn.SetDeadline(time.Time{})
		peers = append(peers, p)
		return p
	}
	for range 3 {
		for _, path := range []string{"/send", "/stream"} {
			p := add(path)
			p.conn.(*net.TCPConn).SetReadBuffer(4096)
		}
		add("/idle").write(hostileFrame(0x82, 64, 1<<62, []byte("stall")))
		add("/echo").write(hostileFrame(0x82, 64, 1<<62, []byte("stall")))
		pinger := add("/echo") // floods pings, never reads
		pinger.conn.(*net.TCPConn).SetReadBuffer(4096)
		go func() {
			ping := frame(true, opPing, strings.Repeat("x", 125))
			for range 200000 {
				if writeWhole(pinger.conn, ping, 100*time.Millisecond, nil) != nil {
					return
				}
			}
		}()
		flooder := add("/idle") // floods data
		go floodPeer(flooder, 32<<20, 2*time.Second)
		add("/echo") // silent, holds the socket
		good := add("/echo")
		go func() { // answers the close properly
			for {
				_, op, _, err := good.readFrame()
				if err != nil {
					return
				}
				if op == opClose {
					good.conn.Write(frame(true, opClose, closePayloadOf(StatusGoingAway, "")))
				}
			}
		}()
	}
	waitFor(t, 5*time.Second, "the connections", func() bool { return h.open.Load() == int64(len(peers)) })
	time.Sleep(300 * time.Millisecond) // let the senders fill the sockets
	const grace = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	err := h.Shutdown(ctx)
	took := time.Since(start)
	t.Logf("Shutdown returned %v after %v", err, took.Round(time.Millisecond))
	if took > grace+time.Second {
		t.Errorf("Shutdown took %v with a context of %v", took, grace)
	}
	waitFor(t, 5*time.Second, "every connection to end", func() bool { return h.open.Load() == 0 })
	for _, p := range peers {
		p.conn.Close()
	}
	if _, err := Dial(context.Background(), url, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a handshake after Shutdown: %v, want 503", err)
	}
}

// TestHostileShutdownDuringHandshake: a handshake that is under way
// when Shutdown is called (AccessOk is checking a token, say) must be
// refused with 503 or be closed by the shutdown; it must not outlive
// it as a connection that nobody closes.
func TestHostileShutdownDuringHandshake(t *testing.T) {
	checkGoroutines(t)
	for _, others := range []int{0, 1} {
		inAccess := make(chan struct{}, 1)
		release := make(chan struct{})
		h := &Handler{
			AccessOk: func(c *Conn, _ []string) bool {
				if c.ResourceName.Path == "/slow" {
					inAccess <- struct{}{}
					<-release
				}
				return true
			},
			Handle: echoHandler,
		}
		srv := httptest.NewServer(h)
		url := "ws" + strings.TrimPrefix(srv.URL, "http")
		for range others {
			c := dialTest(t, url+"/fast", nil)
			go func() {
				for {
					if _, _, err := c.ReceiveMessage(); err != nil {
						return
					}
				}
			}()
		}
		type dialed struct {
			c   *Conn
			err error
		}
		dialDone := make(chan dialed, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, url+"/slow", nil)
			dialDone <- dialed{c, err}
		}()
		<-inAccess
		shutDone := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			shutDone <- h.Shutdown(ctx)
		}()
		time.Sleep(100 * time.Millisecond) // Shutdown is under way
		close(release)
		d := <-dialDone
		shutErr := <-shutDone
		if d.err != nil {
			t.Logf("others=%d: the late handshake was refused: %v; Shutdown: %v", others, d.err, shutErr)
			srv.Close()
			continue
		}
		// Accepted: the shutdown must close it, with 1001.
		statusCh := make(chan Status, 1)
		go func() {
			d.c.ReceiveMessage()
			code, _ := d.c.GetStatus()
			statusCh <- code
		}()
		select {
		case code := <-statusCh:
			if code != StatusGoingAway {
				t.Errorf("others=%d: Shutdown returned %v; the connection accepted during it ended with %v, want 1001",
					others, shutErr, code)
			}
		case <-time.After(3 * time.Second):
			t.Errorf("others=%d: Shutdown returned %v, and the connection accepted during it is still open 3 s later (handler open count %d)",
				others, shutErr, h.open.Load())
		}
		d.c.Close(StatusOK, "")
		srv.Close()
	}
}

// ---------------------------------------------------------------------
// Concurrency

// chaosOps counts the calls of chaos that succeeded.
var chaosOps struct{ received, sent atomic.Int64 }

// chaos uses every method of c from many goroutines at once for about
// d, then closes it; it returns when all its goroutines have ended.
func chaos(c *Conn, seed int, d time.Duration) {
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for i := range 4 {
		wg.Add(1)
		go func() { // receivers
			defer wg.Done()
			buf := make([]byte, 1000+i*1000)
			for k := 0; k < 100000; k++ {
				var err error
				switch (seed + i + k) % 4 {
				case 0:
					var r io.Reader
					if _, r, err = c.ReceiveMessage(); err == nil {
						_, err = io.Copy(io.Discard, r)
					}
				case 1:
					_, r, err2 := c.ReceiveMessage()
					if err = err2; err == nil {
						r.Read(buf[:7])
						_, err = io.Copy(io.Discard, r)
					}
				case 2:
					_, err = c.ReceiveText(500 + k%3000)
				case 3:
					_, err = c.ReceiveBinary(buf)
				}
				if err == ErrConnClosed {
					return
				}
				if err == nil || err == ErrTooLarge || err == ErrMessageType {
					chaosOps.received.Add(1) // a message was taken
				}
			}
		}()
	}
	for i := range 4 {
		wg.Add(1)
		go func() { // senders
			defer wg.Done()
			payload := make([]byte, 200<<10)
			for k := 0; k < 100000; k++ {
				var err error
				n := (k*7919 + i*131 + seed) % len(payload)
				// A first Write of more than 64 KiB to a message writer
				// panics (TestHostileFirstWriteOver64KiB): avoid it here.
				switch (seed + i + k) % 3 {
				case 0:
					err = c.SendText(strings.Repeat("é", n%5000))
				case 1:
					err = c.SendBinary(payload[:n])
				case 2:
					var w io.WriteCloser
					if w, err = c.SendMessage(Binary); err == nil {
						step := 30000 + k%30000 // below 64 KiB
						for off := 0; off < n && err == nil; off += step {
							_, err = w.Write(payload[off:min(off+step, n)])
						}
						if cerr := w.Close(); err == nil {
							err = cerr
						}
					}
				}
				if err == ErrConnClosed {
					return
				}
				if err == nil {
					chaosOps.sent.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // deadlines, limits and questions
		defer wg.Done()
		for k := 0; time.Now().Before(stop.Add(2*time.Second)) && k < 100000; k++ {
			switch k % 5 {
			case 0:
				c.SetReadDeadline(time.Now().Add(time.Duration(k%20) * time.Millisecond))
			case 1:
				c.SetWriteDeadline(time.Now().Add(time.Duration(k%50) * time.Millisecond))
			case 2:
				c.SetReadDeadline(time.Time{})
				c.SetWriteDeadline(time.Time{})
			case 3:
				// Above every message chaos sends, so that the
				// connection lives on (or none at all).
				c.SetReadLimit(int64(k%2) * (1 << 20))
			case 4:
				if c.Err() != nil {
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Add(1)
	go func() { // the closer
		defer wg.Done()
		time.Sleep(time.Until(stop))
		c.Close(Status(3000+seed%1000), "chaos")
	}()
	wg.Add(1)
	go func() { // waits for the end
		defer wg.Done()
		c.GetStatus()
	}()
	wg.Wait()
}

// TestHostileConcurrentChaos runs chaos on both ends of 20 connections
// (10 under the race detector), with and without a read limit.
func TestHostileConcurrentChaos(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	rounds := 20
	if raceOn {
		rounds = 10
	}
	for round := range rounds {
		serverDone := make(chan struct{})
		url := startServer(t, &Handler{WriteTimeout: 2 * time.Second, Handle: func(c *Conn) {
			defer close(serverDone)
			chaos(c, round, time.Duration(50+round*17%200)*time.Millisecond)
		}})
		client := dialTest(t, url, &DialOptions{WriteTimeout: 2 * time.Second})
		clientDone := make(chan struct{})
		go func() {
			defer close(clientDone)
			chaos(client, round+1, time.Duration(60+round*23%200)*time.Millisecond)
		}()
		for _, ch := range []chan struct{}{serverDone, clientDone} {
			select {
			case <-ch:
			case <-time.After(20 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("round %d: chaos did not end:\n%s", round, buf[:runtime.Stack(buf, true)])
			}
		}
	}
	t.Logf("%d rounds: %d messages received, %d sent", rounds, chaosOps.received.Load(), chaosOps.sent.Load())
}

// TestHostileChaosRawPeer runs chaos on the server side while a raw
// peer sends a random mix of messages, fragments, pings, pongs and
// partial frames with pauses, and ends with a close frame, an illegal
// frame, a FIN or a reset at a random point.
func TestHostileChaosRawPeer(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	rounds := 40
	if raceOn {
		rounds = 20
	}
	for round := range rounds {
		serverDone := make(chan struct{})
		url := startServer(t, &Handler{WriteTimeout: time.Second, Handle: func(c *Conn) {
			defer close(serverDone)
			chaos(c, round, time.Duration(100+round*37%300)*time.Millisecond)
		}})
		p := dialRaw(t, url, nil)
		go collectFrames(p)
		rng := uint64(round)*0x9E3779B97F4A7C15 + 1
		next := func(n int) int {
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			return int(rng % uint64(n))
		}
		var stream []byte
		for range 200 {
			switch next(7) {
			case 0:
				stream = append(stream, frame(true, opText, strings.Repeat("ü", next(3000)))...)
			case 1:
				stream = append(stream, encodeFrame(0x82, make([]byte, next(100000)), true)...)
			case 2:
				stream = append(stream, frame(false, opBinary, strings.Repeat("f", next(500)))...)
				stream = append(stream, frame(true, opPing, "in between")...)
				stream = append(stream, frame(true, opContinuation, strings.Repeat("g", next(500)))...)
			case 3:
				stream = append(stream, frame(true, opPing, strings.Repeat("p", next(126)))...)
			case 4:
				stream = append(stream, frame(true, opPong, "unasked")...)
			case 5:
				stream = append(stream, frame(false, opText, "€"[:1])...)
				stream = append(stream, frame(true, opContinuation, "€"[1:])...)
			case 6:
				stream = append(stream, frame(true, opBinary, "")...)
			}
		}
		end := next(4)
		switch end {
		case 0:
			stream = append(stream, frame(true, opClose, closePayloadOf(StatusOK, "end"))...)
		case 1:
			stream = append(stream, encodeFrame(0xC1, []byte("rsv1"), true)...)
		default:
			stream = stream[:next(len(stream))]
		}
		for off := 0; off < len(stream); {
			n := 1 + next(20000)
			if _, err := p.conn.Write(stream[off:min(off+n, len(stream))]); err != nil {
				break
			}
			off += n
			if next(4) == 0 {
				time.Sleep(time.Duration(next(3000)) * time.Microsecond)
			}
		}
		if end == 3 {
			rst(p)
		}
		if end >= 2 {
			p.conn.Close()
		}
		select {
		case <-serverDone:
		case <-time.After(20 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("round %d: chaos did not end:\n%s", round, buf[:runtime.Stack(buf, true)])
		}
		p.conn.Close()
	}
	t.Logf("%d messages received, %d sent in all chaos so far", chaosOps.received.Load(), chaosOps.sent.Load())
}

// TestHostileNoDataAfterOwnClose: RFC 6455, section 5.5.1: after
// sending a close frame, an endpoint must not send any more data
// frames.  A message writer closed after Conn.Close (or during
// Handler.Shutdown), and SendText racing Close, must not put a data
// frame on the wire behind the close frame, and must not report
// success for a message that cannot be sent.
func TestHostileNoDataAfterOwnClose(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 500*time.Millisecond)
	for _, via := range []string{"Close", "Shutdown"} {
		wclose := make(chan error, 1)
		h := &Handler{}
		h.Handle = func(c *Conn) {
			w, _ := c.SendMessage(Text)
			w.Write([]byte("held back"))
			if via == "Close" {
				go c.Close(StatusOK, "")
			} else {
				go h.Shutdown(context.Background())
			}
			for range 1000 {
				if c.Err() != nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
			wclose <- w.Close()
		}
		url := startServer(t, h)
		p := dialRaw(t, url, nil)
		var seq []string
		for {
			_, op, pl, err := p.readFrame()
			if err != nil {
				break
			}
			seq = append(seq, fmt.Sprintf("%v %q", op, pl))
			if op == opClose {
				// Wait a moment for anything that follows, then answer.
				p.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, op2, pl2, err := p.readFrame(); err == nil {
					seq = append(seq, fmt.Sprintf("%v %q", op2, pl2))
				}
				p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
				break
			}
		}
		err := <-wclose
		if len(seq) != 1 {
			t.Errorf("via %s: frames on the wire: %s (the message writer's Close returned %v)", via, strings.Join(seq, ", "), err)
		}
		if err == nil {
			t.Errorf("via %s: the message writer's Close after the close frame returned nil, but the message was not delivered", via)
		}
		p.conn.Close()
	}

	// SendText racing Close, 200 times.
	bad := 0
	for round := range 200 {
		h := &Handler{Handle: func(c *Conn) {
			go func() {
				for range 100000 {
					if c.SendText("x") != nil {
						return
					}
				}
			}()
			time.Sleep(time.Duration(round%5) * time.Millisecond)
			c.Close(StatusOK, "")
		}}
		url := startServer(t, h)
		p := dialRaw(t, url, nil)
		sawClose := false
		for range 1 << 20 {
			_, op, _, err := p.readFrame()
			if err != nil {
				break
			}
			if op == opClose {
				if !sawClose {
					p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
				}
				sawClose = true
			} else if sawClose {
				bad++
				break
			}
		}
		p.conn.Close()
	}
	if bad > 0 {
		t.Errorf("in %d of 200 rounds of SendText racing Close, a data frame followed the close frame", bad)
	}
}

// TestHostileFirstWriteOver64KiB: the first Write of more than 64 KiB
// to a fresh message writer (SendMessage), on a server or a client
// connection, with a peer that reads everything.  It must send the
// message, not panic; and a Handle that panics inside the library must
// still be closed with 1011 as documented, and Shutdown must still
// return.
func TestHostileFirstWriteOver64KiB(t *testing.T) {
	checkGoroutines(t)
	shortCloseTimeout(t, 300*time.Millisecond)
	big := make([]byte, 64<<10+1)

	// On a client connection, from the application's own goroutine.
	url := startServer(t, &Handler{Handle: echoHandler})
	client := dialTest(t, url, nil)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("client: SendMessage + Write(%d bytes) panicked: %v", len(big), r)
				client.writeMu.TryLock()
				client.writeMu.Unlock() // left locked by the panic
			}
		}()
		w, err := client.SendMessage(Binary)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(big); err != nil {
			t.Errorf("client Write: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("client Close of the writer: %v", err)
		}
		if _, r, err := client.ReceiveMessage(); err != nil {
			t.Errorf("client: the echo: %v", err)
		} else if n, _ := io.Copy(io.Discard, r); n != int64(len(big)) {
			t.Errorf("client: echo of %d bytes", n)
		}
	}()

	// On a server connection, in Handle, whose panics the Handler
	// recovers and answers with 1011.
	conns := make(chan *Conn, 1)
	h := &Handler{}
	h.Handle = func(c *Conn) {
		conns <- c
		w, _ := c.SendMessage(Binary)
		w.Write(big)
		w.Close()
		c.Close(StatusOK, "")
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	p := dialRaw(t, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	c := <-conns
	// The message, however it is cut into fragments.
	var op opcode
	var pl []byte
	var err error
	got := 0
	for first := true; ; first = false {
		var fin bool
		var fop opcode
		var fpl []byte
		fin, fop, fpl, err = p.readFrame()
		if err != nil || fop == opClose {
			op, pl = fop, fpl
			break
		}
		if first {
			op = fop
		}
		got += len(fpl)
		if fin {
			break
		}
	}
	switch {
	case err != nil:
		t.Errorf("server: Handle panicked in Write, and the Handler's recovery (Close with 1011) sent nothing within 1 s: %v", err)
	case op == opBinary && got == len(big):
		// sent as it should be
	case op == opClose:
		t.Errorf("server: the Write panicked: closed with %v", closeCode(pl))
	default:
		t.Errorf("server: got %v of %d bytes", op, got)
	}
	p.conn.SetReadDeadline(time.Now().Add(time.Second))
	if err != nil {
		// Nothing came: the recovering Close is stuck, as the
		// panic left the write lock held.  Shutdown is stuck too.
		shut := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			shut <- h.Shutdown(ctx)
		}()
		select {
		case err := <-shut:
			t.Logf("Shutdown returned %v", err)
		case <-time.After(3 * time.Second):
			t.Errorf("server: after the panic, Handler.Shutdown with a 200 ms context did not return within 3 s")
		}
		// Free what the panic left locked, so that the test ends.
		c.writeMu.Unlock()
		select {
		case <-shut:
		case <-time.After(5 * time.Second):
		}
	}
	p.conn.Close()
}

// TestHostileReadAheadBound floods idle connections with ReadAhead set
// to sizes that are not powers of two: the bytes held must not exceed
// the bound ("holds up to ReadAhead bytes").
func TestHostileReadAheadBound(t *testing.T) {
	checkGoroutines(t)
	for _, ra := range []int{1, 1000, 5000, 40 << 10, 100 << 10, 1<<20 + 1} {
		conns := make(chan *Conn, 1)
		url := startServer(t, &Handler{ReadAhead: ra, Handle: func(c *Conn) { conns <- c; c.GetStatus() }})
		p := dialRaw(t, url, nil)
		c := <-conns
		floodPeer(p, 64<<20, 300*time.Millisecond)
		c.readMu.Lock()
		held, capacity := c.in.w-c.in.r, 0
		if c.in.bufp != nil {
			capacity = len(*c.in.bufp)
		}
		c.readMu.Unlock()
		t.Logf("ReadAhead %d: %d bytes read ahead, in a buffer of %d", ra, held, capacity)
		if ra >= inputSize && held > ra+bufferHeadroom {
			t.Errorf("ReadAhead %d: %d bytes read ahead (buffer of %d), %.0f%% over the bound",
				ra, held, capacity, 100*float64(held-ra)/float64(ra))
		}
		p.conn.Close()
		c.drop(errors.New("test over"))
	}
}
