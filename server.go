package websocket

import (
	"bytes"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Handler accepts WebSocket connections.  It implements http.Handler:
// install it at the URL that clients connect to.  A request that is not
// a valid WebSocket opening handshake is answered with an HTTP error.
//
// A Handler must not be copied after first use.
type Handler struct {
	// AccessOk, if not nil, decides during the handshake whether the
	// client may connect; returning false refuses the connection with
	// 403 Forbidden.  When it runs, conn is not yet usable for
	// messages, but ResourceName, Origin and RemoteAddr are set, so it
	// can check, for example, that a browser connects from an
	// expected origin.
	//
	// protocols lists the subprotocols that the client offered, in
	// its order of preference (RFC 6455, section 1.9).  If the list is
	// not empty, AccessOk must set conn.Protocol to one of them;
	// otherwise the handshake fails with 400 Bad Request.
	AccessOk func(conn *Conn, protocols []string) bool

	// Handle is called once the handshake succeeded, with a
	// connection ready for messages.  It runs on a goroutine of its
	// own: ServeHTTP returns as soon as the connection is handed
	// over, so that the memory of the HTTP request is freed.  The
	// connection stays usable after Handle returns, so it may be
	// handed to other goroutines; whoever is done with it last must
	// call Close.  If Handle panics, the panic is logged and the
	// connection closed with StatusInternalServerError, as net/http
	// does for its handlers.
	Handle func(conn *Conn)

	// ServerName, if not empty, is sent as the Server header of the
	// handshake response.
	ServerName string

	// ReadLimit, if positive, is the largest message in bytes that
	// the connections accept; a larger one fails the connection with
	// StatusTooLarge.  Zero means no limit.  See Conn.SetReadLimit for
	// when to set one.
	ReadLimit int64

	// ReadAhead bounds the bytes of incoming messages that a
	// connection reads while the application is not receiving (it
	// reads on then so that pings are answered and the peer's close
	// frame is seen).  When the bound is reached, the connection
	// stops reading until the application receives, and the peer's
	// sending is held up by TCP flow control.  Zero means 64 KiB.
	//
	// An application that never receives should not expect more than
	// that from its peers; with keep-alive on, a connection whose
	// read-ahead stays full for the ping interval and the pong
	// timeout fails with StatusPolicyViolation.
	ReadAhead int

	// PingInterval turns keep-alive on: a connection from which
	// nothing has arrived for this long is sent a ping.  Zero turns
	// keep-alive off.
	PingInterval time.Duration

	// PongTimeout is how long keep-alive waits for an answer to its
	// ping (a pong, or any other data) before it drops the
	// connection: GetStatus then reports StatusDropped, and calls
	// waiting on the connection return ErrConnClosed.  Zero means the
	// ping interval; negative means that keep-alive only pings and
	// never drops.
	PongTimeout time.Duration

	// EnableCompression accepts permessage-deflate (RFC 7692) when a
	// client offers it, as browsers do.  CompressionOptions tunes it;
	// its zero value declines context takeover in both directions, so
	// that an idle connection holds no compressor.
	EnableCompression  bool
	CompressionOptions CompressionOptions

	// WriteTimeout bounds each send: a send that makes no progress
	// for this long, because the peer does not read, ends the
	// connection (StatusDropped, ErrConnClosed), and no other.  Zero
	// means 30 seconds; negative means no bound.  Conn.SetWriteDeadline
	// sets a deadline on top.
	WriteTimeout time.Duration

	cfg          atomic.Pointer[settings] // shared by the connections while the fields stay
	shards       [trackShards]connShard   // the open connections, see shutdown.go
	open         atomic.Int64
	lastURL      atomic.Pointer[url.URL] // the latest ResourceName, shared when the next is the same
	lastOrigin   atomic.Pointer[url.URL]
	shuttingDown atomic.Bool
	drainedMu    sync.Mutex
	drained      chan struct{} // closed when open drops to zero during Shutdown
}

// settings returns the tunables of the handler's connections, which
// they share as long as the handler's fields stay the same.
func (h *Handler) settings() *settings {
	s := newSettings(h.ReadAhead, h.PingInterval, h.PongTimeout, h.WriteTimeout)
	if cached := h.cfg.Load(); cached != nil && *cached == s {
		return cached
	}
	h.cfg.Store(&s)
	return &s
}

// handshakeError is a refused handshake: the HTTP status to answer with
// and a message for the client.
type handshakeError struct {
	status  int
	message string
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("websocket: handshake refused with %d %s: %s", e.status, http.StatusText(e.status), e.message)
}

// Unwrap makes a refused handshake match ErrBadHandshake.
func (e *handshakeError) Unwrap() error { return ErrBadHandshake }

// ServeHTTP performs the server side of the opening handshake (RFC
// 6455, section 4.2) and, if it succeeds, runs h.Handle on a goroutine
// of its own.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	conn, err := h.Upgrade(w, req)
	if err != nil {
		return
	}
	go h.run(conn)
}

// run calls Handle for a new connection.
func (h *Handler) run(conn *Conn) {
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				log.Printf("websocket: panic serving %s: %v\n%s", conn.RemoteAddr, err, debug.Stack())
			}
			conn.Close(StatusInternalServerError, "")
		}
	}()
	if h.Handle == nil {
		conn.Close(StatusGoingAway, "")
		return
	}
	h.Handle(conn)
}

// Upgrade performs the server side of the opening handshake for an
// application that accepts WebSocket connections in its own HTTP
// handler, where the request, its cookies and its authentication are at
// hand.  AccessOk, ServerName and the handler's settings apply as for
// ServeHTTP, but Handle is not called: the caller owns the connection
// and must Close it.  Header fields that the caller set on w, cookies
// for example, go out with the handshake's response.
//
// If the handshake fails, Upgrade has answered the request with an HTTP
// error and returns an error that wraps ErrBadHandshake.
//
// The calling goroutine keeps the memory of its HTTP request for as long
// as it runs: a server with many connections does better to hand the
// connection to a goroutine of its own and return, as ServeHTTP does.
func (h *Handler) Upgrade(w http.ResponseWriter, req *http.Request) (*Conn, error) {
	conn := &Conn{}
	protocols, herr := h.checkRequest(req, conn)
	if herr == nil && h.shuttingDown.Load() {
		herr = &handshakeError{http.StatusServiceUnavailable, "websocket: the server is shutting down"}
	}
	if herr == nil {
		herr = h.checkAccess(conn, protocols)
	}
	if herr != nil {
		switch herr.status {
		case http.StatusUpgradeRequired:
			w.Header().Set("Sec-WebSocket-Version", "13")
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", http.MethodGet)
		}
		http.Error(w, herr.message, herr.status)
		return nil, herr
	}

	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "websocket: cannot take over the connection", http.StatusInternalServerError)
		return nil, fmt.Errorf("websocket: %w: %w", ErrBadHandshake, err)
	}
	// The server's deadlines were meant for the HTTP request; the
	// WebSocket connection lives as long as it is used.
	netConn.SetDeadline(time.Time{})

	var answer string
	if h.EnableCompression {
		if offers, err := parseExtensions(req.Header); err == nil {
			var n negotiated
			var ok bool
			if answer, n, ok = acceptDeflate(offers, &h.CompressionOptions); ok {
				conn.dfl = newDeflate(&h.CompressionOptions, n)
			}
		}
	}
	resp := h.appendResponse(nil, w.Header(), req, conn.Protocol, answer)
	if _, err := netConn.Write(resp); err != nil {
		netConn.Close()
		return nil, fmt.Errorf("websocket: %w: %w", ErrBadHandshake, err)
	}

	// Bytes that the client sent right behind its request are kept;
	// the server's buffers are not, so that they can be freed.
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ = brw.Reader.Peek(n)
	}
	conn.init(netConn, early, false, h.settings(), h.ReadLimit)
	h.track(conn)
	conn.start()
	if h.shuttingDown.Load() {
		// The handshake began before Shutdown and was not refused;
		// Shutdown may have listed its connections already.
		go conn.closeGracefully(StatusGoingAway, "server shutting down")
	}
	return conn, nil
}

// checkRequest checks the client's handshake and fills in the fields of
// conn that describe it.  It returns the offered subprotocols.
func (h *Handler) checkRequest(req *http.Request, conn *Conn) ([]string, *handshakeError) {
	switch {
	case req.Method != http.MethodGet:
		return nil, &handshakeError{http.StatusMethodNotAllowed, "websocket: the handshake must use GET"}
	case !req.ProtoAtLeast(1, 1):
		return nil, &handshakeError{http.StatusBadRequest, "websocket: the handshake needs HTTP/1.1"}
	case req.ContentLength != 0 || len(req.TransferEncoding) > 0:
		// A body would be taken for the first WebSocket frames.
		return nil, &handshakeError{http.StatusBadRequest, "websocket: the handshake request must not have a body"}
	case !headerHasToken(req.Header, "Upgrade", "websocket"):
		return nil, &handshakeError{http.StatusBadRequest, "websocket: missing \"Upgrade: websocket\" header"}
	case !headerHasToken(req.Header, "Connection", "upgrade"):
		return nil, &handshakeError{http.StatusBadRequest, "websocket: missing \"Connection: upgrade\" header"}
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		return nil, &handshakeError{http.StatusUpgradeRequired, "websocket: unsupported protocol version, only 13 is supported"}
	case len(req.Header.Values("Sec-WebSocket-Key")) != 1 || !validKey(req.Header.Get("Sec-WebSocket-Key")):
		return nil, &handshakeError{http.StatusBadRequest, "websocket: missing, repeated or invalid Sec-WebSocket-Key header"}
	}

	scheme := "ws"
	if req.TLS != nil {
		scheme = "wss"
	}
	conn.ResourceName = shareURL(&h.lastURL, &url.URL{Scheme: scheme, Host: req.Host, Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery})
	if origin := req.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil {
			return nil, &handshakeError{http.StatusBadRequest, "websocket: invalid Origin header"}
		}
		conn.Origin = shareURL(&h.lastOrigin, u)
	}
	conn.RemoteAddr = req.RemoteAddr
	return headerTokens(req.Header, "Sec-WebSocket-Protocol"), nil
}

// shareURL returns the URL in last if it is the same as u, else u,
// which it keeps in last.  Connections share their URLs, which are
// read-only, so that thousands of connections to one endpoint from one
// origin keep two URLs rather than thousands.
func shareURL(last *atomic.Pointer[url.URL], u *url.URL) *url.URL {
	if prev := last.Load(); prev != nil && *prev == *u {
		return prev
	}
	last.Store(u)
	return u
}

// checkAccess asks h.AccessOk whether the client may connect and checks
// its choice of subprotocol.
func (h *Handler) checkAccess(conn *Conn, protocols []string) *handshakeError {
	if h.AccessOk != nil && !h.AccessOk(conn, protocols) {
		return &handshakeError{http.StatusForbidden, "websocket: access denied"}
	}
	switch {
	case len(protocols) > 0 && conn.Protocol == "":
		return &handshakeError{http.StatusBadRequest, "websocket: none of the offered subprotocols is supported"}
	case conn.Protocol != "" && !slices.Contains(protocols, conn.Protocol):
		return &handshakeError{http.StatusInternalServerError, fmt.Sprintf("websocket: the server chose subprotocol %q, which the client did not offer", conn.Protocol)}
	}
	return nil
}

// appendResponse appends the 101 response that completes the handshake.
// Header fields that the application set on the ResponseWriter go out
// too, for example cookies.
func (h *Handler) appendResponse(buf []byte, extra http.Header, req *http.Request, protocol, extensions string) []byte {
	buf = append(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	buf = append(buf, acceptKey(req.Header.Get("Sec-WebSocket-Key"))...)
	buf = append(buf, "\r\n"...)
	if protocol != "" {
		buf = append(buf, "Sec-WebSocket-Protocol: "+protocol+"\r\n"...)
	}
	if extensions != "" {
		buf = append(buf, "Sec-WebSocket-Extensions: "+extensions+"\r\n"...)
	}
	if h.ServerName != "" {
		buf = append(buf, "Server: "+h.ServerName+"\r\n"...)
	}
	var b bytes.Buffer
	extra.WriteSubset(&b, map[string]bool{
		"Upgrade": true, "Connection": true, "Sec-Websocket-Accept": true,
		"Sec-Websocket-Protocol": true, "Sec-Websocket-Extensions": true, "Server": true, "Content-Length": true,
	})
	buf = append(buf, b.Bytes()...)
	return append(buf, "\r\n"...)
}
