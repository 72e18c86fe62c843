//go:build unix

package websocket

import (
	"net"
	"os"
	"syscall"
)

// rawIO reads and writes the file descriptor of a plain TCP or Unix
// connection through syscall.RawConn: the runtime's network poller does
// the waiting, as for net.Conn, but the buffer for a read is chosen only
// once data has arrived, so that a connection that waits for data holds
// none.  TLS connections and others go through net.Conn instead.
type rawIO struct {
	rc syscall.RawConn
	// readFn and writeFn are the callbacks for rc, bound to the
	// connection once, so that no read or write allocates one.
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
	// The read in progress, for readFn: where to read (nil means into
	// the input buffer) and what came of it.  It belongs to the owner
	// of the read side.
	dst  []byte
	rn   int
	rerr syscall.Errno
	// The write in progress, for writeFn; it belongs to the holder of
	// the write lock.
	src  []byte
	wn   int
	werr syscall.Errno
}

// initRawIO sets up c.rio if the connection has a file descriptor.
func (c *Conn) initRawIO() {
	var sc syscall.Conn
	switch conn := c.netConn.(type) {
	case *net.TCPConn:
		sc = conn
	case *net.UnixConn:
		sc = conn
	default:
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.rio = &rawIO{rc: rc}
	c.rio.readFn = c.rawReadCallback
	c.rio.writeFn = c.rawWriteCallback
}

// rawReadCallback is called by the runtime when the descriptor may be
// readable.  Reading into the input buffer, it takes one from the pool
// now and gives it back if nothing came.
func (c *Conn) rawReadCallback(fd uintptr) bool {
	rio := c.rio
	dst := rio.dst
	if dst == nil {
		dst = c.in.free()
	}
	for {
		n, err := syscall.Read(int(fd), dst)
		rio.rn, rio.rerr = n, errno(err)
		switch rio.rerr {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if rio.dst == nil {
				c.in.releaseIfEmpty()
			}
			return false // wait until readable, then call again
		}
		return true
	}
}

// rawRead reads into dst, or into the input buffer if dst is nil.
func (c *Conn) rawRead(dst []byte) (int, error) {
	rio := c.rio
	rio.dst = dst
	err := rio.rc.Read(rio.readFn)
	n, serr := rio.rn, rio.rerr
	rio.dst, rio.rn, rio.rerr = nil, 0, 0
	switch {
	case err != nil:
		return 0, err
	case serr != 0:
		return 0, os.NewSyscallError("read", serr)
	case n == 0:
		return 0, errEOF
	}
	return n, nil
}

func (c *Conn) rawWriteCallback(fd uintptr) bool {
	rio := c.rio
	for {
		n, err := syscall.Write(int(fd), rio.src)
		rio.wn, rio.werr = n, errno(err)
		switch rio.werr {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			rio.wn, rio.werr = 0, 0
		}
		return true // never wait
	}
}

// rawWriteNow writes as much of b as the socket takes at once, without
// waiting, and returns how much that was.  The caller holds the write
// lock.
func (c *Conn) rawWriteNow(b []byte) (int, error) {
	rio := c.rio
	rio.src = b
	err := rio.rc.Write(rio.writeFn)
	n, serr := max(rio.wn, 0), rio.werr
	rio.src, rio.wn, rio.werr = nil, 0, 0
	switch {
	case err != nil:
		return 0, err
	case serr != 0:
		return n, os.NewSyscallError("write", serr)
	}
	return n, nil
}

// errno returns the error number of a system call's error, 0 for none.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}
