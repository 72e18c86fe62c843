package websocket_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gowebsock/websocket"
)

// serve runs h on a loopback test server and returns its ws:// URL and a
// function that stops it.
func serve(h http.Handler) (string, func()) {
	srv := httptest.NewServer(h)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), srv.Close
}

// An echo server: Handle runs for every connection, on a goroutine of its
// own, and streams every message back.
func ExampleHandler() {
	url, stop := serve(&websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		for {
			tp, r, err := conn.ReceiveMessage()
			if err != nil {
				return // the peer closed, or the connection failed
			}
			w, err := conn.SendMessage(tp)
			if err != nil {
				io.Copy(io.Discard, r)
				return
			}
			io.Copy(w, r)
			w.Close()
		}
	}})
	defer stop()

	conn, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(websocket.StatusOK, "")
	conn.SendText("hello")
	reply, err := conn.ReceiveText(100)
	fmt.Println(reply, err)
	// Output: hello <nil>
}

// A client: Dial, send, receive, close, and the server's status.
func ExampleDial() {
	url, stop := serve(&websocket.Handler{Handle: func(conn *websocket.Conn) {
		name, _ := conn.ReceiveText(100)
		conn.SendText("hello, " + name)
		conn.Close(websocket.StatusOK, "bye")
	}})
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Header: http.Header{"Origin": {"http://example.com"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	conn.SendText("gopher")
	greeting, _ := conn.ReceiveText(100)
	fmt.Println(greeting)
	_, err = conn.ReceiveText(100)
	fmt.Println(err == websocket.ErrConnClosed)
	fmt.Println(conn.GetStatus())
	// Output:
	// hello, gopher
	// true
	// 1000 (normal closure) bye
}

// Compression is switched on by both ends; a message of the threshold's
// size or more (512 bytes by default) goes out compressed.
func ExampleCompressionOptions() {
	url, stop := serve(&websocket.Handler{
		EnableCompression: true,
		// Keep the compression context from message to message, in
		// both directions, where the client allows it: better
		// compression of similar messages, for a compressor per
		// connection.
		CompressionOptions: websocket.CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true},
		Handle: func(conn *websocket.Conn) {
			defer conn.Close(websocket.StatusOK, "")
			text, _ := conn.ReceiveText(1 << 20)
			conn.SendText(strings.ToUpper(text))
		},
	})
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := websocket.Dial(ctx, url, &websocket.DialOptions{EnableCompression: true})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(websocket.StatusOK, "")
	conn.SendText(strings.Repeat("all work and no play. ", 100))
	reply, _ := conn.ReceiveText(1 << 20)
	fmt.Println(len(reply), reply[:22])
	// Output:
	// 2200 ALL WORK AND NO PLAY.
}

// ReceiveText cuts a text that is longer than its bound.
func ExampleConn_ReceiveText() {
	url, stop := serve(&websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		for {
			text, err := conn.ReceiveText(5)
			if err == websocket.ErrConnClosed {
				return
			}
			fmt.Printf("%q %v\n", text, err)
		}
	}})
	defer stop()

	conn, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		log.Fatal(err)
	}
	conn.SendText("short")
	conn.SendText("a longer text")
	conn.SendBinary([]byte{1, 2, 3})
	conn.Close(websocket.StatusOK, "")
	// Output:
	// "short" <nil>
	// "a lon" message too large
	// "" invalid message type
}

// SendMessage streams a message: it is sent as it is written.
func ExampleConn_SendMessage() {
	url, stop := serve(&websocket.Handler{Handle: func(conn *websocket.Conn) {
		defer conn.Close(websocket.StatusOK, "")
		w, err := conn.SendMessage(websocket.Text)
		if err != nil {
			return
		}
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i)
		}
		w.Close()
	}})
	defer stop()

	conn, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(websocket.StatusOK, "")
	_, r, err := conn.ReceiveMessage()
	if err != nil {
		log.Fatal(err)
	}
	text, _ := io.ReadAll(r)
	fmt.Print(string(text))
	// Output:
	// line 0
	// line 1
	// line 2
}

// BroadcastText sends one message to many connections, encoding it once.
func ExampleBroadcastText() {
	joined := make(chan *websocket.Conn)
	url, stop := serve(&websocket.Handler{Handle: func(conn *websocket.Conn) { joined <- conn }})
	defer stop()

	var clients, members []*websocket.Conn
	for range 3 {
		conn, err := websocket.Dial(context.Background(), url, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer conn.Close(websocket.StatusOK, "")
		clients = append(clients, conn)
		members = append(members, <-joined)
	}
	failed := websocket.BroadcastText(context.Background(), members, "news for everyone")
	fmt.Println(len(failed), "failed")
	for _, c := range clients {
		fmt.Println(c.ReceiveText(100))
	}
	// Output:
	// 0 failed
	// news for everyone <nil>
	// news for everyone <nil>
	// news for everyone <nil>
}

// Shutdown closes the handler's connections with StatusGoingAway.
func ExampleHandler_Shutdown() {
	ws := &websocket.Handler{Handle: func(conn *websocket.Conn) {
		for {
			if _, _, err := conn.ReceiveMessage(); err != nil {
				return
			}
		}
	}}
	url, stop := serve(ws)
	defer stop()
	conn, err := websocket.Dial(context.Background(), url, nil)
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(ws.Shutdown(ctx))
	fmt.Println(conn.GetStatus())
	// Output:
	// <nil>
	// 1001 (going away) server shutting down
}
