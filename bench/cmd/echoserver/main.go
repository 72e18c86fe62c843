// Command echoserver is the server side of the benchmarks: a WebSocket
// echo server built on one library, chosen by -lib, each written the
// fastest way its documentation shows, or a plain TCP echo as the
// ceiling.  The echo listens on -addr, at /ws; a second listener, -stats,
// reports the process's own figures at /stats, for the load generator.
//
// It prints one line, "echo ADDR stats ADDR", once both listen.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// servers maps each -lib to the function that serves the echo on a
// listener until the process ends.
var servers = map[string]func(ln net.Listener) error{}

func main() {
	if os.Getenv("ECHOSERVER_MEMPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for /debug/pprof/heap
	}
	lib := flag.String("lib", "ours", "library: ours, gorilla, coder, gws, gobwas or tcp")
	addr := flag.String("addr", "127.0.0.1:0", "address of the echo")
	statsAddr := flag.String("stats", "127.0.0.1:0", "address of the stats endpoint")
	flag.Parse()
	serve, ok := servers[*lib]
	if !ok {
		log.Fatalf("unknown library %q", *lib)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	statsLn, err := net.Listen("tcp", *statsAddr)
	if err != nil {
		log.Fatal(err)
	}
	statsMux := http.NewServeMux()
	statsMux.HandleFunc("/stats", serveStats)
	statsMux.HandleFunc("/debug/pprof/", pprof.Index)
	statsMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go http.Serve(statsLn, statsMux)
	fmt.Printf("echo %s stats %s\n", ln.Addr(), statsLn.Addr())
	log.Fatal(serve(ln))
}

// stats are the figures the load generator asks for.
type stats struct {
	Goroutines int   `json:"goroutines"`
	RSSKiB     int64 `json:"rss_kib"`
	HeapInuse  int64 `json:"heap_inuse"`
	StackInuse int64 `json:"stack_inuse"`
	CPUNanos   int64 `json:"cpu_ns"` // user and system time of the process
}

// serveStats reports the process's figures; with ?gc=1, after freeing
// what can be freed, so that the resident size shows what is in use.
func serveStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
		runtime.GC() // the second empties sync.Pool's victim caches
		debug.FreeOSMemory()
		time.Sleep(100 * time.Millisecond)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := stats{
		Goroutines: runtime.NumGoroutine(),
		RSSKiB:     procStatusKiB("VmRSS:"),
		HeapInuse:  int64(m.HeapInuse),
		StackInuse: int64(m.StackInuse),
		CPUNanos:   cpuNanos(),
	}
	json.NewEncoder(w).Encode(s)
}

// procStatusKiB reads a field of /proc/self/status, in KiB.
func procStatusKiB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return -1
}

// cpuNanos returns the process's user and system CPU time.
func cpuNanos() int64 {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// The fields after the command's name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return (utime + stime) * int64(time.Second) / clockTicks
}
