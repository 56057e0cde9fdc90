"""Tornado hello world, one process: GET * -> "Hello, World!".

    python tornado_hello.py PORT
"""
import asyncio
import sys

import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self, _path=None):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write("Hello, World!")


async def main(port):
    # Access logging off, as for nginx (Tornado logs each request at INFO,
    # and no logging is configured here, so nothing is written anyway).
    app = tornado.web.Application([(r"/(.*)", Hello)])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
