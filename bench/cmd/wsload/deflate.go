package main

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strings"

	kflate "github.com/klauspost/compress/flate"

	"github.com/gowebsock/websocket/bench/internal/window"
)

// The client's side of permessage-deflate (RFC 7692).  What it sends is
// compressed once ahead of time, at -level with compress/flate, like the
// servers: without context takeover every message on its own; with it,
// the whole corpus as one stream, each message ending in a sync flush.
// Such a stream can be sent over and over: its first message refers to
// nothing before it, and every other one only to the messages before it
// in the corpus, which the server has just inflated.  The echoes are
// inflated with klauspost/compress/flate, the fastest decompressor at
// hand, so that the load generator stays ahead of the servers.

// deflateOffer is the Sec-WebSocket-Extensions header that the client
// sends for -compress: with context takeover, what browsers offer.
func deflateOffer(mode string) string {
	if mode == "takeover" {
		return "permessage-deflate; client_max_window_bits"
	}
	return "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
}

// checkDeflateAnswer checks that the server's answer agrees to what
// -compress asks for, and returns whether the server keeps its context.
// With takeover, the server must keep its own context and let the
// client keep its 32 KiB one.
func checkDeflateAnswer(mode, answer string) (serverTakeover bool, err error) {
	exts := strings.Split(answer, ",")
	params := strings.Split(exts[0], ";")
	if len(exts) != 1 || strings.TrimSpace(params[0]) != "permessage-deflate" {
		return false, fmt.Errorf("the server answered the offer of permessage-deflate with %q", answer)
	}
	has := map[string]string{}
	for _, p := range params[1:] {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		has[name] = strings.Trim(value, `"`)
	}
	_, serverNo := has["server_no_context_takeover"]
	_, clientNo := has["client_no_context_takeover"]
	bits, smallWindow := has["client_max_window_bits"]
	smallWindow = smallWindow && bits != "15"
	switch {
	case mode == "takeover" && (serverNo || clientNo || smallWindow):
		return false, fmt.Errorf("the server answered %q to an offer of context takeover", answer)
	case mode != "takeover" && !serverNo:
		return false, fmt.Errorf("the server answered %q to an offer without context takeover", answer)
	}
	return !serverNo, nil
}

// deflateAll compresses every payload, each into a message of
// permessage-deflate, without the tail of its sync flush; with takeover
// in one stream, else each on its own.
func deflateAll(payloads [][]byte, level int, takeover bool) ([][]byte, error) {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, level)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(payloads))
	for i, p := range payloads {
		if !takeover {
			fw.Reset(&buf)
		}
		buf.Reset()
		fw.Write(p)
		if err := fw.Flush(); err != nil {
			return nil, err
		}
		b := buf.Bytes()
		if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
			return nil, errors.New("compress/flate's flush did not end as RFC 7692 expects")
		}
		out[i] = bytes.Clone(b[:len(b)-4])
	}
	return out, nil
}

// inflateTail is what a receiver appends to a compressed message: the
// tail of the sync flush that the sender removed, and an empty final
// block, so that the decompressor ends with io.EOF.
var inflateTail = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

// inflater inflates the echoes of one connection.
type inflater struct {
	fr       io.ReadCloser
	src      bytes.Reader
	takeover bool
	win      window.Window // with takeover: the last 32 KiB inflated
	out      []byte
}

// inflate inflates one message, whose payload z has room after it for
// inflateTail (which it appends), and returns what came out, valid until
// the next call.
func (in *inflater) inflate(z []byte) ([]byte, error) {
	in.src.Reset(append(z, inflateTail...))
	var dict []byte
	if in.takeover {
		dict = in.win.Bytes()
	}
	if in.fr == nil {
		in.fr = kflate.NewReaderDict(&in.src, dict)
	} else if err := in.fr.(kflate.Resetter).Reset(&in.src, dict); err != nil {
		return nil, err
	}
	in.out = in.out[:0]
	for {
		if len(in.out) == cap(in.out) {
			in.out = append(in.out, make([]byte, max(4096, cap(in.out)))...)[:len(in.out)]
		}
		n, err := in.fr.Read(in.out[len(in.out):cap(in.out)])
		in.out = in.out[:len(in.out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inflating an echo: %v", err)
		}
	}
	if in.src.Len() > 0 {
		return nil, fmt.Errorf("inflating an echo: %d bytes after its end", in.src.Len())
	}
	if in.takeover {
		in.win.Write(in.out)
	}
	return in.out, nil
}
