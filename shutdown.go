package websocket

import (
	"context"
	"sync"
	"time"
	"unsafe"
)

// A Handler knows its open connections, like http.Server knows its own:
// a connection joins the set when its handshake completes and leaves it
// when it is finished.  The set is sharded, each shard a list threaded
// through the connections themselves, so that connections come and go
// without a lock shared by all and without memory of the set's own.

// trackShards is the number of shards of a Handler's connection set.
const trackShards = 32

// connShard is one shard of a Handler's connections.
type connShard struct {
	mu   sync.Mutex
	head *Conn
	_    [48]byte // a cache line of its own
}

// shard returns the shard that holds c.
func (h *Handler) shard(c *Conn) *connShard {
	return &h.shards[(uintptr(unsafe.Pointer(c))>>7)%trackShards]
}

// track adds a connection whose handshake just completed.
func (h *Handler) track(c *Conn) {
	c.handler = h
	s := h.shard(c)
	s.mu.Lock()
	c.trackNext = s.head
	if s.head != nil {
		s.head.trackPrev = c
	}
	s.head = c
	s.mu.Unlock()
	h.open.Add(1)
}

// untrack removes a finished connection.
func (h *Handler) untrack(c *Conn) {
	s := h.shard(c)
	s.mu.Lock()
	if c.trackPrev == nil && s.head != c {
		s.mu.Unlock()
		return // not in the set
	}
	if c.trackPrev != nil {
		c.trackPrev.trackNext = c.trackNext
	} else {
		s.head = c.trackNext
	}
	if c.trackNext != nil {
		c.trackNext.trackPrev = c.trackPrev
	}
	c.trackPrev, c.trackNext = nil, nil
	s.mu.Unlock()
	if h.open.Add(-1) == 0 && h.shuttingDown.Load() {
		h.drainedMu.Lock()
		if h.drained != nil {
			select {
			case <-h.drained:
			default:
				close(h.drained)
			}
		}
		h.drainedMu.Unlock()
	}
}

// openConns returns the handler's open connections.
func (h *Handler) openConns() []*Conn {
	var conns []*Conn
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for c := s.head; c != nil; c = c.trackNext {
			conns = append(conns, c)
		}
		s.mu.Unlock()
	}
	return conns
}

// Shutdown closes the handler's connections gracefully: from now on it
// refuses new handshakes with 503 Service Unavailable, sends every
// connection it accepted a close frame with StatusGoingAway, and waits
// for their closing handshakes until ctx is done.  Connections that have
// not closed by then are dropped.  It returns nil if every connection
// closed in time, ctx's error otherwise.
//
// net/http's Server.Shutdown does not know of hijacked connections, the
// WebSocket connections among them; register this with it:
//
//	srv.RegisterOnShutdown(func() { ws.Shutdown(ctx) })
//
// Shutdown does not wait for the Handle functions to return; they see
// ErrConnClosed from their connections.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.shuttingDown.Store(true)
	h.drainedMu.Lock()
	if h.drained == nil {
		h.drained = make(chan struct{})
	}
	drained := h.drained
	h.drainedMu.Unlock()
	if h.open.Load() == 0 {
		return nil
	}

	// Each close frame goes out from a goroutine of its own, so that
	// a connection whose peer does not read delays no other.
	var wg sync.WaitGroup
	for _, c := range h.openConns() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.closeGracefully(StatusGoingAway, "server shutting down")
		}()
	}
	defer wg.Wait()

	// Connections that finish leave the set; the last one closes
	// drained.  A connection that joined after the flag was set (its
	// handshake was under way) is closed too.
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-drained:
			return nil
		case <-retry.C:
			if h.open.Load() == 0 {
				return nil
			}
		case <-ctx.Done():
			for _, c := range h.openConns() {
				c.drop(errShutdownDropped)
			}
			return ctx.Err()
		}
	}
}

// closeGracefully sends a close frame and completes the closing
// handshake, or leaves that to whoever closes the connection already.
func (c *Conn) closeGracefully(code Status, reason string) {
	payload, _ := closePayload(code, reason)
	if c.sendClose(payload, false) == errCloseSent {
		return
	}
	c.beginClosing(errClosedLocally)
	c.linger()
}
