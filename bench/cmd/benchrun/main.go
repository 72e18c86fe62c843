// Command benchrun runs the benchmark scenarios against every library's
// echo server, side by side: for each repetition and scenario it starts
// each library's server in turn, in an order that rotates, pinned to one
// CPU, and runs the load generator pinned to another.  It appends every
// result to results.jsonl, then writes results.md, the medians as tables
// with each library's ratio to ours, and chart.svg.
//
//	benchrun -bin bin -out results            # the full set
//	benchrun -bin bin -out results -short     # a quick check, under a minute
//	benchrun -out results -report             # the report of earlier results only
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// scenario is one run of the load generator, for every library in libs.
type scenario struct {
	Name       string   // the table it belongs to
	Args       []string // for wsload, less -addr, -stats and -lib
	ServerArgs []string // for echoserver, less -lib
	Libs       []string
	Metric     string // the result field to compare
	Better     string // "higher" or "lower"
	Describe   string
}

var (
	allLibs = []string{"ours", "gorilla", "coder", "gws", "gobwas", "tcp"}
	wsLibs  = []string{"ours", "gorilla", "coder", "gws", "gobwas"}
	// gorilla has no context takeover.
	takeoverLibs = []string{"ours", "coder", "gws", "gobwas"}
)

// compressionPrefix begins the names of the compression scenarios, which
// -only compression selects.  Their names contain neither "echo" nor
// "idle", so that -only echo and -only idle select what they did before.
const compressionPrefix = "compression · "

// compressionScenarios are the scenarios of permessage-deflate: the chat
// corpus echoed on 64 connections, and 1000 connections (200 with
// -short) that exchanged one message each and wait, uncompressed for
// reference, without and with context takeover, all at level 1 with
// every message compressed.  -short runs only the echoes, briefly.
func compressionScenarios(short bool, d, w string) []scenario {
	var list []scenario
	type mode struct{ name, flag string }
	modes := []mode{{"uncompressed", "none"}, {"no context takeover", "notakeover"}, {"context takeover", "takeover"}}
	libs := func(m mode) []string {
		if m.flag == "takeover" {
			return takeoverLibs
		}
		return wsLibs
	}
	for _, m := range modes {
		if short && m.flag == "none" {
			continue
		}
		list = append(list, scenario{
			Name:       compressionPrefix + "64 conns, " + m.name,
			Args:       []string{"-scenario", "echo", "-compress", m.flag, "-chat", "-conns", "64", "-inflight", "1", "-duration", d, "-warmup", w},
			ServerArgs: []string{"-compress", m.flag},
			Libs:       libs(m),
			Metric:     "msgs_per_sec", Better: "higher",
		})
	}
	if short {
		return list
	}
	for _, m := range modes {
		list = append(list, scenario{
			Name:       compressionPrefix + "1000 conns waiting, " + m.name,
			Args:       []string{"-scenario", "idle", "-compress", m.flag, "-chat", "-conns", "1000", "-warmup", "2s"},
			ServerArgs: []string{"-compress", m.flag},
			Libs:       libs(m),
			Metric:     "heap_bytes_per_conn", Better: "lower",
		})
	}
	return list
}

func scenarios(short bool) []scenario {
	d, w := "3s", "1s"
	if short {
		d, w = "500ms", "200ms"
	}
	var list []scenario
	echo := func(conns, size, inflight int) scenario {
		return scenario{
			Name:   fmt.Sprintf("echo %d conns × %s, %d in flight", conns, sizeName(size), inflight),
			Args:   []string{"-scenario", "echo", "-conns", strconv.Itoa(conns), "-size", strconv.Itoa(size), "-inflight", strconv.Itoa(inflight), "-duration", d, "-warmup", w},
			Libs:   allLibs,
			Metric: "msgs_per_sec", Better: "higher",
		}
	}
	list = append(list, scenario{
		Name:   "ping-pong latency, 16 B",
		Args:   []string{"-scenario", "latency", "-size", "16", "-duration", d, "-warmup", w},
		Libs:   allLibs,
		Metric: "p50_us", Better: "lower",
	})
	if short {
		list = append(list, echo(64, 16, 16), echo(64, 64<<10, 2))
	} else {
		for _, conns := range []int{1, 64, 1000} {
			for _, size := range []int{16, 1 << 10, 64 << 10} {
				list = append(list, echo(conns, size, 1))
			}
		}
		list = append(list, echo(64, 16, 16), echo(64, 64<<10, 2))
	}
	list = append(list, scenario{
		Name:   "handshakes per second, 16 workers",
		Args:   []string{"-scenario", "handshake", "-conns", "16", "-duration", d, "-warmup", w},
		Libs:   wsLibs,
		Metric: "handshakes_per_sec", Better: "higher",
	})
	idleConns := "10000"
	if short {
		idleConns = "1000"
	}
	list = append(list, scenario{
		Name:   "idle memory, " + idleConns + " connections",
		Args:   []string{"-scenario", "idle", "-conns", idleConns, "-warmup", "2s"},
		Libs:   append(wsLibs, "gobwas-wsutil"),
		Metric: "kib_per_conn", Better: "lower",
	})
	return append(list, compressionScenarios(short, d, w)...)
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func main() {
	bin := flag.String("bin", "bin", "directory of echoserver and wsload")
	out := flag.String("out", "results", "directory for the results")
	short := flag.Bool("short", false, "a quick check of every echo, under a minute")
	reps := flag.Int("reps", 3, "repetitions of every scenario")
	reportOnly := flag.Bool("report", false, "only write the report of the results in -out")
	serverCPU := flag.String("server-cpu", "0", "CPU list for the servers (taskset)")
	loadCPU := flag.String("load-cpu", "1", "CPU list for the load generator (taskset)")
	only := flag.String("only", "", "run only the scenarios whose name contains this")
	flag.Parse()
	log.SetFlags(0)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	raw := filepath.Join(*out, "results.jsonl")
	var selected []scenario
	for _, sc := range scenarios(*short) {
		if strings.Contains(sc.Name, *only) {
			selected = append(selected, sc)
		}
	}
	if !*reportOnly {
		if *short {
			*reps = 1
		}
		if err := runAll(*bin, raw, selected, *reps, *serverCPU, *loadCPU); err != nil {
			log.Fatal(err)
		}
	}
	if err := writeReport(raw, *out, selected); err != nil {
		log.Fatal(err)
	}
}

// runAll runs every scenario for every library, reps times, and appends
// the results to raw, which it starts anew.
func runAll(bin, raw string, list []scenario, reps int, serverCPU, loadCPU string) error {
	f, err := os.Create(raw)
	if err != nil {
		return err
	}
	defer f.Close()
	pin := func(cpus string, args ...string) []string {
		if _, err := exec.LookPath("taskset"); err == nil && cpus != "" {
			return append([]string{"taskset", "-c", cpus}, args...)
		}
		return args
	}
	failed := 0
	for rep := range reps {
		for _, sc := range list {
			// Rotate the order, so that no library always runs
			// first (or right after the heaviest one).
			libs := append(sc.Libs[rep%len(sc.Libs):], sc.Libs[:rep%len(sc.Libs)]...)
			for _, lib := range libs {
				line, err := runOne(bin, sc, lib, pin, serverCPU, loadCPU)
				if err != nil {
					log.Printf("%s / %s: %v", sc.Name, lib, err)
					failed++
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal(line, &rec); err != nil {
					return fmt.Errorf("%s / %s: %v: %s", sc.Name, lib, err, line)
				}
				rec["table"] = sc.Name
				rec["rep"] = rep
				enc, _ := json.Marshal(rec)
				f.Write(append(enc, '\n'))
				if n, _ := rec["errors"].(float64); n > 0 {
					log.Printf("%s / %s: %v errors, the first: %v", sc.Name, lib, n, rec["first_error"])
					failed++
				}
				log.Printf("%-40s %-14s %s = %v", sc.Name, lib, sc.Metric, rec[sc.Metric])
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d runs failed or saw errors", failed)
	}
	return nil
}

// runOne starts lib's server, runs the load generator against it, and
// returns the load generator's result line.
func runOne(bin string, sc scenario, lib string, pin func(string, ...string) []string, serverCPU, loadCPU string) ([]byte, error) {
	args := pin(serverCPU, append([]string{filepath.Join(bin, "echoserver"), "-lib", lib}, sc.ServerArgs...)...)
	server := exec.Command(args[0], args[1:]...)
	server.Stderr = os.Stderr
	stdout, err := server.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := server.Start(); err != nil {
		return nil, err
	}
	defer func() {
		server.Process.Kill()
		server.Wait()
	}()
	first, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("server: %v", err)
	}
	var addr, stats string
	if _, err := fmt.Sscanf(first, "echo %s stats %s", &addr, &stats); err != nil {
		return nil, fmt.Errorf("server said %q", first)
	}
	args = pin(loadCPU, append([]string{filepath.Join(bin, "wsload"), "-addr", addr, "-stats", stats, "-lib", lib}, sc.Args...)...)
	// Every run is bounded: a server that hangs fails its run.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	load := exec.CommandContext(ctx, args[0], args[1:]...)
	load.Stderr = os.Stderr
	out, err := load.Output()
	if err != nil {
		return nil, fmt.Errorf("wsload: %v", err)
	}
	return bytes.TrimSpace(out), nil
}
