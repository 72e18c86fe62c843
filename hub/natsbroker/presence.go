package natsbroker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gowebsock/websocket/hub"
	"github.com/nats-io/nats.go/jetstream"
)

// presenceKey returns the bucket's key of a client in a topic: the
// topic's token first, so that a watch of "<token>.*" finds the topic's
// clients.
func presenceKey(topic, client string) string { return token(topic) + "." + token(client) }

// conflict reports whether err says that a key changed since it was read.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || wrongLast(err)
}

// addPresence stores the claim; a unique one only if the key holds no
// live claim with other info, which the revision it was read at makes
// sure of: a claim made by another instance in between makes the create
// or update fail, and the check is made again.
func (b *jsBackend) addPresence(ctx context.Context, topic, client string, info []byte, ttl time.Duration, unique bool) error {
	_, kv := b.handles()
	key := presenceKey(topic, client)
	value := encodeClaim(time.Now().Add(ttl), info)
	if !unique {
		_, err := kv.Put(ctx, key, value)
		return wrapPresence(err)
	}
	for {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err = kv.Create(ctx, key, value); conflict(err) {
				continue
			}
			return wrapPresence(err)
		}
		if err != nil {
			return wrapPresence(err)
		}
		expires, old, ok := decodeClaim(e.Value())
		if ok && time.Now().Before(expires) && !bytes.Equal(old, info) {
			return hub.ErrClientTaken
		}
		if _, err = kv.Update(ctx, key, value, e.Revision()); conflict(err) {
			continue
		}
		return wrapPresence(err)
	}
}

// removePresence deletes the claim if it holds info, and only the
// revision that was read, so that a claim made again meanwhile stays.
func (b *jsBackend) removePresence(ctx context.Context, topic, client string, info []byte) error {
	_, kv := b.handles()
	key := presenceKey(topic, client)
	for {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return wrapPresence(err)
		}
		if _, old, ok := decodeClaim(e.Value()); !ok || !bytes.Equal(old, info) {
			return nil
		}
		if err = kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); conflict(err) {
			continue
		}
		return wrapPresence(err)
	}
}

// presence reads the live claims of the topic, and deletes the expired
// ones that it comes across.
func (b *jsBackend) presence(ctx context.Context, topic string) (map[string][]byte, error) {
	_, kv := b.handles()
	w, err := kv.Watch(ctx, token(topic)+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, wrapPresence(err)
	}
	defer w.Stop()
	present := make(map[string][]byte)
	var expired []jetstream.KeyValueEntry
	now := time.Now()
	for {
		var e jetstream.KeyValueEntry
		var open bool
		select {
		case e, open = <-w.Updates():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !open {
			return nil, errors.New("natsbroker: presence: the watch of the bucket ended")
		}
		if e == nil {
			break // the current values have all come
		}
		_, clientToken, _ := strings.Cut(e.Key(), ".")
		client, err := untoken(clientToken)
		expires, info, ok := decodeClaim(e.Value())
		switch {
		case err != nil || !ok:
			// Not a claim of the broker's: left alone.
		case now.Before(expires):
			present[client] = info
		default:
			expired = append(expired, e)
		}
	}
	for _, e := range expired {
		// A claim refreshed meanwhile has another revision, and
		// stays; failures are left to the next reader.
		kv.Delete(ctx, e.Key(), jetstream.LastRevision(e.Revision()))
	}
	return present, nil
}

func wrapPresence(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("natsbroker: presence: %w", err)
}
