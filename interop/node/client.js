'use strict';

// Interop client: drives a Go (gowebsock) server with the Node.js `ws`
// library. Run by interop/node_test.go (TestNodeClientAgainstGoServer) as
//
//   node client.js ws://127.0.0.1:PORT
//
// (or with GOWEBSOCK_URL set). The Go server is expected to expose:
//
//   /echo                    echoes every message with the same type
//   /close?code=C&reason=R   closes at once with Close(C, R)
//   /client-close?id=ID      reads until closed; the Go test checks the
//                            status GetStatus() reported for ID
//   /subprotocol             AccessOk picks "chat.v1" when offered
//   /forbidden               AccessOk returns false (HTTP 403)
//   /origin                  echo; AccessOk accepts only the Origin
//                            http://good.example
//   /limit                   echo with SetReadLimit(1024)
//
// With GOWEBSOCK_DEFLATE set, the permessage-deflate cases run instead (see
// deflateCases below).
//
// Every case runs on its own connection so that one failure cannot cascade
// into the next case. One JSON line is printed per case:
//
//   {"case":"...","ok":true|false,"detail":"..."}
//
// and the process exits with status 1 if any case failed.

const WebSocket = require('ws');
const { pattern, utf8Sample } = require('./pattern');

// GOWEBSOCK_CASE_TIMEOUT_MS may raise it for the deflate cases, whose
// compression is slow on the Go side under the race detector.
const CASE_TIMEOUT_MS = Number(process.env.GOWEBSOCK_CASE_TIMEOUT_MS) || 10000;
const MiB = 1024 * 1024;

const baseURL = (process.argv[2] || process.env.GOWEBSOCK_URL || '').replace(
  /\/+$/,
  ''
);
if (!baseURL) {
  console.error('usage: node client.js ws://127.0.0.1:PORT');
  process.exit(2);
}

/**
 * Opens a connection and resolves once it is open. Rejects on any handshake
 * error so that callers can simply `await`.
 */
function open(path, protocols, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(baseURL + path, protocols, options);
    // The server's Sec-WebSocket-Extensions, for the deflate cases.
    ws.once('upgrade', (res) => {
      ws.extensionsAnswer = res.headers['sec-websocket-extensions'] || '';
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/**
 * Resolves with the next message as {data: Buffer, isBinary: boolean}.
 * Rejects if the connection closes first.
 */
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const onMessage = (data, isBinary) => {
      ws.off('close', onClose);
      resolve({ data: toBuffer(data), isBinary });
    };
    const onClose = (code, reason) => {
      ws.off('message', onMessage);
      reject(new Error(`closed before message: ${code} ${reason}`));
    };
    ws.once('message', onMessage);
    ws.once('close', onClose);
  });
}

/** Resolves with {code, reason} once the connection is fully closed. */
function closed(ws) {
  if (ws.readyState === WebSocket.CLOSED) {
    return Promise.reject(new Error('already closed'));
  }
  return new Promise((resolve) => {
    ws.once('close', (code, reason) =>
      resolve({ code, reason: reason.toString() })
    );
  });
}

/** ws may hand out fragmented binary messages as Buffer[]; normalise. */
function toBuffer(data) {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Byte-for-byte comparison with a short description of the first mismatch. */
function assertSameBytes(got, want) {
  assert(got.length === want.length, `length ${got.length}, want ${want.length}`);
  const diff = got.compare(want);
  if (diff !== 0) {
    let i = 0;
    while (got[i] === want[i]) i++;
    throw new Error(`content differs at byte ${i}: ${got[i]} != ${want[i]}`);
  }
}

/** Sends one message, awaits the echo and checks type and content. */
async function echoOnce(ws, payload, binary) {
  const reply = nextMessage(ws);
  ws.send(payload, { binary });
  const { data, isBinary } = await reply;
  assert(isBinary === binary, `echo isBinary=${isBinary}, want ${binary}`);
  assertSameBytes(data, Buffer.from(payload));
}

/**
 * Runs `fn` on a fresh echo connection (/echo unless another path is given)
 * and closes it normally afterwards.
 */
async function withEcho(fn, path = '/echo', options = undefined) {
  const ws = await open(path, undefined, options);
  try {
    const detail = await fn(ws);
    const done = closed(ws);
    ws.close(1000, 'done');
    const { code } = await done;
    assert(code === 1000, `echo server answered close with ${code}, want 1000`);
    return detail;
  } finally {
    ws.terminate();
  }
}

function echoCase(name, makePayload, binary) {
  return [
    name,
    () =>
      withEcho(async (ws) => {
        const payload = makePayload();
        await echoOnce(ws, payload, binary);
        return `${Buffer.byteLength(payload)} bytes`;
      })
  ];
}

/**
 * Sends `parts` as one fragmented message (ws: {fin:false} on all but the
 * last part) with an optional ping between the fragments; RFC 6455 5.4 allows
 * control frames in the middle of a fragmented message.
 */
async function fragmentedEcho(ws, parts, binary, pingPayload) {
  const reply = nextMessage(ws);
  const pong = pingPayload ? nextPong(ws) : null;
  parts.forEach((part, i) => {
    ws.send(part, { binary, fin: i === parts.length - 1 });
    if (pingPayload && i === 0) ws.ping(pingPayload);
  });
  if (pong) {
    assertSameBytes(await pong, Buffer.from(pingPayload));
  }
  const { data, isBinary } = await reply;
  assert(isBinary === binary, `echo isBinary=${isBinary}, want ${binary}`);
  assertSameBytes(data, Buffer.concat(parts.map((p) => Buffer.from(p))));
  return `${parts.length} fragments`;
}

function nextPong(ws) {
  return new Promise((resolve) => ws.once('pong', (data) => resolve(data)));
}

/**
 * Opens `path`, performs `action` and expects the server to close the
 * connection with `wantCode` (the server's close frame arrives as ws's
 * 'close' event).
 */
async function expectServerClose(path, wantCode, wantReason, action) {
  const ws = await open(path);
  try {
    const done = closed(ws);
    if (action) await action(ws);
    const { code, reason } = await done;
    assert(code === wantCode, `close code ${code}, want ${wantCode}`);
    if (wantReason !== undefined) {
      assert(reason === wantReason, `close reason ${JSON.stringify(reason)}, want ${JSON.stringify(wantReason)}`);
    }
    return `closed with ${code} ${JSON.stringify(reason)}`;
  } finally {
    ws.terminate();
  }
}

/**
 * Expects the handshake to be refused with an HTTP status (AccessOk returned
 * false). ws reports a non-101 answer through 'unexpected-response'.
 */
function expectRejected(path, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(baseURL + path, options);
    ws.on('error', () => {}); // terminate() below emits an error; expected.
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('handshake unexpectedly succeeded'));
    });
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      ws.terminate();
      if (res.statusCode === 403) resolve(`HTTP ${res.statusCode}`);
      else reject(new Error(`HTTP ${res.statusCode}, want 403`));
    });
  });
}

const cases = [
  echoCase('echo-text', () => 'Hello, gowebsock!', false),
  echoCase('echo-binary', () => pattern(1000, 1), true),
  echoCase('echo-text-empty', () => '', false),
  echoCase('echo-binary-empty', () => Buffer.alloc(0), true),
  echoCase('echo-binary-125', () => pattern(125, 125), true),
  echoCase('echo-binary-126', () => pattern(126, 126), true),
  echoCase('echo-binary-65535', () => pattern(65535, 65535), true),
  echoCase('echo-binary-65536', () => pattern(65536, 65536), true),
  echoCase('echo-binary-16MiB', () => pattern(16 * MiB, 16), true),
  echoCase('echo-text-utf8', () => utf8Sample(), false),
  echoCase('echo-text-65536', () => 'x'.repeat(65536), false),
  [
    'echo-many-messages',
    // Several messages on one connection: frame boundaries must be kept.
    () =>
      withEcho(async (ws) => {
        for (let i = 0; i < 20; i++) {
          if (i % 2 === 0) await echoOnce(ws, `message ${i} ${'é'.repeat(i)}`, false);
          else await echoOnce(ws, pattern(i * 37, i), true);
        }
        return '20 messages';
      })
  ],
  [
    'fragmented-text',
    () => withEcho((ws) => fragmentedEcho(ws, ['Hel', 'lo, ', 'wor', 'ld'], false))
  ],
  [
    'fragmented-text-split-codepoint',
    // UTF-8 validity is a property of the whole message (RFC 6455 8.1), so a
    // code point split across fragments is legal.
    () =>
      withEcho((ws) => {
        const bytes = Buffer.from('€uro ✓ 😀', 'utf8');
        return fragmentedEcho(ws, [bytes.subarray(0, 1), bytes.subarray(1, 9), bytes.subarray(9)], false);
      })
  ],
  [
    'fragmented-binary',
    () =>
      withEcho((ws) =>
        fragmentedEcho(ws, [pattern(1000, 7), Buffer.alloc(0), pattern(70000, 8), pattern(3, 9)], true)
      )
  ],
  [
    'fragmented-with-interleaved-ping',
    () => withEcho((ws) => fragmentedEcho(ws, [pattern(10, 1), pattern(10, 2)], true, 'mid-ping'))
  ],
  [
    'ping-pong',
    () =>
      withEcho(async (ws) => {
        const payload = Buffer.from('ping-payload-\x00\xff', 'latin1');
        const pong = nextPong(ws);
        ws.ping(payload);
        assertSameBytes(await pong, payload);
        return 'pong carried the ping payload';
      })
  ],
  [
    'ping-pong-empty',
    () =>
      withEcho(async (ws) => {
        const pong = nextPong(ws);
        ws.ping();
        assertSameBytes(await pong, Buffer.alloc(0));
        return 'empty pong';
      })
  ],
  [
    'ping-pong-125',
    () =>
      withEcho(async (ws) => {
        const payload = pattern(125, 3); // maximum control frame payload
        const pong = nextPong(ws);
        ws.ping(payload);
        assertSameBytes(await pong, payload);
        return '125-byte pong';
      })
  ],
  ['server-close-4001', () => expectServerClose('/close?code=4001&reason=bye', 4001, 'bye')],
  ['server-close-1000-no-reason', () => expectServerClose('/close?code=1000&reason=', 1000, '')],
  [
    'client-close-4002',
    // The Go side checks that GetStatus() returned exactly 4002 "client-bye".
    async () => {
      const ws = await open('/client-close?id=code');
      const done = closed(ws);
      ws.close(4002, 'client-bye');
      const { code, reason } = await done;
      assert(code === 4002, `server answered close with ${code}, want the echoed 4002`);
      return `server echoed ${code} ${JSON.stringify(reason)}`;
    }
  ],
  [
    'client-close-empty',
    // A close frame without a body; Go's GetStatus() must report 1005.
    async () => {
      const ws = await open('/client-close?id=empty');
      const done = closed(ws);
      ws.close();
      const { code } = await done;
      assert(code === 1005 || code === 1000, `server answered close with ${code}`);
      return `server answered with ${code}`;
    }
  ],
  [
    'subprotocol',
    async () => {
      const ws = await open('/subprotocol', ['chat.v2', 'chat.v1']);
      try {
        assert(ws.protocol === 'chat.v1', `protocol ${JSON.stringify(ws.protocol)}, want "chat.v1"`);
        await echoOnce(ws, 'via chat.v1', false);
        return 'negotiated chat.v1';
      } finally {
        ws.close(1000);
      }
    }
  ],
  ['access-denied', () => expectRejected('/forbidden')],
  [
    'origin-allowed',
    async () => {
      const ws = await open('/origin', undefined, { origin: 'http://good.example' });
      try {
        await echoOnce(ws, 'from a good origin', false);
        return 'accepted';
      } finally {
        ws.close(1000);
      }
    }
  ],
  ['origin-rejected', () => expectRejected('/origin', { origin: 'http://evil.example' })],
  [
    'read-limit-exceeded',
    // /limit sets SetReadLimit(1024): exactly 1024 bytes are fine, 1025 bytes
    // must fail the connection with 1009 (RFC 6455 7.4.1).
    () =>
      expectServerClose('/limit', 1009, undefined, async (ws) => {
        await echoOnce(ws, pattern(1024, 4), true);
        ws.send(pattern(1025, 5), { binary: true });
      })
  ],
  [
    'invalid-utf8-text',
    // A text message that is not valid UTF-8 must fail the connection with
    // 1007 (RFC 6455 8.1). ws sends a Buffer as-is when binary is false.
    () =>
      expectServerClose('/echo', 1007, undefined, async (ws) => {
        ws.send(Buffer.from([0x48, 0x69, 0xff, 0xfe]), { binary: false });
      })
  ]
];

// ---------------------------------------------------------------------------
// permessage-deflate (RFC 7692), for TestNodeDeflateClient in
// compress_test.go. GOWEBSOCK_DEFLATE is a JSON list of configurations,
//
//   [{"name": N, "path": P, "options": {...}, "huge": bool}, ...]
//
// and for each the cases N/echo, N/fragmented and, if huge, N/16MiB run on
// the echo endpoint P, with ws's perMessageDeflate option set to `options`.
// Each checks that ws agreed on the extension and reports the server's
// Sec-WebSocket-Extensions answer; the Go side checks the frames on the wire.

const DEFLATE_SIZES = [1, 100, 1000, 64 * 1024, MiB];

/**
 * `n` bytes of ASCII text whose lines repeat each other within less than
 * the smallest LZ77 window of RFC 7692 (2^8 bytes).
 */
function compressibleText(n, seed) {
  const lines = [];
  for (let i = 0; i < 40; i++) {
    lines.push(`message ${seed} line ${i}: the quick brown fox jumps over the lazy dog\n`);
  }
  return Buffer.alloc(n, lines.join(''));
}

/** `n` bytes from a small alphabet, repeating every 251 bytes. */
function compressibleBinary(n, seed) {
  const block = pattern(251, seed);
  for (let i = 0; i < block.length; i++) block[i] = (block[i] & 0x0f) * 3;
  return Buffer.alloc(n, block);
}

/**
 * `n` bytes of random UTF-8 text: printable ASCII with 2-, 3- and 4-byte
 * sequences mixed in, which Huffman coding compresses only a little.
 */
function randomText(n, seed) {
  const r = pattern(n, seed);
  const out = Buffer.alloc(n);
  const multi = [Buffer.from('é'), Buffer.from('€'), Buffer.from('😀')];
  let o = 0;
  for (let i = 0; o < n; i++) {
    const m = multi[r[i] % 13];
    if (m && o + m.length <= n) {
      o += m.copy(out, o);
    } else {
      out[o++] = 0x21 + (r[i] % 94);
    }
  }
  return out;
}

/** [name, binary, make(n, seed)] of the payloads of the echo matrix. */
const DEFLATE_PAYLOADS = [
  ['text', false, compressibleText],
  ['random-text', false, randomText],
  ['binary', true, compressibleBinary],
  ['random-binary', true, pattern]
];

/** Checks that ws agreed on permessage-deflate and describes the answer. */
function negotiated(ws) {
  assert(
    ws.extensions === 'permessage-deflate',
    `ws.extensions is ${JSON.stringify(ws.extensions)}, want "permessage-deflate" (answer ${JSON.stringify(ws.extensionsAnswer)})`
  );
  return `answer ${JSON.stringify(ws.extensionsAnswer)}`;
}

/**
 * Every size and payload; up to 64 KiB each is sent twice in a row: with
 * context takeover the second one compresses to little more than a
 * back-reference. Larger ones, beyond the reach of the context, go once.
 */
async function deflateEchoMatrix(ws) {
  let count = 0;
  for (const n of DEFLATE_SIZES) {
    for (const [name, binary, make] of DEFLATE_PAYLOADS) {
      const payload = make(n, n + name.length);
      for (let i = 0; i < (n <= 64 * 1024 ? 2 : 1); i++) {
        await echoOnce(ws, payload, binary);
        count++;
      }
    }
  }
  return `${count} messages of ${DEFLATE_SIZES.join(', ')} bytes echoed`;
}

/**
 * Fragmented messages from ws (fin:false), each sent twice, the first time
 * with a ping between the first two fragments; the large one once.
 */
async function deflateFragmented(ws) {
  const utf8 = Buffer.from('€uro ✓ 😀', 'utf8');
  const big = compressibleText(MiB, 3);
  const random = randomText(200000, 4);
  const messages = [
    [[utf8.subarray(0, 1), utf8.subarray(1, 9), utf8.subarray(9)], false],
    [[pattern(1000, 7), Buffer.alloc(0), compressibleBinary(70000, 8), pattern(3, 9)], true],
    [[random.subarray(0, 99999), random.subarray(99999)], false]
  ];
  for (const [parts, binary] of messages) {
    await fragmentedEcho(ws, parts, binary, 'mid-ping');
    await fragmentedEcho(ws, parts, binary);
  }
  const bigParts = [big.subarray(0, 1), big.subarray(1, 300001), big.subarray(300001, 300003), big.subarray(300003)];
  await fragmentedEcho(ws, bigParts, false);
  return `${2 * messages.length + 1} fragmented messages echoed`;
}

async function deflateHuge(ws) {
  await echoOnce(ws, compressibleText(16 * MiB, 16), false);
  await echoOnce(ws, pattern(16 * MiB, 17), true);
  return '16 MiB of text (compressible) and of binary (random) echoed';
}

function deflateCases(configs) {
  const list = [];
  for (const cfg of configs) {
    const run = (fn) => () =>
      withEcho(async (ws) => `${negotiated(ws)}; ${await fn(ws)}`, cfg.path, { perMessageDeflate: cfg.options });
    list.push([`${cfg.name}/echo`, run(deflateEchoMatrix)]);
    list.push([`${cfg.name}/fragmented`, run(deflateFragmented)]);
    if (cfg.huge) list.push([`${cfg.name}/16MiB`, run(deflateHuge)]);
  }
  return list;
}

/** Runs one case with a deadline and reports it as a JSON line. */
async function runCase(name, fn) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  const started = Date.now();
  let result;
  try {
    const detail = await Promise.race([fn(), timeout]);
    result = { case: name, ok: true, detail: String(detail ?? '') };
  } catch (err) {
    result = { case: name, ok: false, detail: err && err.message ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
  result.ms = Date.now() - started;
  console.log(JSON.stringify(result));
  return result.ok;
}

async function main() {
  const only = process.env.GOWEBSOCK_CASES ? process.env.GOWEBSOCK_CASES.split(',') : null;
  const deflate = process.env.GOWEBSOCK_DEFLATE;
  let failed = 0;
  for (const [name, fn] of deflate ? deflateCases(JSON.parse(deflate)) : cases) {
    if (only && !only.includes(name)) continue;
    if (!(await runCase(name, fn))) failed++;
  }
  // Exit explicitly: a timed-out case may still hold an open socket.
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
