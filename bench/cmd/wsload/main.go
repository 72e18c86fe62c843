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
// Messages are -size random bytes, sent as binary messages, or with
// -chat or -compress the JSON chat messages of chatCorpus, sent as text
// messages, each connection sending them in turn.  With -compress
// notakeover or takeover, the client offers permessage-deflate (RFC
// 7692), without or with context takeover both ways, and sends the
// messages compressed (see deflate.go); it expects every echo compressed,
// inflates it and checks it.  The echo scenario then also reports the
// compression ratio, the payload bytes echoed over the bytes that
// arrived for them, frame headers included.
//
// The echo scenario reports the server's heap allocations per message,
// and the load generator's own CPU use, which shows whether it kept up.
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

	"github.com/gowebsock/websocket/bench/internal/proc"
)

// result is what wsload prints.
type result struct {
	Scenario string `json:"scenario"`
	Lib      string `json:"lib"`
	Conns    int    `json:"conns"`
	Size     int    `json:"size,omitempty"` // the mean, of the chat corpus
	Inflight int    `json:"inflight,omitempty"`
	Compress string `json:"compress,omitempty"` // notakeover or takeover

	// CompressionRatio is the payload bytes of the echoes over the bytes
	// that arrived for them; UploadRatio the same of what was sent.
	CompressionRatio float64 `json:"compression_ratio,omitempty"`
	UploadRatio      float64 `json:"upload_ratio,omitempty"`

	Messages       int64   `json:"messages,omitempty"`
	MsgsPerSec     float64 `json:"msgs_per_sec,omitempty"`
	ServerCPUPerUs float64 `json:"server_cpu_us_per_msg,omitempty"`
	// Heap allocations of the server per message, which may be zero.
	ServerAllocs     *float64 `json:"server_allocs_per_msg,omitempty"`
	ServerAllocBytes *float64 `json:"server_alloc_bytes_per_msg,omitempty"`
	LoadCPUPercent   float64  `json:"load_cpu_percent,omitempty"` // of one CPU

	P50Us        float64 `json:"p50_us,omitempty"`
	P99Us        float64 `json:"p99_us,omitempty"`
	HandshakesPS float64 `json:"handshakes_per_sec,omitempty"`
	KiBPerConn   float64 `json:"kib_per_conn,omitempty"`
	HeapPerConn  float64 `json:"heap_bytes_per_conn,omitempty"`
	StackPerConn float64 `json:"stack_bytes_per_conn,omitempty"`
	GoroutinesPC float64 `json:"goroutines_per_conn,omitempty"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
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
	chat     = flag.Bool("chat", false, "send the chat corpus, as text messages")
	compress = flag.String("compress", "none", "permessage-deflate: none, notakeover or takeover")
	level    = flag.Int("level", 1, "compression level of what the client sends")
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
	var msgs *messages
	if *scenario != "handshake" {
		var err error
		if msgs, err = loadMessages(&res); err != nil {
			log.Fatal(err)
		}
	}
	switch *scenario {
	case "echo":
		res.Inflight = *inflight
		runEcho(&res, msgs)
	case "latency":
		res.Conns, res.Inflight = 1, 1
		runLatency(&res, msgs)
	case "handshake":
		runHandshakes(&res)
	case "idle":
		runIdle(&res, msgs)
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
	op        byte   // its opcode
	size      int    // of the payload, inflated
	crc       uint32 // of the payload, inflated, as the server echoes it
	maskedCRC uint32 // of the masked payload, as the TCP echo returns it
}

var maskKey = [4]byte{0x12, 0x34, 0x56, 0x78}

// newMessage returns a binary message of size random bytes.
func newMessage(size int) *message {
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	frame := maskedFrame(0x82, payload)
	masked := frame[len(frame)-size:]
	return &message{frame: frame, op: 2, size: size, crc: crc32.Checksum(payload, crcTable), maskedCRC: crc32.Checksum(masked, crcTable)}
}

// maskedFrame returns a client frame whose first byte is b0, masked with
// maskKey.
func maskedFrame(b0 byte, payload []byte) []byte {
	size := len(payload)
	frame := []byte{b0}
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
	frame = append(frame, maskKey[:]...)
	for i, b := range payload {
		frame = append(frame, b^maskKey[i%4])
	}
	return frame
}

// messages are what every connection sends, in turn.
type messages struct {
	list []*message
	// With a single message, batch holds -inflight copies of its frame,
	// which the connections send from.
	batch []byte
}

// loadMessages makes the messages that the flags ask for, and notes
// their (mean) size in res.
func loadMessages(res *result) (*messages, error) {
	if *compress == "none" && !*chat {
		m := newMessage(*size)
		res.Size = *size
		return &messages{list: []*message{m}, batch: bytes.Repeat(m.frame, max(*inflight, 1))}, nil
	}
	payloads := chatCorpus(corpusSize)
	bodies, b0 := payloads, byte(0x81) // text
	if *compress != "none" {
		res.Compress = *compress
		var err error
		if bodies, err = deflateAll(payloads, *level, *compress == "takeover"); err != nil {
			return nil, err
		}
		b0 |= 0x40 // RSV1: compressed
	}
	msgs := &messages{}
	var raw, wire int
	for i, p := range payloads {
		m := &message{frame: maskedFrame(b0, bodies[i]), op: 1, size: len(p), crc: crc32.Checksum(p, crcTable)}
		msgs.list = append(msgs.list, m)
		raw += len(p)
		wire += len(m.frame)
	}
	res.Size = raw / len(payloads)
	if *compress != "none" {
		res.UploadRatio = float64(raw) / float64(wire)
	}
	return msgs, nil
}

// stream is what one connection sends: the messages in turn.
type stream struct {
	*messages
	sent, echoed int // the next message to send, and to be echoed
	buf          []byte
}

// next returns the frames of the next n messages, in one slice valid
// until the next call.
func (s *stream) next(n int) []byte {
	if s.batch != nil && n*len(s.list[0].frame) <= len(s.batch) {
		return s.batch[:n*len(s.list[0].frame)]
	}
	s.buf = s.buf[:0]
	for range n {
		s.buf = append(s.buf, s.list[s.sent].frame...)
		s.sent = (s.sent + 1) % len(s.list)
	}
	return s.buf
}

// expect returns the message whose echo comes next.
func (s *stream) expect() *message {
	m := s.list[s.echoed]
	s.echoed = (s.echoed + 1) % len(s.list)
	return m
}

// client is one connection of the load generator.
type client struct {
	conn    *countedConn
	br      *bufio.Reader
	echoed  atomic.Int64 // payload bytes echoed, inflated
	inf     *inflater    // with permessage-deflate
	payload []byte       // a compressed echo, gathered
}

// countedConn counts the bytes that it reads.
type countedConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

const handshakeRequest = "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n"

// dial connects, and performs the opening handshake unless the server
// is the plain TCP echo.
func dial(bufSize int) (*client, error) {
	conn, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	cc := &countedConn{Conn: conn}
	c := &client{conn: cc, br: bufio.NewReaderSize(cc, bufSize)}
	if *lib == "tcp" {
		return c, nil
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	ext := ""
	if *compress != "none" {
		ext = "Sec-WebSocket-Extensions: " + deflateOffer(*compress) + "\r\n"
	}
	if _, err := fmt.Fprintf(conn, handshakeRequest, *addr, ext); err != nil {
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
	if *compress != "none" {
		takeover, err := checkDeflateAnswer(*compress, resp.Header.Get("Sec-WebSocket-Extensions"))
		if err != nil {
			conn.Close()
			return nil, err
		}
		c.inf = &inflater{takeover: takeover}
	}
	return c, nil
}

// readEcho reads one echoed message, whatever frames the server cut it
// into, and checks it against m.  With permessage-deflate, it gathers the
// payload and inflates it.
func (c *client) readEcho(m *message) error {
	length, crc := 0, uint32(0)
	compressed := false
	c.payload = c.payload[:0]
	for first := true; ; first = false {
		hdr, err := c.br.Peek(2)
		if err != nil {
			return err
		}
		fin, rsv, op, masked := hdr[0]&0x80 != 0, hdr[0]&0x70, hdr[0]&0x0F, hdr[1]&0x80 != 0
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
		if first {
			compressed = rsv == 0x40 && c.inf != nil
		}
		if (first && op != m.op) || (!first && op != 0) || masked != (*lib == "tcp") || (rsv != 0 && !(first && compressed)) {
			return fmt.Errorf("unexpected frame: opcode %d, RSV bits %#x, masked %v", op, rsv, masked)
		}
		for n > 0 {
			if c.br.Buffered() == 0 {
				if _, err := c.br.Peek(1); err != nil {
					return err
				}
			}
			b, _ := c.br.Peek(int(min(n, int64(c.br.Buffered()))))
			if compressed {
				c.payload = append(c.payload, b...)
			} else {
				crc = crc32.Update(crc, crcTable, b)
				length += len(b)
			}
			c.br.Discard(len(b))
			n -= int64(len(b))
		}
		if fin {
			break
		}
	}
	switch {
	case compressed:
		out, err := c.inf.inflate(c.payload)
		if err != nil {
			return err
		}
		length, crc = len(out), crc32.Checksum(out, crcTable)
	case c.inf != nil:
		return fmt.Errorf("an echo of %d bytes came uncompressed", length)
	}
	c.echoed.Add(int64(length))
	want := m.crc
	if *lib == "tcp" {
		want = m.maskedCRC
	}
	if length != m.size || crc != want {
		return fmt.Errorf("echo of %d bytes with CRC %08x, want %d bytes with %08x", length, crc, m.size, want)
	}
	return nil
}

// getStats asks the server for its figures.
func getStats(gc bool) proc.Stats {
	url := "http://" + *statsURL + "/stats"
	if gc {
		url += "?gc=1"
	}
	resp, err := http.Get(url)
	if err != nil {
		log.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	var s proc.Stats
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

func runEcho(res *result, msgs *messages) {
	maxFrame := 0
	for _, m := range msgs.list {
		maxFrame = max(maxFrame, len(m.frame))
	}
	clients := dialAll(*conns, max(256<<10, 2**inflight*maxFrame))
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.conn.Close()
			s := &stream{messages: msgs}
			if _, err := c.conn.Write(s.next(*inflight)); err != nil {
				fail(err)
				return
			}
			for !stop.Load() {
				// Read one echo, and those behind it that have
				// arrived, then replace them all in one write.
				n := 0
				for n == 0 || (c.br.Buffered() > 0 && n < *inflight) {
					if err := c.readEcho(s.expect()); err != nil {
						if !stop.Load() {
							fail(err)
						}
						return
					}
					n++
				}
				count.Add(int64(n))
				if _, err := c.conn.Write(s.next(n)); err != nil {
					if !stop.Load() {
						fail(err)
					}
					return
				}
			}
		}()
	}
	// What arrived, and the payload of the echoes in it.
	wire := func() (read, echoed int64) {
		for _, c := range clients {
			read += c.conn.read.Load()
			echoed += c.echoed.Load()
		}
		return read, echoed
	}
	time.Sleep(*warmup)
	before, startCount, start, startCPU := getStats(false), count.Load(), time.Now(), proc.CPUTime()
	startRead, startEchoed := wire()
	time.Sleep(*duration)
	after, endCount, elapsed, endCPU := getStats(false), count.Load(), time.Since(start), proc.CPUTime()
	endRead, endEchoed := wire()
	stop.Store(true)
	for _, c := range clients {
		c.conn.SetDeadline(time.Now()) // wake the readers
	}
	wg.Wait()
	res.Messages = endCount - startCount
	res.MsgsPerSec = float64(res.Messages) / elapsed.Seconds()
	res.LoadCPUPercent = 100 * float64(endCPU-startCPU) / float64(elapsed)
	if res.Messages > 0 {
		n := float64(res.Messages)
		res.ServerCPUPerUs = float64(after.CPUNanos-before.CPUNanos) / 1e3 / n
		allocs, bytes := float64(after.Mallocs-before.Mallocs)/n, float64(after.TotalAlloc-before.TotalAlloc)/n
		res.ServerAllocs, res.ServerAllocBytes = &allocs, &bytes
	}
	if *compress != "none" && endRead > startRead {
		res.CompressionRatio = float64(endEchoed-startEchoed) / float64(endRead-startRead)
	}
}

func runLatency(res *result, msgs *messages) {
	c := dialAll(1, 64<<10)[0]
	defer c.conn.Close()
	s := &stream{messages: msgs}
	var samples []time.Duration
	deadline := time.Now().Add(*warmup + *duration)
	measureFrom := time.Now().Add(*warmup)
	for time.Now().Before(deadline) {
		start := time.Now()
		if _, err := c.conn.Write(s.next(1)); err != nil {
			fail(err)
			return
		}
		if err := c.readEcho(s.expect()); err != nil {
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
				c.conn.Conn.(*net.TCPConn).SetLinger(0)
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

func runIdle(res *result, msgs *messages) {
	m := msgs.list[0]
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
