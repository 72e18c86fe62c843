package websocket

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// broadcastServer accepts connections, hands them to the test, and
// receives and drops their messages until they end.
func broadcastServer(t *testing.T) (*Handler, string, <-chan *Conn) {
	conns := make(chan *Conn, 20000)
	h := &Handler{Handle: func(conn *Conn) {
		conns <- conn
		for {
			if _, err := conn.ReceiveText(1 << 20); err == ErrConnClosed {
				return
			}
		}
	}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, "ws" + strings.TrimPrefix(srv.URL, "http"), conns
}

// sequenced is the payload of broadcast number i, padded to size bytes.
func sequenced(i, size int) string {
	s := fmt.Sprintf("%08d", i)
	return s + strings.Repeat("x", size-len(s))
}

func TestBroadcast(t *testing.T) {
	checkGoroutines(t)
	const (
		readers = 50
		rounds  = 2000 // 2 MiB: more than a stalled queue may hold
		size    = 1024
	)
	_, url, accepted := broadcastServer(t)
	clients := make([]*Conn, readers)
	for i := range clients {
		clients[i] = dialTest(t, url, nil)
	}
	stalled := dialRaw(t, url, nil)
	stalled.conn.(*net.TCPConn).SetReadBuffer(4096)
	stalled.conn.SetDeadline(time.Time{})
	gone := dialTest(t, url, nil)

	conns := make([]*Conn, readers+2)
	for i := range conns {
		conns[i] = <-accepted
	}
	// Tell them apart by their remote addresses.
	byAddr := map[string]*Conn{}
	for _, c := range conns {
		byAddr[c.RemoteAddr] = c
	}
	stalledServer := byAddr[stalled.conn.LocalAddr().String()]
	goneServer := byAddr[gone.netConn.LocalAddr().String()]
	// Loopback sockets may buffer megabytes; keep this one small, so
	// that the queue fills after a few hundred messages.
	stalledServer.netConn.(*net.TCPConn).SetWriteBuffer(8192)
	gone.Close(StatusOK, "")
	goneServer.GetStatus()

	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range rounds {
				text, err := c.ReceiveText(2 * size)
				if err != nil || text != sequenced(n, size) {
					errs <- fmt.Errorf("client %d, message %d: %.12q, %v", i, n, text, err)
					return
				}
			}
		}()
	}

	all := append(conns, nil)
	stalledIndex := -1
	for i, c := range all {
		if c == stalledServer {
			stalledIndex = i
		}
	}
	stalledFailed := false
	for n := range rounds {
		result := BroadcastText(context.Background(), all, sequenced(n, size))
		for i, err := range result {
			switch {
			case i == len(all)-1 || all[i] == goneServer:
				if err != ErrConnClosed {
					t.Fatalf("round %d: a closed connection got %v", n, err)
				}
			case i == stalledIndex:
				if err != ErrConnClosed {
					t.Fatalf("round %d: the stalled connection got %v", n, err)
				}
				stalledFailed = true
			default:
				t.Fatalf("round %d: connection %d got %v", n, i, err)
			}
		}
		if len(result) != 2+btoi(stalledFailed) {
			t.Fatalf("round %d: %d errors: %v", n, len(result), result)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !stalledFailed {
		t.Error("the stalled connection's queue never filled")
	}
	if err := stalledServer.Err(); err == nil || !strings.Contains(err.Error(), "send queue is full") {
		t.Errorf("the stalled connection ended with %v", err)
	}

	// A context that is done reaches nobody.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	result := BroadcastText(ctx, conns[:3], "late")
	if len(result) != 3 || result[0] != context.Canceled {
		t.Errorf("broadcast with a cancelled context: %v", result)
	}

	// From clients, whose frames are masked each.
	result = BroadcastBinary(context.Background(), clients[:3], []byte("from a client"))
	if len(result) != 0 {
		t.Errorf("broadcast from clients: %v", result)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBroadcastTenThousand broadcasts 1 KiB to 10,000 connections on
// loopback, one of them stalled: all others get every message.  The
// clients run in a child process, so that neither process needs more
// than 10,000 file descriptors.
func TestBroadcastTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	checkGoroutines(t)
	const (
		conns  = 10000
		rounds = 20
		size   = 1024
	)
	h, url, accepted := broadcastServer(t)
	child := exec.Command(os.Args[0], "-test.run=^TestHelperBroadcastClients$", "-test.v")
	child.Env = append(os.Environ(), "WEBSOCKET_HELPER_URL="+url,
		"WEBSOCKET_HELPER_CONNS="+strconv.Itoa(conns), "WEBSOCKET_HELPER_ROUNDS="+strconv.Itoa(rounds))
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expectLine := func(prefix string) string {
		t.Helper()
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("the client process ended before %q", prefix)
				}
				if rest, ok := strings.CutPrefix(line, prefix); ok {
					return rest
				}
			case <-time.After(120 * time.Second):
				t.Fatalf("no %q from the client process", prefix)
			}
		}
	}
	expectLine("connected")
	all := make([]*Conn, conns)
	for i := range all {
		all[i] = <-accepted
	}

	var elapsed time.Duration
	var mallocs uint64
	var failed map[int]error
	for n := range rounds {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		result := BroadcastText(context.Background(), all, sequenced(n, size))
		elapsed += time.Since(start)
		runtime.ReadMemStats(&after)
		mallocs += after.Mallocs - before.Mallocs
		if len(result) > 1 {
			t.Fatalf("round %d: %d connections failed: %v", n, len(result), result)
		}
		failed = result
	}
	got := expectLine("received ")
	if got != strconv.Itoa(conns-1) {
		t.Errorf("%s connections received every message, want %d", got, conns-1)
	}
	t.Logf("broadcast of %d B to %d connections, one stalled: %v and %d allocations per broadcast; failed: %v",
		size, conns, (elapsed / rounds).Round(time.Microsecond), mallocs/rounds, failed)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestHelperBroadcastClients is the client process of
// TestBroadcastTenThousand; it does nothing in a normal test run.
func TestHelperBroadcastClients(t *testing.T) {
	url := os.Getenv("WEBSOCKET_HELPER_URL")
	if url == "" {
		t.Skip("the client process of TestBroadcastTenThousand")
	}
	conns, _ := strconv.Atoi(os.Getenv("WEBSOCKET_HELPER_CONNS"))
	rounds, _ := strconv.Atoi(os.Getenv("WEBSOCKET_HELPER_ROUNDS"))
	clients := make([]*Conn, conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			opts := &DialOptions{}
			if i == 0 {
				// The stalled one: it never reads, and its kernel
				// takes as little as it can.
				opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err == nil {
						conn.(*net.TCPConn).SetReadBuffer(4096)
					}
					return conn, err
				}
			}
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err := Dial(ctx, url, opts)
				cancel()
				if err == nil {
					clients[i] = c
					return
				}
				if attempt == 5 {
					t.Errorf("client %d: %v", i, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fmt.Println("connected")

	var mu sync.Mutex
	complete := 0
	for _, c := range clients[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range rounds {
				text, err := c.ReceiveText(4096)
				if err != nil || text != sequenced(n, len(text)) || len(text) != 1024 {
					t.Errorf("message %d: %.12q, %v", n, text, err)
					return
				}
			}
			mu.Lock()
			complete++
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("received %d\n", complete)
	for _, c := range clients[1:] {
		c.GetStatus() // until the server shuts down
	}
}
