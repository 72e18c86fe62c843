// Package hub is a publish/subscribe hub for WebSocket connections that
// can span several server instances: a message published to a topic on
// any instance reaches the topic's subscribers on every instance, once
// and in order.
//
// Instances meet through a Broker: the default MemoryBroker serves one
// process with no server to run; github.com/gowebsock/websocket/hub/redisbroker
// and .../hub/natsbroker, modules of their own, connect instances through
// Redis and NATS.  Besides delivery, the broker keeps each topic's
// position and the history of its last publications, so that a client
// that reconnects, to any instance, with the position of the last
// message it received is sent what it missed, or told that the history
// no longer reaches back (ErrRecoveryGap); and the presence of clients
// across instances, with names that can be kept unique.
//
// Each instance sends a publication to its own subscribers with one
// websocket.BroadcastText or BroadcastBinary call: the frame is encoded
// once, and a subscriber that reads slowly has it queued, up to a bound
// past which it is dropped, without delaying anyone else.
//
// A handler subscribes its connection, then reads from it until it ends,
// and leaves:
//
//	func (s *server) serve(conn *websocket.Conn) {
//		defer conn.Close(websocket.StatusOK, "")
//		defer s.hub.Leave(conn)
//		if err := s.hub.Subscribe(conn, "news"); err != nil {
//			return
//		}
//		for {
//			if _, _, err := conn.ReceiveMessage(); err != nil {
//				return
//			}
//		}
//	}
//
// and anyone publishes:
//
//	s.hub.Publish(ctx, "news", websocket.Text, []byte("hello, everybody"))
package hub
