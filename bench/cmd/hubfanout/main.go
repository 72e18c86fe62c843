// Command hubfanout measures the fan-out of package hub across server
// instances: one publisher sends messages of -size bytes to a topic that
// -subs WebSocket connections subscribe to, spread over -instances hub
// instances that meet through Redis, NATS or, as a baseline, the
// in-memory broker of one process.  It reports the messages per second
// that reach every subscriber, and the latency from publishing to each
// subscriber's receipt, p50 and p99.
//
//	hubfanout -broker redis -redis 127.0.0.1:6379
//	hubfanout -broker nats -nats nats://127.0.0.1:4222
//	hubfanout -broker memory
//
// The instances run in a child process (-serve), so that the servers'
// connections and the subscribers' are in two processes, each within its
// descriptor limit.  The subscribers and the publisher run here, on one
// clock: each message carries the time it was published.  With Redis and
// NATS the publisher is a hub instance of its own, without subscribers;
// with the in-memory broker, which does not leave its process, it posts
// to the first instance over HTTP, which adds that request's time.
//
// The publisher keeps -window messages in flight: it publishes the next
// once every subscriber has received the one -window before it.  The
// first tenth of the messages warms up and is not counted.  It prints
// one JSON object; -report FILE makes a Markdown table of the medians of
// such results.  hub.sh runs the set that BENCHMARKS.md shows.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/natsbroker"
	"github.com/gowebsock/websocket/hub/redisbroker"
)

const topic = "fanout"

type config struct {
	broker    string
	redis     string
	nats      string
	prefix    string
	instances int
	subs      int
	size      int
	messages  int
	window    int
	timeout   time.Duration
}

// result is what hubfanout prints.
type result struct {
	Broker        string  `json:"broker"`
	Instances     int     `json:"instances"`
	Subscribers   int     `json:"subscribers"`
	Size          int     `json:"size"`
	Messages      int     `json:"messages"` // counted, after the warm-up
	Window        int     `json:"window"`
	MsgsPerSec    float64 `json:"msgs_per_sec"`
	DeliveriesPS  float64 `json:"deliveries_per_sec"`
	P50Us         float64 `json:"p50_us"`
	P99Us         float64 `json:"p99_us"`
	MaxUs         float64 `json:"max_us"`
	Dropped       int     `json:"dropped"` // subscribers whose connection ended
	SetupSeconds  float64 `json:"setup_seconds"`
	PublishErrors int     `json:"publish_errors"`
}

func main() {
	var c config
	serve := flag.Bool("serve", false, "run the hub instances (the child process)")
	reportOf := flag.String("report", "", "write the table of the results in `file` (JSON lines) and exit")
	flag.StringVar(&c.broker, "broker", "memory", "memory, redis or nats")
	flag.StringVar(&c.redis, "redis", os.Getenv("REDIS_ADDR"), "Redis address")
	flag.StringVar(&c.nats, "nats", os.Getenv("NATS_URL"), "NATS URL")
	flag.StringVar(&c.prefix, "prefix", "", "the brokers' key and subject prefix; empty: a fresh one")
	flag.IntVar(&c.instances, "instances", 2, "hub instances")
	flag.IntVar(&c.subs, "subs", 10000, "subscribers, spread over the instances")
	flag.IntVar(&c.size, "size", 1024, "message size in bytes")
	flag.IntVar(&c.messages, "messages", 300, "messages to publish, the first tenth as warm-up")
	flag.IntVar(&c.window, "window", 8, "messages in flight")
	flag.DurationVar(&c.timeout, "timeout", 3*time.Minute, "bound of the whole run")
	flag.Parse()
	if c.prefix == "" {
		c.prefix = fmt.Sprintf("fanout-%d", time.Now().UnixNano())
	}
	if *reportOf != "" {
		if err := reportFile(*reportOf); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *serve {
		if err := runInstances(c); err != nil {
			log.Fatal(err)
		}
		return
	}
	r, err := run(c)
	if err != nil {
		log.Fatal(err)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

// newBroker connects one instance's broker.
func newBroker(c config, mem *hub.MemoryBroker) (hub.Broker, error) {
	switch c.broker {
	case "redis":
		return redisbroker.New(redisbroker.Options{Addr: c.redis, Prefix: c.prefix + ":"})
	case "nats":
		return natsbroker.New(natsbroker.Options{URL: c.nats, Prefix: c.prefix, MemoryStorage: true})
	case "memory":
		return mem.Peer(), nil
	}
	return nil, fmt.Errorf("unknown broker %q", c.broker)
}

// runInstances is the child: it serves the hub instances, prints their
// addresses on one line, and runs until its standard input ends.
func runInstances(c config) error {
	addrs, stop, err := serveInstances(c)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Println(strings.Join(addrs, " "))
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// serveInstances starts the hub instances, each with an HTTP server on a
// loopback port, and returns their addresses.
func serveInstances(c config) (addrs []string, stop func(), err error) {
	mem := hub.NewMemoryBroker()
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	for range c.instances {
		b, err := newBroker(c, mem)
		if err != nil {
			stop()
			return nil, nil, err
		}
		h, err := hub.New(hub.Options{Broker: b, History: hub.HistoryOptions{Size: -1}})
		if err != nil {
			stop()
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			h.Close()
			stop()
			return nil, nil, err
		}
		srv := &http.Server{Handler: instanceMux(h)}
		go srv.Serve(ln)
		stops = append(stops, func() {
			srv.Close()
			h.Close()
		})
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, stop, nil
}

// instanceMux serves one instance: subscribers at /sub, the count of them
// at /subscribers, and publishing by POST at /publish.
func instanceMux(h *hub.Hub) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/sub", &websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		defer h.Leave(conn)
		if h.Subscribe(conn, topic) != nil {
			return
		}
		for {
			if _, _, err := conn.ReceiveMessage(); err != nil {
				return
			}
		}
	}})
	mux.HandleFunc("GET /subscribers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, h.Subscribers(topic))
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		msg, err := io.ReadAll(r.Body)
		if err == nil {
			_, err = h.Publish(r.Context(), topic, websocket.Binary, msg)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	return mux
}

// subscriber is one subscribed connection and what it received.
type subscriber struct {
	conn      *websocket.Conn
	latencies []int32 // µs, of the counted messages
}

// run is the parent: it starts the instances in a child process, then
// measures.
func run(c config) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	began := time.Now()

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	child := exec.CommandContext(ctx, self, "-serve", "-broker", c.broker, "-redis", c.redis, "-nats", c.nats,
		"-prefix", c.prefix, "-instances", strconv.Itoa(c.instances))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := child.Start(); err != nil {
		return nil, err
	}
	defer func() {
		stdin.Close()
		child.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("the instances did not start: %v", err)
	}
	return measure(ctx, c, strings.Fields(line), began)
}

// measure subscribes to the instances at addrs, publishes and measures.
func measure(ctx context.Context, c config, addrs []string, began time.Time) (*result, error) {
	warmup := c.messages / 10
	counted := c.messages - warmup
	received := make([]atomic.Int32, c.messages)
	complete := make([]chan struct{}, c.messages)
	for i := range complete {
		complete[i] = make(chan struct{})
	}
	var dropped atomic.Int32

	// Subscribe, 64 at a time.
	subs := make([]*subscriber, c.subs)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	var dialErr atomic.Value
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= c.subs {
					return
				}
				conn, err := websocket.Dial(ctx, "ws://"+addrs[i%len(addrs)]+"/sub", nil)
				if err != nil {
					dialErr.Store(err)
					return
				}
				subs[i] = &subscriber{conn: conn, latencies: make([]int32, 0, counted)}
			}
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return nil, fmt.Errorf("subscribing: %v", err)
	}
	defer func() {
		for _, s := range subs {
			s.conn.Close(websocket.StatusGoingAway, "")
		}
	}()
	if err := awaitSubscribed(ctx, addrs, c.subs); err != nil {
		return nil, err
	}
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			s.receive(c, received, complete, warmup, &dropped)
		}()
	}

	publish, closePublisher, err := publisher(c, addrs[0])
	if err != nil {
		return nil, err
	}
	defer closePublisher()
	setup := time.Since(began)

	payload := bytes.Repeat([]byte{'x'}, max(c.size, 12))
	publishErrors := 0
	var start time.Time
	for seq := range c.messages {
		if seq >= c.window {
			select {
			case <-complete[seq-c.window]:
			case <-ctx.Done():
				return nil, fmt.Errorf("message %d did not reach every subscriber: %d of %d, %d dropped",
					seq-c.window, received[seq-c.window].Load(), c.subs, dropped.Load())
			}
		}
		if seq == warmup {
			start = time.Now()
		}
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint32(payload[8:], uint32(seq))
		if err := publish(ctx, payload); err != nil {
			publishErrors++
			close(complete[seq]) // nobody will receive it
			continue
		}
	}
	for seq := max(c.messages-c.window, 0); seq < c.messages; seq++ {
		select {
		case <-complete[seq]:
		case <-ctx.Done():
			return nil, fmt.Errorf("message %d did not reach every subscriber", seq)
		}
	}
	elapsed := time.Since(start)

	// The readers are done with the counted messages; the latencies
	// are read once every subscriber had them all.
	var all []int32
	for _, s := range subs {
		all = append(all, s.latencies[:min(len(s.latencies), counted)]...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(int(p*float64(len(all))), len(all)-1)])
	}
	return &result{
		Broker:        c.broker,
		Instances:     c.instances,
		Subscribers:   c.subs,
		Size:          len(payload),
		Messages:      counted,
		Window:        c.window,
		MsgsPerSec:    float64(counted) / elapsed.Seconds(),
		DeliveriesPS:  float64(counted) * float64(c.subs) / elapsed.Seconds(),
		P50Us:         pct(0.50),
		P99Us:         pct(0.99),
		MaxUs:         pct(1),
		Dropped:       int(dropped.Load()),
		SetupSeconds:  setup.Seconds(),
		PublishErrors: publishErrors,
	}, nil
}

// receive reads s's messages until its connection ends, recording the
// latency of each counted one, and marks the messages that every
// subscriber has received.
func (s *subscriber) receive(c config, received []atomic.Int32, complete []chan struct{}, warmup int, dropped *atomic.Int32) {
	buf := make([]byte, c.size+64)
	for {
		n, err := s.conn.ReceiveBinary(buf)
		if err != nil {
			if s.conn.Err() != nil {
				if code, _ := s.conn.GetStatus(); code != websocket.StatusGoingAway {
					dropped.Add(1)
				}
				return
			}
			continue
		}
		now := time.Now().UnixNano()
		if n < 12 {
			continue
		}
		sent := int64(binary.BigEndian.Uint64(buf))
		seq := int(binary.BigEndian.Uint32(buf[8:]))
		if seq >= len(received) {
			continue
		}
		if seq >= warmup {
			s.latencies = append(s.latencies, int32(min((now-sent)/1000, 1<<31-1)))
		}
		if int(received[seq].Add(1)) == c.subs {
			close(complete[seq])
		}
	}
}

// awaitSubscribed waits until the instances have subs subscribers.
func awaitSubscribed(ctx context.Context, addrs []string, subs int) error {
	for {
		total := 0
		for _, addr := range addrs {
			resp, err := http.Get("http://" + addr + "/subscribers")
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n, _ := strconv.Atoi(string(body))
			total += n
		}
		if total == subs {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d subscribed", total, subs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// publisher returns how this process publishes: through a hub instance
// of its own, or, with the in-memory broker, by posting to the first
// instance.
func publisher(c config, first string) (func(context.Context, []byte) error, func(), error) {
	if c.broker == "memory" {
		client := &http.Client{}
		return func(ctx context.Context, msg []byte) error {
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+first+"/publish", bytes.NewReader(msg))
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("publish: %s", resp.Status)
			}
			return nil
		}, func() {}, nil
	}
	b, err := newBroker(c, nil)
	if err != nil {
		return nil, nil, err
	}
	h, err := hub.New(hub.Options{Broker: b, History: hub.HistoryOptions{Size: -1}})
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, msg []byte) error {
		_, err := h.Publish(ctx, topic, websocket.Binary, msg)
		return err
	}, func() { h.Close() }, nil
}
