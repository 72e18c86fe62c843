// Package proc reads a process's own figures from Linux's /proc.
package proc

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// StatusKiB reads a field of /proc/self/status, such as "VmRSS:", in
// KiB; -1 if it cannot.
func StatusKiB(field string) int64 {
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

// CPUTime returns the process's user and system CPU time; -1 if it
// cannot.
func CPUTime() time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// The fields after the command's name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// Stats are the figures that the echo server reports at /stats, for the
// load generator.
type Stats struct {
	Goroutines int    `json:"goroutines"`
	RSSKiB     int64  `json:"rss_kib"`
	HeapInuse  int64  `json:"heap_inuse"`
	StackInuse int64  `json:"stack_inuse"`
	CPUNanos   int64  `json:"cpu_ns"`      // user and system time of the process
	Mallocs    uint64 `json:"mallocs"`     // heap objects allocated so far
	TotalAlloc uint64 `json:"total_alloc"` // heap bytes allocated so far
}
