//go:build unix

package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chatBrowserTimeout bounds the browser script, launch included; each of
// its steps waits at most 10 s.
const chatBrowserTimeout = 90 * time.Second

// TestChatInChromium runs the chat example as a user would (go build,
// then the binary), and drives its page in headless Chromium through
// playwright-core with two visitors: both join, each sees the other's
// join notice and messages, one leaves and the other sees it leave.  The
// screenshot of the page that stays is written to $ARTIFACTS_DIR, or to
// interop/artifacts when that is not set.
func TestChatInChromium(t *testing.T) {
	chromium := chromiumFind(t)
	nodeBin, nodeDir := requireNode(t)
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core is missing (run `npm ci` in interop/node): %v", err)
	}

	bin := filepath.Join(t.TempDir(), "chat")
	// The chat example is a module of its own, for its brokers' clients.
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "examples", "chat")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the chat example: %v\n%s", err, out)
	}
	pageURL, serverLog := startChatExample(t, bin)

	artifacts := os.Getenv("ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts, _ = filepath.Abs("artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	screenshot := filepath.Join(artifacts, "chat.png")
	os.Remove(screenshot)

	ctx, cancel := context.WithTimeout(context.Background(), chatBrowserTimeout)
	defer cancel()
	script := exec.CommandContext(ctx, nodeBin, "chat_browser.js", chromium, pageURL, screenshot)
	script.Dir = nodeDir
	script.Env = append(os.Environ(), "HOME="+t.TempDir())
	// Its own process group, so that a timeout kills the browser too.
	script.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	script.Cancel = func() error { return syscall.Kill(-script.Process.Pid, syscall.SIGKILL) }
	var stderr lockedBuffer
	script.Stderr = &stderr
	out, err := script.Output()
	var result struct {
		OK    bool     `json:"ok"`
		Step  string   `json:"step"`
		Error string   `json:"error"`
		Names []string `json:"names"`
		Steps []string `json:"steps"`
	}
	if jerr := json.Unmarshal(out, &result); jerr != nil || err != nil || !result.OK {
		t.Fatalf("browser script: %v; step %q: %s\noutput: %s\nstderr: %s\nserver log:\n%s",
			err, result.Step, result.Error, out, stderr.String(), serverLog.String())
	}
	for _, step := range result.Steps {
		t.Logf("ok: %s", step)
	}

	// The server saw both visitors join and the second one leave.
	ann, bob := result.Names[0], result.Names[1]
	for _, event := range []string{`"` + ann + `" joined`, `"` + bob + `" joined`, `"` + bob + `" left`} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(serverLog.String(), event) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(serverLog.String(), event) {
			t.Errorf("the server log does not say %s:\n%s", event, serverLog.String())
		}
	}
	if info, err := os.Stat(screenshot); err != nil || info.Size() == 0 {
		t.Fatalf("no screenshot: %v", err)
	}
	t.Logf("screenshot of the chat page: %s", screenshot)
}

// startChatExample runs the chat binary on a free loopback port and
// returns the page's URL and the server's log.
func startChatExample(t *testing.T, bin string) (string, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	var serverLog lockedBuffer
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+/)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			serverLog.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case url := <-found:
		return url, &serverLog
	case <-time.After(30 * time.Second):
		t.Fatalf("the chat server did not start:\n%s", strings.TrimSpace(serverLog.String()))
		return "", nil
	}
}
