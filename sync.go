package websocket

import (
	"sync"
	"sync/atomic"
	"time"
)

// An idle connection should cost as little memory as can be, and a
// channel costs a hundred bytes.  The two types here make one only for
// a goroutine that has to wait, which an idle connection has none of.

// event is a signal that is set once, for good: the connection began
// closing, or finished.
type event struct {
	set  atomic.Bool
	mu   sync.Mutex
	wake chan struct{} // made for the first waiter, closed by fire
}

// closedChan is a channel that is closed already.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// isSet reports whether the event has fired.
func (e *event) isSet() bool { return e.set.Load() }

// fire sets the event and wakes its waiters.  It reports whether the
// event was not set before.
func (e *event) fire() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set.Load() {
		return false
	}
	e.set.Store(true)
	if e.wake != nil {
		close(e.wake)
	}
	return true
}

// done returns a channel that is closed once the event has fired.
func (e *event) done() <-chan struct{} {
	if e.set.Load() {
		return closedChan
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set.Load() {
		return closedChan
	}
	if e.wake == nil {
		e.wake = make(chan struct{})
	}
	return e.wake
}

// token is a lock whose waiters give up when the connection closes or
// their deadline passes.  Taking a free token is one atomic operation.
type token struct {
	held    atomic.Bool
	waiters atomic.Int32
	mu      sync.Mutex
	wake    chan struct{} // closed and dropped on release, if anybody waits
}

// tryAcquire takes the token if it is free.
func (t *token) tryAcquire() bool { return t.held.CompareAndSwap(false, true) }

// release gives the token back and wakes whoever waits for it.
func (t *token) release() {
	t.held.Store(false)
	t.wakeWaiters()
}

// acquire waits for the token until closing fires or the deadline that
// deadline returns, if any and not zero, passes; op names the operation
// in the deadline's error.  The deadline is read anew whenever the
// waiters are woken, so that wakeWaiters can tell them of a new one.
func (t *token) acquire(closing *event, deadline func() time.Time, op string) error {
	if t.tryAcquire() {
		return nil
	}
	t.waiters.Add(1)
	defer t.waiters.Add(-1)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// The wake channel is taken before trying again, so that a
		// release after the try closes it.
		t.mu.Lock()
		if t.wake == nil {
			t.wake = make(chan struct{})
		}
		wake := t.wake
		t.mu.Unlock()
		if t.tryAcquire() {
			return nil
		}
		var expired <-chan time.Time
		if deadline != nil {
			if d := deadline(); !d.IsZero() {
				if !time.Now().Before(d) {
					return errDeadline(op)
				}
				if timer == nil {
					timer = time.NewTimer(time.Until(d))
				} else {
					timer.Reset(time.Until(d))
				}
				expired = timer.C
			}
		}
		select {
		case <-wake:
		case <-closing.done():
			return ErrConnClosed
		case <-expired:
			return errDeadline(op)
		}
	}
}

// wakeWaiters wakes the token's waiters, for them to read their deadline
// anew.
func (t *token) wakeWaiters() {
	if t.waiters.Load() > 0 {
		t.mu.Lock()
		if t.wake != nil {
			close(t.wake)
			t.wake = nil
		}
		t.mu.Unlock()
	}
}
