// Package websocket implements the WebSocket protocol (RFC 6455) for
// servers built on net/http, and a client that speaks to any RFC 6455
// server.  Its API is the one of seehuhn.de/go/websocket, with the same
// names, semantics, error values and texts; everything else is added
// beside it.
//
// A server installs a Handler at the URL that clients connect to:
//
//	ws := &websocket.Handler{Handle: serveChat}
//	http.Handle("/chat", ws)
//
// The Handle function runs once for every client that completed the
// opening handshake, on a goroutine of its own.  It owns the connection
// and must close it when it is done:
//
//	func serveChat(conn *websocket.Conn) {
//		defer conn.Close(websocket.StatusOK, "")
//		for {
//			text, err := conn.ReceiveText(4096)
//			if err != nil {
//				return
//			}
//			if err := conn.SendText("you said: " + text); err != nil {
//				return
//			}
//		}
//	}
//
// An application that accepts connections in its own HTTP handler, where
// the request is at hand, calls Handler.Upgrade instead.  A client opens a
// connection with Dial and gets the same *Conn type:
//
//	conn, err := websocket.Dial(ctx, "ws://127.0.0.1:8080/chat", nil)
//
// # Errors
//
// Once a connection has ended, every call on it returns ErrConnClosed
// itself, so that err == ErrConnClosed holds; Conn.Err tells why it
// ended.
//
// # Running for months
//
// Every wait has a bound that the application can set: keep-alive pings
// (Handler.PingInterval, PongTimeout) drop a peer that vanished, read and
// write deadlines (Conn.SetReadDeadline, SetWriteDeadline) bound single
// calls, and the write timeout (Handler.WriteTimeout, 30 s by default)
// ends a connection whose peer does not read.  Handler.Shutdown closes a
// handler's connections gracefully.  BroadcastText and BroadcastBinary
// send a message to many connections, encoded once, without waiting for
// slow receivers.
//
// # Compression
//
// Handler.EnableCompression and DialOptions.EnableCompression switch on
// permessage-deflate (RFC 7692), tuned by CompressionOptions.  Without
// context takeover, the default, a message is compressed with a
// compressor from a pool, and an idle connection holds none; with it, a
// connection keeps its compressor and window for its whole life.  A read
// limit applies to the size of a message once inflated.
//
// # Beyond one server
//
// Package github.com/gowebsock/websocket/hub publishes messages to the
// subscribers of a topic on every instance of a server, through Redis,
// NATS or, in one process, memory.
//
// # The cost of a connection
//
// A goroutine that receives reads the network itself; while nobody
// receives, the connection reads on by itself, so that pings are answered
// and the peer's close is seen, holding up to Handler.ReadAhead bytes of
// the messages that arrive meanwhile.  A connection thus needs no
// goroutine of its own while its application receives, and at most one
// while nobody does.  Buffers come from pools when data arrives and go
// back when it has been handled: an idle connection holds none.
//
// All methods of a Conn may be called from several goroutines at once.
// The examples show the main uses.
package websocket
