package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/natsbroker"
	"github.com/gowebsock/websocket/hub/redisbroker"
)

// serverAddress returns the address of a broker's server from the
// environment, as .ci/run sets it; outside CI, a test without it skips.
func serverAddress(t *testing.T, env string) string {
	t.Helper()
	addr := os.Getenv(env)
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("$%s is not set; .ci/run starts the server and sets it", env)
		}
		t.Skipf("$%s is not set", env)
	}
	return addr
}

// TestChatTwoInstancesRedis runs two chat servers on one Redis.
func TestChatTwoInstancesRedis(t *testing.T) {
	addr := serverAddress(t, "REDIS_ADDR")
	prefix := fmt.Sprintf("chat-test-%d:", time.Now().UnixNano())
	connect := func() hub.Broker {
		b, err := redisbroker.New(redisbroker.Options{Addr: addr, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	testTwoInstances(t, connect(), connect())
}

// TestChatTwoInstancesNATS runs two chat servers on one NATS server.
func TestChatTwoInstancesNATS(t *testing.T) {
	url := serverAddress(t, "NATS_URL")
	prefix := fmt.Sprintf("chat-test-%d", time.Now().UnixNano())
	connect := func() hub.Broker {
		b, err := natsbroker.New(natsbroker.Options{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	testTwoInstances(t, connect(), connect())
}
