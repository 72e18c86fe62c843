package redisbroker

import (
	"testing"

	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/brokertest"
	"github.com/redis/go-redis/v9"
)

// TestConformance runs the broker suite on brokers that New connects to
// a Redis by its address.
func TestConformance(t *testing.T) {
	checkGoroutines(t)
	addr, prefix := redisAddr(t), testPrefix()
	brokertest.Run(t, func(t *testing.T) hub.Broker {
		b, err := New(Options{Addr: addr, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestConformanceClient runs the suite on brokers given clients of
// their own, which speak RESP2, where go-redis defaults to RESP3: Pub/Sub
// and pings are answered differently in the two.
func TestConformanceClient(t *testing.T) {
	checkGoroutines(t)
	addr, prefix := redisAddr(t), testPrefix()
	brokertest.Run(t, func(t *testing.T) hub.Broker {
		client := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, ContextTimeoutEnabled: true})
		t.Cleanup(func() { client.Close() })
		b, err := New(Options{Client: client, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
