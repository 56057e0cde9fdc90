#!/usr/bin/env python3
"""Cyclone's WebSocket echo against an independent client: Python's
`websockets` (asyncio), then raw sockets for what no library client sends.

    interop/.venv/bin/python interop/python_client.py ws://127.0.0.1:PORT/ws/echo

With `websockets`, once with compression off and once with permessage-deflate
offered: the extension is (or isn't) in the server's answer; text and binary
messages of the sizes around each length encoding's edge come back unchanged
and of the same type; unicode text; a ping is answered by its pong; a close
with 1000 and a reason is answered with 1000.

With raw sockets (frames built here by hand): an unmasked client frame, text
that is not UTF-8, a frame header announcing more than the server's limit, a
reserved opcode, each answered by a Close with the RFC 6455 code (§7.4.1); a
fragmented message with a ping between its fragments; a handshake with the
wrong version (426 naming version 13) or without a key (400).

Each check is printed as it passes (`ok`) or fails (`FAIL`, with what was
expected and what came instead). A failed check ends only its own group; the
exit status is 1 if any check failed.
"""

import argparse
import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
import sys
import urllib.parse

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

# How long any one reply may take. Loopback answers in milliseconds; this
# only bounds a server that never answers, so the run fails instead of hanging.
REPLY_TIMEOUT = 10.0

# Payload sizes around the frame length encodings (RFC 6455 §5.2): 125 is the
# largest 7-bit length, 126 the smallest 16-bit one, 65535 the largest 16-bit
# one, 65536 the smallest 64-bit one; 0 and 1 are the trivial edges; 1 MiB is
# a message many reads long.
SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024]

# The echo's limit on a message (Cyclone's default, as Tornado's
# websocket_max_message_size), and a frame announcing one MiB more.
SERVER_MAX_MESSAGE = 10 * 1024 * 1024
OVERSIZED = SERVER_MAX_MESSAGE + 1024 * 1024

# The handshake's fixed GUID (RFC 6455 §1.3), for checking Sec-WebSocket-Accept.
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes (RFC 6455 §5.2). 0x3 is reserved for future non-control frames.
CONT, TEXT, BINARY, CLOSE, PING, PONG, RESERVED = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3

UNICODE_TEXT = "héllo wörld · ☃ · 日本語 · Ελληνικά · 🎉🚀 · 𝄞 · \u0000 end"

failures = 0
passes = 0


class CheckFailed(Exception):
    pass


def ok(name):
    global passes
    passes += 1
    print(f"  ok   python: {name}", flush=True)


def fail(name, why):
    global failures
    failures += 1
    print(f"  FAIL python: {name}: {why}", flush=True)


def expect(cond, why):
    if not cond:
        raise CheckFailed(why)


def describe(value):
    """A short account of a message for failure output (never 1 MiB of it)."""
    kind = "text" if isinstance(value, str) else "binary"
    shown = value if len(value) <= 40 else value[:40]
    more = "" if len(value) <= 40 else "..."
    return f"{kind} of {len(value)} {'chars' if kind == 'text' else 'bytes'}: {shown!r}{more}"


def text_of(n, seed):
    """n bytes of ASCII text, varied so that an echo of the wrong bytes shows."""
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(n))


def bytes_of(n, seed):
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------- websockets


async def library_group(url, compress):
    """One connection through `websockets`; every step a named check."""
    label = "permessage-deflate" if compress else "no compression"
    step = f"connect ({label})"
    try:
        async with connect(
            url,
            # None turns off websockets' default offer of permessage-deflate.
            compression="deflate" if compress else None,
            # The largest echo is 1 MiB; websockets' default limit is exactly
            # that, so allow more rather than test its boundary by accident.
            max_size=4 * 1024 * 1024,
            # No keepalive pings of the library's own to mix with ours.
            ping_interval=None,
            # Straight to 127.0.0.1, whatever proxy the environment names.
            proxy=None,
            open_timeout=REPLY_TIMEOUT,
            close_timeout=REPLY_TIMEOUT,
        ) as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions")
            step = f"extension negotiation ({label})"
            if compress:
                expect(ext is not None and "permessage-deflate" in ext,
                       f"offered permessage-deflate, the answer's Sec-WebSocket-Extensions is {ext!r}")
            else:
                expect(ext is None, f"offered nothing, yet the answer has Sec-WebSocket-Extensions: {ext!r}")
            ok(f"{step}: {ext or 'none'}")

            messages = []
            for n in SIZES:
                messages.append((f"text {n} bytes", text_of(n, n)))
                messages.append((f"binary {n} bytes", bytes_of(n, n + 1)))
            messages.append(("unicode text", UNICODE_TEXT))
            for name, payload in messages:
                step = f"echo {name} ({label})"
                await ws.send(payload)
                reply = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
                expect(type(reply) is type(payload),
                       f"sent {describe(payload)}, got back {describe(reply)}")
                expect(reply == payload,
                       f"sent {describe(payload)}, got back different content: {describe(reply)}")
                ok(step)

            step = f"ping answered with pong ({label})"
            pong = await ws.ping(b"interop ping")
            await asyncio.wait_for(pong, REPLY_TIMEOUT)
            ok(step)

            step = f"close 1000 answered with 1000 ({label})"
            await asyncio.wait_for(ws.close(1000, "interop done"), REPLY_TIMEOUT + 1)
            rcvd = ws.protocol.close_rcvd
            expect(rcvd is not None, "the server sent no Close frame before the connection ended")
            expect(rcvd.code == 1000, f"the server answered with code {rcvd.code} ({rcvd.reason!r})")
            ok(f"{step} (reason {rcvd.reason!r})")
    except CheckFailed as e:
        fail(step, e)
    except (TimeoutError, asyncio.TimeoutError):
        fail(step, f"no answer within {REPLY_TIMEOUT:.0f} s")
    except ConnectionClosed as e:
        fail(step, f"the connection closed: {e}")
    except Exception as e:  # a refused handshake, a reset: all fail the step
        fail(step, f"{type(e).__name__}: {e}")


# ---------------------------------------------------------------- raw frames


class Raw:
    """A client on a plain socket: the handshake and frames written by hand."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path or "/"
        self.sock = socket.create_connection((self.host, self.port), timeout=REPLY_TIMEOUT)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _recv_more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise CheckFailed("the server closed the connection (no more bytes)")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._recv_more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def handshake(self, version="13", key=True):
        """Sends an upgrade request; returns (status, {lowercased header: value})."""
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Version: {version}",
        ]
        self.key = base64.b64encode(os.urandom(16)).decode()
        if key:
            lines.append(f"Sec-WebSocket-Key: {self.key}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self._recv_more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def open(self):
        status, headers = self.handshake()
        expect(status == 101, f"the handshake was answered with {status}, not 101")
        want = base64.b64encode(hashlib.sha1((self.key + WS_GUID).encode()).digest()).decode()
        got = headers.get("sec-websocket-accept")
        expect(got == want, f"Sec-WebSocket-Accept is {got!r}, expected {want!r}")

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, length=None):
        """A frame as a client builds it; `mask=False` and `length` (announced
        instead of the payload's own) make the invalid ones."""
        n = len(payload) if length is None else length
        head = bytes([(0x80 if fin else 0) | opcode])
        mask_bit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mask_bit | n])
        elif n < 65536:
            head += bytes([mask_bit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            head += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def read_frame(self):
        """(fin, opcode, payload) of the server's next frame."""
        b0, b1 = self._take(2)
        expect(b1 & 0x80 == 0, "the server masked a frame (RFC 6455 §5.1 forbids it)")
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8))
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def expect_close(self, code):
        """Reads the server's answer, which must be a Close with `code`."""
        try:
            fin, opcode, payload = self.read_frame()
        except socket.timeout:
            raise CheckFailed(f"no Close within {REPLY_TIMEOUT:.0f} s")
        except ConnectionResetError:
            raise CheckFailed("the connection was reset without a Close frame")
        expect(opcode == CLOSE, f"expected a Close frame, got opcode {opcode:#x} ({len(payload)} bytes)")
        expect(len(payload) >= 2, f"the Close frame carries no code (payload {payload!r})")
        got = struct.unpack("!H", payload[:2])[0]
        reason = payload[2:].decode("utf-8", "replace")
        expect(got == code, f"the Close carries {got} ({reason!r}), expected {code}")
        return reason


def raw_check(url, name, body):
    raw = None
    try:
        raw = Raw(url)
        detail = body(raw)
        ok(f"{name}{' (' + detail + ')' if detail else ''}")
    except CheckFailed as e:
        fail(name, e)
    except socket.timeout:
        fail(name, f"no answer within {REPLY_TIMEOUT:.0f} s")
    except OSError as e:
        fail(name, f"{type(e).__name__}: {e}")
    finally:
        if raw:
            raw.close()


def unmasked(raw):
    raw.open()
    raw.send_frame(TEXT, b"hello", mask=False)
    return "reason " + repr(raw.expect_close(1002))


def invalid_utf8(raw):
    raw.open()
    # 0xC3 starts a two-byte sequence that 0x28 ('(') cannot continue.
    raw.send_frame(TEXT, b"ok so far \xc3\x28")
    return "reason " + repr(raw.expect_close(1007))


def oversized(raw):
    raw.open()
    # The header alone: a limit checked only after buffering would wait
    # for the 11 MiB and never answer, which the timeout turns into a failure.
    raw.send_frame(BINARY, b"", length=OVERSIZED)
    return "reason " + repr(raw.expect_close(1009))


def reserved_opcode(raw):
    raw.open()
    raw.send_frame(RESERVED, b"x")
    return "reason " + repr(raw.expect_close(1002))


def fragments_with_ping(raw):
    raw.open()
    raw.send_frame(TEXT, b"frag", fin=False)
    raw.send_frame(PING, b"between")  # control frames may come mid-message (§5.4)
    raw.send_frame(CONT, "mént".encode(), fin=True)
    # The pong may come before the echo or after it; wait for both.
    seen_pong = None
    message, complete = b"", False
    while seen_pong is None or not complete:
        fin, opcode, payload = raw.read_frame()
        if opcode == PONG:
            seen_pong = payload
        elif opcode in (TEXT, CONT) and not complete:
            message += payload
            complete = fin
        else:
            raise CheckFailed(f"unexpected opcode {opcode:#x} ({payload[:40]!r})")
    expect(seen_pong == b"between", f"the pong carries {seen_pong!r}, not the ping's b'between'")
    expect(message == "fragmént".encode(), f"the message came back as {message!r}")
    raw.send_frame(CLOSE, struct.pack("!H", 1000) + b"bye")
    raw.expect_close(1000)
    return None


def wrong_version(raw):
    # 8 is the last draft's version (hybi-08); RFC 6455 §4.4: the server
    # answers 426 with the versions it speaks.
    status, headers = raw.handshake(version="8")
    expect(status == 426, f"answered {status}, expected 426")
    v = headers.get("sec-websocket-version")
    expect(v == "13", f"the 426 carries Sec-WebSocket-Version: {v!r}, expected '13'")
    return None


def missing_key(raw):
    status, _ = raw.handshake(key=False)
    expect(status == 400, f"answered {status}, expected 400")
    return None


RAW_CHECKS = [
    ("unmasked client frame -> close 1002", unmasked),
    ("invalid UTF-8 text -> close 1007", invalid_utf8),
    (f"{OVERSIZED // (1024 * 1024)} MiB frame header -> close 1009 before the payload", oversized),
    ("reserved opcode 0x3 -> close 1002", reserved_opcode),
    ("fragmented text with a ping between fragments", fragments_with_ping),
    ("handshake with Sec-WebSocket-Version: 8 -> 426 naming 13", wrong_version),
    ("handshake without Sec-WebSocket-Key -> 400", missing_key),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the echo endpoint, e.g. ws://127.0.0.1:8888/ws/echo")
    args = parser.parse_args()

    asyncio.run(library_group(args.url, compress=False))
    asyncio.run(library_group(args.url, compress=True))
    for name, body in RAW_CHECKS:
        raw_check(args.url, name, body)

    print(f"python: {passes} passed, {failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
