package websocket

import "strconv"

// MessageType tells whether a WebSocket message carries text or binary
// data.  The values are the opcodes of RFC 6455, section 5.6.
type MessageType byte

// The two kinds of data message defined by RFC 6455.
const (
	// Text messages carry UTF-8 encoded text.
	Text MessageType = 1
	// Binary messages carry arbitrary bytes.
	Binary MessageType = 2
)

// String returns "text" or "binary", or a numeric description for any
// other value.
func (tp MessageType) String() string {
	switch tp {
	case Text:
		return "text"
	case Binary:
		return "binary"
	default:
		return "MessageType(" + strconv.Itoa(int(tp)) + ")"
	}
}

// Status is the code that an endpoint gives for closing a WebSocket
// connection, as listed in RFC 6455, section 7.4.1.
type Status uint16

// Status codes for use with Conn.Close, and as reported by
// Conn.GetStatus.
const (
	// StatusOK means that the purpose of the connection was fulfilled.
	StatusOK Status = 1000
	// StatusGoingAway means that an endpoint is going away, for example
	// a server shutting down or a browser leaving the page.
	StatusGoingAway Status = 1001
	// StatusProtocolError means that the peer violated the protocol.
	StatusProtocolError Status = 1002
	// StatusUnsupportedType means that an endpoint received a kind of
	// data it cannot accept.
	StatusUnsupportedType Status = 1003
	// StatusNotSent means that a close frame carried no status code.
	// It is never sent on the wire; pass it to Close to send a close
	// frame without a code.
	StatusNotSent Status = 1005
	// StatusDropped means that the connection ended without a close
	// frame.  It is never sent on the wire.
	StatusDropped Status = 1006
	// StatusInvalidData means that a message contained data that did
	// not match its type, such as invalid UTF-8 in a text message.
	StatusInvalidData Status = 1007
	// StatusPolicyViolation means that a message violated the
	// endpoint's policy.
	StatusPolicyViolation Status = 1008
	// StatusTooLarge means that a message was too big to process.
	StatusTooLarge Status = 1009
	// StatusInternalServerError means that the server met an
	// unexpected condition.
	StatusInternalServerError Status = 1011
)

// String returns the code's number together with its name in RFC 6455,
// if it has one.
func (s Status) String() string {
	name := ""
	switch s {
	case StatusOK:
		name = "normal closure"
	case StatusGoingAway:
		name = "going away"
	case StatusProtocolError:
		name = "protocol error"
	case StatusUnsupportedType:
		name = "unsupported data"
	case StatusNotSent:
		name = "no status received"
	case StatusDropped:
		name = "abnormal closure"
	case StatusInvalidData:
		name = "invalid payload data"
	case StatusPolicyViolation:
		name = "policy violation"
	case StatusTooLarge:
		name = "message too big"
	case 1010:
		name = "mandatory extension"
	case StatusInternalServerError:
		name = "internal error"
	}
	if name == "" {
		return strconv.Itoa(int(s))
	}
	return strconv.Itoa(int(s)) + " (" + name + ")"
}

// sendable reports whether s may appear in the payload of a close
// frame.  RFC 6455, section 7.4, forbids 1005, 1006 and 1015 on the
// wire and leaves the unassigned codes below 3000 to future standards;
// 1012 to 1014 were registered with IANA later and are in common use.
func (s Status) sendable() bool {
	switch {
	case s >= 3000 && s <= 4999:
		return true
	case s >= 1000 && s <= 1003, s >= 1007 && s <= 1014:
		return true
	default:
		return false
	}
}
