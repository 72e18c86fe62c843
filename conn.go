package websocket

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

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

	// The read side belongs to whoever holds readMu: an application
	// goroutine while it receives a message, readLoop while nobody
	// receives, and readLoop again while it closes.
	readMu    sync.Mutex
	br        *bufio.Reader
	in        inboundMessage
	ctrlBuf   [maxControlPayload]byte
	readLimit atomic.Int64
	// pending is a message whose start readLoop read while nobody was
	// receiving; the next ReceiveMessage takes it.  Guarded by readMu.
	pending *messageReader

	// receiverToken is held from ReceiveMessage until the message
	// has been read to its end, and by readLoop while it reads on its
	// own; messageEnded wakes readLoop after each message.
	receiverToken chan struct{}
	messageEnded  chan struct{}

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
	c.receiverToken = make(chan struct{}, 1)
	c.messageEnded = make(chan struct{}, 1)
	c.senderToken = make(chan struct{}, 1)
	c.closing = make(chan struct{})
	c.done = make(chan struct{})
}

// start launches the goroutine that reads from the network.
func (c *Conn) start() { go c.readLoop() }

// SetReadLimit sets the largest message, in bytes, that the connection
// accepts from now on; n <= 0 removes the limit, which is the default.
// A message above the limit fails the connection with StatusTooLarge,
// before its payload is read.
//
// ReceiveMessage streams messages and ReceiveText and ReceiveBinary stop
// at their caller's bounds, so the package itself never holds a whole
// message in memory and needs no limit.  An application that collects
// whole messages itself, with io.ReadAll for example, should set one:
// otherwise a peer can make it allocate as much as it likes.
func (c *Conn) SetReadLimit(n int64) {
	c.readLimit.Store(n)
}

// receiverGrace is how long readLoop leaves the network to the
// application after a message, expecting it to call ReceiveMessage
// again.  An application that receives in a loop thus reads its
// messages itself, without a hand-over between goroutines; one that
// stops receiving has its pings answered after this delay at the most.
const receiverGrace = 2 * time.Millisecond

// readLoop reads from the network whenever the application does not:
// while nobody receives, it reads up to the start of the next message,
// answering control frames on the way, and leaves the message for the
// next ReceiveMessage.  Once the connection closes, it finishes the
// closing handshake and releases the network connection.
func (c *Conn) readLoop() {
	defer close(c.done)
	defer c.netConn.Close()
	defer c.finishReading()

	grace := time.NewTimer(receiverGrace)
	defer grace.Stop()
	for c.readIfIdle() {
		// Wait until a message has been read, then give the
		// application a moment to ask for the next one.
		select {
		case <-c.messageEnded:
		case <-c.closing:
			return
		}
		grace.Reset(receiverGrace)
		select {
		case <-grace.C:
		case <-c.closing:
			return
		}
	}
}

// readIfIdle reads up to the start of the next message, unless an
// application goroutine is receiving and so reading for itself, or a
// message is already pending.  It reports false once the connection is
// closing.
func (c *Conn) readIfIdle() bool {
	select {
	case c.receiverToken <- struct{}{}:
	default:
		return true
	}
	defer func() { <-c.receiverToken }()
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.isClosingNow() {
		return false
	}
	if c.pending == nil {
		var err error
		if c.pending, err = c.startMessage(); err != nil {
			c.fail(err)
			return false
		}
	}
	return true
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
	// A message reader still held by the application is now stale,
	// and a message that nobody took is gone.
	c.in.generation++
	c.pending = nil

	cause := c.cause()
	if !c.hasPeerClosed() && (cause == errClosedLocally || isReadFault(cause)) {
		// We sent a close frame first: wait for the peer's answer,
		// discarding whatever data comes before it.  After a protocol
		// error of the peer this is a best effort, but reading on
		// rather than closing outright avoids a TCP reset, which
		// could destroy our close frame in transit.  The read
		// deadline set by beginClosing bounds the wait.
		for c.skipFrame() == nil {
		}
	}
	if c.hasPeerClosed() && c.client {
		// The server closes the TCP connection first (RFC 6455,
		// section 7.1.1), so a client waits for that.
		io.Copy(io.Discard, c.br)
	}
}

// hasPeerClosed reports whether the peer's close frame has arrived.
func (c *Conn) hasPeerClosed() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.peerClosed
}

// isReadFault reports whether err is a violation of the protocol by the
// peer, after which we sent a close frame and may still hear back.
func isReadFault(err error) bool {
	var ce *closeError
	return errors.As(err, &ce)
}
