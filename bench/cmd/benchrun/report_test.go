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
	echo := list[1].Name
	for rep, v := range []float64{100, 300, 200} {
		add(echo, "ours", rep, "msgs_per_sec", v)
		add(echo, "gws", rep, "msgs_per_sec", v/2)
	}
	add(list[len(list)-1].Name, "ours", 0, "kib_per_conn", 4)
	add(list[len(list)-1].Name, "gws", 0, "kib_per_conn", 12)
	raw := filepath.Join(dir, "results.jsonl")
	os.WriteFile(raw, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	if err := writeReport(raw, dir, list); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{
		"| " + echo + " | 200 | – | – | 100 (2.00) | – | – |",
		"| " + list[len(list)-1].Name + " (KiB) | 4 | – | – | 12 (3.00) | – | – |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "chart.svg")); err != nil || info.Size() == 0 {
		t.Errorf("no chart: %v", err)
	}
}
