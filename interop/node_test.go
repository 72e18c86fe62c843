package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
)

// testTimeout bounds each Node test as a whole; the node processes and all
// connections are torn down when it expires.
const testTimeout = 55 * time.Second

// dialTimeout bounds each connection of a Go client to a Node server.
const dialTimeout = 20 * time.Second

const goodOrigin = "http://good.example"

const mib = 1 << 20

// startNodeTest begins a test with Node.js peers: it has the goroutines
// checked at the end, requires the prerequisites, and returns a context
// that ends timeout from now, or when the test does.
func startNodeTest(t *testing.T, timeout time.Duration) (ctx context.Context, nodeBin, dir string) {
	t.Helper()
	checkGoroutines(t)
	nodeBin, dir = requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx, nodeBin, dir
}

// echo is the canonical echo handler: every message goes back with the same
// type, streamed through SendMessage so large messages are fragmented by us.
func echo(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")
	for {
		tp, r, err := conn.ReceiveMessage()
		if err != nil {
			return
		}
		w, err := conn.SendMessage(tp)
		if err != nil {
			io.Copy(io.Discard, r)
			return
		}
		if _, err := io.Copy(w, r); err != nil {
			io.Copy(io.Discard, r)
		}
		w.Close()
	}
}

// ---------------------------------------------------------------------------
// Node ws client -> Go server

// closeReport is what the /client-close handler saw from GetStatus.
type closeReport struct {
	id     string
	status websocket.Status
	reason string
}

// goServer is the Go side driven by node/client.js.
type goServer struct {
	*httptest.Server
	reports chan closeReport // from /client-close, buffered: handlers never block
	wg      sync.WaitGroup   // running Handle funcs, so none outlives the test
}

// startGoServer serves the paths node/client.js expects on 127.0.0.1.
func startGoServer(t *testing.T) *goServer {
	t.Helper()
	s := &goServer{reports: make(chan closeReport, 16)}
	mux := http.NewServeMux()
	mux.Handle("/echo", &websocket.Handler{Handle: s.track(echo), ServerName: "interop"})
	mux.Handle("/close", &websocket.Handler{Handle: s.track(closeWithQuery)})
	mux.Handle("/client-close", &websocket.Handler{Handle: s.track(s.reportClientClose)})
	mux.Handle("/subprotocol", &websocket.Handler{AccessOk: pickChatV1, Handle: s.track(echo)})
	mux.Handle("/forbidden", &websocket.Handler{
		AccessOk: func(*websocket.Conn, []string) bool { return false },
		Handle:   s.track(echo),
	})
	mux.Handle("/origin", &websocket.Handler{AccessOk: allowGoodOrigin, Handle: s.track(echo)})
	mux.Handle("/limit", &websocket.Handler{Handle: s.track(func(conn *websocket.Conn) {
		conn.SetReadLimit(1024)
		echo(conn)
	})})
	s.start(t, mux)
	return s
}

// start serves h on 127.0.0.1 until the test ends, when the server is
// closed and its handlers waited for.
func (s *goServer) start(t *testing.T, h http.Handler) {
	s.Server = httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = loopbackListener(t)
	s.Start()
	t.Cleanup(func() {
		s.Close()
		s.waitHandlers(t)
	})
}

// track counts running handlers; ServeHTTP may or may not run Handle on its
// own goroutine, and hijacked connections are not waited for by httptest.
func (s *goServer) track(h func(*websocket.Conn)) func(*websocket.Conn) {
	return func(conn *websocket.Conn) {
		s.wg.Add(1)
		defer s.wg.Done()
		h(conn)
	}
}

func (s *goServer) waitHandlers(t *testing.T) {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("websocket handlers still running 10s after the node client exited")
	}
}

// closeWithQuery closes at once with the code and reason from the query
// (/close?code=4001&reason=bye).
func closeWithQuery(conn *websocket.Conn) {
	q := conn.ResourceName.Query()
	code, _ := strconv.Atoi(q.Get("code"))
	conn.Close(websocket.Status(code), q.Get("reason"))
}

// reportClientClose reads until the client closes, then reports GetStatus
// under the connection's ?id=.
func (s *goServer) reportClientClose(conn *websocket.Conn) {
	for {
		_, r, err := conn.ReceiveMessage()
		if err != nil {
			break
		}
		io.Copy(io.Discard, r)
	}
	status, reason := conn.GetStatus()
	report := closeReport{id: conn.ResourceName.Query().Get("id"), status: status, reason: reason}
	select {
	case s.reports <- report:
	default:
	}
}

// pickChatV1 accepts every client and selects "chat.v1" when offered.
func pickChatV1(conn *websocket.Conn, protocols []string) bool {
	for _, p := range protocols {
		if p == "chat.v1" {
			conn.Protocol = p
		}
	}
	return true
}

// allowGoodOrigin is a typical cross-origin check: browsers' pages from
// other origins are refused during the handshake.
func allowGoodOrigin(conn *websocket.Conn, _ []string) bool {
	return conn.Origin != nil && conn.Origin.Scheme+"://"+conn.Origin.Host == goodOrigin
}

// caseResult is one JSON line printed by node/client.js.
type caseResult struct {
	Case   string `json:"case"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	MS     int    `json:"ms"`
}

func TestNodeClientAgainstGoServer(t *testing.T) {
	ctx, nodeBin, dir := startNodeTest(t, testTimeout)

	srv := startGoServer(t)
	runNodeClient(t, ctx, nodeBin, dir, "ws://"+srv.Listener.Addr().String(), 20)

	checkClientCloseReports(t, srv.reports, map[string]closeReport{
		"code":  {status: 4002, reason: "client-bye"},
		"empty": {status: websocket.StatusNotSent, reason: ""},
	})
}

// runNodeClient runs node/client.js against wsURL, with env ("NAME=value")
// added to its environment, and turns each case it reports into a
// subtest.  It must report at least minCases cases.
func runNodeClient(t *testing.T, ctx context.Context, nodeBin, dir, wsURL string, minCases int, env ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, nodeBin, "client.js", wsURL)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()

	results := parseCaseResults(t, out)
	for _, r := range results {
		t.Run(r.Case, func(t *testing.T) {
			if !r.OK {
				t.Errorf("node client case failed: %s", r.Detail)
				return
			}
			t.Logf("ok (%d ms): %s", r.MS, r.Detail)
		})
	}
	if runErr != nil && (len(results) == 0 || allOK(results)) {
		t.Errorf("node client.js: %v\nstderr:\n%s", runErr, stderr.String())
	}
	if len(results) < minCases {
		t.Errorf("node client.js reported only %d cases; stderr:\n%s", len(results), stderr.String())
	}
}

// parseCaseResults parses client.js's JSON lines; any other line is a
// harness error.
func parseCaseResults(t *testing.T, out []byte) []caseResult {
	t.Helper()
	var results []caseResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r caseResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Case == "" {
			t.Errorf("unexpected output from node client.js: %q", sc.Text())
			continue
		}
		results = append(results, r)
	}
	return results
}

func allOK(results []caseResult) bool {
	for _, r := range results {
		if !r.OK {
			return false
		}
	}
	return true
}

// checkClientCloseReports checks that GetStatus on the Go server returned
// exactly the close code and reason node's ws.close() sent.
func checkClientCloseReports(t *testing.T, reports <-chan closeReport, want map[string]closeReport) {
	got := map[string]closeReport{}
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case r := <-reports:
			got[r.id] = r
		case <-timeout:
			t.Errorf("GetStatus reports received for %d of %d client-close connections", len(got), len(want))
			return
		}
	}
	for id, w := range want {
		t.Run("server-GetStatus-"+id, func(t *testing.T) {
			g := got[id]
			if g.status != w.status || g.reason != w.reason {
				t.Errorf("GetStatus() = %d %q, want %d %q", g.status, g.reason, w.status, w.reason)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Go client (websocket.Dial) -> Node ws server

// dialer connects Go clients to a node server.js and guards every
// connection with a watchdog: the API has no read deadlines, so on timeout
// the raw TCP connection (captured via NetDialContext) is closed, which
// unblocks any pending call.
type dialer struct {
	ctx    context.Context
	server *nodeServer
	opts   *websocket.DialOptions // for the dials that pass none
	limit  time.Duration          // of each connection; zero means dialTimeout
}

// connID makes a server.js ?id= tag from the subtest name.
func connID(t *testing.T, suffix string) string {
	name := t.Name()
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return name + suffix
}

func (d *dialer) url(path string, query url.Values) string {
	u := url.URL{Scheme: "ws", Host: fmt.Sprintf("127.0.0.1:%d", d.server.Port), Path: path}
	u.RawQuery = query.Encode()
	return u.String()
}

// dial connects to path with ?id=id and returns the connection; it fails
// the test if ws reported a protocol error for the connection by the time
// the test ends.
func (d *dialer) dial(t *testing.T, path, id string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	conn, err := d.tryDial(t, path, url.Values{"id": {id}}, opts)
	if err != nil {
		t.Fatalf("Dial %s: %v", path, err)
	}
	t.Cleanup(func() {
		for _, e := range d.server.errorsFor(id) {
			t.Errorf("ws reported a protocol error on %s: %s", path, e.Message)
		}
	})
	return conn
}

func (d *dialer) tryDial(t *testing.T, path string, query url.Values, opts *websocket.DialOptions) (*websocket.Conn, error) {
	t.Helper()
	if opts == nil {
		opts = d.opts
	}
	var o websocket.DialOptions
	if opts != nil {
		o = *opts
	}
	var (
		mu       sync.Mutex
		raw      net.Conn
		finished bool // set by Cleanup; the watchdog must not log after it
	)
	netDial := o.NetDialContext
	if netDial == nil {
		netDial = (&net.Dialer{}).DialContext
	}
	o.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := netDial(ctx, network, addr)
		mu.Lock()
		raw = c
		mu.Unlock()
		return c, err
	}
	closeRaw := func() {
		if raw != nil {
			raw.Close()
		}
	}
	limit := d.limit
	if limit == 0 {
		limit = dialTimeout
	}
	watchdog := time.AfterFunc(limit, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			t.Errorf("%s: timed out after %v; closing the TCP connection", path, limit)
			closeRaw()
		}
	})
	t.Cleanup(func() {
		watchdog.Stop()
		mu.Lock()
		defer mu.Unlock()
		finished = true
		closeRaw()
	})
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, d.url(path, query), &o)
}

// closeAndCheck closes with StatusOK "bye" and checks that ws saw exactly
// that, and that ws's echoed close frame reached GetStatus.
func (d *dialer) closeAndCheck(t *testing.T, conn *websocket.Conn, id string) {
	t.Helper()
	if err := conn.Close(websocket.StatusOK, "bye"); err != nil {
		t.Errorf("Close(StatusOK, \"bye\"): %v", err)
	}
	e := d.server.waitClose(t, id)
	if e.Code != int(websocket.StatusOK) || e.Reason != "bye" {
		t.Errorf("ws saw close %d %q, want 1000 \"bye\"", e.Code, e.Reason)
	}
	if status, reason := conn.GetStatus(); status != websocket.StatusOK {
		t.Errorf("GetStatus() after our Close = %d %q, want ws's echoed 1000", status, reason)
	}
}

// receive reads one whole message with ReceiveMessage.
func receive(conn *websocket.Conn) (websocket.MessageType, []byte, error) {
	tp, r, err := conn.ReceiveMessage()
	if err != nil {
		return 0, nil, err
	}
	data, err := io.ReadAll(r)
	return tp, data, err
}

func expectMessage(t *testing.T, conn *websocket.Conn, wantType websocket.MessageType, want []byte) {
	t.Helper()
	tp, got, err := receive(conn)
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if tp != wantType {
		t.Errorf("message type %d, want %d", tp, wantType)
	}
	if d := firstDiff(got, want); d != "" {
		t.Errorf("message content: %s", d)
	}
}

var echoSizes = []int{0, 125, 126, 65535, 65536, 16 * mib}

func TestGoDialAgainstNodeServer(t *testing.T) {
	ctx, nodeBin, dir := startNodeTest(t, testTimeout)
	d := &dialer{ctx: ctx, server: startNodeServer(t, ctx, nodeBin, dir)}

	for _, size := range echoSizes {
		t.Run(fmt.Sprintf("echo-%d", size), func(t *testing.T) { testEchoSize(t, d, size) })
	}
	runDialerCases(t, d, nodeDataCases)
	t.Run("server-ping", func(t *testing.T) { testServerPing(t, d) })
	t.Run("server-close", func(t *testing.T) { testServerClose(t, d) })
	t.Run("client-close", func(t *testing.T) { testClientClose(t, d) })
	t.Run("client-close-custom-code", func(t *testing.T) { testClientCloseCustom(t, d) })
	t.Run("subprotocol", func(t *testing.T) { testSubprotocol(t, d) })
	t.Run("origin", func(t *testing.T) { testOrigin(t, d) })
}

// dialerCase is a case of a Go client against a Node.js server.
type dialerCase struct {
	name string
	run  func(*testing.T, *dialer)
}

// nodeDataCases are the cases of TestGoDialAgainstNodeServer that send
// and receive messages; TestGoDialDeflateNodeServer runs them compressed.
var nodeDataCases = []dialerCase{
	{"echo-utf8-text", testEchoUTF8},
	{"stream-send", testStreamSend},
	{"receive-fragmented", testReceiveFragmented},
	{"read-limit", testReadLimit},
}

// runDialerCases runs each case as a subtest.
func runDialerCases(t *testing.T, d *dialer, cases []dialerCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, d) })
	}
}

// testEchoSize round-trips binary and text messages of one size through
// ws, reading them with each of the three receive calls.
func testEchoSize(t *testing.T, d *dialer, size int) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)
	bin := pattern(size, uint32(size)+1)
	text := asciiText(size, uint32(size)+2)

	if err := conn.SendBinary(bin); err != nil {
		t.Fatalf("SendBinary(%d bytes): %v", size, err)
	}
	expectMessage(t, conn, websocket.Binary, bin)

	if err := conn.SendText(text); err != nil {
		t.Fatalf("SendText(%d bytes): %v", size, err)
	}
	got, err := conn.ReceiveText(size)
	if err != nil {
		t.Fatalf("ReceiveText(%d): %v", size, err)
	}
	if d := firstDiff([]byte(got), []byte(text)); d != "" {
		t.Errorf("text echo: %s", d)
	}

	if err := conn.SendBinary(bin); err != nil {
		t.Fatalf("SendBinary(%d bytes): %v", size, err)
	}
	buf := make([]byte, size+1)
	n, err := conn.ReceiveBinary(buf)
	if err != nil {
		t.Fatalf("ReceiveBinary: %v", err)
	}
	if d := firstDiff(buf[:n], bin); d != "" {
		t.Errorf("ReceiveBinary echo: %s", d)
	}
	d.closeAndCheck(t, conn, id)
}

func testEchoUTF8(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)
	const text = "ASCII, café, Ωμέγα, 日本語テキスト, emoji 😀🚀, 𝄞 music"
	if err := conn.SendText(text); err != nil {
		t.Fatalf("SendText: %v", err)
	}
	expectMessage(t, conn, websocket.Text, []byte(text))
	d.closeAndCheck(t, conn, id)
}

// testStreamSend writes one message in several Writes (each may become a
// fragment); ws reassembles and validates UTF-8 over the whole message, so
// a code point split between Writes is legal.
func testStreamSend(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)

	euro := []byte("€") // E2 82 AC
	textParts := [][]byte{[]byte("stream "), euro[:1], euro[1:], []byte(" ✓ 😀"), nil, []byte(" end")}
	sendStreamed(t, conn, websocket.Text, textParts)
	expectMessage(t, conn, websocket.Text, bytes.Join(textParts, nil))

	bin := pattern(200000, 77)
	binParts := [][]byte{bin[:1], bin[1:126], {}, bin[126:70126], bin[70126:]}
	sendStreamed(t, conn, websocket.Binary, binParts)
	expectMessage(t, conn, websocket.Binary, bin)

	d.closeAndCheck(t, conn, id)
}

func sendStreamed(t *testing.T, conn *websocket.Conn, tp websocket.MessageType, parts [][]byte) {
	t.Helper()
	if err := streamMessage(conn, tp, parts); err != nil {
		t.Fatal(err)
	}
}

// streamMessage sends parts as one message, one Write each.
func streamMessage(conn *websocket.Conn, tp websocket.MessageType, parts [][]byte) error {
	w, err := conn.SendMessage(tp)
	if err != nil {
		return fmt.Errorf("SendMessage: %w", err)
	}
	for i, p := range parts {
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("Write of part %d (%d bytes): %w", i, len(p), err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("closing the message writer: %w", err)
	}
	return nil
}

// testReceiveFragmented reads the fragmented messages server.js sends with
// ws's {fin:false}; the text one splits "€" between its first two frames.
func testReceiveFragmented(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/fragmented", id, nil)
	expectMessage(t, conn, websocket.Text, []byte("frag€mented ✓ 😀"))
	expectMessage(t, conn, websocket.Binary, pattern(70000, 42))
	d.closeAndCheck(t, conn, id)
}

// testServerPing: server.js pings and then sends "pong-ok" only if our pong
// carried the ping's payload (RFC 6455 5.5.3). Pongs are sent while reading.
func testServerPing(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/ping", id, nil)
	got, err := conn.ReceiveText(64)
	if err != nil {
		t.Fatalf("ReceiveText: %v", err)
	}
	if got != "pong-ok" {
		t.Errorf("server.js reported %q, want \"pong-ok\"", got)
	}
	d.closeAndCheck(t, conn, id)
}

// testServerClose: ws closes with 4001 "bye"; GetStatus must report it and
// the connection must be unusable afterwards.
func testServerClose(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn, err := d.tryDial(t, "/close", url.Values{"id": {id}, "code": {"4001"}, "reason": {"bye"}}, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if _, _, err := receive(conn); err == nil {
		t.Fatal("ReceiveMessage succeeded on a connection the server closed")
	}
	if status, reason := conn.GetStatus(); status != 4001 || reason != "bye" {
		t.Errorf("GetStatus() = %d %q, want 4001 \"bye\"", status, reason)
	}
	if e := d.server.waitClose(t, id); e.Code != 4001 {
		t.Errorf("ws finished its close with %d, want 4001 (our echo of its code)", e.Code)
	}
	if _, _, err := conn.ReceiveMessage(); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("ReceiveMessage after close: %v, want ErrConnClosed", err)
	}
	if err := conn.SendText("too late"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("SendText after close: %v, want ErrConnClosed", err)
	}
	if err := conn.SendBinary([]byte("too late")); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("SendBinary after close: %v, want ErrConnClosed", err)
	}
	checkSendMessageClosed(t, conn)
}

// checkSendMessageClosed calls SendMessage on a closed connection several
// times: a select between "sender free" and "connection closed" would pick
// at random, so a single call could pass by luck.
func checkSendMessageClosed(t *testing.T, conn *websocket.Conn) {
	t.Helper()
	const tries = 20
	for i := 0; i < tries; i++ {
		w, err := conn.SendMessage(websocket.Binary)
		if errors.Is(err, websocket.ErrConnClosed) {
			continue
		}
		if w != nil {
			_, werr := w.Write([]byte("too late"))
			cerr := w.Close()
			t.Errorf("SendMessage after close returned (writer, %v) on try %d of %d; its Write: %v, Close: %v; want ErrConnClosed from SendMessage",
				err, i+1, tries, werr, cerr)
		} else {
			t.Errorf("SendMessage after close: %v, want ErrConnClosed", err)
		}
		return
	}
}

// testClientClose: our Close(StatusOK, "bye") must reach ws intact.
func testClientClose(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)
	if err := conn.SendText("before close"); err != nil {
		t.Fatalf("SendText: %v", err)
	}
	expectMessage(t, conn, websocket.Text, []byte("before close"))
	d.closeAndCheck(t, conn, id)
	if err := conn.SendText("after close"); !errors.Is(err, websocket.ErrConnClosed) {
		t.Errorf("SendText after Close: %v, want ErrConnClosed", err)
	}
}

// testClientCloseCustom: an application code (4000-4999) and a multi-byte
// reason must reach ws unchanged.
func testClientCloseCustom(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)
	const reason = "custom ✓"
	if err := conn.Close(4003, reason); err != nil {
		t.Errorf("Close(4003): %v", err)
	}
	if e := d.server.waitClose(t, id); e.Code != 4003 || e.Reason != reason {
		t.Errorf("ws saw close %d %q, want 4003 %q", e.Code, e.Reason, reason)
	}
	if status, got := conn.GetStatus(); status != 4003 || got != reason {
		t.Errorf("GetStatus() = %d %q, want ws's echo 4003 %q", status, got, reason)
	}
}

func testSubprotocol(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/subprotocol", id, &websocket.DialOptions{Subprotocols: []string{"chat.v2", "chat.v1"}})
	if conn.Protocol != "chat.v1" {
		t.Errorf("conn.Protocol = %q, want \"chat.v1\" (server.js's choice)", conn.Protocol)
	}
	if err := conn.SendText("via chat.v1"); err != nil {
		t.Fatalf("SendText: %v", err)
	}
	expectMessage(t, conn, websocket.Text, []byte("via chat.v1"))
	d.closeAndCheck(t, conn, id)
}

// testOrigin: server.js answers 403 unless Origin is good.example; Dial
// must send DialOptions.Header and report the refusal as ErrBadHandshake.
func testOrigin(t *testing.T, d *dialer) {
	id := connID(t, "-good")
	good := d.dial(t, "/origin", id, &websocket.DialOptions{Header: http.Header{"Origin": {goodOrigin}}})
	d.closeAndCheck(t, good, id)

	bad, err := d.tryDial(t, "/origin", url.Values{"id": {connID(t, "-bad")}},
		&websocket.DialOptions{Header: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil {
		bad.Close(websocket.StatusOK, "")
		t.Fatal("Dial with a forbidden Origin succeeded; server.js answers 403")
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || !strings.Contains(err.Error(), "403") {
		t.Errorf("Dial error %v, want ErrBadHandshake mentioning 403", err)
	}
}

// testReadLimit: with SetReadLimit(1024) a 1025-byte message must fail the
// connection with 1009 (RFC 6455 7.4.1), which ws must see.
func testReadLimit(t *testing.T, d *dialer) {
	id := connID(t, "")
	conn := d.dial(t, "/echo", id, nil)
	conn.SetReadLimit(1024)
	ok := pattern(1024, 5)
	if err := conn.SendBinary(ok); err != nil {
		t.Fatalf("SendBinary: %v", err)
	}
	expectMessage(t, conn, websocket.Binary, ok)

	if err := conn.SendBinary(pattern(1025, 6)); err != nil {
		t.Fatalf("SendBinary: %v", err)
	}
	if _, _, err := receive(conn); err == nil {
		t.Fatal("received a 1025-byte message despite SetReadLimit(1024)")
	}
	if e := d.server.waitClose(t, id); e.Code != int(websocket.StatusTooLarge) {
		t.Errorf("ws saw close %d %q, want 1009", e.Code, e.Reason)
	}
}
