// The chat client: it joins under a random name, shows the messages,
// and reconnects after a drop.  The protocol is described in main.go.
"use strict";

const adjectives = ["amber", "brisk", "calm", "dapper", "eager", "fuzzy", "gentle", "happy", "jolly", "lucky", "mellow", "nimble", "quiet", "rapid", "sunny", "witty"];
const animals = ["badger", "heron", "koala", "lynx", "marmot", "otter", "panda", "puffin", "quokka", "raven", "seal", "tapir", "walrus", "yak", "zebra", "fox"];

const pick = (list) => list[Math.floor(Math.random() * list.length)];
const randomName = () => pick(adjectives) + "-" + pick(animals) + "-" + Math.floor(Math.random() * 1000);

const messages = document.getElementById("messages");
const statusEl = document.getElementById("status");
const nameEl = document.getElementById("name");
const form = document.getElementById("compose");
const input = document.getElementById("text");
const button = form.querySelector("button");

let name = randomName();
let ws = null;
let retryDelay = 500; // doubled after each failed attempt, up to maxRetryDelay
const maxRetryDelay = 10000;
let quitting = false;

function setStatus(state, text) {
  statusEl.className = "status " + state;
  statusEl.textContent = text;
  button.disabled = state !== "online";
}

function show(msg) {
  const el = document.createElement("div");
  const kind = msg.From === "" ? "notice" : msg.From === name ? "own" : "other";
  el.className = "msg " + kind;
  const meta = document.createElement("span");
  meta.className = "meta";
  const when = new Date(msg.When).toLocaleTimeString();
  meta.textContent = kind === "notice" ? when : msg.From + " · " + when;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = msg.Text;
  el.append(meta, text);
  el.dataset.from = msg.From;
  const atBottom = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 4;
  messages.append(el);
  if (atBottom) messages.scrollTop = messages.scrollHeight;
}

function localNotice(text) {
  show({ When: new Date().toISOString(), From: "", Text: text });
}

function connect() {
  nameEl.textContent = name;
  setStatus("connecting", "connecting");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + "/api/chat");
  ws.onopen = () => {
    ws.send("CHAT " + name);
    retryDelay = 500;
    setStatus("online", "online");
  };
  ws.onmessage = (ev) => {
    try {
      show(JSON.parse(ev.data));
    } catch (err) {
      localNotice("unreadable message from the server: " + err);
    }
  };
  ws.onclose = (ev) => {
    ws = null;
    if (quitting) {
      setStatus("offline", "left the chat");
      return;
    }
    if (ev.code === 1007) {
      // The name is taken: try again at once under another one.
      localNotice(name + " is already in use; trying another name");
      name = randomName();
      connect();
      return;
    }
    setStatus("offline", "reconnecting");
    localNotice("connection lost (code " + ev.code + (ev.reason ? ", " + ev.reason : "") + "); reconnecting in " + Math.round(retryDelay / 1000) + " s");
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, maxRetryDelay);
  };
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = input.value;
  if (text === "" || ws === null || ws.readyState !== WebSocket.OPEN) return;
  if (text === "/quit") quitting = true;
  ws.send(text);
  input.value = "";
});

connect();
