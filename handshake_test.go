package websocket

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// handshakeRequest is a valid opening handshake; tests spoil one part.
func handshakeRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://example.com/chat?room=1", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", testKey)
	req.Header.Set("Sec-WebSocket-Version", "13")
	return req
}

func TestHandshakeRejections(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(*http.Request)
		want  int
	}{
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }, http.StatusMethodNotAllowed},
		{"HTTP/1.0", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }, http.StatusBadRequest},
		{"no Upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, http.StatusBadRequest},
		{"wrong Upgrade", func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, http.StatusBadRequest},
		{"no Connection", func(r *http.Request) { r.Header.Del("Connection") }, http.StatusBadRequest},
		{"Connection without upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, http.StatusBadRequest},
		{"no version", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }, http.StatusUpgradeRequired},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, http.StatusUpgradeRequired},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, http.StatusBadRequest},
		{"short key", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "c2hvcnQ=") }, http.StatusBadRequest},
		{"key not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!==") }, http.StatusBadRequest},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", testKey) }, http.StatusBadRequest},
		{"body", func(r *http.Request) { r.ContentLength = 3; r.Body = io.NopCloser(strings.NewReader("abc")) }, http.StatusBadRequest},
		{"chunked body", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }, http.StatusBadRequest},
		{"bad Origin", func(r *http.Request) { r.Header.Set("Origin", "http://[::1") }, http.StatusBadRequest},
		{"subprotocol not chosen", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "mqtt") }, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := handshakeRequest()
			tc.spoil(req)
			rec := httptest.NewRecorder()
			handled := false
			h := &Handler{Handle: func(*Conn) { handled = true }}
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || handled {
				t.Errorf("status %d (handled %v), want %d; body %q", rec.Code, handled, tc.want, rec.Body)
			}
			if tc.want == http.StatusUpgradeRequired && rec.Header().Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13")
			}
			if tc.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET" {
				t.Errorf("405 without Allow: GET")
			}
		})
	}
}

func TestHandshakeAccessOk(t *testing.T) {
	req := handshakeRequest()
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Add("Sec-WebSocket-Protocol", "v2, v1")
	req.Header.Add("Sec-WebSocket-Protocol", "v0")
	req.RemoteAddr = "192.0.2.7:4711"
	var seen []string
	h := &Handler{AccessOk: func(conn *Conn, protocols []string) bool {
		seen = []string{conn.ResourceName.String(), conn.Origin.String(), conn.RemoteAddr, strings.Join(protocols, "|")}
		return false
	}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("refused access gave status %d, want 403", rec.Code)
	}
	want := []string{"ws://example.com/chat?room=1", "https://app.example.com", "192.0.2.7:4711", "v2|v1|v0"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("AccessOk saw %q, want %q", seen, want)
	}

	// A subprotocol that the client did not offer is a server bug.
	h = &Handler{AccessOk: func(conn *Conn, _ []string) bool { conn.Protocol = "v9"; return true }}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, handshakeRequest())
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("unoffered subprotocol gave status %d, want 500", rec.Code)
	}
}

// TestHandshakeResponse checks the 101 response on the wire, with the
// example key of RFC 6455, section 1.3, and token lists in odd case.
func TestHandshakeResponse(t *testing.T) {
	checkGoroutines(t)
	srv := httptest.NewServer(&Handler{
		AccessOk:   func(conn *Conn, protocols []string) bool { conn.Protocol = protocols[1]; return true },
		Handle:     func(conn *Conn) { conn.Close(StatusOK, "") },
		ServerName: "test-server/1.0",
	})
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("GET /x HTTP/1.1\r\nHost: test\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a,b\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"Upgrade":                "websocket",
		"Connection":             "Upgrade",
		"Sec-WebSocket-Accept":   testAccept,
		"Sec-WebSocket-Protocol": "b",
		"Server":                 "test-server/1.0",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %s", resp.Status)
	}
}
