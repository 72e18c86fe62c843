'use strict';

// Interop server: a Node.js `ws` peer for the Go client (websocket.Dial),
// run by interop/node_test.go (TestGoDialAgainstNodeServer) as
//
//   node server.js
//
// It listens on 127.0.0.1 on a free port and prints one JSON line with it:
//
//   {"event":"listening","port":PORT}
//
// Paths (an optional ?id=ID tags the connection in the events below):
//
//   /echo             echoes every message with the same type
//   /close?code=C&reason=R
//                     closes at once with code C and reason R
//   /ping             sends a ping; once the matching pong arrives it sends
//                     the text "pong-ok" (or "pong-bad:<hex>"), then echoes
//   /fragmented       sends a fragmented text message whose fragments split
//                     a UTF-8 code point, then a fragmented binary message
//                     (pattern(70000, 42) in 3 fragments), then echoes
//   /echo-fragmented  echoes every message as three fragments, split at a
//                     third and two thirds of its bytes (ws's {fin:false})
//   /subprotocol      selects "chat.v1" when the client offers it, echoes
//   /origin           accepts only Origin http://good.example (else 403)
//
// Since a closed connection cannot carry a report, every close the server
// sees is printed on stdout, so the Go test can check the code it sent:
//
//   {"event":"close","id":ID,"path":PATH,"code":CODE,"reason":REASON}
//
// With GOWEBSOCK_DEFLATE set to a JSON object, the server accepts
// permessage-deflate (RFC 7692) with that object as ws's perMessageDeflate
// options (threshold, serverNoContextTakeover, clientMaxWindowBits, ...);
// without it, it declines the extension, as ws servers do by default.
//
// The server exits when its stdin closes (the Go test holds a pipe) or on
// SIGTERM/SIGINT, so an abandoned server cannot outlive its test.

const http = require('http');
const { WebSocketServer } = require('ws');
const { pattern } = require('./pattern');

const GOOD_ORIGIN = 'http://good.example';

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

/** Picks "chat.v1" when offered; otherwise no subprotocol. */
function handleProtocols(protocols) {
  return protocols.has('chat.v1') ? 'chat.v1' : false;
}

/** Rejects /origin handshakes whose Origin is not GOOD_ORIGIN with 403. */
function verifyClient(info, done) {
  const { pathname } = new URL(info.req.url, 'http://localhost');
  if (pathname === '/origin' && info.origin !== GOOD_ORIGIN) {
    done(false, 403, 'Forbidden origin');
    return;
  }
  done(true);
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

/** Sends `parts` as one message using ws's low-level {fin:false} API. */
function sendFragmented(ws, parts, binary) {
  parts.forEach((part, i) => ws.send(part, { binary, fin: i === parts.length - 1 }));
}

const PING_PAYLOAD = Buffer.from('server-ping-\x00\x7f\xff', 'latin1');

/** Sends a ping and reports whether the Go client answered it correctly. */
function pingThenEcho(ws) {
  ws.once('pong', (data) => {
    if (Buffer.compare(data, PING_PAYLOAD) === 0) ws.send('pong-ok');
    else ws.send('pong-bad:' + data.toString('hex'));
    echo(ws);
  });
  ws.ping(PING_PAYLOAD);
}

function echoFragmented(ws) {
  ws.on('message', (data, isBinary) => {
    const n = data.length;
    const a = Math.floor(n / 3);
    const b = Math.floor((2 * n) / 3);
    sendFragmented(ws, [data.subarray(0, a), data.subarray(a, b), data.subarray(b)], isBinary);
  });
}

function fragmentedThenEcho(ws) {
  // "€" is E2 82 AC: the first fragment ends in the middle of it.
  const text = Buffer.from('frag€mented ✓ 😀', 'utf8');
  sendFragmented(ws, [text.subarray(0, 5), text.subarray(5, 12), text.subarray(12)], false);
  const bin = pattern(70000, 42);
  sendFragmented(ws, [bin.subarray(0, 1), bin.subarray(1, 65537), bin.subarray(65537)], true);
  echo(ws);
}

function onConnection(ws, req) {
  const url = new URL(req.url, 'http://localhost');
  const id = url.searchParams.get('id') || '';
  ws.on('error', (err) => emit({ event: 'error', id, path: url.pathname, message: err.message }));
  ws.on('close', (code, reason) =>
    emit({ event: 'close', id, path: url.pathname, code, reason: reason.toString() })
  );

  switch (url.pathname) {
    case '/close':
      ws.close(Number(url.searchParams.get('code')), url.searchParams.get('reason') || '');
      break;
    case '/ping':
      pingThenEcho(ws);
      break;
    case '/fragmented':
      fragmentedThenEcho(ws);
      break;
    case '/echo-fragmented':
      echoFragmented(ws);
      break;
    default:
      echo(ws);
  }
}

function main() {
  const server = http.createServer((req, res) => {
    res.writeHead(404).end();
  });
  const perMessageDeflate = process.env.GOWEBSOCK_DEFLATE ? JSON.parse(process.env.GOWEBSOCK_DEFLATE) : false;
  const wss = new WebSocketServer({ server, handleProtocols, verifyClient, perMessageDeflate });
  wss.on('connection', onConnection);

  const shutdown = () => {
    for (const ws of wss.clients) ws.terminate();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();

  server.listen(0, '127.0.0.1', () => {
    emit({ event: 'listening', port: server.address().port });
  });
}

main();
