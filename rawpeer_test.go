package websocket

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawPeer is a hand-driven WebSocket client that writes and reads
// frames byte by byte, independent of the package's frame codec, so
// that tests can send what a correct client never would.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response // the server's answer to the handshake
}

// testKey and testAccept are the example handshake of RFC 6455,
// section 1.3.
const (
	testKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	testAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// dialRaw connects to a ws:// URL and performs the handshake, sending
// early (frames, say) in the same write as the request.
func dialRaw(t *testing.T, wsURL string, early []byte) *rawPeer {
	t.Helper()
	return dialRawWith(t, wsURL, early, "")
}

// dialRawWith is dialRaw with extra header fields for the request, each
// ending in CRLF.
func dialRawWith(t *testing.T, wsURL string, early []byte, extra string) *rawPeer {
	t.Helper()
	hostPath := strings.TrimPrefix(wsURL, "ws://")
	host, path, _ := strings.Cut(hostPath, "/")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n%s\r\n", path, host, testKey, extra)
	if _, err := conn.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, conn: conn, br: bufio.NewReader(conn)}
	resp, err := http.ReadResponse(p.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != testAccept {
		t.Fatalf("handshake answered %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	p.resp = resp
	return p
}

// encodeFrame builds a frame; first is the first header byte (FIN,
// RSV and opcode), and the payload is masked if masked is set.
func encodeFrame(first byte, payload []byte, masked bool) []byte {
	var b []byte
	b = append(b, first)
	maskFlag := byte(0)
	if masked {
		maskFlag = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, maskFlag|byte(n))
	case n < 1<<16:
		b = append(b, maskFlag|126, byte(n>>8), byte(n))
	default:
		b = append(b, maskFlag|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// frame is shorthand for a masked client frame with FIN set as given.
func frame(fin bool, op opcode, payload string) []byte {
	first := byte(op)
	if fin {
		first |= 0x80
	}
	return encodeFrame(first, []byte(payload), true)
}

func (p *rawPeer) write(frames ...[]byte) {
	p.t.Helper()
	for _, f := range frames {
		if _, err := p.conn.Write(f); err != nil {
			p.t.Fatalf("write: %v", err)
		}
	}
}

// readFrame reads one unmasked frame from the server.
func (p *rawPeer) readFrame() (fin bool, op opcode, payload []byte, err error) {
	hdr, payload, err := p.readHeaderAndPayload()
	return hdr[0]&0x80 != 0, opcode(hdr[0] & 0x0f), payload, err
}

// readRawFrame reads one frame and returns its first two header bytes,
// RSV bits and all, and its payload.
func (p *rawPeer) readRawFrame() ([2]byte, []byte) {
	p.t.Helper()
	hdr, payload, err := p.readHeaderAndPayload()
	if err != nil {
		p.t.Fatalf("reading a frame: %v", err)
	}
	return hdr, payload
}

func (p *rawPeer) readHeaderAndPayload() (hdr [2]byte, payload []byte, err error) {
	if _, err = io.ReadFull(p.br, hdr[:]); err != nil {
		return
	}
	if hdr[1]&0x80 != 0 {
		return hdr, nil, fmt.Errorf("server sent a masked frame")
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		_, err = io.ReadFull(p.br, ext[:])
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		_, err = io.ReadFull(p.br, ext[:])
		n = binary.BigEndian.Uint64(ext[:])
	}
	if err != nil {
		return
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(p.br, payload)
	return hdr, payload, err
}

// readMessage reads a data message, skipping nothing: control frames
// other than those expected are an error.
func (p *rawPeer) readMessage() (opcode, string) {
	p.t.Helper()
	var msg []byte
	var first opcode
	for {
		fin, op, payload, err := p.readFrame()
		if err != nil {
			p.t.Fatalf("reading a message: %v", err)
		}
		if op.IsControl() {
			p.t.Fatalf("got a %v frame (%q) while waiting for a message", op, payload)
		}
		if first == 0 {
			first = op
		}
		msg = append(msg, payload...)
		if fin {
			return first, string(msg)
		}
	}
}

// expectClose reads frames until a close frame and checks its code.
// It then checks that the server closes the TCP connection.
func (p *rawPeer) expectClose(want Status) {
	p.t.Helper()
	for {
		_, op, payload, err := p.readFrame()
		if err != nil {
			p.t.Fatalf("waiting for close %d: %v", want, err)
		}
		if op != opClose {
			continue
		}
		got := StatusNotSent
		if len(payload) >= 2 {
			got = Status(binary.BigEndian.Uint16(payload))
		}
		if got != want {
			p.t.Fatalf("close code %d (%q), want %d", got, payload, want)
		}
		break
	}
	p.expectEOF()
}

// expectEOF checks that the server closes (or half-closes) the
// connection, and then closes it on this side too.
func (p *rawPeer) expectEOF() {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, p.br); err != nil || n != 0 {
		p.t.Fatalf("server did not close the connection cleanly: %d more bytes, %v", n, err)
	}
	p.conn.Close()
}

// closePayloadOf builds the payload of a close frame.
func closePayloadOf(code Status, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
}
