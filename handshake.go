package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
)

// acceptGUID is the fixed string that RFC 6455, section 1.3, appends to
// the client's key to compute the Sec-WebSocket-Accept value.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes the Sec-WebSocket-Accept value for a client key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// validKey reports whether key is a Sec-WebSocket-Key as section 4.1
// requires: the base64 encoding of 16 bytes.
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	decoded, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(decoded) == 16
}

// headerHasToken reports whether one of the comma-separated elements of
// the header fields named name equals token, ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for elem := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(elem), token) {
				return true
			}
		}
	}
	return false
}

// headerTokens returns the non-empty comma-separated elements of the
// header fields named name, in order.
func headerTokens(h http.Header, name string) []string {
	var tokens []string
	for _, v := range h.Values(name) {
		for elem := range strings.SplitSeq(v, ",") {
			if elem = strings.TrimSpace(elem); elem != "" {
				tokens = append(tokens, elem)
			}
		}
	}
	return tokens
}
