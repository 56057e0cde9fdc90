// Cyclone's WebSocket echo against an independent client: the npm `ws`
// package, once without compression, once with ws's permessage-deflate
// offer, and once offering 9-bit windows without context takeover.
//
//   node interop/node_client.mjs ws://127.0.0.1:PORT/ws/echo
//
// On each connection: the extension is (or isn't) negotiated; text and
// binary messages of several sizes come back unchanged and of the same type;
// unicode text; a message sent in fragments (ws's `fin: false`), which with
// compression on means one compressed message over several frames (RFC 7692
// §6.1: RSV1 on the first only); a ping is answered by a pong with the same
// data; a close with 1000 and a reason is answered with 1000.
//
// Each check is printed as it passes (`ok`) or fails (`FAIL` and why); a
// failure ends its connection's group. Exit status 1 if any check failed.

import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

// The packages live in interop/node/node_modules (installed by setup.sh);
// ES module imports resolve only from the importing file's own folders, so
// require them through interop/node/package.json instead.
const require = createRequire(new URL('./node/package.json', import.meta.url));
const WebSocket = require('ws');

// How long any one reply may take. Loopback answers in milliseconds; this
// only bounds a server that never answers, so the run fails instead of hanging.
const REPLY_TIMEOUT_MS = 10_000;

// Around the frame length encodings (RFC 6455 §5.2): 125/126 and
// 65535/65536 are where the 7-, 16- and 64-bit lengths meet; 1 MiB is a
// message many reads long.
const SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024];

const UNICODE_TEXT = 'héllo wörld · ☃ · 日本語 · Ελληνικά · 🎉🚀 · 𝄞 · end';

let passes = 0;
let failures = 0;

function ok(name) {
  passes += 1;
  console.log(`  ok   node: ${name}`);
}

function fail(name, why) {
  failures += 1;
  console.log(`  FAIL node: ${name}: ${why}`);
}

class CheckFailed extends Error {}

function expect(cond, why) {
  if (!cond) throw new CheckFailed(why);
}

// within(promise, what) -> the promise, or a rejection naming `what` once
// REPLY_TIMEOUT_MS has passed.
function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new CheckFailed(`no ${what} within ${REPLY_TIMEOUT_MS / 1000} s`)),
      REPLY_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function textOf(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 ';
  const bytes = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[bytes[i] % alphabet.length];
  return s;
}

function describe(data, isBinary) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const head = isBinary ? buf.subarray(0, 20).toString('hex') : JSON.stringify(buf.subarray(0, 40).toString());
  return `${isBinary ? 'binary' : 'text'} of ${buf.length} bytes: ${head}${buf.length > 40 ? '...' : ''}`;
}

// A connection whose incoming messages, pongs and close queue up to be
// awaited one at a time, in order.
class Peer {
  constructor(url, perMessageDeflate) {
    this.ws = new WebSocket(url, {
      perMessageDeflate,
      handshakeTimeout: REPLY_TIMEOUT_MS,
      // Above the largest echo (1 MiB), with room.
      maxPayload: 64 * 1024 * 1024,
    });
    this.messages = [];
    this.waiting = null;
    this.ws.on('message', (data, isBinary) => this.push({ data, isBinary }));
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.push({ closed: true, code });
      });
    });
    this.errors = [];
    this.ws.on('error', (err) => this.errors.push(err.message));
  }

  opened() {
    return within(
      new Promise((resolve, reject) => {
        this.ws.once('open', resolve);
        this.ws.once('error', (err) => reject(new CheckFailed(`handshake failed: ${err.message}`)));
        this.ws.once('unexpected-response', (_req, res) =>
          reject(new CheckFailed(`handshake answered with HTTP ${res.statusCode}`)),
        );
      }),
      'handshake answer',
    );
  }

  push(item) {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(item);
    } else {
      this.messages.push(item);
    }
  }

  async next() {
    const item = this.messages.length
      ? this.messages.shift()
      : await within(new Promise((resolve) => (this.waiting = resolve)), 'reply');
    if (item.closed) throw new CheckFailed(`the connection closed (code ${item.code}) instead of a reply`);
    return item;
  }
}

async function echoes(peer, label, name, payload, isBinary, sendParts) {
  const step = `echo ${name} (${label})`;
  sendParts();
  const reply = await peer.next();
  expect(reply.isBinary === isBinary, `sent ${describe(payload, isBinary)}, got back ${describe(reply.data, reply.isBinary)}`);
  expect(
    Buffer.compare(Buffer.from(reply.data), Buffer.from(payload)) === 0,
    `sent ${describe(payload, isBinary)}, got back different content: ${describe(reply.data, reply.isBinary)}`,
  );
  ok(step);
}

// The offers, one connection each. threshold 0: compress every message,
// not only those over 1 KiB (ws's default), so that small compressed frames
// are exercised too. The last asks for the smallest windows zlib allows for
// raw deflate (RFC 7692 allows 8, zlib refuses it) and no context takeover,
// which ws refuses to connect without the server agreeing to in its answer.
const SMALL_WINDOWS = 9;
const OFFERS = {
  'no compression': false,
  'permessage-deflate': { threshold: 0 },
  [`permessage-deflate, ${SMALL_WINDOWS}-bit windows, no context takeover`]: {
    threshold: 0,
    serverMaxWindowBits: SMALL_WINDOWS,
    clientMaxWindowBits: SMALL_WINDOWS,
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
  },
};

async function group(url, label) {
  const compress = OFFERS[label] !== false;
  let step = `connect (${label})`;
  const peer = new Peer(url, OFFERS[label]);
  try {
    await peer.opened();
    step = `extension negotiation (${label})`;
    const ext = peer.ws.extensions;
    if (compress) expect(ext.includes('permessage-deflate'), `offered permessage-deflate, negotiated ${JSON.stringify(ext)}`);
    else expect(ext === '', `offered nothing, yet negotiated ${JSON.stringify(ext)}`);
    ok(`${step}: ${ext || 'none'}`);

    for (const n of SIZES) {
      step = `echo text ${n} bytes (${label})`;
      const text = textOf(n);
      await echoes(peer, label, `text ${n} bytes`, text, false, () => peer.ws.send(text));
      step = `echo binary ${n} bytes (${label})`;
      const bin = randomBytes(n);
      await echoes(peer, label, `binary ${n} bytes`, bin, true, () => peer.ws.send(bin));
    }
    step = `echo unicode text (${label})`;
    await echoes(peer, label, 'unicode text', UNICODE_TEXT, false, () => peer.ws.send(UNICODE_TEXT));

    step = `echo text sent in 3 fragments (${label})`;
    const parts = ['first part, ', 'sécond part, ', 'third part'];
    await echoes(peer, label, 'text sent in 3 fragments', parts.join(''), false, () =>
      parts.forEach((p, i) => peer.ws.send(p, { fin: i === parts.length - 1 })),
    );

    step = `ping answered with pong (${label})`;
    const pong = within(new Promise((resolve) => peer.ws.once('pong', resolve)), 'pong');
    peer.ws.ping(Buffer.from('node ping'));
    const data = await pong;
    expect(data.toString() === 'node ping', `the pong carries ${JSON.stringify(data.toString())}, not "node ping"`);
    ok(step);

    step = `close 1000 answered with 1000 (${label})`;
    peer.ws.close(1000, 'node done');
    const { code, reason } = await within(peer.closed, 'close answer');
    expect(code === 1000, `the server answered with code ${code} (${JSON.stringify(reason)})`);
    ok(`${step} (reason ${JSON.stringify(reason)})`);
  } catch (err) {
    const extra = peer.errors.length ? ` [ws errors: ${peer.errors.join('; ')}]` : '';
    fail(step, (err instanceof CheckFailed ? err.message : `${err.name}: ${err.message}`) + extra);
    peer.ws.terminate();
  }
}

const url = process.argv[2];
if (!url) {
  console.error('usage: node interop/node_client.mjs ws://127.0.0.1:PORT/ws/echo');
  process.exit(2);
}
for (const label of Object.keys(OFFERS)) await group(url, label);
console.log(`node: ${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
