package websocket

// wsError is the type of the package's sentinel errors.  Being a
// string constant type, the sentinels cannot be reassigned by other
// packages, and their texts are exactly those of the reference API, so
// that programs which log or match them keep working.
type wsError string

func (e wsError) Error() string { return string(e) }

const (
	// ErrConnClosed is returned by every operation on a connection
	// that has ended, whichever side ended it and for whatever reason:
	// the peer's close frame, our own Close, a protocol violation by
	// the peer, or a broken network connection.  It is returned as is,
	// never wrapped, so that err == ErrConnClosed holds; Conn.Err tells
	// why the connection ended.
	ErrConnClosed = wsError("connection closed")

	// ErrMessageType means that a message was not of the expected
	// type, or that a type other than Text and Binary was given.
	ErrMessageType = wsError("invalid message type")

	// ErrStatusCode means that Close was given a status code that may
	// not be sent.  Valid codes are in the range 1000 to 4999, less
	// the ones that RFC 6455 reserves; StatusNotSent is accepted and
	// sends a close frame without a code.
	ErrStatusCode = wsError("invalid status code")

	// ErrTooLarge is returned by ReceiveBinary and ReceiveText when a
	// message did not fit, and by Close when the closing message is
	// longer than 123 bytes.
	ErrTooLarge = wsError("message too large")

	// ErrBadHandshake is returned, wrapped with the details, by Dial
	// when the server did not accept the opening handshake.
	ErrBadHandshake = wsError("bad handshake")
)
