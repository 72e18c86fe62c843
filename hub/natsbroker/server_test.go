package natsbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gowebsock/websocket/hub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// wait bounds every wait of these tests for something that must happen.
const wait = 10 * time.Second

// server is a nats-server that a test started, on a port of 127.0.0.1
// found free, or the one $NATS_URL names.
type server struct {
	t    *testing.T
	url  string
	args []string
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has exited
}

// startServer starts a nats-server, with JetStream and a store in a
// temporary directory if js is set, and stops it when the test ends.
// With $NATS_URL set and js asked for, it returns that server instead.
func startServer(t *testing.T, js bool) *server {
	t.Helper()
	if url := os.Getenv("NATS_URL"); url != "" && js {
		return &server{t: t, url: url}
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatalf("nats-server is needed (apt-get install nats-server), or $NATS_URL: %v", err)
	}
	port := freePort(t)
	dir := t.TempDir()
	args := []string{"-a", "127.0.0.1", "-p", fmt.Sprint(port), "-l", filepath.Join(dir, "server.log")}
	if js {
		args = append(args, "-js", "-sd", filepath.Join(dir, "store"))
	}
	s := &server{t: t, url: fmt.Sprintf("nats://127.0.0.1:%d", port), args: append([]string{bin}, args...)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// freePort returns a port of 127.0.0.1 that nothing listened on a moment
// ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server and waits until it takes connections, and
// answers JetStream requests if it has JetStream.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("nats-server: %v", err)
	}
	s.exit = make(chan struct{})
	go func(cmd *exec.Cmd, exit chan struct{}) {
		cmd.Wait()
		close(exit)
	}(s.cmd, s.exit)
	deadline := time.Now().Add(wait)
	for {
		nc, err := nats.Connect(s.url, nats.NoReconnect())
		if err == nil {
			ready := true
			if strings.Contains(strings.Join(s.args, " "), "-js") {
				js, _ := jetstream.New(nc)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err = js.AccountInfo(ctx)
				cancel()
				ready = err == nil
			}
			nc.Close()
			if ready {
				return
			}
		}
		select {
		case <-s.exit:
			s.t.Fatalf("nats-server %v exited: %v", s.args[1:], s.log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server did not start within %v: %v; %s", wait, err, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server, if this test started it and it runs.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	select {
	case <-s.exit:
	case <-time.After(wait):
		s.t.Errorf("nats-server %d did not exit", s.cmd.Process.Pid)
	}
	s.cmd = nil
}

// restart stops the server and starts it again on the same port and
// store.
func (s *server) restart() {
	s.t.Helper()
	if s.args == nil {
		s.t.Skip("cannot restart the server of $NATS_URL")
	}
	s.stop()
	s.start()
}

func (s *server) log() string {
	for i, a := range s.args {
		if a == "-l" {
			data, _ := os.ReadFile(s.args[i+1])
			return string(data)
		}
	}
	return ""
}

// randomPrefix returns a prefix of the test's own, so that tests on a
// shared server do not meet.
func randomPrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "test" + hex.EncodeToString(b[:])
}

// connector returns a function that makes brokers of one prefix on s,
// closes them when the test ends, and removes the prefix's stream and
// bucket then.
func connector(t *testing.T, s *server, opts Options) func(t *testing.T) hub.Broker {
	if opts.Prefix == "" {
		opts.Prefix = randomPrefix()
	}
	opts.URL = s.url
	t.Cleanup(func() { removeData(t, s.url, opts.Prefix) })
	return func(t *testing.T) hub.Broker {
		t.Helper()
		b, err := New(opts)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
}

// removeData deletes the stream and bucket of prefix, if the server has
// JetStream and is up.
func removeData(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return
	}
	n := newNames(prefix)
	js.DeleteStream(ctx, n.stream)
	js.DeleteKeyValue(ctx, n.bucket)
}

// TestMain checks that the tests leave no goroutine of the broker, of
// nats.go or of the hub running.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits a bounded time for the goroutines of the broker,
// nats.go and the hub to end, and returns the stacks of those that did
// not.
func leakedGoroutines() string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "nats-io/nats.go") || strings.Contains(g, "natsbroker.") || strings.Contains(g, "gowebsock/websocket") {
				if !strings.Contains(g, "leakedGoroutines") {
					leaked = append(leaked, g)
				}
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
