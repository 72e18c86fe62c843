package websocket

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Handler accepts WebSocket connections.  It implements http.Handler:
// install it at the URL that clients connect to.  A request that is not
// a valid WebSocket opening handshake is answered with an HTTP error.
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
	// connection ready for messages.  The connection stays usable
	// after Handle returns, so it may be handed to other goroutines;
	// whoever is done with it last must call Close.
	Handle func(conn *Conn)

	// ServerName, if not empty, is sent as the Server header of the
	// handshake response.
	ServerName string

	// ReadLimit, if positive, is the largest message in bytes that
	// the connections accept; a larger one fails the connection with
	// StatusTooLarge.  Zero means no limit.  See Conn.SetReadLimit for
	// when to set one.
	ReadLimit int64
}

// handshakeError is a refused handshake: the HTTP status to answer with
// and a message for the client.
type handshakeError struct {
	status  int
	message string
}

// ServeHTTP performs the server side of the opening handshake (RFC
// 6455, section 4.2) and, if it succeeds, runs h.Handle.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	conn := &Conn{}
	protocols, herr := checkRequest(req, conn)
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
		return
	}

	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "websocket: cannot take over the connection", http.StatusInternalServerError)
		return
	}
	// The server's deadlines were meant for the HTTP request; the
	// WebSocket connection lives as long as it is used.
	netConn.SetDeadline(time.Time{})

	resp := h.appendResponse(nil, w.Header(), req, conn.Protocol)
	if _, err := netConn.Write(resp); err != nil {
		netConn.Close()
		return
	}

	conn.init(netConn, continueReading(brw.Reader, netConn), brw.Writer, false)
	conn.SetReadLimit(h.ReadLimit)
	conn.start()
	if h.Handle == nil {
		conn.Close(StatusGoingAway, "")
		return
	}
	h.Handle(conn)
}

// checkRequest checks the client's handshake and fills in the fields of
// conn that describe it.  It returns the offered subprotocols.
func checkRequest(req *http.Request, conn *Conn) ([]string, *handshakeError) {
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
	conn.ResourceName = &url.URL{Scheme: scheme, Host: req.Host, Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	if origin := req.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil {
			return nil, &handshakeError{http.StatusBadRequest, "websocket: invalid Origin header"}
		}
		conn.Origin = u
	}
	conn.RemoteAddr = req.RemoteAddr
	return headerTokens(req.Header, "Sec-WebSocket-Protocol"), nil
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
func (h *Handler) appendResponse(buf []byte, extra http.Header, req *http.Request, protocol string) []byte {
	buf = append(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	buf = append(buf, acceptKey(req.Header.Get("Sec-WebSocket-Key"))...)
	buf = append(buf, "\r\n"...)
	if protocol != "" {
		buf = append(buf, "Sec-WebSocket-Protocol: "+protocol+"\r\n"...)
	}
	if h.ServerName != "" {
		buf = append(buf, "Server: "+h.ServerName+"\r\n"...)
	}
	var b bytes.Buffer
	extra.WriteSubset(&b, map[string]bool{
		"Upgrade": true, "Connection": true, "Sec-Websocket-Accept": true,
		"Sec-Websocket-Protocol": true, "Server": true, "Content-Length": true,
	})
	buf = append(buf, b.Bytes()...)
	return append(buf, "\r\n"...)
}

// continueReading returns a reader for the WebSocket connection that
// starts with the bytes that the HTTP server already read past the
// request, if any, and reuses the server's buffer.
func continueReading(br *bufio.Reader, netConn net.Conn) *bufio.Reader {
	n := br.Buffered()
	if n == 0 {
		br.Reset(netConn)
		return br
	}
	early, _ := br.Peek(n)
	fresh := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), netConn), br.Size())
	return fresh
}
