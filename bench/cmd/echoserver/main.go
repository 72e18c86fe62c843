// Command echoserver is the server side of the benchmarks: a WebSocket
// echo server built on one library, chosen by -lib, each written the
// fastest way its documentation shows, or a plain TCP echo as the
// ceiling.  The echo listens on -addr, at /ws; a second listener, -stats,
// reports the process's own figures at /stats, for the load generator.
//
// With -compress notakeover or takeover, it accepts permessage-deflate
// (RFC 7692), without or with context takeover both ways, compressing at
// -level every message of -threshold bytes or more; see compression.
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
	"time"

	"github.com/gowebsock/websocket/bench/internal/proc"
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
	flag.StringVar(&compression.mode, "compress", "none", "permessage-deflate: none, notakeover or takeover")
	flag.IntVar(&compression.level, "level", 1, "compression level, 1 (best speed) to 9")
	flag.IntVar(&compression.threshold, "threshold", 1, "messages of this many bytes or more are compressed")
	flag.Parse()
	serve, ok := servers[*lib]
	if !ok {
		log.Fatalf("unknown library %q", *lib)
	}
	if err := compression.check(*lib); err != nil {
		log.Fatal(err)
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
	s := proc.Stats{
		Goroutines: runtime.NumGoroutine(),
		RSSKiB:     proc.StatusKiB("VmRSS:"),
		HeapInuse:  int64(m.HeapInuse),
		StackInuse: int64(m.StackInuse),
		CPUNanos:   int64(proc.CPUTime()),
		Mallocs:    m.Mallocs,
		TotalAlloc: m.TotalAlloc,
	}
	json.NewEncoder(w).Encode(s)
}
