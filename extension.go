package websocket

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The negotiation of permessage-deflate (RFC 7692, sections 5 to 7) in
// the Sec-WebSocket-Extensions header.

// extension is one element of a Sec-WebSocket-Extensions header: a name
// and its parameters, in order, with their values ("" for a parameter
// without one).
type extension struct {
	name   string
	params []extensionParam
}

type extensionParam struct {
	name, value string
	hasValue    bool
}

// errExtensionSyntax means that a Sec-WebSocket-Extensions header does
// not follow the grammar of RFC 6455, section 9.1.
var errExtensionSyntax = errors.New("malformed Sec-WebSocket-Extensions header")

// parseExtensions parses every Sec-WebSocket-Extensions field of h, in
// order.  Values may be tokens or quoted strings.
func parseExtensions(h http.Header) ([]extension, error) {
	var exts []extension
	for _, field := range h.Values("Sec-WebSocket-Extensions") {
		p := extensionParser{s: field}
		for {
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() == ',' { // empty list elements are allowed
				p.pos++
				continue
			}
			ext, err := p.extension()
			if err != nil {
				return nil, err
			}
			exts = append(exts, ext)
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, errExtensionSyntax
			}
			p.pos++
		}
	}
	return exts, nil
}

// extensionParser reads one field of a Sec-WebSocket-Extensions header.
type extensionParser struct {
	s   string
	pos int
}

func (p *extensionParser) done() bool { return p.pos >= len(p.s) }
func (p *extensionParser) peek() byte { return p.s[p.pos] }

func (p *extensionParser) skipSpace() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.pos++
	}
}

// token reads an HTTP token (RFC 9110, section 5.6.2).
func (p *extensionParser) token() (string, error) {
	start := p.pos
	for !p.done() && isTokenChar(p.peek()) {
		p.pos++
	}
	if p.pos == start {
		return "", errExtensionSyntax
	}
	return p.s[start:p.pos], nil
}

// quoted reads a quoted string and returns its content.
func (p *extensionParser) quoted() (string, error) {
	p.pos++ // the opening quote
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.pos++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.done() {
				return "", errExtensionSyntax
			}
			c = p.peek()
			p.pos++
		}
		b.WriteByte(c)
	}
	return "", errExtensionSyntax // no closing quote
}

// extension reads an extension and its parameters.
func (p *extensionParser) extension() (extension, error) {
	var ext extension
	var err error
	if ext.name, err = p.token(); err != nil {
		return ext, err
	}
	for {
		p.skipSpace()
		if p.done() || p.peek() != ';' {
			return ext, nil
		}
		p.pos++
		p.skipSpace()
		var param extensionParam
		if param.name, err = p.token(); err != nil {
			return ext, err
		}
		p.skipSpace()
		if !p.done() && p.peek() == '=' {
			p.pos++
			p.skipSpace()
			param.hasValue = true
			if !p.done() && p.peek() == '"' {
				param.value, err = p.quoted()
			} else {
				param.value, err = p.token()
			}
			if err != nil {
				return ext, err
			}
		}
		ext.params = append(ext.params, param)
	}
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// deflateName is the extension name of RFC 7692.
const deflateName = "permessage-deflate"

// deflateParams are the parameters of a permessage-deflate offer or
// answer.  Window bits are 0 where the parameter is absent, and -1 for
// client_max_window_bits without a value.
type deflateParams struct {
	serverNoTakeover bool
	clientNoTakeover bool
	serverMaxBits    int
	clientMaxBits    int
}

// parseDeflateParams checks the parameters of a permessage-deflate
// element: each known, at most once, with a valid value (RFC 7692,
// section 7.1).
func parseDeflateParams(ext extension) (deflateParams, error) {
	var dp deflateParams
	seen := map[string]bool{}
	for _, p := range ext.params {
		name := strings.ToLower(p.name)
		if seen[name] {
			return dp, fmt.Errorf("parameter %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.hasValue {
				return dp, fmt.Errorf("parameter %s with a value", name)
			}
			if name == "server_no_context_takeover" {
				dp.serverNoTakeover = true
			} else {
				dp.clientNoTakeover = true
			}
		case "server_max_window_bits":
			bits, ok := windowBits(p)
			if !ok || !p.hasValue {
				return dp, fmt.Errorf("parameter %s=%q", name, p.value)
			}
			dp.serverMaxBits = bits
		case "client_max_window_bits":
			if !p.hasValue {
				dp.clientMaxBits = -1
				break
			}
			bits, ok := windowBits(p)
			if !ok {
				return dp, fmt.Errorf("parameter %s=%q", name, p.value)
			}
			dp.clientMaxBits = bits
		default:
			return dp, fmt.Errorf("unknown parameter %s", p.name)
		}
	}
	return dp, nil
}

// windowBits returns the value of a window bits parameter, which must
// be a decimal from 8 to 15 without leading zeros.
func windowBits(p extensionParam) (int, bool) {
	n, err := strconv.Atoi(p.value)
	if err != nil || n < 8 || n > 15 || p.value[0] == '0' || p.value[0] == '+' {
		return 0, false
	}
	return n, true
}

// negotiated is what both ends agreed on for permessage-deflate, seen
// from one end: whether it may keep the compression context from one
// message to the next when it sends, and when it receives, and whether
// the peer limited the window of what it sends to less than 32 KiB.
type negotiated struct {
	writeTakeover bool
	readTakeover  bool
	// writeSmallWindow: compress/flate always looks back 32 KiB, so
	// messages go out compressed by Huffman coding alone, without
	// back-references, which keeps to any window.
	writeSmallWindow bool
}

// smallBits reports whether bits asks for a window below the default
// of 2^15 bytes.
func smallBits(bits int) bool { return bits >= 8 && bits < 15 }

// acceptDeflate picks the first permessage-deflate offer of a client
// that the server can accept, and returns the answer for the response
// header: context takeover in each direction where both the offer and
// the options allow it, and the window sizes the offer asked about.
func acceptDeflate(offers []extension, opts *CompressionOptions) (string, negotiated, bool) {
	for _, offer := range offers {
		if !strings.EqualFold(offer.name, deflateName) {
			continue
		}
		dp, err := parseDeflateParams(offer)
		if err != nil {
			continue
		}
		var answer strings.Builder
		answer.WriteString(deflateName)
		serverNoTakeover := dp.serverNoTakeover || !opts.ServerContextTakeover
		clientNoTakeover := dp.clientNoTakeover || !opts.ClientContextTakeover
		if serverNoTakeover {
			answer.WriteString("; server_no_context_takeover")
		}
		if clientNoTakeover {
			answer.WriteString("; client_no_context_takeover")
		}
		serverBits := 15
		if dp.serverMaxBits != 0 {
			// Answered only when offered: some browsers fail a
			// connection whose answer has it unasked.
			serverBits = dp.serverMaxBits
			if smallBits(opts.ServerMaxWindowBits) {
				serverBits = min(serverBits, opts.ServerMaxWindowBits)
			}
			fmt.Fprintf(&answer, "; server_max_window_bits=%d", serverBits)
		}
		if bits := opts.ClientMaxWindowBits; dp.clientMaxBits != 0 && smallBits(bits) {
			// The client said it can keep to a smaller window; we
			// ask for ours, within what it offered.
			if dp.clientMaxBits > 0 {
				bits = min(bits, dp.clientMaxBits)
			}
			fmt.Fprintf(&answer, "; client_max_window_bits=%d", bits)
		}
		return answer.String(), negotiated{
			writeTakeover:    !serverNoTakeover,
			readTakeover:     !clientNoTakeover,
			writeSmallWindow: serverBits < 15,
		}, true
	}
	return "", negotiated{}, false
}

// deflateOffer is the client's offer.  It includes
// client_max_window_bits, so that a server may ask for a smaller window,
// with the value of ClientMaxWindowBits if that asks for one.
func deflateOffer(opts *CompressionOptions) string {
	var b strings.Builder
	b.WriteString(deflateName)
	if !opts.ServerContextTakeover {
		b.WriteString("; server_no_context_takeover")
	}
	if !opts.ClientContextTakeover {
		b.WriteString("; client_no_context_takeover")
	}
	if bits := opts.ServerMaxWindowBits; smallBits(bits) {
		fmt.Fprintf(&b, "; server_max_window_bits=%d", bits)
	}
	if bits := opts.ClientMaxWindowBits; smallBits(bits) {
		fmt.Fprintf(&b, "; client_max_window_bits=%d", bits)
	} else {
		b.WriteString("; client_max_window_bits")
	}
	return b.String()
}

// checkDeflateAnswer checks the server's answer to the client's offer,
// and returns what was agreed.  An answer that the offer does not allow
// is an error, which fails the handshake (RFC 7692, section 7.1).
func checkDeflateAnswer(exts []extension, opts *CompressionOptions) (negotiated, error) {
	if len(exts) != 1 || !strings.EqualFold(exts[0].name, deflateName) {
		return negotiated{}, errors.New("the server chose an extension that was not offered")
	}
	dp, err := parseDeflateParams(exts[0])
	if err != nil {
		return negotiated{}, fmt.Errorf("the server's permessage-deflate answer has a bad %v", err)
	}
	offeredClientBits := 15
	if smallBits(opts.ClientMaxWindowBits) {
		offeredClientBits = opts.ClientMaxWindowBits
	}
	switch {
	case dp.clientMaxBits < 0:
		return negotiated{}, errors.New("the server's permessage-deflate answer has client_max_window_bits without a value")
	case dp.clientMaxBits > offeredClientBits:
		return negotiated{}, errors.New("the server's permessage-deflate answer has a client_max_window_bits above the one offered")
	case !opts.ServerContextTakeover && !dp.serverNoTakeover:
		return negotiated{}, errors.New("the server's permessage-deflate answer lacks the server_no_context_takeover that was offered")
	case smallBits(opts.ServerMaxWindowBits) && (dp.serverMaxBits == 0 || dp.serverMaxBits > opts.ServerMaxWindowBits):
		return negotiated{}, errors.New("the server's permessage-deflate answer does not keep to the server_max_window_bits that was offered")
	}
	clientBits := offeredClientBits
	if dp.clientMaxBits > 0 {
		clientBits = dp.clientMaxBits
	}
	return negotiated{
		writeTakeover:    !dp.clientNoTakeover && opts.ClientContextTakeover,
		readTakeover:     !dp.serverNoTakeover,
		writeSmallWindow: clientBits < 15,
	}, nil
}
