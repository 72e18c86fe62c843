package websocket

import (
	"context"
	"sync"
	"time"
)

// A Handler knows its open connections, like http.Server knows its own:
// a connection joins the set when its handshake completes and leaves it
// when it is finished.  The set is a sync.Map, so that connections come
// and go without a lock shared by all.

// track adds a connection whose handshake just completed.
func (h *Handler) track(c *Conn) {
	c.handler = h
	h.conns.Store(c, struct{}{})
	h.open.Add(1)
}

// untrack removes a finished connection.
func (h *Handler) untrack(c *Conn) {
	if _, ok := h.conns.LoadAndDelete(c); !ok {
		return
	}
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
	h.conns.Range(func(key, _ any) bool {
		c := key.(*Conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.closeGracefully(StatusGoingAway, "server shutting down")
		}()
		return true
	})
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
			h.conns.Range(func(key, _ any) bool {
				key.(*Conn).drop(errShutdownDropped)
				return true
			})
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
