package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gowebsock/websocket"
)

// TestReadme builds every Go program in README.md as a user would paste
// it, in a module of its own that uses this checkout of the library, and
// runs them together: the echo server with the client, and the AccessOk
// server with a browser-like client.  The samples' addresses,
// localhost:PORT, are swapped for free loopback ports.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the README's programs")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 4 {
		t.Fatalf("README.md has %d Go blocks, want the echo server, the client, the AccessOk server and the feed", len(blocks))
	}

	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The hub's sample uses the Redis broker, a module of its own,
	// whose go.sum has what it needs.
	gomod := "module readme\n\ngo 1.26.0\n\n" +
		"require (\n\tgithub.com/gowebsock/websocket v0.0.0\n\tgithub.com/gowebsock/websocket/hub/redisbroker v0.0.0\n)\n\n" +
		"replace (\n\tgithub.com/gowebsock/websocket => " + root + "\n" +
		"\tgithub.com/gowebsock/websocket/hub/redisbroker => " + filepath.Join(root, "hub", "redisbroker") + "\n)\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join(root, "hub", "redisbroker", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), gosum, 0o644); err != nil {
		t.Fatal(err)
	}

	ports := map[string]string{} // README address -> loopback address
	localhost := regexp.MustCompile(`localhost:\d+`)
	var servers, clients []string
	hubSample := ""
	for i, block := range blocks {
		src := block[1]
		if !strings.HasPrefix(src, "package main\n") {
			t.Errorf("README Go block %d is not a complete program (package main):\n%s", i+1, src)
			continue
		}
		src = localhost.ReplaceAllStringFunc(src, func(addr string) string {
			if ports[addr] == "" {
				ports[addr] = freeAddr(t)
			}
			return ports[addr]
		})
		name := fmt.Sprintf("sample%d", i+1)
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		build := exec.Command(goBin, "build", "-o", filepath.Join(dir, "bin", name), "./"+name)
		build.Dir = dir
		build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if out, err := build.CombinedOutput(); err != nil {
			t.Errorf("README Go block %d does not build: %v\n%s\n%s", i+1, err, out, src)
			continue
		}
		if strings.Contains(src, "hub.New") {
			hubSample = name
		}
		switch {
		case strings.Contains(src, "ListenAndServe"):
			servers = append(servers, name)
		case strings.Contains(src, "websocket.Dial"):
			clients = append(clients, name)
		}
	}
	if t.Failed() {
		return
	}

	for _, name := range servers {
		startProgram(t, filepath.Join(dir, "bin", name))
	}
	// The hub's sample as two instances on one Redis, when the tests
	// have one (.ci/run starts it).
	var hubInstances []string
	if redis := os.Getenv("REDIS_ADDR"); redis != "" && hubSample != "" {
		for range 2 {
			addr := freeAddr(t)
			startProgram(t, filepath.Join(dir, "bin", hubSample), "-addr", addr, "-redis", redis)
			waitListening(t, addr)
			hubInstances = append(hubInstances, addr)
		}
	}
	for addr := range ports {
		waitListening(t, ports[addr])
	}

	// The client sample against the echo server sample.
	if len(clients) != 1 {
		t.Fatalf("README has %d client programs, want 1", len(clients))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "bin", clients[0])).CombinedOutput()
	if err != nil || string(out) != "the server said: hello\n" {
		t.Errorf("the README's client printed %q, %v; want \"the server said: hello\"", out, err)
	}

	// The AccessOk sample, as a browser on the allowed origin sees it,
	// and as a page from elsewhere does.
	chat := "ws://" + ports["localhost:8081"] + "/chat"
	conn, err := websocket.Dial(ctx, chat, &websocket.DialOptions{
		Header:       http.Header{"Origin": {"http://" + ports["localhost:8081"]}},
		Subprotocols: []string{"chat.v2", "chat.v1"},
	})
	if err != nil {
		t.Fatalf("dialing the AccessOk sample: %v", err)
	}
	if text, err := conn.ReceiveText(100); err != nil || text != "welcome; you speak chat.v1" {
		t.Errorf("the AccessOk sample said %q, %v", text, err)
	}
	conn.Close(websocket.StatusOK, "")
	_, err = websocket.Dial(ctx, chat, &websocket.DialOptions{Header: http.Header{"Origin": {"https://elsewhere.example"}}})
	if !errors.Is(err, websocket.ErrBadHandshake) || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("the AccessOk sample let another origin in: %v", err)
	}

	// The news feed: a token lets a client in, and the news comes.
	feed := "ws://" + ports["localhost:8082"] + "/feed"
	if _, err := websocket.Dial(ctx, feed, nil); !errors.Is(err, websocket.ErrBadHandshake) || !strings.Contains(err.Error(), "401") {
		t.Errorf("the feed without a token: %v", err)
	}
	conn, err = websocket.Dial(ctx, feed+"?token=let-me-in", nil)
	if err != nil {
		t.Fatalf("dialing the feed: %v", err)
	}
	defer conn.Close(websocket.StatusOK, "")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if text, err := conn.ReceiveText(100); err != nil || !strings.HasPrefix(text, "it is ") {
		t.Errorf("the feed said %q, %v", text, err)
	}

	// The hub: one instance alone, then two on one Redis.
	if hubSample == "" {
		t.Fatal("README has no hub sample")
	}
	checkNews(t, ctx, ports["localhost:8083"], ports["localhost:8083"])
	if len(hubInstances) == 2 {
		checkNews(t, ctx, hubInstances[0], hubInstances[1])
	}
}

// checkNews subscribes to the hub sample's news at one address and
// publishes at another: the message must arrive.  Publishing repeats
// until the subscription is in place, which the client cannot see.
func checkNews(t *testing.T, ctx context.Context, subscribeAt, publishAt string) {
	t.Helper()
	conn, err := websocket.Dial(ctx, "ws://"+subscribeAt+"/news", nil)
	if err != nil {
		t.Fatalf("dialing the hub sample: %v", err)
	}
	defer conn.Close(websocket.StatusOK, "")
	received := make(chan string, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		text, _ := conn.ReceiveText(100)
		received <- text
	}()
	for {
		resp, err := http.Post("http://"+publishAt+"/publish", "text/plain", strings.NewReader("hello, everybody"))
		if err != nil {
			t.Fatalf("publishing at the hub sample: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("publishing at the hub sample: %s", resp.Status)
		}
		select {
		case text := <-received:
			if text != "hello, everybody" {
				t.Fatalf("the hub sample's subscriber at %s got %q, published at %s", subscribeAt, text, publishAt)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProgram runs a server program until the test ends.
func startProgram(t *testing.T, path string, args ...string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s printed:\n%s", filepath.Base(path), output.String())
		}
	})
}

// waitListening waits until something accepts connections at addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens at %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
