package websocket

// wsError is the type of the package's sentinel errors.  Being a
// string constant type, the sentinels cannot be reassigned by other
// packages.
type wsError string

func (e wsError) Error() string { return "websocket: " + string(e) }

const (
	// ErrConnClosed is returned by every operation on a connection
	// that has been closed, by either side.  Errors that end a
	// connection, such as a protocol violation by the peer, wrap it,
	// so errors.Is(err, ErrConnClosed) is true for them as well.
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

	// ErrBadHandshake is returned by Dial when the server did not
	// accept the opening handshake.
	ErrBadHandshake = wsError("bad handshake")
)
