package hub

import (
	"context"
	"unsafe"

	"github.com/gowebsock/websocket"
)

// deliver sends p, from the broker, to this instance's subscribers of
// its topic, after what they missed before it, unless they were sent it
// already.
func (h *Hub) deliver(p Publication) {
	h.mu.Lock()
	t := h.topics[p.Topic]
	h.mu.Unlock()
	if t == nil {
		return // nobody here subscribes to it any longer
	}
	t.deliverMu.Lock()
	defer t.deliverMu.Unlock()
	sameEpoch := t.known && p.Position.Epoch == t.last.Epoch
	if sameEpoch && p.Position.Offset <= t.last.Offset {
		return // a duplicate, after a reconnect
	}
	if !sameEpoch && t.known {
		// The broker lost the topic's history: the new epoch starts
		// from offset 1.
		t.last = Position{Epoch: p.Position.Epoch}
	}
	if t.known && p.Position.Offset > t.last.Offset+1 {
		h.fillGap(t, p.Position.Offset)
	}
	h.sendAll(t, &p)
}

// fillGap sends the subscribers of t what the history has of the
// publications between t.last and offset, which the broker did not
// deliver; t.deliverMu is held.  What the history no longer has is lost
// to them, which they see in the positions.
func (h *Hub) fillGap(t *topic, offset uint64) {
	ctx, cancel := h.brokerContext()
	defer cancel()
	pubs, _, err := h.broker.History(ctx, t.name, t.last.Offset)
	if err != nil {
		h.opts.ErrorLog(err)
		return
	}
	for i := range pubs {
		p := &pubs[i]
		if p.Position.Epoch == t.last.Epoch && p.Position.Offset < offset {
			h.sendAll(t, p)
		}
	}
}

// catchUp sends every topic's subscribers what was published while the
// broker was disconnected.
func (h *Hub) catchUp() {
	h.mu.Lock()
	topics := make([]*topic, 0, len(h.topics))
	for _, t := range h.topics {
		topics = append(topics, t)
	}
	h.mu.Unlock()
	for _, t := range topics {
		t.deliverMu.Lock()
		if t.known {
			h.catchUpTopic(t)
		}
		t.deliverMu.Unlock()
	}
}

// catchUpTopic sends t's subscribers what the history has after t.last;
// t.deliverMu is held.
func (h *Hub) catchUpTopic(t *topic) {
	ctx, cancel := h.brokerContext()
	defer cancel()
	pubs, current, err := h.broker.History(ctx, t.name, t.last.Offset)
	if err == nil && current.Epoch != t.last.Epoch {
		// A new epoch: everything of it is new here.
		t.last = Position{Epoch: current.Epoch}
		pubs, _, err = h.broker.History(ctx, t.name, 0)
	}
	if err != nil {
		h.opts.ErrorLog(err)
		return
	}
	for i := range pubs {
		if p := &pubs[i]; p.Position.Epoch == t.last.Epoch && p.Position.Offset > t.last.Offset {
			h.sendAll(t, p)
		}
	}
}

// sendAll sends p to t's subscribers and moves t.last to it;
// t.deliverMu is held.
func (h *Hub) sendAll(t *topic, p *Publication) {
	h.mu.Lock()
	conns := t.conns
	if t.skipping > 0 {
		conns = h.notSkippingLocked(t, p.Position.Offset)
	}
	h.mu.Unlock()
	h.send(p, conns)
	t.last, t.known = p.Position, true
}

// notSkippingLocked returns t's subscribers that are to be sent the
// publication at offset: those that recovered past it from another
// instance's position are not.  h.mu is held.
func (h *Hub) notSkippingLocked(t *topic, offset uint64) []*websocket.Conn {
	conns := make([]*websocket.Conn, 0, len(t.conns))
	for _, c := range t.conns {
		s := t.subs[c]
		switch {
		case s.skipTo == 0:
			conns = append(conns, c)
		case offset >= s.skipTo:
			if offset > s.skipTo {
				conns = append(conns, c)
			}
			s.skipTo = 0
			t.skipping--
		}
	}
	return conns
}

// send sends p to conns, encoded once.  Connections that cannot take it
// are unsubscribed: they have ended, or fell too far behind and were
// closed by the broadcast.
func (h *Hub) send(p *Publication, conns []*websocket.Conn) {
	if len(conns) == 0 {
		return
	}
	msg := p.Payload
	if h.opts.Format != nil {
		msg = h.opts.Format(p)
	}
	var failed map[int]error
	if p.Type == websocket.Text {
		failed = websocket.BroadcastText(context.Background(), conns, unsafe.String(unsafe.SliceData(msg), len(msg)))
	} else {
		failed = websocket.BroadcastBinary(context.Background(), conns, msg)
	}
	for i := range failed {
		go h.Unsubscribe(conns[i], p.Topic)
	}
}
