//go:build unix

package interop

// TestChromiumEcho checks the library against a real browser: headless
// Chromium loads a test page from a Go server and uses the browser's own
// WebSocket implementation (the most common client in practice) to talk to
// websocket.Handler.  The page, chromium/page.html, runs the cases and POSTs
// a JSON report back; this file serves the page and the endpoints, launches
// and reaps the browser, and turns the report into test failures.
//
// Requirements: the `chromium` binary on PATH (Debian/Ubuntu package
// "chromium"; override the binary with $CHROMIUM_BIN).  Without it the test
// is skipped, except when CI=true, where a missing browser is a failure so
// that a broken CI image cannot silently turn the test into a no-op.
//
// Everything listens on and connects to 127.0.0.1 only.  The test is limited
// to unix systems because it puts Chromium into its own process group in
// order to kill the browser together with all of its helper processes.

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
)

// chromiumPage is the test page.  It is embedded so that the test has no
// dependency on the working directory and serves exactly what was compiled.
//
//go:embed chromium/page.html
var chromiumPage []byte

const (
	// chromiumReportTimeout bounds the whole browser run, from launch to
	// the page's report.  The page bounds each of its own steps at 10 s,
	// so a report normally arrives even when some case hangs.
	chromiumReportTimeout = 60 * time.Second

	// chromiumStatusTimeout bounds how long the Go side waits for
	// GetStatus of a connection after the report arrived (the page
	// sends its report only after its close handshakes, so this should
	// be immediate).
	chromiumStatusTimeout = 10 * time.Second

	// chromiumServerCloseCode and chromiumServerCloseReason are what
	// /ws-close closes with; the page checks that its close event shows
	// exactly these.  4042 is in the private-use range 4000-4999.
	chromiumServerCloseCode   websocket.Status = 4042
	chromiumServerCloseReason                  = "server-bye"

	// chromiumPageCloseCode and chromiumPageCloseReason are what the page
	// passes to ws.close on its echo connection; GetStatus on the server
	// side must report them.
	chromiumPageCloseCode   websocket.Status = 4321
	chromiumPageCloseReason                  = "page-bye"
)

// chromiumRequiredCases are the cases the page must report.  Checking the
// names guards against a page that stops early (or a page edit that drops
// a case) and still reports ok.
var chromiumRequiredCases = []string{
	"open",
	"text-ascii", "text-utf8", "text-empty", "text-utf8-large",
	"binary-0", "binary-125", "binary-126", "binary-65535", "binary-65536", "binary-1048576",
	"blob", "binary-as-blob", "pipelined",
	"subprotocol", "server-close", "client-close",
}

// chromiumCase and chromiumReport mirror the JSON that the page POSTs to
// /result.
type chromiumCase struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

type chromiumReport struct {
	OK         bool           `json:"ok"`
	UserAgent  string         `json:"userAgent"`
	Extensions string         `json:"extensions"` // ws.extensions of the echo connection
	Cases      []chromiumCase `json:"cases"`
}

// chromiumCloseStatus is what GetStatus returned for one connection.
type chromiumCloseStatus struct {
	code   websocket.Status
	reason string
}

// chromiumServer is the Go side of the test: the handlers for the page's
// requests and what they observed.  The handlers run on server goroutines
// that may outlive the test function, so they never call t.Log; they record
// events that the test prints if it fails.
type chromiumServer struct {
	// origin is the page's own origin, "http://127.0.0.1:PORT", which
	// the browser must send in the Origin header of every handshake.
	// It is set before the server starts and read-only afterwards.
	origin string

	// compression, if not nil, turns on permessage-deflate in the
	// WebSocket endpoints, and the browser then reaches the server
	// through tap, which chromiumStartServer starts (TestChromiumDeflate).
	compression *websocket.CompressionOptions
	tap         *wireTap

	// report receives the page's report (or a synthetic failing one if
	// the POST could not be decoded); buffered, first one wins.
	report chan chromiumReport

	// mainStatus receives GetStatus of the page's echo connection, the
	// one the page closes with ws.close(4321, "page-bye").
	mainStatus chan chromiumCloseStatus

	// serverCloseStatus receives GetStatus of the /ws-close connection,
	// which reflects the browser's reply to the server's close frame.
	serverCloseStatus chan chromiumCloseStatus

	mu      sync.Mutex
	origins []string            // Origin of every handshake, in order
	offered map[string][]string // subprotocols offered, by request URI
	events  []string            // server-side log, printed on failure
}

// newChromiumServer makes the Go side of a browser run; compression may be
// nil.
func newChromiumServer(compression *websocket.CompressionOptions) *chromiumServer {
	return &chromiumServer{
		compression:       compression,
		report:            make(chan chromiumReport, 1),
		mainStatus:        make(chan chromiumCloseStatus, 1),
		serverCloseStatus: make(chan chromiumCloseStatus, 1),
		offered:           make(map[string][]string),
	}
}

// logf records a server-side event with a timestamp.
func (s *chromiumServer) logf(format string, args ...any) {
	line := time.Now().Format("15:04:05.000 ") + fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.events = append(s.events, line)
	s.mu.Unlock()
}

// chromiumRequestURI returns the path and query of the connection's
// resource name; the page tells its connections apart by a "case" query
// parameter.
func chromiumRequestURI(conn *websocket.Conn) string {
	if conn.ResourceName == nil {
		return "<nil ResourceName>"
	}
	return conn.ResourceName.RequestURI()
}

// accessOk is the AccessOk callback of both WebSocket endpoints.  It
// rejects handshakes whose Origin is not the page's own origin (a browser
// always sends Origin, so this also checks that the library parsed it), and
// selects "v1.test" when offered, leaving the client's first preference
// "v2.test" unselected so the page can tell that the server's choice won.
func (s *chromiumServer) accessOk(conn *websocket.Conn, protocols []string) bool {
	origin := "<none>"
	if conn.Origin != nil {
		origin = conn.Origin.String()
	}
	uri := chromiumRequestURI(conn)
	s.mu.Lock()
	s.origins = append(s.origins, origin)
	s.offered[uri] = slices.Clone(protocols)
	s.mu.Unlock()
	s.logf("handshake %s from %s, origin %s, protocols %q", uri, conn.RemoteAddr, origin, protocols)
	if origin != s.origin {
		s.logf("rejecting %s: origin %s, want %s", uri, origin, s.origin)
		return false
	}
	if slices.Contains(protocols, "v1.test") {
		conn.Protocol = "v1.test"
	}
	return true
}

// echo is the /ws handler: it sends every message back with the same type.
// For the page's main connection it also reports GetStatus, from a separate
// goroutine because GetStatus blocks until the connection is closed.
func (s *chromiumServer) echo(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")
	uri := chromiumRequestURI(conn)
	go func() {
		code, reason := conn.GetStatus()
		s.logf("%s: GetStatus = %d %q", uri, code, reason)
		if uri == "/ws?case=main" {
			select {
			case s.mainStatus <- chromiumCloseStatus{code, reason}:
			default:
			}
		}
	}()
	for {
		tp, r, err := conn.ReceiveMessage()
		if err != nil {
			s.logf("%s: ReceiveMessage: %v", uri, err)
			return
		}
		w, err := conn.SendMessage(tp)
		if err != nil {
			s.logf("%s: SendMessage(%v): %v", uri, tp, err)
			return
		}
		n, err := io.Copy(w, r)
		if err != nil {
			w.Close()
			s.logf("%s: copying %v message after %d bytes: %v", uri, tp, n, err)
			return
		}
		if err := w.Close(); err != nil {
			s.logf("%s: closing %v message writer: %v", uri, tp, err)
			return
		}
		s.logf("%s: echoed %v message of %d bytes", uri, tp, n)
	}
}

// serverClose is the /ws-close handler: one text message, then a
// server-initiated close whose code and reason the page checks.
func (s *chromiumServer) serverClose(conn *websocket.Conn) {
	go func() {
		code, reason := conn.GetStatus()
		s.logf("/ws-close: GetStatus = %d %q", code, reason)
		select {
		case s.serverCloseStatus <- chromiumCloseStatus{code, reason}:
		default:
		}
	}()
	if err := conn.SendText("server-hello"); err != nil {
		s.logf("/ws-close: SendText: %v", err)
	}
	if err := conn.Close(chromiumServerCloseCode, chromiumServerCloseReason); err != nil {
		s.logf("/ws-close: Close: %v", err)
	}
}

// result receives the page's report.
func (s *chromiumServer) result(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var rep chromiumReport
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&rep); err != nil {
		rep = chromiumReport{Cases: []chromiumCase{{Name: "report", Detail: "decoding the page's report: " + err.Error()}}}
		http.Error(w, err.Error(), http.StatusBadRequest)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	select {
	case s.report <- rep:
	default:
		s.logf("ignoring an extra report")
	}
}

// handler routes the page's requests.
func (s *chromiumServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(chromiumPage)
	})
	var compression websocket.CompressionOptions
	if s.compression != nil {
		compression = *s.compression
	}
	for path, handle := range map[string]func(*websocket.Conn){"/ws": s.echo, "/ws-close": s.serverClose} {
		mux.Handle(path, &websocket.Handler{AccessOk: s.accessOk, Handle: handle, ServerName: "chromium-interop",
			EnableCompression: s.compression != nil, CompressionOptions: compression})
	}
	mux.HandleFunc("/result", s.result)
	return mux
}

// chromiumFind returns the browser binary, skipping the test if there is
// none outside CI.
func chromiumFind(t *testing.T) string {
	t.Helper()
	name := os.Getenv("CHROMIUM_BIN")
	if name == "" {
		name = "chromium"
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("headless Chromium not found (%v); install it with "+
		"`apt-get install chromium` or set CHROMIUM_BIN", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, so this is a failure")
	}
	t.Skip(msg)
	return ""
}

// chromiumStartServer starts s on a fresh 127.0.0.1 port and returns the
// page's origin.  httptest would fall back to [::1] when IPv4 loopback is
// unavailable; an explicit tcp4 listener keeps the test on 127.0.0.1 as
// documented, and lets s.origin be set before the first request can
// arrive.  With compression, the browser connects through a wireTap.
func chromiumStartServer(t *testing.T, s *chromiumServer) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.1: %v", err)
	}
	s.origin = "http://" + l.Addr().String()
	if s.compression != nil {
		s.tap = startWireTap(t, l.Addr().String())
		s.origin = "http://" + s.tap.Addr()
	}
	ts := httptest.NewUnstartedServer(s.handler())
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	t.Cleanup(ts.Close)
	return s.origin
}

// chromiumLaunch starts headless Chromium on pageURL and registers a
// cleanup that kills it with all its helpers.  The returned channel
// receives the result of Wait if the browser exits by itself.
//
// Flags: --no-sandbox because the test may run as root (CI containers),
// where Chromium refuses to start sandboxed; the --disable-* flags and
// --no-proxy-server keep the browser from talking to anything but the
// test server.  HOME and the XDG directories point into the test's
// temporary directory so the browser leaves nothing behind in the real
// home directory (it otherwise writes ~/.config/chromium/Crash Reports
// and ~/.cache/dconf).
func chromiumLaunch(t *testing.T, bin, pageURL string, output *lockedBuffer) <-chan error {
	t.Helper()
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	home := filepath.Join(dir, "home")
	for _, d := range []string{profile, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-background-networking",
		"--disable-quic",
		"--no-first-run",
		"--disable-component-update",
		"--disable-sync",
		"--disable-dev-shm-usage",
		"--no-proxy-server",
		// Copies console messages to stderr, including the page's
		// progress and Chromium's own WebSocket errors ("WebSocket
		// connection to ... failed: <reason>"), the best clue when
		// the library sends something the browser rejects.
		"--enable-logging=stderr",
		"--user-data-dir="+profile,
		pageURL,
	)
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
	)
	cmd.Stdout = output
	cmd.Stderr = output
	// Chromium forks zygote, renderer, GPU and network processes.  In a
	// process group of their own they can all be killed with one signal
	// to -pgid, and none of them keeps running after the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Wait must not hang on a pipe held open by some straggler.
	cmd.WaitDelay = 5 * time.Second

	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Logf("started %s (pid %d) on %s", bin, cmd.Process.Pid, pageURL)

	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(done)
	}()

	t.Cleanup(func() {
		cancel() // kills the group through cmd.Cancel, if still running
		// Kill the group again in case the leader already exited on
		// its own but left children behind.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		chromiumReapStragglers(t, profile)
		if t.Failed() {
			t.Logf("chromium output:\n%s", output.String())
		}
	})
	return exited
}

// chromiumReapStragglers kills processes that escaped the process group.
// Chromium's crash handler (chrome_crashpad_handler) calls setsid, so the
// group kill misses it; it exits by itself once the browser is gone, but
// it writes into our temporary directory and could race with its removal.
// It is identified by its command line, which names our unique profile or
// home directory, so only processes this test started are touched.  Linux
// only (/proc); elsewhere this does nothing.
func chromiumReapStragglers(t *testing.T, dir string) {
	dir = filepath.Dir(dir) // the test's temporary directory
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err == nil && strings.Contains(string(stat), ") Z ") {
				continue // a zombie waiting for its parent; nothing runs
			}
			pids = append(pids, pid)
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("chromium processes still running after kill: %v", pids)
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestChromiumEcho(t *testing.T) {
	runChromiumPage(t, newChromiumServer(nil), "", nil)
}

// runChromiumPage runs the page in a browser against s, with query added
// to the page's URL, checks its report, in which the cases
// chromiumRequiredCases and extraCases must be, and what the server saw,
// and returns the report.
func runChromiumPage(t *testing.T, s *chromiumServer, query string, extraCases []string) chromiumReport {
	bin := chromiumFind(t)
	origin := chromiumStartServer(t, s)
	// Cleanups run last-registered first: the browser (registered by
	// chromiumLaunch below) is killed first, then the server's events are
	// printed if the test failed, then the server is closed.
	t.Cleanup(func() {
		if t.Failed() {
			s.mu.Lock()
			defer s.mu.Unlock()
			events := strings.Join(s.events, "\n")
			if events == "" {
				events = "(none)"
			}
			t.Logf("server events:\n%s", events)
		}
	})

	output := &lockedBuffer{}
	exited := chromiumLaunch(t, bin, origin+"/"+query, output)

	timeout := chromiumReportTimeout
	if s.compression != nil {
		timeout *= 2 // compress/flate is slow under the race detector
	}
	var rep chromiumReport
	select {
	case rep = <-s.report:
	case err := <-exited:
		t.Fatalf("chromium exited (%v) before the page sent its report", err)
	case <-time.After(timeout):
		t.Fatalf("no report from the page within %v", timeout)
	}

	t.Logf("browser: %s", rep.UserAgent)
	seen := make(map[string]bool)
	failed := 0
	for _, c := range rep.Cases {
		seen[c.Name] = true
		if c.OK {
			t.Logf("ok   %-16s %s", c.Name, c.Detail)
		} else {
			failed++
			t.Errorf("FAIL %-16s %s", c.Name, c.Detail)
		}
	}
	for _, name := range append(slices.Clip(chromiumRequiredCases), extraCases...) {
		if !seen[name] {
			t.Errorf("the page did not report case %q", name)
		}
	}
	if !rep.OK && failed == 0 {
		t.Errorf("the page reported ok=false without a failing case")
	}

	// What the server saw of the page's close: ws.close(4321, "page-bye").
	select {
	case st := <-s.mainStatus:
		if st.code != chromiumPageCloseCode || st.reason != chromiumPageCloseReason {
			t.Errorf("GetStatus on the echo connection = %d %q, want %d %q",
				st.code, st.reason, chromiumPageCloseCode, chromiumPageCloseReason)
		} else {
			t.Logf("ok   GetStatus        %d %q", st.code, st.reason)
		}
	case <-time.After(chromiumStatusTimeout):
		t.Errorf("GetStatus on the echo connection (/ws?case=main) did not return within %v", chromiumStatusTimeout)
	}

	// After a server-initiated close, GetStatus reports the browser's
	// reply close frame.  Chromium currently echoes code and reason, but
	// RFC 6455 does not require that, so only require that a reply close
	// frame was received and parsed (not StatusDropped, which would mean
	// the library tore the connection down without the closing
	// handshake, or lost the reply).
	select {
	case st := <-s.serverCloseStatus:
		if st.code == websocket.StatusDropped {
			t.Errorf("GetStatus on /ws-close = %d %q: the browser's reply close frame was not seen", st.code, st.reason)
		} else {
			t.Logf("ok   /ws-close reply  %d %q", st.code, st.reason)
		}
	case <-time.After(chromiumStatusTimeout):
		t.Errorf("GetStatus on /ws-close did not return within %v", chromiumStatusTimeout)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.origins) < 3 {
		t.Errorf("saw %d handshakes, want at least 3 (/ws twice, /ws-close)", len(s.origins))
	}
	for _, o := range s.origins {
		if o != s.origin {
			t.Errorf("handshake with Origin %s, want %s", o, s.origin)
		}
	}
	if got, want := s.offered["/ws?case=subprotocol"], []string{"v2.test", "v1.test"}; !slices.Equal(got, want) {
		t.Errorf("subprotocols offered by the page = %q, want %q (in the browser's order)", got, want)
	}
	if got := s.offered["/ws?case=main"]; len(got) != 0 {
		t.Errorf("subprotocols offered on the main connection = %q, want none", got)
	}
	return rep
}
