package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// wantWSVersion is the ws release the Node peers are pinned to in
// node/package.json; a different one means node_modules is stale.
const wantWSVersion = "8.23.0"

// requireNode returns the node binary and the absolute path of the node/
// directory. Outside CI a missing prerequisite skips the test so that a
// plain `go test ./...` works without Node; with CI=true it fails, because
// a silently skipped interop suite would look like a green one.
func requireNode(t *testing.T) (nodeBin, dir string) {
	t.Helper()
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	nodeBin, err = exec.LookPath("node")
	if err != nil {
		missing = append(missing, "the node binary is not on PATH")
	}
	wsPkg := filepath.Join(dir, "node_modules", "ws", "package.json")
	version, err := packageVersion(wsPkg)
	if err != nil {
		missing = append(missing, fmt.Sprintf("%s is missing (run `npm ci` in interop/node)", wsPkg))
	}
	if len(missing) > 0 {
		msg := "Node.js interop prerequisites missing: " + strings.Join(missing, "; ")
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: the interop suite must not be skipped)", msg)
		}
		t.Skip(msg)
	}
	if version != wantWSVersion {
		t.Fatalf("node_modules has ws %s, want %s (run `npm ci` in interop/node)", version, wantWSVersion)
	}
	return nodeBin, dir
}

func packageVersion(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(data, &pkg); err != nil {
		return "", err
	}
	return pkg.Version, nil
}

// pattern returns n pseudo-random bytes from a xorshift32 generator seeded
// with seed. It must stay identical to pattern() in node/pattern.js so that
// each side can compute the expected bytes on its own.
func pattern(n int, seed uint32) []byte {
	buf := make([]byte, n)
	x := seed
	if x == 0 {
		x = 0x9e3779b9
	}
	for i := range buf {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		buf[i] = byte(x)
	}
	return buf
}

// asciiText returns n bytes of printable ASCII derived from pattern, for
// text messages whose size in bytes must be exact.
func asciiText(n int, seed uint32) string {
	buf := pattern(n, seed)
	for i, b := range buf {
		buf[i] = 'a' + b%26
	}
	return string(buf)
}

// firstDiff describes where two byte slices differ, for readable failures
// on multi-megabyte payloads.
func firstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return "" // at once, where the loop below is slow under -race
	}
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d is %#x, want %#x", i, got[i], want[i])
		}
	}
	return ""
}

// lockedBuffer collects a child process's output (Node's, Chromium's):
// exec copies into it from its own goroutine while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// nodeEvent is one JSON line printed by node/server.js.
type nodeEvent struct {
	Event   string `json:"event"`
	Port    int    `json:"port"`
	ID      string `json:"id"`
	Path    string `json:"path"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// nodeServer is a running node/server.js. Its stdout is parsed into events
// by one goroutine, which also reaps the process, so that nothing outlives
// the test.
type nodeServer struct {
	Port   int
	stderr *lockedBuffer

	mu     sync.Mutex
	events []nodeEvent
	done   chan struct{} // closed once stdout hit EOF and the process was reaped
}

// startNodeServer runs node/server.js and waits for its port. The server
// exits when its stdin pipe is closed, which t.Cleanup does; a kill follows
// if it does not exit in time.  env holds extra environment variables
// ("NAME=value") for server.js.
func startNodeServer(t *testing.T, ctx context.Context, nodeBin, dir string, env ...string) *nodeServer {
	t.Helper()
	cmd := exec.CommandContext(ctx, nodeBin, "server.js")
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	s := &nodeServer{stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go s.readEvents(t, stdout, cmd)
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Errorf("node server.js did not exit after stdin closed; killing it")
			cmd.Process.Kill()
			<-s.done
		}
		if stderr := s.stderr.String(); t.Failed() && stderr != "" {
			t.Logf("node server.js stderr:\n%s", stderr)
		}
	})

	listening, ok := s.waitEvent(10*time.Second, func(e nodeEvent) bool { return e.Event == "listening" })
	if !ok {
		t.Fatalf("node server.js did not report its port; stderr:\n%s", s.stderr.String())
	}
	s.Port = listening.Port
	return s
}

// readEvents parses stdout until EOF and then reaps the process: Wait must
// only be called after all reads from the pipe are done.
func (s *nodeServer) readEvents(t *testing.T, stdout io.Reader, cmd *exec.Cmd) {
	defer close(s.done)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var e nodeEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			e = nodeEvent{Event: "garbage", Message: sc.Text()}
		}
		s.mu.Lock()
		s.events = append(s.events, e)
		s.mu.Unlock()
	}
	io.Copy(io.Discard, stdout)
	cmd.Wait()
}

// waitEvent polls for an event matching match. Polling keeps the reader
// goroutine free of any blocking send, so it can never leak.
func (s *nodeServer) waitEvent(timeout time.Duration, match func(nodeEvent) bool) (nodeEvent, bool) {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, e := range s.events {
			if match(e) {
				s.mu.Unlock()
				return e, true
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			return nodeEvent{}, false
		}
		select {
		case <-s.done:
			// No further events can arrive; one last look above.
			deadline = time.Now()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// errorsFor returns the ws 'error' events (protocol violations ws detected
// in what we sent) for connection id.
func (s *nodeServer) errorsFor(id string) []nodeEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []nodeEvent
	for _, e := range s.events {
		if e.Event == "error" && e.ID == id {
			errs = append(errs, e)
		}
	}
	return errs
}

// waitClose waits for server.js to report the close of connection id.
func (s *nodeServer) waitClose(t *testing.T, id string) nodeEvent {
	t.Helper()
	e, ok := s.waitEvent(10*time.Second, func(e nodeEvent) bool { return e.Event == "close" && e.ID == id })
	if !ok {
		t.Fatalf("node server.js never reported the close of connection %q", id)
	}
	return e
}

// checkGoroutines fails the test if goroutines started during it are still
// running once all its other cleanups have run. Register it first: cleanups
// run last-in first-out.
func checkGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: %d goroutines, %d at start:\n%s", runtime.NumGoroutine(), base, buf[:n])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// loopbackListener listens on 127.0.0.1 only (never [::1] or a wildcard).
func loopbackListener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
