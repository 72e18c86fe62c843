package main

import (
	"context"
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
	// joinTimeout bounds the wait for the first message.
	joinTimeout = 30 * time.Second
	// maxJoin bounds the first message, "CHAT <name>".
	maxJoin = 256
	// maxText bounds a member's messages; longer ones are refused.
	maxText = 4096
)

// room is one chat room: its members and the distribution of messages
// to them.
//
// Messages go to the members with websocket.BroadcastText, which encodes
// each once and never waits for a member: a member that reads slowly or
// not at all has its messages queued by its connection, up to a bound,
// and is dropped with close code 1008 when it falls further behind.
// Messages are published under mu, so every member sees the same order.
type room struct {
	mu      sync.Mutex
	members map[string]*member
	conns   []*websocket.Conn // the members' connections, for broadcasts
	byConn  map[*websocket.Conn]*member
}

// member is one participant of the chat.
type member struct {
	name string
	conn *websocket.Conn
}

func newRoom() *room {
	return &room{members: make(map[string]*member), byConn: make(map[*websocket.Conn]*member)}
}

// serve is the WebSocket handler: it runs for the whole life of a
// member's connection.
func (r *room) serve(conn *websocket.Conn) {
	defer conn.Close(websocket.StatusOK, "")

	// A client that never says who it is does not hold a connection.
	conn.SetReadDeadline(time.Now().Add(joinTimeout))
	first, err := conn.ReceiveText(maxJoin)
	fields := strings.Fields(first)
	if err != nil || len(fields) < 2 || fields[0] != "CHAT" {
		conn.Close(websocket.StatusProtocolError, `the first message must be "CHAT <name>"`)
		return
	}
	conn.SetReadDeadline(time.Time{})
	name := strings.Join(fields[1:], " ")
	m := r.join(name, conn)
	if m == nil {
		conn.Close(websocket.StatusInvalidData, "name already in use")
		return
	}
	log.Printf("%q joined from %s", name, conn.RemoteAddr)
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
	m := &member{name: name, conn: conn}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.members[name]; taken {
		return nil
	}
	r.members[name] = m
	r.byConn[conn] = m
	r.conns = append(r.conns, conn)
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

// removeLocked takes m out of the room and tells the others; r.mu is
// held.
func (r *room) removeLocked(m *member) {
	delete(r.members, m.name)
	delete(r.byConn, m.conn)
	r.conns = slices.DeleteFunc(r.conns, func(c *websocket.Conn) bool { return c == m.conn })
	log.Printf("%q left", m.name)
	r.publishLocked(notice(fmt.Sprintf("%q has left this chat", m.name)))
}

// publish sends msg to every member.
func (r *room) publish(msg Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishLocked(msg)
}

// publishLocked sends msg to every member; r.mu is held.  A member whose
// connection has ended, because it fell too far behind for instance, is
// removed, which the others learn of in turn.
func (r *room) publishLocked(msg Message) {
	failed := websocket.BroadcastText(context.Background(), r.conns, encode(msg))
	if len(failed) == 0 {
		return
	}
	var gone []*member
	for i := range failed {
		gone = append(gone, r.byConn[r.conns[i]])
	}
	for _, m := range gone {
		if r.members[m.name] == m {
			log.Printf("%q dropped: %v", m.name, m.conn.Err())
			r.removeLocked(m)
		}
	}
}

// tell sends a notice to m alone.
func (r *room) tell(m *member, text string) {
	websocket.BroadcastText(context.Background(), []*websocket.Conn{m.conn}, encode(notice(text)))
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
