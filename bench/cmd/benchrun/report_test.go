package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	list := scenarios(true)
	var lines []string
	add := func(table, lib string, rep int, metric string, v float64) {
		rec := map[string]any{"table": table, "lib": lib, "rep": rep, metric: v, "errors": 0}
		b, _ := json.Marshal(rec)
		lines = append(lines, string(b))
	}
	find := func(prefix string) string {
		for _, s := range list {
			if strings.HasPrefix(s.Name, prefix) {
				return s.Name
			}
		}
		t.Fatalf("no scenario %q in the short list", prefix)
		return ""
	}
	echo, idle, takeover := list[1].Name, find("idle"), find(compressionPrefix+"64 conns, context takeover")
	for rep, v := range []float64{100, 300, 200} {
		add(echo, "ours", rep, "msgs_per_sec", v)
		add(echo, "gws", rep, "msgs_per_sec", v/2)
	}
	add(idle, "ours", 0, "kib_per_conn", 4)
	add(idle, "gws", 0, "kib_per_conn", 12)
	for lib, v := range map[string][2]float64{"ours": {1200, 0}, "coder": {600, 4}, "gws": {1000, 2}} {
		add(takeover, lib, 0, "msgs_per_sec", v[0])
		add(takeover, lib, 0, "server_allocs_per_msg", v[1])
	}
	raw := filepath.Join(dir, "results.jsonl")
	os.WriteFile(raw, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	if err := writeReport(raw, dir, list); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{
		"| " + echo + " | 200 | – | – | 100 (2.00) | – | – |",
		"| " + idle + " (KiB) | 4 | – | – | 12 (3.00) | – | – |",
		"| " + takeover + " | 1200 | – | 600 (2.00) | 1000 (1.20) | – | 1.20 (gws) |",
		"| " + takeover + " (allocs) | 0 | – | 4 | 2 | – |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "chart.svg")); err != nil || info.Size() == 0 {
		t.Errorf("no chart: %v", err)
	}
}
