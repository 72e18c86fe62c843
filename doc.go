// Package websocket implements the WebSocket protocol (RFC 6455) for
// servers built on net/http, and a client that speaks to any RFC 6455
// server.
//
// A server installs a Handler at the URL that clients connect to:
//
//	ws := &websocket.Handler{Handle: serveChat}
//	http.Handle("/chat", ws)
//
// The Handle function runs once for every client that completed the
// opening handshake.  It owns the connection and must close it when it
// is done:
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
// A client opens a connection with Dial and gets the same *Conn type:
//
//	conn, err := websocket.Dial(ctx, "ws://127.0.0.1:8080/chat", nil)
//
// An application goroutine that receives messages in a loop reads them
// from the network itself; whenever no goroutine is receiving, the
// connection's own goroutine reads on, so that pings are answered and
// the peer's close frame is seen even while the application is busy
// elsewhere.  Incoming messages are delivered one at a time and are
// streamed, never buffered whole, so a message that nobody receives
// holds up everything behind it, control frames included: an
// application with no use for incoming messages should still receive
// and discard them.  All methods of a Conn may be called from several
// goroutines at once.
package websocket
