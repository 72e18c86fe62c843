package redisbroker

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wait bounds every wait of these tests for something that must happen.
const wait = 15 * time.Second

// redisServer is a redis-server that a test started for itself, on a
// port of its own on 127.0.0.1, which it can kill and start again.
type redisServer struct {
	addr string
	dir  string
	args []string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server without persistence, plus args, and
// kills it when the test ends.
func startRedis(t *testing.T, args ...string) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{addr: l.Addr().String(), dir: t.TempDir()}
	s.args = append([]string{path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir}, args...)
	s.start(t)
	t.Cleanup(s.kill)
	return s
}

// start starts the server and waits until it answers.
func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	log, err := os.Create(fmt.Sprintf("%s/redis-%d.log", s.dir, time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	deadline := time.Now().Add(wait)
	for !s.answers() {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer after %v", s.addr, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers reports whether the server answers a PING with PONG, which it
// does once it has loaded its data.
func (s *redisServer) answers() bool {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.TrimSpace(line) == "+PONG"
}

// kill ends the server at once, as a crash would.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// redisAddr returns $REDIS_ADDR, or the address of a redis-server that
// it starts for the test.
func redisAddr(t *testing.T) string {
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		return addr
	}
	return startRedis(t).addr
}

// testPrefix returns a key prefix of the test's own, so that tests on a
// shared Redis do not meet.
func testPrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:]) + ":"
}

// checkGoroutines fails the test if it leaves more goroutines running
// than there were when it called checkGoroutines; called first, it
// checks after every other cleanup of the test.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// go-redis's dialer gives up within a second of Close.
		deadline := time.Now().Add(wait)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines left running, %d before:\n%s",
					runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
