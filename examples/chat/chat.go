package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/gowebsock/websocket"
	"github.com/gowebsock/websocket/hub"
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
	// brokerTimeout bounds each call to the hub's broker.
	brokerTimeout = 5 * time.Second
)

// topic is the hub topic of the chat room.
const topic = "chat"

// room is the chat room: its members are the subscribers of one hub
// topic, on this instance and on every other one of the same broker.
//
// Messages go to the members through the hub, which sends each to the
// members of every instance, in one order, with
// websocket.BroadcastText: encoded once, and never waiting for a member.
// A member that reads slowly or not at all has its messages queued by
// its connection, up to a bound, and is dropped with close code 1008
// when it falls further behind.  Names are the members' presence in the
// topic, unique across instances.
type room struct {
	hub *hub.Hub
}

func newRoom(h *hub.Hub) *room { return &room{hub: h} }

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
	if !r.join(name, conn) {
		return
	}
	log.Printf("%q joined from %s", name, conn.RemoteAddr)
	defer r.leave(name, conn)

	for {
		text, err := conn.ReceiveText(maxText)
		switch {
		case err == websocket.ErrTooLarge:
			r.tell(conn, fmt.Sprintf("your message was longer than %d bytes and was not sent", maxText))
		case err == websocket.ErrMessageType:
			r.tell(conn, "binary messages are not supported")
		case err != nil:
			return
		case text == "/quit":
			conn.Close(websocket.StatusOK, "quit request received")
			return
		case text == "/names":
			names, err := r.names()
			if err != nil {
				r.tell(conn, "the list of members is not available: "+err.Error())
				continue
			}
			r.tell(conn, "members: "+strings.Join(names, ", "))
		default:
			if err := r.publish(Message{When: time.Now(), From: name, Text: text}); err != nil {
				r.tell(conn, "your message was not sent: "+err.Error())
			}
		}
	}
}

// join subscribes conn to the room under name, and announces the new
// member to everybody, the member included.  A name in use, here or on
// another instance, is refused with close code 1007.
func (r *room) join(name string, conn *websocket.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	_, err := r.hub.SubscribeWith(ctx, conn, topic, hub.SubscribeOptions{Client: name, Unique: true})
	switch {
	case errors.Is(err, hub.ErrClientTaken):
		conn.Close(websocket.StatusInvalidData, "name already in use")
		return false
	case err != nil:
		log.Printf("%q cannot join: %v", name, err)
		conn.Close(websocket.StatusInternalServerError, "the chat is not available")
		return false
	}
	r.publish(notice(fmt.Sprintf("%q has joined this chat", name)))
	return true
}

// leave takes the member out of the room and tells the others.
func (r *room) leave(name string, conn *websocket.Conn) {
	r.hub.Leave(conn)
	log.Printf("%q left", name)
	r.publish(notice(fmt.Sprintf("%q has left this chat", name)))
}

// publish sends msg to every member, on every instance.
func (r *room) publish(msg Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	_, err := r.hub.Publish(ctx, topic, websocket.Text, []byte(encode(msg)))
	if err != nil {
		log.Printf("publishing: %v", err)
	}
	return err
}

// tell sends a notice to one member alone, in order with what the room
// sends it.
func (r *room) tell(conn *websocket.Conn, text string) {
	websocket.BroadcastText(context.Background(), []*websocket.Conn{conn}, encode(notice(text)))
}

// names returns the members' names, of every instance, in order.
func (r *room) names() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	present, err := r.hub.Presence(ctx, topic)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(present))
	for name := range present {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
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
