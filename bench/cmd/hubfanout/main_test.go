package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestFanOut runs a small fan-out in one process, on the in-memory
// broker and on Redis and NATS where the environment has them, as
// .ci/run does: every subscriber gets every message.
func TestFanOut(t *testing.T) {
	brokers := []config{{broker: "memory"}}
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		brokers = append(brokers, config{broker: "redis", redis: addr})
	}
	if url := os.Getenv("NATS_URL"); url != "" {
		brokers = append(brokers, config{broker: "nats", nats: url})
	}
	for _, c := range brokers {
		t.Run(c.broker, func(t *testing.T) {
			c.prefix = "fanout-test-" + time.Now().Format("150405.000000")
			c.instances, c.subs, c.size, c.messages, c.window = 2, 50, 1024, 40, 4
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			addrs, stop, err := serveInstances(c)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			r, err := measure(ctx, c, addrs, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if r.Dropped != 0 || r.PublishErrors != 0 || r.Messages != 36 || r.P50Us <= 0 || r.MsgsPerSec <= 0 {
				t.Errorf("result %+v", r)
			}
		})
	}
}
