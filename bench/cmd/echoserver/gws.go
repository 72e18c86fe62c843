package main

import (
	"net"
	"net/http"
	"time"

	"github.com/lxzan/gws"
)

// gws echoes as its README shows: an event handler whose OnMessage
// writes the message back, and ReadLoop on a goroutine of its own.
func init() {
	servers["gws"] = func(ln net.Listener) error {
		opts := &gws.ServerOption{}
		if compression.enabled() {
			opts.PermessageDeflate = gws.PermessageDeflate{
				Enabled:               true,
				Level:                 compression.level,
				Threshold:             compression.threshold,
				ServerContextTakeover: compression.takeover(),
				ClientContextTakeover: compression.takeover(),
				ServerMaxWindowBits:   15,
				ClientMaxWindowBits:   15,
			}
		}
		upgrader := gws.NewUpgrader(gwsEcho{}, opts)
		mux := http.NewServeMux()
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			socket, err := upgrader.Upgrade(w, r)
			if err != nil {
				return
			}
			go socket.ReadLoop()
		})
		return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	}
}

type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	socket.WriteMessage(message.Opcode, message.Bytes())
}
