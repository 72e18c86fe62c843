package natsbroker

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
	"github.com/nats-io/nats.go"
)

// token encodes s as a subject token or a key-value key: base64url
// without padding, whose alphabet is valid in both, and "=" (which that
// encoding never yields) for the empty string, as a token may not be
// empty.
func token(s string) string {
	if s == "" {
		return "="
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// untoken decodes a token.
func untoken(t string) (string, error) {
	if t == "=" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err
}

// The headers of a stored publication.
const (
	hdrOffset  = "Hub-Offset"
	hdrEpoch   = "Hub-Epoch"
	hdrType    = "Hub-Type"
	hdrSize    = "Hub-Size"    // the history size its publisher asked for
	hdrExpires = "Hub-Expires" // Unix nanoseconds; absent: never
	hdrOrigin  = "Hub-Origin"  // the publishing instance, without JetStream
)

// stored is what the headers of a stored publication say.
type stored struct {
	pos     hub.Position
	typ     websocket.MessageType
	size    int       // the history to keep
	expires time.Time // zero: never
}

// header returns the headers that carry s.
func (s stored) header() nats.Header {
	h := nats.Header{}
	h.Set(hdrOffset, strconv.FormatUint(s.pos.Offset, 10))
	h.Set(hdrEpoch, s.pos.Epoch)
	h.Set(hdrType, strconv.Itoa(int(s.typ)))
	h.Set(hdrSize, strconv.Itoa(s.size))
	if !s.expires.IsZero() {
		h.Set(hdrExpires, strconv.FormatInt(s.expires.UnixNano(), 10))
	}
	return h
}

var errNotPublication = errors.New("natsbroker: a message without the headers of a publication")

// parseStored reads the headers of a stored publication.
func parseStored(h nats.Header) (stored, error) {
	var s stored
	offset, err1 := strconv.ParseUint(h.Get(hdrOffset), 10, 64)
	typ, err2 := strconv.ParseUint(h.Get(hdrType), 10, 8)
	size, err3 := strconv.Atoi(h.Get(hdrSize))
	epoch := h.Get(hdrEpoch)
	if err := errors.Join(err1, err2, err3); err != nil || epoch == "" || offset == 0 {
		return s, errNotPublication
	}
	s.pos = hub.Position{Offset: offset, Epoch: epoch}
	s.typ = websocket.MessageType(typ)
	s.size = size
	if e := h.Get(hdrExpires); e != "" {
		ns, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return s, errNotPublication
		}
		s.expires = time.Unix(0, ns)
	}
	return s, nil
}

// expired reports whether the topic's history and position ended with
// the TTL of this, its last publication.
func (s stored) expired(now time.Time) bool {
	return !s.expires.IsZero() && now.After(s.expires)
}

// expiry returns when a publication made now with h expires.
func expiry(now time.Time, h hub.HistoryOptions) time.Time {
	if h.TTL <= 0 {
		return time.Time{}
	}
	return now.Add(h.TTL)
}

// A presence claim is stored as its expiry, in Unix nanoseconds, eight
// bytes big-endian, then its info.
func encodeClaim(expires time.Time, info []byte) []byte {
	v := make([]byte, 8, 8+len(info))
	binary.BigEndian.PutUint64(v, uint64(expires.UnixNano()))
	return append(v, info...)
}

func decodeClaim(v []byte) (expires time.Time, info []byte, ok bool) {
	if len(v) < 8 {
		return time.Time{}, nil, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), v[8:], true
}
