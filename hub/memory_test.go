package hub_test

import (
	"testing"

	"github.com/gowebsock/websocket/hub"
	"github.com/gowebsock/websocket/hub/brokertest"
)

// TestMemoryBroker runs the broker suite on a MemoryBroker and its peers,
// which stand for instances on one server.
func TestMemoryBroker(t *testing.T) {
	root := hub.NewMemoryBroker()
	brokertest.Run(t, func(t *testing.T) hub.Broker { return root.Peer() })
}
