// Command wsload is the load generator of the benchmarks.  It speaks
// WebSocket over raw TCP by itself, with its own handshake, frames masked
// once ahead of time and its own parser, so that no library measures
// another; it checks the length and a CRC-32C of every echo.  Against the
// plain TCP echo it skips the handshake and expects its frames back as
// they were sent.
//
// Scenarios:
//
//	echo       -conns C -size S -inflight K: echoes per second, each
//	           connection keeping K messages in flight, and the server's
//	           CPU time per message
//	latency    one connection, one message in flight: round-trip times
//	handshake  -conns C workers opening and closing connections:
//	           handshakes per second
//	idle       -conns N connections that exchange one message each and
//	           then wait: the server's resident memory and goroutines per
//	           connection
//
// It prints one JSON object with the results.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is what wsload prints.
type result struct {
	Scenario string `json:"scenario"`
	Lib      string `json:"lib"`
	Conns    int    `json:"conns"`
	Size     int    `json:"size,omitempty"`
	Inflight int    `json:"inflight,omitempty"`

	Messages       int64   `json:"messages,omitempty"`
	MsgsPerSec     float64 `json:"msgs_per_sec,omitempty"`
	ServerCPUPerUs float64 `json:"server_cpu_us_per_msg,omitempty"`
	P50Us          float64 `json:"p50_us,omitempty"`
	P99Us          float64 `json:"p99_us,omitempty"`
	HandshakesPS   float64 `json:"handshakes_per_sec,omitempty"`
	KiBPerConn     float64 `json:"kib_per_conn,omitempty"`
	HeapPerConn    float64 `json:"heap_bytes_per_conn,omitempty"`
	StackPerConn   float64 `json:"stack_bytes_per_conn,omitempty"`
	GoroutinesPC   float64 `json:"goroutines_per_conn,omitempty"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"first_error,omitempty"`
}

var (
	scenario = flag.String("scenario", "echo", "echo, latency, handshake or idle")
	addr     = flag.String("addr", "", "address of the echo server")
	statsURL = flag.String("stats", "", "address of the server's stats endpoint")
	lib      = flag.String("lib", "", "the server's library; tcp means no WebSocket")
	conns    = flag.Int("conns", 64, "connections (workers for handshake)")
	size     = flag.Int("size", 16, "message size in bytes")
	inflight = flag.Int("inflight", 1, "messages in flight per connection")
	duration = flag.Duration("duration", 5*time.Second, "measuring time")
	warmup   = flag.Duration("warmup", time.Second, "time before measuring")
	hold     = flag.Duration("hold", 0, "idle: how long to keep the connections open after measuring")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errs counts errors and keeps the first.
var errs struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func fail(err error) {
	if errs.n.Add(1) == 1 {
		errs.mu.Lock()
		errs.first = err.Error()
		errs.mu.Unlock()
	}
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	res := result{Scenario: *scenario, Lib: *lib, Conns: *conns}
	switch *scenario {
	case "echo":
		res.Size, res.Inflight = *size, *inflight
		runEcho(&res)
	case "latency":
		res.Conns, res.Size, res.Inflight = 1, *size, 1
		runLatency(&res)
	case "handshake":
		runHandshakes(&res)
	case "idle":
		res.Size = *size
		runIdle(&res)
	default:
		log.Fatalf("unknown scenario %q", *scenario)
	}
	res.Errors = errs.n.Load()
	res.FirstError = errs.first
	json.NewEncoder(os.Stdout).Encode(res)
}

// message is a message to send, masked once, and what its echo must be.
type message struct {
	frame     []byte // the client frame, masked
	size      int
	crc       uint32 // of the payload, as the server echoes it
	maskedCRC uint32 // of the masked payload, as the TCP echo returns it
}

func newMessage(size int) *message {
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	frame := []byte{0x82}
	switch {
	case size < 126:
		frame = append(frame, 0x80|byte(size))
	case size < 1<<16:
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(size))
	default:
		frame = append(frame, 0x80|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(size))
	}
	frame = append(frame, key[:]...)
	masked := bytes.Clone(payload)
	for i := range masked {
		masked[i] ^= key[i%4]
	}
	frame = append(frame, masked...)
	return &message{frame: frame, size: size, crc: crc32.Checksum(payload, crcTable), maskedCRC: crc32.Checksum(masked, crcTable)}
}

// client is one connection of the load generator.
type client struct {
	conn net.Conn
	br   *bufio.Reader
}

const handshakeRequest = "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// dial connects, and performs the opening handshake unless the server
// is the plain TCP echo.
func dial(bufSize int) (*client, error) {
	conn, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, br: bufio.NewReaderSize(conn, bufSize)}
	if *lib == "tcp" {
		return c, nil
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, handshakeRequest, *addr); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		conn.Close()
		return nil, fmt.Errorf("handshake answered %s", resp.Status)
	}
	return c, nil
}

// readEcho reads one echoed message, whatever frames the server cut it
// into, and checks it against m.
func (c *client) readEcho(m *message) error {
	length, crc := 0, uint32(0)
	for first := true; ; first = false {
		hdr, err := c.br.Peek(2)
		if err != nil {
			return err
		}
		fin, op, masked := hdr[0]&0x80 != 0, hdr[0]&0x0F, hdr[1]&0x80 != 0
		n := int64(hdr[1] & 0x7F)
		hsize := 2
		switch n {
		case 126:
			hsize += 2
		case 127:
			hsize += 8
		}
		if masked {
			hsize += 4
		}
		hdr, err = c.br.Peek(hsize)
		if err != nil {
			return err
		}
		switch n {
		case 126:
			n = int64(binary.BigEndian.Uint16(hdr[2:]))
		case 127:
			n = int64(binary.BigEndian.Uint64(hdr[2:]))
		}
		c.br.Discard(hsize)
		if op >= 8 {
			// A control frame, a ping say: skip it.
			c.br.Discard(int(n))
			continue
		}
		if (first && op != 2) || (!first && op != 0) || masked != (*lib == "tcp") {
			return fmt.Errorf("unexpected frame: opcode %d, masked %v", op, masked)
		}
		for n > 0 {
			if c.br.Buffered() == 0 {
				if _, err := c.br.Peek(1); err != nil {
					return err
				}
			}
			b, _ := c.br.Peek(int(min(n, int64(c.br.Buffered()))))
			crc = crc32.Update(crc, crcTable, b)
			c.br.Discard(len(b))
			n -= int64(len(b))
			length += len(b)
		}
		if fin {
			break
		}
	}
	want := m.crc
	if *lib == "tcp" {
		want = m.maskedCRC
	}
	if length != m.size || crc != want {
		return fmt.Errorf("echo of %d bytes with CRC %08x, want %d bytes with %08x", length, crc, m.size, want)
	}
	return nil
}

// serverStats asks the server for its figures.
type serverStats struct {
	Goroutines int   `json:"goroutines"`
	RSSKiB     int64 `json:"rss_kib"`
	HeapInuse  int64 `json:"heap_inuse"`
	StackInuse int64 `json:"stack_inuse"`
	CPUNanos   int64 `json:"cpu_ns"`
}

func getStats(gc bool) serverStats {
	url := "http://" + *statsURL + "/stats"
	if gc {
		url += "?gc=1"
	}
	resp, err := http.Get(url)
	if err != nil {
		log.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	var s serverStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		log.Fatalf("stats: %v", err)
	}
	return s
}

// dialAll opens n connections, at most 64 at a time.
func dialAll(n, bufSize int) []*client {
	clients := make([]*client, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			for attempt := range 5 {
				if clients[i], err = dial(bufSize); err == nil {
					return
				}
				time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
			}
			log.Fatalf("connection %d: %v", i, err)
		}()
	}
	wg.Wait()
	return clients
}

func runEcho(res *result) {
	m := newMessage(*size)
	batch := bytes.Repeat(m.frame, *inflight)
	clients := dialAll(*conns, max(256<<10, 2*len(batch)))
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.conn.Close()
			if _, err := c.conn.Write(batch); err != nil {
				fail(err)
				return
			}
			for !stop.Load() {
				// Read one echo, and those behind it that have
				// arrived, then replace them all in one write.
				n := 0
				for n == 0 || (c.br.Buffered() > 0 && n < *inflight) {
					if err := c.readEcho(m); err != nil {
						if !stop.Load() {
							fail(err)
						}
						return
					}
					n++
				}
				count.Add(int64(n))
				if _, err := c.conn.Write(batch[:n*len(m.frame)]); err != nil {
					if !stop.Load() {
						fail(err)
					}
					return
				}
			}
		}()
	}
	time.Sleep(*warmup)
	before, startCount, start := getStats(false), count.Load(), time.Now()
	time.Sleep(*duration)
	after, endCount, elapsed := getStats(false), count.Load(), time.Since(start)
	stop.Store(true)
	for _, c := range clients {
		c.conn.SetDeadline(time.Now()) // wake the readers
	}
	wg.Wait()
	res.Messages = endCount - startCount
	res.MsgsPerSec = float64(res.Messages) / elapsed.Seconds()
	if res.Messages > 0 {
		res.ServerCPUPerUs = float64(after.CPUNanos-before.CPUNanos) / 1e3 / float64(res.Messages)
	}
}

func runLatency(res *result) {
	m := newMessage(*size)
	c := dialAll(1, 64<<10)[0]
	defer c.conn.Close()
	var samples []time.Duration
	deadline := time.Now().Add(*warmup + *duration)
	measureFrom := time.Now().Add(*warmup)
	for time.Now().Before(deadline) {
		start := time.Now()
		if _, err := c.conn.Write(m.frame); err != nil {
			fail(err)
			return
		}
		if err := c.readEcho(m); err != nil {
			fail(err)
			return
		}
		if start.After(measureFrom) {
			samples = append(samples, time.Since(start))
		}
	}
	slices.Sort(samples)
	res.Messages = int64(len(samples))
	if len(samples) > 0 {
		res.P50Us = float64(samples[len(samples)/2]) / 1e3
		res.P99Us = float64(samples[len(samples)*99/100]) / 1e3
	}
}

func runHandshakes(res *result) {
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c, err := dial(4096)
				if err != nil {
					fail(err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				// Reset rather than close, so that loopback's port
				// range does not fill with TIME_WAIT.
				c.conn.(*net.TCPConn).SetLinger(0)
				c.conn.Close()
				count.Add(1)
			}
		}()
	}
	time.Sleep(*warmup)
	startCount, start := count.Load(), time.Now()
	time.Sleep(*duration)
	endCount, elapsed := count.Load(), time.Since(start)
	stop.Store(true)
	wg.Wait()
	res.Messages = endCount - startCount
	res.HandshakesPS = float64(res.Messages) / elapsed.Seconds()
}

func runIdle(res *result) {
	m := newMessage(*size)
	before := getStats(true)
	clients := dialAll(*conns, 4096)
	// One message each way, so that each connection has been used;
	// then they wait.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.conn.Write(m.frame); err != nil {
				fail(err)
				return
			}
			if err := c.readEcho(m); err != nil {
				fail(err)
			}
			c.conn.SetDeadline(time.Time{})
		}()
	}
	wg.Wait()
	time.Sleep(*warmup)
	after := getStats(true)
	res.KiBPerConn = float64(after.RSSKiB-before.RSSKiB) / float64(*conns)
	res.GoroutinesPC = float64(after.Goroutines-before.Goroutines) / float64(*conns)
	res.HeapPerConn = float64(after.HeapInuse-before.HeapInuse) / float64(*conns)
	res.StackPerConn = float64(after.StackInuse-before.StackInuse) / float64(*conns)
	time.Sleep(*hold)
	for _, c := range clients {
		c.conn.Close()
	}
}
