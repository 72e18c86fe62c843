package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

// report reads results, one JSON object per line, and writes a Markdown
// table of the medians of the runs of each broker and window.
func report(in io.Reader, out io.Writer) error {
	type key struct {
		broker string
		window int
	}
	runs := make(map[key][]result)
	var order []key
	scanner := bufio.NewScanner(in)
	for scanner.Scan() {
		var r result
		if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
			return fmt.Errorf("%q: %v", scanner.Text(), err)
		}
		k := key{r.Broker, r.Window}
		if runs[k] == nil {
			order = append(order, k)
		}
		runs[k] = append(runs[k], r)
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "| broker | in flight | subscribers | msg/s | deliveries/s | p50 | p99 | dropped | runs |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|")
	for _, k := range order {
		rs := runs[k]
		median := func(f func(result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		dropped := 0
		for _, r := range rs {
			dropped += r.Dropped
		}
		fmt.Fprintf(out, "| %s | %d | %d | %.1f | %.0fk | %.0f ms | %.0f ms | %d | %d |\n",
			k.broker, k.window, rs[0].Subscribers,
			median(func(r result) float64 { return r.MsgsPerSec }),
			median(func(r result) float64 { return r.DeliveriesPS })/1000,
			median(func(r result) float64 { return r.P50Us })/1000,
			median(func(r result) float64 { return r.P99Us })/1000,
			dropped, len(rs))
	}
	return nil
}

// reportFile is report of a file, to standard output.
func reportFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return report(f, os.Stdout)
}
