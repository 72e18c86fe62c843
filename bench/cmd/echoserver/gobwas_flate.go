package main

import (
	"compress/flate"
	"io"
	"net/http"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"

	"github.com/gowebsock/websocket/bench/internal/window"
)

// gobwasFlate is gobwas with compression, as its README shows it: the
// extension negotiated by wsflate.Extension, a wsutil.Reader and Writer
// with wsflate.MessageState as their extension, and wsflate's Reader and
// Writer around compress/flate, with io.Copy from one to the other.
//
// Without context takeover the flate reader and writer come from pools
// for each message, as do the wsutil writer's buffers (the README keeps
// them for the connection's life, which costs it 1.2 MB).  wsflate
// itself has no context takeover: its Reader and Writer reset the
// decompressor and compressor for every message.  With -compress
// takeover, a connection keeps a compressor whose Reset keeps its
// context, and a decompressor that is given its window on Reset.
func gobwasFlate(w http.ResponseWriter, r *http.Request) {
	e := wsflate.Extension{Parameters: wsflate.Parameters{
		ServerNoContextTakeover: !compression.takeover(),
		ClientNoContextTakeover: !compression.takeover(),
	}}
	u := ws.HTTPUpgrader{Negotiate: e.Negotiate}
	conn, _, _, err := u.Upgrade(r, w)
	if err != nil {
		return
	}
	if _, ok := e.Accepted(); !ok {
		conn.Close()
		return
	}
	go func() {
		defer conn.Close()
		var msg wsflate.MessageState
		control := wsutil.ControlFrameHandler(conn, ws.StateServerSide)
		rd := wsutil.Reader{
			Source:         conn,
			State:          ws.StateServerSide | ws.StateExtended,
			OnIntermediate: control,
			Extensions:     []wsutil.RecvExtension{&msg},
		}
		var fr *wsflate.Reader
		var fw *wsflate.Writer
		if compression.takeover() {
			fr, fw = newGobwasReader(&window.Window{}), newGobwasWriter(true)
		}
		for {
			h, err := rd.NextFrame()
			if err != nil {
				return
			}
			if h.OpCode.IsControl() {
				if err := control(h, &rd); err != nil {
					return
				}
				continue
			}
			wr := wsutil.GetWriter(conn, ws.StateServerSide|ws.StateExtended, h.OpCode, 0)
			wr.SetExtensions(&msg)
			var src io.Reader = &rd
			var dst io.Writer = wr
			compressed := msg.IsCompressed()
			if compressed {
				if fr == nil {
					fr, fw = gobwasReaders.Get().(*wsflate.Reader), gobwasWriters.Get().(*wsflate.Writer)
				}
				fr.Reset(src)
				fw.Reset(dst)
				src, dst = fr, fw
			}
			_, err = io.Copy(dst, src)
			if err == nil && compressed {
				err = fw.Flush()
			}
			if err == nil {
				err = wr.Flush()
			}
			wsutil.PutWriter(wr)
			if compressed && !compression.takeover() {
				gobwasReaders.Put(fr)
				gobwasWriters.Put(fw)
				fr, fw = nil, nil
			}
			if err != nil {
				return
			}
		}
	}()
}

var (
	gobwasReaders = sync.Pool{New: func() any { return newGobwasReader(nil) }}
	gobwasWriters = sync.Pool{New: func() any { return newGobwasWriter(false) }}
)

// newGobwasWriter returns a wsflate.Writer around a compress/flate
// writer, which keeps its context from one message to the next if
// takeover is set.
func newGobwasWriter(takeover bool) *wsflate.Writer {
	return wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, compression.level) // the level was checked
		if takeover {
			return keepContext{f}
		}
		return f
	})
}

// keepContext is a compressor whose Reset keeps its context: the
// wsflate.Writer makes it write into a buffer of its own, always the
// same, so it need not be told where to write.
type keepContext struct{ *flate.Writer }

func (keepContext) Reset(io.Writer) {}

// newGobwasReader returns a wsflate.Reader around a compress/flate
// reader, which starts every message with the window win if it is not
// nil, and adds what it inflates to it.
func newGobwasReader(win *window.Window) *wsflate.Reader {
	return wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor {
		return &windowReader{fr: flate.NewReader(r), win: win}
	})
}

// windowReader is a decompressor with context takeover if win is set.
type windowReader struct {
	fr  io.ReadCloser
	win *window.Window
}

func (d *windowReader) Reset(r io.Reader) {
	var dict []byte
	if d.win != nil {
		dict = d.win.Bytes()
	}
	d.fr.(flate.Resetter).Reset(r, dict)
}

func (d *windowReader) Read(p []byte) (int, error) {
	n, err := d.fr.Read(p)
	if d.win != nil {
		d.win.Write(p[:n])
	}
	return n, err
}
