package websocket

import (
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
// A connection costs no goroutine of its own while the application
// receives: the receiving goroutine reads the network itself.  When
// nobody has received for a moment, a goroutine of the connection reads
// on, answering pings and watching for the peer's close frame, and holds
// up to the read-ahead bound of the messages that arrive meanwhile (see
// Handler.ReadAhead).  An idle connection holds no buffer.
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
	rio     *rawIO // direct access to the descriptor, or nil
	client  bool   // masks what it sends and expects unmasked frames
	cfg     *settings
	handler *Handler // that accepted the connection, or nil
	// The handler's set of connections, see shutdown.go.
	trackNext, trackPrev *Conn

	// The read side: see readside.go for who holds readMu.
	readMu      sync.Mutex
	in          input
	msg         inbound
	reader      messageReader // handed out by ReceiveMessage, reused
	readLimit   atomic.Int64
	receiveTok  token // held from ReceiveMessage to the end of the message
	readWaiters atomic.Int32
	releases    atomic.Uint32 // counts the read side's releases
	idleArmed   atomic.Bool
	graceShift  atomic.Uint32 // the idle timer waits receiverGrace << graceShift
	idleTimer   *time.Timer
	readStalled atomic.Bool // the read-ahead is full and nobody receives
	// The peer's close frame waits behind unreceived messages, until
	// closeDue (see deferClose).
	closeDue     atomic.Bool
	closeDueOnce sync.Once
	// Read deadlines, guarded by deadlineMu: the application's, the
	// one set on netConn, and whether the background reader reads.
	deadlineMu      sync.Mutex
	readDeadline    int64 // in Unix nanoseconds, see deadline.go
	netReadDeadline int64
	bgReading       bool

	// The write side: see writer.go for who holds writeMu and the
	// sender token.
	writeMu            sync.Mutex
	senderToken        token
	out                *[]byte // frames waiting to be written, or nil
	outLen             int
	closeSent          bool
	writeErr           error
	writeDeadline      atomic.Int64  // the application's, in Unix nanoseconds, or 0
	writeDeadlineDirty atomic.Bool   // SetWriteDeadline set the network's
	netWriteDeadline   int64         // in Unix nanoseconds, see deadline.go
	netWriteByTimeout  bool          // netWriteDeadline is the write timeout's
	closeWriteBy       atomic.Int64  // the bound of writing the close frame, set before the lock is had
	writer             messageWriter // handed out by SendMessage, reused
	inputPending       atomic.Bool   // the application has more input to read: see endFrameLocked
	corked             atomic.Bool   // replies wait in out
	corkArmed          bool
	corkTimer          *time.Timer
	pongWaiting        atomic.Bool // a pong waits to be sent, see sendPong
	pingWaiting        atomic.Bool // a ping waits to be sent
	pong               atomic.Pointer[pendingPong]
	queue              atomic.Pointer[sendQueue] // made by the first broadcast

	ka  *keepAlive // nil while keep-alive is off
	dfl *deflate   // permessage-deflate, nil if not agreed on

	// Closing state, guarded by stateMu.  closing fires when the
	// connection starts closing, done when it is fully closed.
	stateMu    sync.Mutex
	isClosing  bool
	finished   bool
	closeCause error
	closeBy    int64 // bound of the closing handshake, in Unix nanoseconds
	peerClosed bool
	peerStatus Status
	peerReason string
	closing    event
	done       event
}

// settings are the tunables of a connection, from Handler or
// DialOptions, with the defaults applied.
type settings struct {
	readAhead    int
	pingInterval time.Duration
	pongTimeout  time.Duration // negative: pings only, never a drop
	writeTimeout time.Duration // negative: none
}

const (
	// defaultReadAhead is the read-ahead bound when none is set.
	defaultReadAhead = 64 << 10
	// defaultWriteTimeout is the write timeout when none is set.
	defaultWriteTimeout = 30 * time.Second
)

// newSettings applies the defaults to the tunables of a Handler or
// DialOptions.
func newSettings(readAhead int, pingInterval, pongTimeout, writeTimeout time.Duration) settings {
	s := settings{readAhead: readAhead, pingInterval: max(pingInterval, 0), pongTimeout: pongTimeout, writeTimeout: writeTimeout}
	if s.readAhead <= 0 {
		s.readAhead = defaultReadAhead
	}
	if s.pongTimeout == 0 {
		s.pongTimeout = s.pingInterval
	}
	if s.writeTimeout == 0 {
		s.writeTimeout = defaultWriteTimeout
	}
	return s
}

// epoch is the origin of the connections' monotonic timestamps.
var epoch = time.Now()

// monotime returns the nanoseconds since epoch, from the monotonic
// clock.
func monotime() int64 { return int64(time.Since(epoch)) }

// init prepares a connection whose handshake is complete.  early holds
// bytes that were read past the handshake, if any.
func (c *Conn) init(netConn net.Conn, early []byte, client bool, cfg *settings, readLimit int64) {
	c.netConn = netConn
	c.client = client
	c.cfg = cfg
	c.readLimit.Store(readLimit)
	c.initRawIO()
	if len(early) > 0 {
		c.in.preload(early)
	}
	// The timers exist before anything can fire them; start arms them.
	c.idleTimer = newStoppedTimer(c.onIdle)
	if c.cfg.pingInterval > 0 {
		c.ka = &keepAlive{timer: newStoppedTimer(c.onKeepAlive)}
		c.ka.lastRead.Store(monotime())
	}
}

// newStoppedTimer returns a timer for f that is not armed.
func newStoppedTimer(f func()) *time.Timer {
	t := time.AfterFunc(time.Hour, f)
	t.Stop()
	return t
}

// start arms the connection's timers, once everything else is set up:
// their functions may run at once.  Until the application receives, the
// connection reads by itself.
func (c *Conn) start() {
	// A new connection's application is about to receive, most
	// likely: the first wait is longer, so that a burst of new
	// connections does not start a burst of background readers.
	c.graceShift.Store(startGraceShift)
	c.idleArmed.Store(true)
	c.idleTimer.Reset(receiverGrace << startGraceShift)
	if c.ka != nil {
		c.ka.timer.Reset(c.cfg.pingInterval)
	}
}

// usable reports whether the handshake has completed, so that the
// connection's methods can work.  A Conn made by hand is not usable.
func (c *Conn) usable() bool { return c.netConn != nil }

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

// isClosingNow reports whether the connection has started closing.
func (c *Conn) isClosingNow() bool { return c.closing.isSet() }
