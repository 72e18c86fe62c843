package websocket

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Keep-alive: a connection that has received nothing for the ping
// interval is sent a ping; if nothing comes back within the pong
// timeout, the peer is taken to be gone and the connection is dropped.
// One timer per connection does it, re-armed with Reset; reading only
// notes the time.

// keepAlive is the state of keep-alive, for a connection that has it on.
type keepAlive struct {
	timer    *time.Timer
	lastRead atomic.Int64 // monotonic nanoseconds of the last network read
	pingSent atomic.Int64 // when the unanswered ping went out, or 0
}

// noteRead records that data arrived from the peer.
func (c *Conn) noteRead() {
	if c.ka != nil {
		c.ka.lastRead.Store(monotime())
	}
}

// pongReceived notes a pong: the peer is there.
func (c *Conn) pongReceived() {
	if c.ka != nil {
		c.ka.pingSent.Store(0)
	}
}

// onKeepAlive runs when the keep-alive timer fires.
func (c *Conn) onKeepAlive() {
	if c.isClosingNow() {
		return
	}
	ka := c.ka
	now := monotime()
	last := ka.lastRead.Load()
	if sent := ka.pingSent.Load(); sent != 0 {
		switch {
		case last > sent:
			// Something came after our ping, the pong or data
			// in front of it: the peer is there.
			ka.pingSent.Store(0)
		case c.cfg.pongTimeout < 0:
			// Pings only, to keep the connection's path open.
			ka.pingSent.Store(0)
		case time.Duration(now-sent) >= c.cfg.pongTimeout:
			c.keepAliveExpired()
			return
		default:
			ka.timer.Reset(c.cfg.pongTimeout - time.Duration(now-sent))
			return
		}
	}
	quiet := time.Duration(now - last)
	if quiet < c.cfg.pingInterval {
		ka.timer.Reset(c.cfg.pingInterval - quiet)
		return
	}
	ka.pingSent.Store(now)
	c.sendPing()
	if c.cfg.pongTimeout > 0 {
		ka.timer.Reset(c.cfg.pongTimeout)
	} else {
		ka.timer.Reset(c.cfg.pingInterval)
	}
	// The pong must be read: if nobody reads, this goroutine does.
	if c.readWaiters.Load() == 0 && c.readMu.TryLock() {
		c.graceShift.Store(0)
		c.readInBackground()
		c.readMu.Unlock()
	}
}

// keepAliveExpired ends a connection whose peer did not answer a ping in
// time.  If the read side stopped reading because messages that nobody
// received filled the read-ahead, the peer may well have answered:
// the application is to blame, and the peer is told so.
func (c *Conn) keepAliveExpired() {
	if c.readStalled.Load() {
		c.fail(&closeError{code: StatusPolicyViolation, reason: "messages were not received"})
		return
	}
	c.drop(fmt.Errorf("websocket: no answer to a ping within %v: %w", c.cfg.pongTimeout, ErrConnClosed))
}
