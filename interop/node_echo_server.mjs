// An echo server on the npm `ws` package: the independent peer that
// Cyclone's WebSocket client (examples/ws_client) is checked against, and
// the stand-in for Cyclone's /ws/echo while the other scripts are written.
//
//   node interop/node_echo_server.mjs [--port N] [--path /ws/echo]
//
// Listens on 127.0.0.1 (port 0 by default: the kernel picks a free one, so
// two runs never race for a port) and prints `listening PORT` once ready.
// For each connection it prints one line saying whether permessage-deflate
// was negotiated (`connection /ws/echo extensions=permessage-deflate` or
// `extensions=none`), so that the caller can check the client's offer was
// taken up. Every message is echoed with its own type (text or binary).
// It runs until killed.

import { createRequire } from 'node:module';

// The packages live in interop/node/node_modules (installed by setup.sh);
// ES module imports resolve only from the importing file's own folders, so
// require them through interop/node/package.json instead.
const require = createRequire(new URL('./node/package.json', import.meta.url));
const { WebSocketServer } = require('ws');

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(option('--port', '0'));
const path = option('--path', undefined);

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  path,
  // Accept permessage-deflate when the client offers it, and compress every
  // message (threshold 0; ws's default leaves messages under 1 KiB
  // uncompressed), so the client's decompressor sees short messages too.
  perMessageDeflate: { threshold: 0 },
  // Above the largest message the checks send (1 MiB), with room.
  maxPayload: 64 * 1024 * 1024,
});

server.on('listening', () => {
  console.log(`listening ${server.address().port}`);
});

server.on('connection', (ws, req) => {
  // ws.extensions: the negotiated extensions' names joined by commas.
  console.log(`connection ${req.url} extensions=${ws.extensions || 'none'}`);
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', (err) => {
    console.log(`connection error: ${err.message}`);
  });
});

server.on('error', (err) => {
  console.error(`node echo server: ${err.message}`);
  process.exit(1);
});
