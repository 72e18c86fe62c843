package websocket

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
)

// DefaultReadLimit is the largest message, in bytes, that a new
// connection accepts.  A larger message fails the connection with
// StatusTooLarge.  Conn.SetReadLimit changes the limit.
const DefaultReadLimit = 32 << 20

// Conn is one WebSocket connection, on the server side (from a Handler)
// or on the client side (from Dial).  The exported fields describe the
// connection and must not be changed once the handshake is done.
//
// All methods may be called from several goroutines at once.  Messages
// are received one at a time, in order; messages being sent never
// interleave, while control frames (pings, pongs, the close frame) may go
// out between the fragments of a message that is being streamed.
//
// Every connection must be ended with Close to free its resources.
type Conn struct {
	// ResourceName is the URL the client asked for, with the scheme
	// "ws" or "wss" and the host from the request.
	ResourceName *url.URL
	// Origin is the origin that a web browser reported for the page
	// that opened the connection, or nil if there was none.
	Origin *url.URL
	// RemoteAddr is the network address of the peer.
	RemoteAddr string
	// Protocol is the subprotocol that the server selected, or "" if
	// none.  On the server side, Handler.AccessOk sets it.
	Protocol string

	netConn net.Conn
	client  bool // masks what it sends and expects unmasked frames

	// The read side belongs to whoever holds readMu: the goroutine of
	// readLoop while it looks for the next message, the application
	// while it reads a message, and readLoop again while it closes.
	readMu    sync.Mutex
	br        *bufio.Reader
	in        inboundMessage
	ctrlBuf   [maxControlPayload]byte
	readLimit atomic.Int64

	// readLoop hands each new message to ReceiveMessage through
	// nextMessage and waits on messageDone until it has been read.
	nextMessage chan *messageReader
	messageDone chan struct{}

	// The write side: writeMu makes each frame one unit on the wire,
	// senderToken is held by the one message being sent.
	writeMu     sync.Mutex
	bw          *bufio.Writer
	closeSent   bool
	writeErr    error
	senderToken chan struct{}

	// A pong waiting for the write lock, see sendPong.
	pongMu      sync.Mutex
	pongQueued  bool
	pongPayload []byte

	// Closing state, guarded by stateMu.  closing is closed when the
	// connection starts closing, done when it is fully closed.
	stateMu    sync.Mutex
	isClosing  bool
	closeCause error
	peerClosed bool
	peerStatus Status
	peerReason string
	closing    chan struct{}
	done       chan struct{}
}

// init prepares a connection whose handshake is complete.  br must
// read from netConn, holding any bytes that were read past the
// handshake; bw must write to netConn.
func (c *Conn) init(netConn net.Conn, br *bufio.Reader, bw *bufio.Writer, client bool) {
	c.netConn = netConn
	c.client = client
	c.br = br
	c.bw = bw
	c.nextMessage = make(chan *messageReader)
	c.messageDone = make(chan struct{}, 1)
	c.senderToken = make(chan struct{}, 1)
	c.closing = make(chan struct{})
	c.done = make(chan struct{})
	c.readLimit.Store(DefaultReadLimit)
}

// start launches the goroutine that reads from the network.
func (c *Conn) start() { go c.readLoop() }

// SetReadLimit sets the largest message, in bytes, that the connection
// accepts from now on; n <= 0 removes the limit.  A message above the
// limit fails the connection with StatusTooLarge, before its payload is
// read.
func (c *Conn) SetReadLimit(n int64) {
	c.readLimit.Store(n)
}

// readLoop owns the network reads whenever the application does not:
// it reads up to the start of each message, answering control frames on
// the way, and hands the message over.  Once the connection closes, it
// finishes the closing handshake and releases the network connection.
func (c *Conn) readLoop() {
	defer close(c.done)
	defer c.netConn.Close()

	for !c.isClosingNow() {
		c.readMu.Lock()
		mr, err := c.startMessage()
		c.readMu.Unlock()
		if err != nil {
			c.fail(err)
			break
		}
		select {
		case c.nextMessage <- mr:
			select {
			case <-c.messageDone:
			case <-c.closing:
			}
		case <-c.closing:
		}
	}
	c.finishReading()
}

// isClosingNow reports whether the connection has started closing.
func (c *Conn) isClosingNow() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// finishReading completes the closing handshake on the read side once
// the connection is closing.
func (c *Conn) finishReading() {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	// A message reader still held by the application is now stale.
	c.in.generation++

	cause := c.closedError()
	if isReadFault(cause) {
		// We failed the connection (RFC 6455, section 7.1.7) and
		// owe the peer no more patience than it takes to hear its
		// close frame: our FIN tells it that we are done at once.
		// Reading on rather than closing outright avoids a TCP
		// reset, which could destroy our close frame in transit.
		if cw, ok := c.netConn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	if cause == ErrConnClosed || isReadFault(cause) {
		// We sent a close frame first: wait for the peer's answer,
		// discarding whatever data comes before it.  After a protocol
		// error of the peer this is a best effort; the read deadline
		// set by beginClosing bounds it either way.
		for {
			err := c.skipFrame()
			if err == nil {
				continue
			}
			if errors.Is(err, errPeerClosed) {
				cause = errPeerClosed
			}
			break
		}
	}
	if cause == errPeerClosed && c.client {
		// The server closes the TCP connection first (RFC 6455,
		// section 7.1.1), so a client waits for that.
		io.Copy(io.Discard, c.br)
	}
}

// isReadFault reports whether err is a violation of the protocol by the
// peer, after which we sent a close frame and may still hear back.
func isReadFault(err error) bool {
	var ce *closeError
	return errors.As(err, &ce)
}
