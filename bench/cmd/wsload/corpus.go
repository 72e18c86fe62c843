package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// corpusSize is the number of chat messages that the compression
// scenarios send, in turn.
const corpusSize = 1000

// chatMessage is one message of the corpus, as a chat server would relay
// it.
type chatMessage struct {
	Type     string   `json:"type"`
	ID       string   `json:"id"`
	Room     string   `json:"room"`
	User     string   `json:"user"`
	TS       int64    `json:"ts"`
	Text     string   `json:"text"`
	Mentions []string `json:"mentions,omitempty"`
	ReplyTo  string   `json:"reply_to,omitempty"`
}

var (
	chatRooms = []string{"lobby", "general", "random", "engineering", "support", "release-2026-q4", "design", "ops-alerts"}
	chatUsers = func() []string {
		names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
			"mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yuki"}
		var users []string
		for i, n := range names {
			users = append(users, fmt.Sprintf("%s%d", n, 7+i*13%90))
		}
		return users
	}()
	// chatWords are drawn with a bias to the front, as words are.
	chatWords = strings.Fields(`the to and a of I it you that is in for on this we be with
		have not are just but so can do was at if my what think about will get it's from
		there they all one up out like yes no ok thanks now know when would should could
		time today tomorrow yesterday meeting deploy build release test tests branch merge
		review PR fix bug issue ticket server client connection latency memory CPU cache
		database query index backup logs alert dashboard graph metrics error timeout retry
		config flag feature rollout rollback staging production customer team lunch coffee
		weekend sounds good great sure maybe later soon please check look again working
		broken fixed done pushed merged shipped waiting blocked question answer idea plan
		because before after while still already also really pretty quite very more less
		new old same other next last first week month call doc notes slides link page
		lol haha nice cool awesome sorry agreed +1 hmm right exactly interesting weird`)
)

// chatCorpus returns n JSON chat messages, the same every time, of 200
// bytes to 2 KiB, their sizes spread evenly on a log scale (for the
// corpus of corpusSize, a median of 627 bytes and a mean of 799).
func chatCorpus(n int) [][]byte {
	rng := rand.New(rand.NewPCG(2026, 11))
	ts := int64(1764000000000)
	msgs := make([][]byte, n)
	for i := range msgs {
		ts += 1 + rng.Int64N(30000)
		m := chatMessage{
			Type: "message",
			ID:   fmt.Sprintf("%016x", rng.Uint64()),
			Room: chatRooms[int(float64(len(chatRooms))*math.Pow(rng.Float64(), 2))],
			User: chatUsers[rng.IntN(len(chatUsers))],
			TS:   ts,
		}
		if rng.IntN(4) == 0 {
			m.Mentions = append(m.Mentions, chatUsers[rng.IntN(len(chatUsers))])
		}
		if i > 0 && rng.IntN(5) == 0 {
			var prev chatMessage
			json.Unmarshal(msgs[rng.IntN(i)], &prev)
			m.ReplyTo = prev.ID
		}
		target := int(200 * math.Pow(2048.0/200, rng.Float64()))
		head, _ := json.Marshal(m)
		m.Text = chatText(rng, max(target-len(head), 1))
		msgs[i], _ = json.Marshal(m)
	}
	return msgs
}

// chatText returns n bytes of sentences.
func chatText(rng *rand.Rand, n int) string {
	var b strings.Builder
	start := true
	for b.Len() < n {
		w := chatWords[int(float64(len(chatWords))*math.Pow(rng.Float64(), 2.5))]
		if start {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		start = rng.IntN(9) == 0
		switch {
		case start && rng.IntN(4) == 0:
			b.WriteString("? ")
		case start:
			b.WriteString(". ")
		case rng.IntN(12) == 0:
			b.WriteString(", ")
		default:
			b.WriteString(" ")
		}
	}
	return strings.TrimSpace(b.String()[:n])
}
