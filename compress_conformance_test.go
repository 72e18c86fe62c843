package websocket

import (
	"bytes"
	"compress/flate"
	"fmt"
	"strings"
	"testing"
	"time"
)

// deflateOfferCase is one permessage-deflate offer of a client: each
// parameter absent or present; window bits 0 when absent, -1 for a
// client_max_window_bits without a value.
type deflateOfferCase struct {
	serverNoTakeover, clientNoTakeover bool
	serverBits, clientBits             int
}

func (o deflateOfferCase) String() string {
	s := "permessage-deflate"
	if o.serverNoTakeover {
		s += "; server_no_context_takeover"
	}
	if o.clientNoTakeover {
		s += "; client_no_context_takeover"
	}
	if o.serverBits > 0 {
		s += fmt.Sprintf("; server_max_window_bits=%d", o.serverBits)
	}
	switch {
	case o.clientBits > 0:
		s += fmt.Sprintf("; client_max_window_bits=%d", o.clientBits)
	case o.clientBits < 0:
		s += "; client_max_window_bits"
	}
	return s
}

// TestDeflateConformance does against our server what sections 12 and 13
// of the Autobahn testsuite do: every combination of takeover and window
// bits that a client may offer, each answered as RFC 7692 says, then
// messages of 16 bytes to 128 KiB, compressed with and without context
// takeover, in fragments, among uncompressed ones, echoed and compared.
// The echoes are checked to keep to the window agreed on, and to stand
// on their own where the server agreed not to take over its context.
func TestDeflateConformance(t *testing.T) {
	checkGoroutines(t)
	var offers []deflateOfferCase
	for _, sn := range []bool{false, true} {
		for _, cn := range []bool{false, true} {
			for sb := 7; sb <= 15; sb++ {
				for cb := 6; cb <= 15; cb++ {
					o := deflateOfferCase{sn, cn, max(sb, 8), max(cb, 7)}
					if sb == 7 {
						o.serverBits = 0 // absent
					}
					switch cb {
					case 6:
						o.clientBits = 0 // absent
					case 7:
						o.clientBits = -1 // without a value
					}
					offers = append(offers, o)
				}
			}
		}
	}
	all := []int{16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072}
	some := []int{16, 1024, 16384, 131072}
	for _, askClient := range []int{0, 9} {
		opts := CompressionOptions{ServerContextTakeover: true, ClientContextTakeover: true, Threshold: -1, ClientMaxWindowBits: askClient}
		url := startServer(t, &Handler{EnableCompression: true, CompressionOptions: opts, Handle: echoHandler})
		for i, o := range offers {
			// Every size for the main windows, fewer for the
			// others, fewer yet where the race detector slows
			// compression down tenfold.
			main := (o.serverBits == 0 || o.serverBits == 8) && o.clientBits <= 8 && askClient == 0
			sizes := some
			switch {
			case main:
				sizes = all
			case testing.Short() || RaceEnabled:
				sizes = some[:2]
			case askClient != 0:
				sizes = some[:3]
			}
			conformanceRun(t, url, o, askClient, sizes, uint64(i))
			if t.Failed() {
				return
			}
		}
	}
}

// conformanceRun negotiates offer o with the server at url, which asks
// the client for client_max_window_bits=askClient where allowed, and
// echoes messages of the given sizes.
func conformanceRun(t *testing.T, url string, o deflateOfferCase, askClient int, sizes []int, seed uint64) {
	p := dialRawHeader(t, url, "Sec-WebSocket-Extensions: "+o.String()+"\r\n")
	defer p.conn.Close()
	p.conn.SetDeadline(time.Now().Add(60 * time.Second))

	// The answer: takeover declined where the offer declined it,
	// window bits answered where offered.
	want := "permessage-deflate"
	if o.serverNoTakeover {
		want += "; server_no_context_takeover"
	}
	if o.clientNoTakeover {
		want += "; client_no_context_takeover"
	}
	serverBits := 15
	if o.serverBits > 0 {
		serverBits = o.serverBits
		want += fmt.Sprintf("; server_max_window_bits=%d", serverBits)
	}
	clientBits := 15
	if o.clientBits > 0 {
		clientBits = o.clientBits
	}
	if askClient > 0 && o.clientBits != 0 {
		clientBits = min(clientBits, askClient)
		want += fmt.Sprintf("; client_max_window_bits=%d", clientBits)
	}
	if got := p.resp.Header.Get("Sec-WebSocket-Extensions"); got != want {
		t.Fatalf("offer %q: answer %q, want %q", o, got, want)
	}

	// The peer's compressor: one for the connection with client
	// takeover, Huffman coding alone below a 32 KiB window.
	level := flate.BestSpeed
	if clientBits < 15 {
		level = flate.HuffmanOnly
	}
	var zbuf bytes.Buffer
	fw, _ := flate.NewWriter(&zbuf, level)
	var dict []byte // of the server's messages, with server takeover
	for k, size := range sizes {
		for round := range 2 { // the second time, takeover pays
			text := (k+round)%2 == 0
			msg := compressionCorpus(size, text, seed*100+uint64(k))
			op := opBinary
			if text {
				op = opText
			}
			if round == 1 && size == 1024 {
				// An uncompressed message in the stream.
				p.write(encodeFrame(0x80|byte(op), msg, true))
			} else {
				if o.clientNoTakeover {
					fw.Reset(&zbuf)
				}
				zbuf.Reset()
				fw.Write(msg)
				fw.Flush()
				z := bytes.TrimSuffix(zbuf.Bytes(), deflateTail[:])
				// In three fragments, RSV1 on the first only.
				a, b := len(z)/3, 2*len(z)/3
				p.write(encodeFrame(0x40|byte(op), z[:a], true),
					encodeFrame(byte(opContinuation), z[a:b], true),
					encodeFrame(0x80|byte(opContinuation), z[b:], true))
			}
			// The echo.
			var payload []byte
			first := true
			for {
				hdr, part := p.readRawFrame()
				if first != (hdr[0]&0x0f != 0) || hdr[0]&0x30 != 0 || (!first && hdr[0]&0x40 != 0) {
					t.Fatalf("offer %q, %d bytes: frame header %#x", o, size, hdr[0])
				}
				if first && hdr[0]&0x40 == 0 {
					t.Fatalf("offer %q, %d bytes: echo not compressed", o, size)
				}
				if first && opcode(hdr[0]&0x0f) != op {
					t.Fatalf("offer %q, %d bytes: echo is %v", o, size, opcode(hdr[0]&0x0f))
				}
				first = false
				payload = append(payload, part...)
				if hdr[0]&0x80 != 0 {
					break
				}
			}
			if d, err := maxBackReference(append(payload, deflateTail[:]...)); err != nil || d > 1<<serverBits {
				t.Fatalf("offer %q, %d bytes: longest back-reference %d (%v), window %d", o, size, d, err, 1<<serverBits)
			}
			if o.serverNoTakeover {
				dict = nil
			}
			r := flate.NewReaderDict(strings.NewReader(string(payload)+string(deflateTail[:])), dict)
			got := make([]byte, size+1)
			n, _ := r.Read(got)
			for n < len(got) {
				m, err := r.Read(got[n:])
				n += m
				if err != nil || m == 0 {
					break
				}
			}
			if !bytes.Equal(got[:n], msg) {
				t.Fatalf("offer %q, %d bytes (round %d): echo inflates to %d different bytes", o, size, round, n)
			}
			dict = append(dict, msg...)
			dict = dict[max(0, len(dict)-32768):]
		}
	}
	p.write(frame(true, opClose, closePayloadOf(StatusOK, "")))
	p.expectClose(StatusOK)
}
