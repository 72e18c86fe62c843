package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// closeTimeout bounds each wait of the closing handshake, in
// nanoseconds: for the peer's close frame after ours, and for a server
// to drop the TCP connection after the close frames were exchanged.  It
// is a variable so that tests can shorten it, atomic since connections
// of earlier tests may still be closing.
var closeTimeout atomic.Int64

func init() { closeTimeout.Store(int64(5 * time.Second)) }

// closeDeadline is the time by which a wait that starts now must end.
func closeDeadline() time.Time {
	return time.Now().Add(time.Duration(closeTimeout.Load()))
}

// maxCloseReason is the longest reason that fits into a close frame
// next to the two bytes of the status code.
const maxCloseReason = maxControlPayload - 2

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
	if c.done == nil {
		return ErrConnClosed // used before the handshake completed
	}
	select {
	case <-c.done:
		return ErrConnClosed
	default:
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
		<-c.done
		return ErrConnClosed
	}
	err = c.sendClose(payload, false)
	if err == errCloseSent {
		<-c.done
		return ErrConnClosed
	}
	c.beginClosing(errClosedLocally)
	<-c.done
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
	if c.done == nil {
		return StatusDropped, "" // used before the handshake completed
	}
	<-c.done
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if !c.peerClosed {
		return StatusDropped, ""
	}
	return c.peerStatus, c.peerReason
}

// handleClose processes a close frame from the peer: it records the
// peer's status and answers with a close frame of our own, unless we
// sent one first.  It always ends the connection.
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
	c.sendClose(reply, false)
	c.beginClosing(errPeerClosed)
	return errPeerClosed
}

// fail ends the connection because of err, found while reading.  A
// closeError is reported to the peer in a close frame.
func (c *Conn) fail(err error) {
	var ce *closeError
	if errors.As(err, &ce) {
		payload, _ := closePayload(ce.code, "")
		if len(ce.reason) <= maxCloseReason {
			payload, _ = closePayload(ce.code, ce.reason)
		}
		// We owe the peer no more than the chance to answer (RFC
		// 6455, section 7.1.7): our FIN tells it at once that we
		// are done.
		c.sendClose(payload, true)
	}
	c.beginClosing(err)
}

// beginClosing records why the connection ends, the first reason
// winning, wakes everybody waiting for messages, and bounds the
// remaining reads by closeTimeout.
func (c *Conn) beginClosing(cause error) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.closeCause == nil && cause != nil {
		c.closeCause = cause
	}
	if c.isClosing {
		return
	}
	c.isClosing = true
	c.netConn.SetReadDeadline(closeDeadline())
	close(c.closing)
}

// closedError returns the error for operations after the connection
// started closing: ErrConnClosed itself, as the reference API promises;
// Err tells why.
func (c *Conn) closedError() error { return ErrConnClosed }

// cause returns why the connection started closing, or nil if it has
// not.
func (c *Conn) cause() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.closeCause
}

// errClosedLocally means that the application called Close.
var errClosedLocally = fmt.Errorf("websocket: the connection was closed by Close: %w", ErrConnClosed)

// Err returns nil while the connection is open.  Once it has started
// to close, it returns why: the peer's close frame, a call of Close, a
// violation of the protocol by the peer (with the status code that was
// sent), or the error of the network connection.  Every such error
// satisfies errors.Is(err, ErrConnClosed); the methods that send and
// receive return ErrConnClosed itself.
func (c *Conn) Err() error {
	if c.done == nil {
		return nil // the handshake has not completed
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
