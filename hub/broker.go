package hub

import (
	"context"
	"errors"
	"time"

	"github.com/gowebsock/websocket"
)

// Position is a place in a topic's stream of publications.  Offsets
// count the publications of a topic from 1, without gaps, for as long as
// the topic's epoch lasts; a broker that loses its history (a server
// restarted without persistence) starts a new epoch, so that a position
// of the old one is never mistaken for one of the new.
type Position struct {
	Offset uint64
	Epoch  string
}

// Publication is one message published to a topic.
type Publication struct {
	Topic    string
	Position Position // set by the broker
	Type     websocket.MessageType
	Payload  []byte
}

// HistoryOptions says how much of a topic's stream a broker keeps.
type HistoryOptions struct {
	// Size is the number of publications kept per topic; zero keeps
	// none, though positions still count.
	Size int
	// TTL is how long a topic's history and position are kept after
	// its last publication; zero keeps them until the broker's data
	// is lost.  A topic whose history expired starts a new epoch.
	TTL time.Duration
}

// Receiver is what a Broker delivers publications to: the Hub.
type Receiver interface {
	// Deliver is called with every publication of the topics this
	// instance subscribed to, in the order of their positions within
	// a topic, never concurrently for one topic.  It may call the
	// broker's History.  A publication may arrive twice, or after a
	// gap, when the broker's connection was lost; the hub sorts that
	// out by positions.
	Deliver(p Publication)
	// Resubscribed is called after the broker lost its connection to
	// the server and subscribed again: the publications published
	// meanwhile were not delivered, and the hub fetches them from the
	// history.
	Resubscribed()
}

// Broker carries publications between the instances of a hub, keeps
// each topic's history and position, and the presence of clients across
// instances.  Each hub instance has a Broker value of its own, connected
// to the same server as the others.  Methods other than Start may be
// called from several goroutines at once, and must return once ctx is
// done.
//
// MemoryBroker is the broker of a single process;
// github.com/gowebsock/websocket/hub/redisbroker and .../natsbroker
// connect instances through Redis and NATS.  The package brokertest
// checks a broker against this contract.
type Broker interface {
	// Start is called once, by New, before any other method: the
	// broker delivers to r from then on.
	Start(r Receiver) error

	// Publish appends p (whose Position is ignored) to the topic's
	// stream, keeping the history that h asks for, and delivers it to
	// every instance subscribed to p.Topic, this one included.  It
	// returns the position given to p.  An error means p was not
	// published, or that whether it was is unknown; either way the
	// caller learns of it, and subscribers see any gap in positions.
	Publish(ctx context.Context, p Publication, h HistoryOptions) (Position, error)

	// Subscribe and Unsubscribe start and stop the delivery of a
	// topic's publications to this instance.
	Subscribe(ctx context.Context, topic string) error
	Unsubscribe(ctx context.Context, topic string) error

	// History returns the publications of topic kept in its history
	// whose offsets are greater than after, oldest first, and the
	// topic's current position: that of its last publication, or
	// offset 0 if it has none.  With after at or beyond the current
	// offset it returns no publications.
	History(ctx context.Context, topic string, after uint64) ([]Publication, Position, error)

	// AddPresence records that client is present in topic, with info,
	// for ttl.  Calling it again with the same info refreshes it.  If
	// unique is set and client is present with other info, it records
	// nothing and returns ErrClientTaken.
	AddPresence(ctx context.Context, topic, client string, info []byte, ttl time.Duration, unique bool) error
	// RemovePresence removes client from topic if it is present with
	// info, and does nothing otherwise.
	RemovePresence(ctx context.Context, topic, client string, info []byte) error
	// Presence returns the clients present in topic, on every
	// instance, with their info.
	Presence(ctx context.Context, topic string) (map[string][]byte, error)

	// Close ends the broker's connections; the hub calls it on Close.
	Close() error
}

var (
	// ErrClientTaken is returned when a client that is to be unique
	// in a topic is present in it already, on this instance or another.
	ErrClientTaken = errors.New("hub: client already present in the topic")
	// ErrRecoveryGap is returned when a subscriber asked for the
	// publications since a position that the history no longer
	// reaches back to: it is subscribed, but missed some.
	ErrRecoveryGap = errors.New("hub: history does not reach back to the position")
	// ErrClosed is returned by a hub or broker that was closed.
	ErrClosed = errors.New("hub: closed")
	// ErrInvalidText is returned by Publish for a text message that is
	// not valid UTF-8.
	ErrInvalidText = errors.New("hub: text message is not valid UTF-8")
)
