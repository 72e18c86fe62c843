package main

import (
	"encoding/json"
	"fmt"
	"log"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gowebsock/websocket"
)

// Message is one event of the chat, as the members receive it.
type Message struct {
	When time.Time
	From string // the member who wrote it, or "" for the server's notices
	Text string
}

const (
	// maxJoin bounds the first message, "CHAT <name>".
	maxJoin = 256
	// maxText bounds a member's messages; longer ones are refused.
	maxText = 4096
)

// room is one chat room: its members and the distribution of messages
// to them.
//
// Every member has a queue of bounded length, drained by a goroutine of
// its own that sends to its connection, so that a member that reads
// slowly or not at all holds up nobody: once its queue is full, it is
// dropped.  Messages are put into the queues under mu, so every member
// sees the same order.
type room struct {
	queueLen int

	mu      sync.Mutex
	members map[string]*member
}

// member is one participant of the chat.
type member struct {
	name  string
	conn  *websocket.Conn
	queue chan string // JSON messages waiting to be sent
	// gone is closed once the member has left the room, which ends
	// its sending goroutine.
	gone chan struct{}
}

func newRoom(queueLen int) *room {
	return &room{queueLen: max(queueLen, 1), members: make(map[string]*member)}
}

// serve is the WebSocket handler: it runs for the whole life of a
// member's connection.
func (r *room) serve(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")

	first, err := conn.ReceiveText(maxJoin)
	fields := strings.Fields(first)
	if err != nil || len(fields) < 2 || fields[0] != "CHAT" {
		conn.Close(websocket.StatusProtocolError, `the first message must be "CHAT <name>"`)
		return
	}
	name := strings.Join(fields[1:], " ")
	m := r.join(name, conn)
	if m == nil {
		conn.Close(websocket.StatusInvalidData, "name already in use")
		return
	}
	log.Printf("%q joined from %s", name, conn.RemoteAddr)
	go m.send()
	defer r.leave(m)

	for {
		text, err := conn.ReceiveText(maxText)
		switch {
		case err == websocket.ErrTooLarge:
			r.tell(m, fmt.Sprintf("your message was longer than %d bytes and was not sent", maxText))
		case err == websocket.ErrMessageType:
			r.tell(m, "binary messages are not supported")
		case err != nil:
			return
		case text == "/quit":
			conn.Close(websocket.StatusOK, "quit request received")
			return
		case text == "/names":
			r.tell(m, "members: "+strings.Join(r.names(), ", "))
		default:
			r.publish(Message{When: time.Now(), From: name, Text: text})
		}
	}
}

// join adds a member under name, or returns nil if the name is taken.
// It announces the new member to everybody, the member included.
func (r *room) join(name string, conn *websocket.Conn) *member {
	m := &member{name: name, conn: conn, queue: make(chan string, r.queueLen), gone: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.members[name]; taken {
		return nil
	}
	r.members[name] = m
	r.publishLocked(notice(fmt.Sprintf("%q has joined this chat", name)))
	return m
}

// leave removes m from the room, if it is still there, and announces
// it to the others.
func (r *room) leave(m *member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[m.name] == m {
		r.removeLocked(m)
	}
}

// removeLocked takes m out of the room, stops its sending goroutine
// and tells the others.  r.mu is held.
func (r *room) removeLocked(m *member) {
	delete(r.members, m.name)
	close(m.gone)
	log.Printf("%q left", m.name)
	r.publishLocked(notice(fmt.Sprintf("%q has left this chat", m.name)))
}

// publish sends msg to every member.
func (r *room) publish(msg Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishLocked(msg)
}

// publishLocked queues msg for every member; r.mu is held.  A member
// whose queue is full is dropped, which the others learn of in turn.
func (r *room) publishLocked(msg Message) {
	text := encode(msg)
	var dropped []*member
	for _, m := range r.members {
		select {
		case m.queue <- text:
		default:
			dropped = append(dropped, m)
		}
	}
	for _, m := range dropped {
		if r.members[m.name] != m {
			continue // dropped already, by a notice about another
		}
		log.Printf("%q dropped: %d messages waiting", m.name, cap(m.queue))
		// Close waits for the member's answer, which may never come;
		// nobody else should wait for that.
		go m.conn.Close(websocket.StatusPolicyViolation, "too slow: messages are waiting")
		r.removeLocked(m)
	}
}

// tell sends a notice to m alone.
func (r *room) tell(m *member, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[m.name] != m {
		return
	}
	select {
	case m.queue <- encode(notice(text)):
	default:
		// The member is about to be dropped by the next message to
		// everyone; a notice to it alone need not force that.
	}
}

// names returns the members' names in order.
func (r *room) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.members))
	for name := range r.members {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// send passes the member's queue to its connection until the member
// leaves or the connection fails.
func (m *member) send() {
	for {
		select {
		case text := <-m.queue:
			if m.conn.SendText(text) != nil {
				return // the receiving side notices the end too
			}
		case <-m.gone:
			return
		}
	}
}

// notice is a message from the server itself.
func notice(text string) Message {
	return Message{When: time.Now(), Text: text}
}

// encode turns msg into the JSON text that members receive.
func encode(msg Message) string {
	data, err := json.Marshal(msg)
	if err != nil {
		panic(err) // a Message always encodes
	}
	return string(data)
}
