#!/usr/bin/env python3
"""An echo server on Python's `websockets`: a second independent server for
Cyclone's WebSocket client (examples/ws_client), beside node_echo_server.mjs.

    interop/.venv/bin/python interop/python_echo_server.py

Listens on 127.0.0.1, on a port the kernel picks (so that two runs never
race for one), and prints `listening PORT` once ready. For each connection
it prints `connection PATH extensions=VALUE`: the Sec-WebSocket-Extensions
it answered with, or `none`. Every message is echoed with its own type. It
runs until killed.

It differs from the ws server in what matters to a client: with compression
on (websockets' default), its answer to `permessage-deflate;
client_max_window_bits` asks for 12-bit windows both ways,
`server_max_window_bits=12; client_max_window_bits=12`, parameters the
client must take even where it did not name them in its offer.
"""

import asyncio

from websockets.asyncio.server import serve


async def echo(ws):
    ext = ws.response.headers.get("Sec-WebSocket-Extensions") or "none"
    print(f"connection {ws.request.path} extensions={ext}", flush=True)
    async for message in ws:
        await ws.send(message)


async def main():
    # max_size: above the largest line the checks send (100 KiB), with room.
    async with serve(echo, "127.0.0.1", 0, max_size=64 * 1024 * 1024) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
