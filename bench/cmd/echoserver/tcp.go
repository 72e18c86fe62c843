package main

import (
	"net"
)

// tcp is the ceiling: it speaks no WebSocket at all, and echoes whatever
// arrives, in the chunks that it arrives in, from a 64 KiB buffer.  The
// load generator skips the handshake for it.
func init() {
	servers["tcp"] = func(ln net.Listener) error {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return err
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := conn.Read(buf)
					if n > 0 {
						if _, err := conn.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}
}
