package websocket

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DialOptions adjusts how Dial opens a connection.  The zero value, like
// a nil *DialOptions, gives a plain connection without subprotocols.
type DialOptions struct {
	// Header holds additional header fields for the handshake
	// request, such as Origin, Cookie or Authorization.  Fields that
	// belong to the handshake itself are ignored here.
	Header http.Header

	// Subprotocols lists the subprotocols to offer to the server, in
	// order of preference.  The server's choice ends up in
	// Conn.Protocol.
	Subprotocols []string

	// TLSConfig configures the TLS connection for "wss" URLs.  If it is
	// nil, the defaults of crypto/tls are used; its ServerName
	// defaults to the host of the URL.
	TLSConfig *tls.Config

	// NetDialContext, if not nil, opens the network connection in
	// place of a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// ReadLimit, if positive, is the largest message in bytes that the
	// connection accepts; a larger one fails the connection with
	// StatusTooLarge.  Zero means no limit.  See Conn.SetReadLimit for
	// when to set one.
	ReadLimit int64

	// EnableCompression offers permessage-deflate (RFC 7692) to the
	// server, tuned by CompressionOptions; see the fields of the same
	// names in Handler.
	EnableCompression  bool
	CompressionOptions CompressionOptions

	// ReadAhead, PingInterval, PongTimeout and WriteTimeout work as
	// the fields of the same names in Handler: the read-ahead bound
	// (zero means 64 KiB), keep-alive (off while PingInterval is zero)
	// and the bound of a send that makes no progress (zero means 30
	// seconds, negative none).
	ReadAhead    int
	PingInterval time.Duration
	PongTimeout  time.Duration
	WriteTimeout time.Duration
}

// handshakeFields are the request header fields that Dial writes
// itself; the same names in DialOptions.Header are left out.
var handshakeFields = map[string]bool{
	"Host": true, "Upgrade": true, "Connection": true, "Sec-Websocket-Key": true,
	"Sec-Websocket-Version": true, "Sec-Websocket-Protocol": true, "Sec-Websocket-Extensions": true,
}

// Dial opens a WebSocket connection to the server at rawURL, whose
// scheme is "ws" or "wss" ("http" and "https" are taken to mean the
// same), and performs the opening handshake of RFC 6455, section 4.1.
// opts may be nil.
//
// ctx bounds the connection setup and the handshake; once Dial has
// returned, it no longer affects the connection.  If the server refuses
// the handshake, the error wraps ErrBadHandshake.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := parseWebSocketURL(rawURL)
	if err != nil {
		return nil, err
	}
	netConn, err := dialNetwork(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	conn, err := clientHandshake(ctx, netConn, u, opts)
	if err != nil {
		netConn.Close()
		return nil, err
	}
	return conn, nil
}

// parseWebSocketURL checks rawURL and normalizes its scheme.
func parseWebSocketURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	switch u.Scheme {
	case "ws", "http":
		u.Scheme = "ws"
	case "wss", "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("websocket: unsupported URL scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("websocket: URL %q has no host", rawURL)
	}
	// The fragment identifier has no meaning for WebSocket URLs
	// (section 3).
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// dialNetwork opens the TCP connection, and TLS on top for "wss".
func dialNetwork(ctx context.Context, u *url.URL, opts *DialOptions) (net.Conn, error) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	dial := opts.NetDialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	netConn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	if u.Scheme != "wss" {
		return netConn, nil
	}
	cfg := opts.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = u.Hostname()
	}
	tlsConn := tls.Client(netConn, cfg)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		netConn.Close()
		return nil, fmt.Errorf("websocket: %w", err)
	}
	return tlsConn, nil
}

// clientHandshake sends the opening handshake over netConn and checks
// the server's answer.
func clientHandshake(ctx context.Context, netConn net.Conn, u *url.URL, opts *DialOptions) (*Conn, error) {
	// Make the context's deadline and cancellation apply to the
	// blocking reads and writes of the handshake.
	if deadline, ok := ctx.Deadline(); ok {
		netConn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { netConn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])

	bw := bufio.NewWriterSize(netConn, 4096)
	writeRequest(bw, u, key, opts)
	if err := bw.Flush(); err != nil {
		return nil, handshakeFailure(ctx, err)
	}
	br := bufio.NewReaderSize(netConn, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return nil, handshakeFailure(ctx, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, refusal(netConn, resp)
	}
	protocol, err := checkResponse(resp, key, opts.Subprotocols)
	if err != nil {
		return nil, err
	}
	dfl, err := checkExtensions(resp, opts)
	if err != nil {
		return nil, err
	}
	if !stop() {
		return nil, handshakeFailure(ctx, context.Cause(ctx))
	}
	netConn.SetDeadline(time.Time{})

	conn := &Conn{ResourceName: u, RemoteAddr: netConn.RemoteAddr().String(), Protocol: protocol}
	if origin := opts.Header.Get("Origin"); origin != "" {
		conn.Origin, _ = url.Parse(origin)
	}
	// Frames that the server sent right behind its response are kept.
	var early []byte
	if n := br.Buffered(); n > 0 {
		early, _ = br.Peek(n)
	}
	cfg := newSettings(opts.ReadAhead, opts.PingInterval, opts.PongTimeout, opts.WriteTimeout)
	conn.init(netConn, early, true, &cfg, opts.ReadLimit)
	conn.dfl = dfl
	conn.start()
	return conn, nil
}

// writeRequest writes the handshake request of section 4.1.
func writeRequest(bw *bufio.Writer, u *url.URL, key string, opts *DialOptions) {
	fmt.Fprintf(bw, "GET %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	bw.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
	fmt.Fprintf(bw, "Sec-WebSocket-Key: %s\r\n", key)
	if len(opts.Subprotocols) > 0 {
		fmt.Fprintf(bw, "Sec-WebSocket-Protocol: %s\r\n", strings.Join(opts.Subprotocols, ", "))
	}
	if opts.EnableCompression {
		fmt.Fprintf(bw, "Sec-WebSocket-Extensions: %s\r\n", deflateOffer(&opts.CompressionOptions))
	}
	opts.Header.WriteSubset(bw, handshakeFields)
	bw.WriteString("\r\n")
}

// checkResponse checks the server's handshake response (section 4.1,
// the client's requirements) and returns the selected subprotocol.
func checkResponse(resp *http.Response, key string, offered []string) (string, error) {
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return "", fmt.Errorf("websocket: %w: missing \"Upgrade: websocket\" in the response", ErrBadHandshake)
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return "", fmt.Errorf("websocket: %w: missing \"Connection: upgrade\" in the response", ErrBadHandshake)
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return "", fmt.Errorf("websocket: %w: wrong Sec-WebSocket-Accept in the response", ErrBadHandshake)
	}
	protocol := resp.Header.Get("Sec-WebSocket-Protocol")
	if protocol != "" && !slices.Contains(offered, protocol) {
		return "", fmt.Errorf("websocket: %w: the server chose subprotocol %q, which was not offered", ErrBadHandshake, protocol)
	}
	return protocol, nil
}

// checkExtensions checks the extensions that the server's response
// chose: none, or permessage-deflate as the client offered it.
func checkExtensions(resp *http.Response, opts *DialOptions) (*deflate, error) {
	exts, err := parseExtensions(resp.Header)
	switch {
	case err != nil:
		return nil, fmt.Errorf("websocket: %w: %v", ErrBadHandshake, err)
	case len(exts) == 0:
		return nil, nil
	case !opts.EnableCompression:
		return nil, fmt.Errorf("websocket: %w: the server chose an extension that was not offered", ErrBadHandshake)
	}
	n, err := checkDeflateAnswer(exts, &opts.CompressionOptions)
	if err != nil {
		return nil, fmt.Errorf("websocket: %w: %v", ErrBadHandshake, err)
	}
	return newDeflate(&opts.CompressionOptions, n), nil
}

// refusalBodyTimeout bounds the wait for the body of a refusal, which
// only serves to explain the error; the status line is already known.
const refusalBodyTimeout = time.Second

// maxRefusalBody is how much of a refusal's body goes into the error.
const maxRefusalBody = 256

// refusal describes a response that refused the handshake: its status
// line and the start of its body, which usually says what was wrong.
func refusal(netConn net.Conn, resp *http.Response) error {
	netConn.SetReadDeadline(time.Now().Add(refusalBodyTimeout))
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBody))
	text := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if text == "" {
		return fmt.Errorf("websocket: %w: the server answered %q", ErrBadHandshake, resp.Proto+" "+resp.Status)
	}
	return fmt.Errorf("websocket: %w: the server answered %q: %s", ErrBadHandshake, resp.Proto+" "+resp.Status, text)
}

// handshakeFailure reports an I/O error of the handshake, blaming the
// context if it ended.
func handshakeFailure(ctx context.Context, err error) error {
	if ctxErr := context.Cause(ctx); ctxErr != nil {
		return fmt.Errorf("websocket: handshake: %w", ctxErr)
	}
	// The connection's deadline may pass a moment before the context
	// notices that its own has.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return fmt.Errorf("websocket: handshake: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("websocket: handshake: %w", err)
}
