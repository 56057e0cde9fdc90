"""Tornado WebSocket server, one process.

    python tornado_ws.py PORT [--deflate]

/ws/chat: every text message is sent to every connection open on
/ws/chat, the sender included (a reference for wsload --broadcast).
Any other path: every text or binary message is echoed with its own
opcode. --deflate accepts permessage-deflate when a client offers it
(Tornado's default compression options); without it Tornado declines.
"""
import asyncio
import sys

import tornado.web
import tornado.websocket

DEFLATE = "--deflate" in sys.argv


class Echo(tornado.websocket.WebSocketHandler):
    def get_compression_options(self):
        return {} if DEFLATE else None

    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


class Chat(tornado.websocket.WebSocketHandler):
    members = set()

    def open(self):
        Chat.members.add(self)

    def on_close(self):
        Chat.members.discard(self)

    def on_message(self, message):
        for member in list(Chat.members):
            try:
                member.write_message(message)
            except tornado.websocket.WebSocketClosedError:
                Chat.members.discard(member)


async def main(port):
    app = tornado.web.Application([(r"/ws/chat", Chat), (r"/.*", Echo)])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
