package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// record is one line of results.jsonl.
type record map[string]any

func (r record) str(key string) string {
	s, _ := r[key].(string)
	return s
}

func (r record) num(key string) (float64, bool) {
	v, ok := r[key].(float64)
	return v, ok
}

// medians returns, for every library, the median of a metric over the
// repetitions of one table.
func medians(recs []record, table, metric string) map[string]float64 {
	values := map[string][]float64{}
	for _, r := range recs {
		if r.str("table") != table {
			continue
		}
		if v, ok := r.num(metric); ok {
			values[r.str("lib")] = append(values[r.str("lib")], v)
		}
	}
	med := map[string]float64{}
	for lib, vs := range values {
		slices.Sort(vs)
		if len(vs)%2 == 1 {
			med[lib] = vs[len(vs)/2]
		} else {
			med[lib] = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
		}
	}
	return med
}

// writeReport writes results.md and chart.svg from the raw results.
func writeReport(raw, out string, list []scenario) error {
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err == nil {
			recs = append(recs, r)
		}
	}
	reps := 0
	for _, r := range recs {
		if n, _ := r.num("rep"); int(n)+1 > reps {
			reps = int(n) + 1
		}
	}

	var md strings.Builder
	fmt.Fprintf(&md, "Medians of %d repetition(s); each library's server pinned to one CPU, the load generator to another.\n", reps)
	fmt.Fprintf(&md, "In parentheses: how many times better ours is than that library (above 1: ours is better).\n\n")
	// A column is a metric, which better says how to compare ("" for
	// not at all); zero is a figure only where zeroOK is set.
	type column struct {
		title, metric, better string
		zeroOK                bool
	}
	tables := []struct {
		title  string
		filter func(scenario) bool
		cols   []column
		// vsBest adds, for the first column, ours over the best of
		// the others.
		vsBest bool
	}{
		{"Echo throughput (messages per second)", isEcho, []column{{"", "msgs_per_sec", "higher", false}}, false},
		{"Server CPU per message (µs)", isEcho, []column{{"", "server_cpu_us_per_msg", "lower", false}}, false},
		{"Ping-pong latency, p50 / p99 (µs)", isLatency, []column{{"p50", "p50_us", "lower", false}, {"p99", "p99_us", "lower", false}}, false},
		{"Handshakes per second", isHandshake, []column{{"", "handshakes_per_sec", "higher", false}}, false},
		{"Idle connections: server RSS per connection (KiB) and goroutines per connection", isIdle, []column{{"KiB", "kib_per_conn", "lower", false}, {"goroutines", "goroutines_per_conn", "lower", true}}, false},
		{"Compression, chat JSON: echo throughput (messages per second), and the load generator's CPU use (% of its CPU)", isCompressionEcho,
			[]column{{"", "msgs_per_sec", "higher", false}, {"load CPU %", "load_cpu_percent", "", false}}, true},
		{"Compression: compression ratio, echoed payload ÷ bytes on the wire (higher is smaller)", isCompressed(isCompressionEcho),
			[]column{{"", "compression_ratio", "higher", false}}, true},
		{"Compression: server CPU (µs), heap allocations and bytes allocated, per message", isCompressionEcho,
			[]column{{"CPU µs", "server_cpu_us_per_msg", "lower", false}, {"allocs", "server_allocs_per_msg", "lower", true}, {"bytes", "server_alloc_bytes_per_msg", "lower", true}}, true},
		{"Compression: waiting connections, server heap in use (bytes), RSS (KiB) and goroutines per connection", isCompressionIdle,
			[]column{{"heap B", "heap_bytes_per_conn", "lower", false}, {"RSS KiB", "kib_per_conn", "lower", false}, {"goroutines", "goroutines_per_conn", "lower", true}}, true},
	}
	for _, t := range tables {
		var rows []scenario
		for _, s := range list {
			if t.filter(s) {
				rows = append(rows, s)
			}
		}
		if len(rows) == 0 {
			continue
		}
		libs := unionLibs(rows)
		fmt.Fprintf(&md, "### %s\n\n| scenario |", t.title)
		for _, lib := range libs {
			fmt.Fprintf(&md, " %s |", lib)
		}
		if t.vsBest {
			md.WriteString(" ours ÷ best other |")
		}
		md.WriteString("\n|---|")
		for range libs {
			md.WriteString("---|")
		}
		if t.vsBest {
			md.WriteString("---|")
		}
		md.WriteString("\n")
		for _, row := range rows {
			for i, col := range t.cols {
				name := row.Name
				if col.title != "" {
					name += " (" + col.title + ")"
				}
				med := medians(recs, row.Name, col.metric)
				fmt.Fprintf(&md, "| %s |", name)
				for _, lib := range libs {
					v, ok := med[lib]
					if !ok || (v == 0 && !col.zeroOK) {
						md.WriteString(" – |")
						continue
					}
					fmt.Fprintf(&md, " %s", format(v))
					if lib != "ours" && col.better != "" && med["ours"] > 0 && v > 0 {
						ratio := v / med["ours"]
						if col.better == "higher" {
							ratio = med["ours"] / v
						}
						fmt.Fprintf(&md, " (%.2f)", ratio)
					}
					md.WriteString(" |")
				}
				if t.vsBest {
					md.WriteString(vsBest(med, libs, col.better, i == 0) + " |")
				}
				md.WriteString("\n")
			}
		}
		md.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	return writeChart(recs, list, filepath.Join(out, "chart.svg"))
}

func isEcho(s scenario) bool      { return strings.HasPrefix(s.Name, "echo ") }
func isLatency(s scenario) bool   { return strings.Contains(s.Name, "latency") }
func isHandshake(s scenario) bool { return strings.HasPrefix(s.Name, "handshakes") }
func isIdle(s scenario) bool      { return strings.HasPrefix(s.Name, "idle") }

func isCompressionEcho(s scenario) bool {
	return strings.HasPrefix(s.Name, compressionPrefix) && arg(s.Args, "-scenario") == "echo"
}

func isCompressionIdle(s scenario) bool {
	return strings.HasPrefix(s.Name, compressionPrefix) && arg(s.Args, "-scenario") == "idle"
}

// isCompressed narrows a filter to the scenarios with compression on.
func isCompressed(filter func(scenario) bool) func(scenario) bool {
	return func(s scenario) bool { return filter(s) && arg(s.Args, "-compress") != "none" }
}

// arg returns the value of a flag in args.
func arg(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// vsBest returns ours over the best of the other libraries, and which
// that is, as "1.23 (gws)": above 1, ours is better.  Only on the first
// column of a row, which has a better.
func vsBest(med map[string]float64, libs []string, better string, first bool) string {
	if !first || better == "" || med["ours"] <= 0 {
		return " –"
	}
	best, bestLib := 0.0, ""
	for _, lib := range libs {
		v, ok := med[lib]
		if lib == "ours" || !ok || v <= 0 {
			continue
		}
		if bestLib == "" || (better == "higher") == (v > best) {
			best, bestLib = v, lib
		}
	}
	if bestLib == "" {
		return " –"
	}
	ratio := best / med["ours"]
	if better == "higher" {
		ratio = med["ours"] / best
	}
	return fmt.Sprintf(" %.2f (%s)", ratio, bestLib)
}

// unionLibs lists the libraries of the scenarios, ours first.
func unionLibs(rows []scenario) []string {
	var libs []string
	for _, r := range rows {
		for _, lib := range r.Libs {
			if !slices.Contains(libs, lib) {
				libs = append(libs, lib)
			}
		}
	}
	return libs
}

// format writes a figure with three significant digits.
func format(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// writeChart draws the echo throughput of every library relative to
// ours, one group of bars per scenario.
func writeChart(recs []record, list []scenario, path string) error {
	var rows []scenario
	for _, s := range list {
		if isEcho(s) {
			rows = append(rows, s)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	libs := unionLibs(rows)
	p := plot.New()
	p.Title.Text = "Echo throughput relative to ours (ours = 1, higher is faster)"
	p.Y.Label.Text = "messages per second ÷ ours"
	p.Legend.Top = true
	width := vg.Points(7)
	colors := []color.Color{
		color.RGBA{47, 111, 222, 255}, color.RGBA{230, 126, 34, 255}, color.RGBA{39, 174, 96, 255},
		color.RGBA{142, 68, 173, 255}, color.RGBA{192, 57, 43, 255}, color.RGBA{127, 140, 141, 255},
		color.RGBA{22, 160, 133, 255},
	}
	var names []string
	for _, r := range rows {
		names = append(names, strings.TrimPrefix(r.Name, "echo "))
	}
	for i, lib := range libs {
		values := make(plotter.Values, len(rows))
		for j, r := range rows {
			med := medians(recs, r.Name, "msgs_per_sec")
			if med["ours"] > 0 {
				values[j] = med[lib] / med["ours"]
			}
			if math.IsNaN(values[j]) {
				values[j] = 0
			}
		}
		bars, err := plotter.NewBarChart(values, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = colors[i%len(colors)]
		bars.Offset = width * vg.Length(float64(i)-float64(len(libs)-1)/2)
		p.Add(bars)
		p.Legend.Add(lib, bars)
	}
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = -0.9
	p.X.Tick.Label.YAlign = -0.5
	return p.Save(vg.Length(len(rows))*vg.Length(len(libs))*width+3*vg.Inch, 5*vg.Inch, path)
}
