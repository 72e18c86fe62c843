package natsbroker

import (
	"testing"

	"github.com/gowebsock/websocket/hub/brokertest"
)

// TestConformance runs the brokers' conformance suite on a server with
// JetStream.
func TestConformance(t *testing.T) {
	s := startServer(t, true)
	brokertest.Run(t, connector(t, s, Options{}))
}
