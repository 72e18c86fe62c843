//go:build !unix

package websocket

// rawIO is empty outside unix systems, where connections are read and
// written through net.Conn only.
type rawIO struct{}

func (c *Conn) initRawIO() {}

func (c *Conn) rawRead([]byte) (int, error) {
	panic("websocket: raw read without a raw connection")
}

func (c *Conn) rawWriteNow([]byte) (int, error) {
	panic("websocket: raw write without a raw connection")
}
