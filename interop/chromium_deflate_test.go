//go:build unix

package interop

import (
	"fmt"
	"testing"

	"github.com/gowebsock/websocket"
)

// chromiumDeflateCases are the cases that chromium/page.html adds with
// ?deflate, and with ?huge the ones of 16 MiB: compressible text and binary
// of each size, random binary and random text, on the page's main
// connection (twice each up to 64 KiB, for context takeover).
func chromiumDeflateCases(huge bool) []string {
	sizes := []int{1, 100, 1000, 65536, 1 << 20}
	random := []int{1000, 1 << 20}
	if huge {
		sizes = append(sizes, 16<<20)
		random = append(random, 16<<20)
	}
	var names []string
	for _, n := range sizes {
		names = append(names, fmt.Sprintf("deflate-text-%d", n), fmt.Sprintf("deflate-binary-%d", n))
	}
	for _, n := range random {
		names = append(names, fmt.Sprintf("deflate-random-binary-%d", n))
	}
	return append(names, "deflate-random-text-1000", "deflate-random-text-1048576")
}

// TestChromiumDeflate runs the page of TestChromiumEcho, all its cases and
// the deflate ones, with permessage-deflate, which Chromium always offers
// ("permessage-deflate; client_max_window_bits"), taken up by the server:
// with the default options, without context takeover, and with takeover
// both ways.  The page checks ws.extensions; the relay in front of the
// server checks the answer and that messages went compressed both ways.
// Messages of 16 MiB go in one of the runs: compress/flate takes seconds
// for them under the race detector.
func TestChromiumDeflate(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   websocket.CompressionOptions
		answer string
		huge   bool
	}{
		{"defaults", websocket.CompressionOptions{}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"takeover", websocket.CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true}, "permessage-deflate", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newChromiumServer(&c.opts)
			query := "?deflate"
			if c.huge {
				query += "&huge"
			}
			rep := runChromiumPage(t, s, query, chromiumDeflateCases(c.huge))
			if rep.Extensions != c.answer {
				t.Errorf("ws.extensions in the page = %q, want %q", rep.Extensions, c.answer)
			}
			// Below its threshold (512 bytes) the server sends
			// uncompressed; the browser compresses every message, and
			// our echo streams the large ones in several frames.
			checkDeflateWire(t, s.tap, "/ws", c.answer,
				deflateWant{all: true}, deflateWant{fragmented: true})
		})
	}
}
