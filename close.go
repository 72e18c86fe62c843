package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gowebsock/websocket/internal/wire"
)

// How a connection ends.  Closing begins with beginClosing, which wakes
// everybody waiting and records why; the connection is finished, its
// network connection closed and GetStatus released, by exactly one of:
//
//   - Close, which sends our close frame and reads until the peer's
//     answer or the closing timeout;
//   - the read side, on the peer's close frame: a server finishes at once
//     (it closes TCP first, RFC 6455, section 7.1.1), a client lingers
//     until the server has closed;
//   - fail, after a violation by the peer: it sends the close code and
//     lingers until the peer answers;
//   - drop, when the network failed or the peer stopped answering: it
//     closes the network connection at once.
//
// Lingering happens on a goroutine of its own (linger), so that a
// receive call returns at once.

// closeTimeout bounds each wait of the closing handshake, in
// nanoseconds: for the peer's close frame after ours, for writing our
// close frame, and for a server to drop the TCP connection after the
// close frames were exchanged.  It is a variable so that tests can
// shorten it, atomic since connections of earlier tests may still be
// closing.
var closeTimeout atomic.Int64

func init() { closeTimeout.Store(int64(5 * time.Second)) }

// maxCloseReason is the longest reason that fits into a close frame
// next to the two bytes of the status code.
const maxCloseReason = wire.MaxControlPayload - 2

// closeError is a reason to fail the connection (RFC 6455, section
// 7.1.7): the status code to send to the peer and a description.
type closeError struct {
	code   Status
	reason string
}

func (e *closeError) Error() string {
	return fmt.Sprintf("websocket: %s (closing with status %d)", e.reason, e.code)
}

// Is makes every closeError match ErrConnClosed, since it ends the
// connection.
func (e *closeError) Is(target error) bool { return target == ErrConnClosed }

func protocolError(reason string) error {
	return &closeError{code: StatusProtocolError, reason: reason}
}

// errPeerClosed means that the peer's close frame has been received
// and answered; the connection is over.
var errPeerClosed = fmt.Errorf("websocket: the peer closed the connection: %w", ErrConnClosed)

// errShutdownDropped ends the connections that Handler.Shutdown could
// not close gracefully in time.
var errShutdownDropped = fmt.Errorf("websocket: dropped at the end of the handler's shutdown: %w", ErrConnClosed)

// errClosedLocally means that the application called Close.
var errClosedLocally = fmt.Errorf("websocket: the connection was closed by Close: %w", ErrConnClosed)

// Close ends the connection: it sends a close frame with the given code
// and message, waits up to five seconds for the peer to answer with its
// own close frame, and closes the network connection.  Every further
// call on the connection fails with ErrConnClosed.
//
// Use StatusOK for a normal end and another code to report an error.
// StatusNotSent sends a close frame without a code (and without the
// message).  Any other code must be one that may be sent on the wire:
// 1000 to 1003, 1007 to 1014 (but 1010 only from a client), or 3000
// to 4999, otherwise ErrStatusCode is returned.  The message may be at
// most 123 bytes long in UTF-8, otherwise ErrTooLarge is returned.  In
// both cases of bad arguments the connection stays open, so that Close
// can be called again.
//
// If the connection was already closing or closed, by either side,
// Close waits until it is fully closed and returns ErrConnClosed.
func (c *Conn) Close(code Status, message string) error {
	if !c.usable() {
		return ErrConnClosed
	}
	if code == 1010 && !c.client {
		// "Mandatory extension" is the client's complaint about the
		// server's handshake (section 7.4.1).
		return ErrStatusCode
	}
	payload, err := closePayload(code, message)
	if err != nil {
		return err
	}
	if c.isClosingNow() {
		<-c.done.done()
		return ErrConnClosed
	}
	err = c.sendClose(payload, false)
	if err == errCloseSent {
		<-c.done.done()
		return ErrConnClosed
	}
	c.beginClosing(errClosedLocally)
	c.lockRead()
	c.closeRead()
	c.unlockRead()
	<-c.done.done()
	if err != nil {
		return ErrConnClosed
	}
	return nil
}

// closePayload encodes the body of a close frame.
func closePayload(code Status, message string) ([]byte, error) {
	if code == StatusNotSent {
		return nil, nil
	}
	if !code.sendable() {
		return nil, ErrStatusCode
	}
	// The reason must be UTF-8 on the wire; a peer would fail the
	// connection over anything else.
	message = strings.ToValidUTF8(message, "\uFFFD")
	if len(message) > maxCloseReason {
		return nil, ErrTooLarge
	}
	payload := make([]byte, 2, 2+len(message))
	binary.BigEndian.PutUint16(payload, uint16(code))
	return append(payload, message...), nil
}

// parseClosePayload decodes the body of a close frame received from the
// peer.  A body without a code yields StatusNotSent.  A body that is
// not allowed yields StatusNotSent, as the peer sent no valid code, and
// the error to fail the connection with.
func parseClosePayload(p []byte) (Status, string, error) {
	switch {
	case len(p) == 0:
		return StatusNotSent, "", nil
	case len(p) == 1:
		return StatusNotSent, "", protocolError("close frame with a one-byte payload")
	}
	code := Status(binary.BigEndian.Uint16(p))
	if !code.sendable() {
		return StatusNotSent, "", protocolError(fmt.Sprintf("close frame with invalid status code %d", code))
	}
	reason := p[2:]
	if !utf8.Valid(reason) {
		return code, "", &closeError{code: StatusInvalidData, reason: "close frame reason is not valid UTF-8"}
	}
	return code, string(reason), nil
}

// GetStatus waits until the connection is closed and returns the
// status code and message of the peer's close frame.  StatusDropped
// means that the connection ended without a close frame from the peer;
// StatusNotSent means that the peer's close frame had no valid status
// code.
func (c *Conn) GetStatus() (Status, string) {
	if !c.usable() {
		return StatusDropped, "" // the handshake has not completed
	}
	<-c.done.done()
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if !c.peerClosed {
		return StatusDropped, ""
	}
	return c.peerStatus, c.peerReason
}

// Err returns nil while the connection is open.  Once it has started
// to close, it returns why: the peer's close frame, a call of Close, a
// violation of the protocol by the peer (with the status code that was
// sent), a keep-alive or write timeout, or the error of the network
// connection.  Every such error satisfies errors.Is(err, ErrConnClosed);
// the methods that send and receive return ErrConnClosed itself.
func (c *Conn) Err() error {
	if !c.usable() {
		return nil
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	switch {
	case !c.isClosing:
		return nil
	case c.closeCause == errPeerClosed:
		if c.peerStatus == StatusNotSent {
			return fmt.Errorf("websocket: the peer closed the connection without a status code: %w", ErrConnClosed)
		}
		return fmt.Errorf("websocket: the peer closed the connection with status %v %q: %w", c.peerStatus, c.peerReason, ErrConnClosed)
	case c.closeCause != nil:
		return c.closeCause
	}
	return errClosedLocally
}

// handleClose processes a close frame from the peer: it records the
// peer's status and answers with a close frame of our own, unless we
// sent one first.  It returns errPeerClosed, which ends reading.
func (c *Conn) handleClose(payload []byte) error {
	code, reason, fault := parseClosePayload(payload)
	c.stateMu.Lock()
	c.peerClosed, c.peerStatus, c.peerReason = true, code, reason
	c.stateMu.Unlock()

	var reply []byte
	switch {
	case fault != nil:
		ce := fault.(*closeError)
		reply, _ = closePayload(ce.code, ce.reason)
	case code != StatusNotSent:
		// Echo the peer's code, as section 5.5.1 suggests.
		reply = payload[:2]
	}
	peerBegan := c.sendClose(reply, false) != errCloseSent
	if !c.isClosingNow() {
		c.beginClosing(errPeerClosed)
		if peerBegan {
			c.afterPeerClose()
		}
	}
	return errPeerClosed
}

// afterPeerClose finishes a connection whose peer began the closing
// handshake, now that we answered.
func (c *Conn) afterPeerClose() {
	if c.client {
		go c.linger()
	} else {
		c.finish()
	}
}

// failRead ends the connection because of err, met by the owner of the
// read side.  If the connection is closing already, whoever closes it
// finishes it, and err only ends this reader.
func (c *Conn) failRead(err error) {
	if c.isClosingNow() {
		return
	}
	var ce *closeError
	if errors.As(err, &ce) {
		c.fail(ce)
		return
	}
	c.drop(err)
}

// fail ends the connection because of a violation by the peer, or a
// condition of ours that the peer is told about by the code in ce.
func (c *Conn) fail(ce *closeError) {
	payload, _ := closePayload(ce.code, "")
	if len(ce.reason) <= maxCloseReason {
		payload, _ = closePayload(ce.code, ce.reason)
	}
	// We owe the peer no more than the chance to answer (RFC 6455,
	// section 7.1.7): our FIN tells it at once that we are done.
	sent := c.sendClose(payload, true) == nil
	c.beginClosing(ce)
	if sent {
		go c.linger()
	} else {
		c.finish()
	}
}

// drop ends the connection at once, without a closing handshake: the
// network failed or the peer stopped answering.
func (c *Conn) drop(cause error) {
	c.beginClosing(cause)
	c.finish()
}

// linger completes the closing handshake on a goroutine of its own:
// it takes the read side when its last owner lets go.
func (c *Conn) linger() {
	c.lockRead()
	c.closeRead()
	c.unlockRead()
}

// closeRead completes the closing handshake from the read side, which
// the caller holds, and finishes the connection.  If we sent our close
// frame first, it waits for the peer's, discarding whatever data comes
// before it; a client then waits for the server to close the TCP
// connection.  The read deadline set by beginClosing bounds both.
func (c *Conn) closeRead() {
	if c.isFinished() {
		return
	}
	for !c.hasPeerClosed() && c.skipFrame() == nil {
	}
	if c.hasPeerClosed() && c.client {
		for c.in.consume(len(c.in.buffered())); c.fill(0) == nil; c.in.consume(len(c.in.buffered())) {
		}
	}
	c.finish()
}

// skipFrame discards the payload of the current frame, or else reads
// the next frame header.  It is used while closing, when data no longer
// matters but the peer's close frame does.
func (c *Conn) skipFrame() error {
	if c.msg.remaining > 0 {
		b := c.in.buffered()
		if len(b) == 0 {
			return c.fill(0)
		}
		n := int(min(int64(len(b)), c.msg.remaining))
		c.in.consume(n)
		c.msg.remaining -= int64(n)
		return nil
	}
	h, err := c.nextDataFrame()
	if err != nil {
		return err
	}
	c.msg.remaining = h.Length
	return nil
}

// hasPeerClosed reports whether the peer's close frame has arrived.
func (c *Conn) hasPeerClosed() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.peerClosed
}

func (c *Conn) isFinished() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.finished
}

// beginClosing records why the connection ends, the first reason
// winning, wakes everybody waiting, and cuts the read side's current
// network read short; the next owner of the read side reads on until the
// closing handshake's deadline.
func (c *Conn) beginClosing(cause error) {
	c.stateMu.Lock()
	if c.closeCause == nil && cause != nil {
		c.closeCause = cause
	}
	if c.isClosing {
		c.stateMu.Unlock()
		return
	}
	c.isClosing = true
	c.closeBy = nanos(closeDeadline())
	c.closing.fire()
	c.stateMu.Unlock()

	c.deadlineMu.Lock()
	c.setNetReadDeadlineLocked(pastDeadline)
	c.deadlineMu.Unlock()
}

// finish releases the connection: it closes the network connection,
// stops the timers, forgets the connection in its Handler and lets
// GetStatus return.
func (c *Conn) finish() {
	c.stateMu.Lock()
	if c.finished {
		c.stateMu.Unlock()
		return
	}
	c.finished = true
	c.isClosing = true
	c.closing.fire()
	c.stateMu.Unlock()
	c.netConn.Close()
	c.idleTimer.Stop()
	if c.ka != nil {
		c.ka.timer.Stop()
	}
	c.queue.Load().discard()
	if c.handler != nil {
		c.handler.untrack(c)
	}
	c.done.fire()
}

// closeDeadline is the time by which a wait that starts now must end.
func closeDeadline() time.Time {
	return time.Now().Add(time.Duration(closeTimeout.Load()))
}

// sendClose sends a close frame with the given payload, unless one was
// sent already, and then allows no more frames.  With shutdown, it also
// ends our direction of the TCP connection.  The write is bounded by
// closeTimeout, also for a data frame that is still being written.
func (c *Conn) sendClose(payload []byte, shutdown bool) error {
	deadline := closeDeadline()
	// The bound holds from now on, also for a frame still being
	// written: whoever writes does not renew its deadline past it.
	c.closeWriteBy.CompareAndSwap(0, nanos(deadline))
	c.netConn.SetWriteDeadline(deadline)
	c.writeMu.Lock()
	defer c.unlockWrite()
	if c.closeSent {
		return errCloseSent
	}
	c.closeSent = true
	if c.writeErr != nil {
		return c.writeErr
	}
	c.netWriteDeadline, c.netWriteByTimeout = c.closeWriteBy.Load(), false
	err := c.writeFrameLocked(true, wire.Close, payload, false)
	if cw, ok := c.netConn.(interface{ CloseWrite() error }); ok && shutdown && err == nil {
		cw.CloseWrite()
	}
	return err
}
