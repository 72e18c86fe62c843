package main

import (
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// gobwas-wsutil echoes as the first example of gobwas's README does:
// wsutil.ReadClientData and WriteServerMessage, on a goroutine per
// connection.  Unlike the low-level loop, it answers pings and the
// close frame.
func init() {
	servers["gobwas-wsutil"] = func(ln net.Listener) error {
		mux := http.NewServeMux()
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				for {
					msg, op, err := wsutil.ReadClientData(conn)
					if err != nil {
						return
					}
					if err := wsutil.WriteServerMessage(conn, op, msg); err != nil {
						return
					}
				}
			}()
		})
		return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	}
}
