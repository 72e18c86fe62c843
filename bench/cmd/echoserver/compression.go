package main

import "fmt"

// compression is permessage-deflate as -compress, -level and -threshold
// set it, the same for every library:
//
//   - notakeover: no context takeover either way, so that a connection
//     needs its compressor and decompressor only while it handles a
//     message; takeover: context takeover both ways, with the 32 KiB
//     window of compress/flate (gws is told 15 bits, its default with
//     takeover being 12).
//   - level: the compress/flate level of the messages the server sends.
//     coder always compresses at 1 (flate.BestSpeed), so it takes no
//     other.
//   - threshold: messages of at least this many bytes are compressed;
//     the default, 1, compresses every message that is not empty, as
//     gorilla, which has no threshold, does.  gws ignores it with
//     context takeover, where it compresses every message.
var compression compressionConfig

type compressionConfig struct {
	mode             string // none, notakeover or takeover
	level, threshold int
}

// enabled reports whether permessage-deflate is on.
func (c *compressionConfig) enabled() bool { return c.mode != "none" }

// takeover reports whether context takeover is on.
func (c *compressionConfig) takeover() bool { return c.mode == "takeover" }

// check reports a setting that lib cannot follow.
func (c *compressionConfig) check(lib string) error {
	switch c.mode {
	case "none":
		return nil
	case "notakeover", "takeover":
	default:
		return fmt.Errorf("-compress %q: want none, notakeover or takeover", c.mode)
	}
	switch {
	case c.level < 1 || c.level > 9:
		return fmt.Errorf("-level %d: want 1 to 9", c.level)
	case lib == "tcp" || lib == "gobwas-wsutil":
		return fmt.Errorf("%s has no compression here", lib)
	case lib == "gorilla" && c.takeover():
		return fmt.Errorf("gorilla supports no context takeover only")
	case lib == "gorilla" && c.threshold > 1:
		return fmt.Errorf("gorilla has no threshold: it compresses every message")
	case lib == "coder" && c.level != 1:
		return fmt.Errorf("coder compresses at level 1 only")
	}
	return nil
}
