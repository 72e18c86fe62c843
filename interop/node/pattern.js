'use strict';

// Deterministic test payloads shared by client.js and server.js. The same
// generator is implemented in interop/helpers_test.go (pattern), so both
// sides can build the expected bytes independently instead of trusting the
// peer.

/**
 * Returns `n` pseudo-random bytes from a xorshift32 generator seeded with
 * `seed`. Pseudo-random content catches reordered, duplicated or wrongly
 * unmasked chunks that a constant fill would hide.
 */
function pattern(n, seed) {
  const buf = Buffer.allocUnsafe(n);
  let x = (seed >>> 0) || 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** A text message with 1-, 2-, 3- and 4-byte UTF-8 sequences. */
function utf8Sample() {
  return 'ASCII, café, Ωμέγα, 日本語テキスト, emoji 😀🚀, 𝄞 music';
}

module.exports = { pattern, utf8Sample };
