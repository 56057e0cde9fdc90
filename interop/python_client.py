#!/usr/bin/env python3
"""Cyclone's WebSocket echo against an independent client: Python's
`websockets` (asyncio), then raw sockets for what no library client sends.

    interop/.venv/bin/python interop/python_client.py ws://127.0.0.1:PORT/ws/echo

With `websockets`, once with compression off, once with websockets' own offer
of permessage-deflate, and once offering 9-bit windows without context
takeover: the extension is (or isn't) in the server's answer; text and binary
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
import zlib

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

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


# The compression settings each group offers: none; websockets' default
# offer (`permessage-deflate; client_max_window_bits`); and the smallest
# windows zlib allows for raw deflate on both sides (RFC 7692's 8 is refused
# by zlib, so 9) with no context takeover, which the server must echo in its
# answer (RFC 7692 §7.1.1.1, §7.1.2.1) and then compress within.
SMALL_WINDOWS = 9
COMPRESSION = {
    "no compression": dict(compression=None),
    "permessage-deflate": dict(compression="deflate"),
    f"permessage-deflate, {SMALL_WINDOWS}-bit windows, no context takeover": dict(
        compression=None,
        extensions=[
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=SMALL_WINDOWS,
                client_max_window_bits=SMALL_WINDOWS,
            )
        ],
    ),
}


async def library_group(url, label):
    """One connection through `websockets`; every step a named check."""
    compress = label != "no compression"
    step = f"connect ({label})"
    ws = None
    try:
        ws = await connect(
            url,
            # compression=None turns off websockets' default offer; the
            # small-window group makes its own through `extensions`.
            **COMPRESSION[label],
            # The largest echo is the server's limit, 10 MiB (websockets'
            # default is 1 MiB); allow a little more, so the limit tested is
            # the server's and never the library's.
            max_size=SERVER_MAX_MESSAGE + 1024,
            # No keepalive pings of the library's own to mix with ours.
            ping_interval=None,
            # Straight to 127.0.0.1, whatever proxy the environment names.
            proxy=None,
            open_timeout=REPLY_TIMEOUT,
            close_timeout=REPLY_TIMEOUT,
        )
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        step = f"extension negotiation ({label})"
        if compress:
            expect(ext is not None and "permessage-deflate" in ext,
                   f"offered permessage-deflate, the answer's Sec-WebSocket-Extensions is {ext!r}")
            if "window" in label:
                # websockets itself refuses an answer without these; checked
                # here too, so that a change of library could not hide it.
                for param in ["server_no_context_takeover", f"server_max_window_bits={SMALL_WINDOWS}"]:
                    expect(param in ext.replace(" ", ""), f"the answer {ext!r} lacks {param}")
        else:
            expect(ext is None, f"offered nothing, yet the answer has Sec-WebSocket-Extensions: {ext!r}")
        ok(f"{step}: {ext or 'none'}")

        messages = []
        for n in SIZES:
            messages.append((f"text {n} bytes", text_of(n, n)))
            messages.append((f"binary {n} bytes", bytes_of(n, n + 1)))
        messages.append(("unicode text", UNICODE_TEXT))
        # A message of exactly the limit is allowed (one byte more is not).
        # Compressed, it is made compressible: random bytes deflate to a
        # little more than they are (10,511,361 bytes here), and Cyclone, like
        # Tornado, holds the frame's wire length to the limit before
        # inflating, so that would be refused with 1009 for its wire size.
        if compress:
            at_limit = (text_of(4096, 7).encode() * (SERVER_MAX_MESSAGE // 4096 + 1))[:SERVER_MAX_MESSAGE]
        else:
            at_limit = bytes_of(SERVER_MAX_MESSAGE, 7)
        messages.append((f"binary of exactly the server's limit, {SERVER_MAX_MESSAGE} bytes", at_limit))
        for name, payload in messages:
            step = f"echo {name} ({label})"
            await ws.send(payload)
            reply = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
            expect(type(reply) is type(payload),
                   f"sent {describe(payload)}, got back {describe(reply)}")
            expect(reply == payload,
                   f"sent {describe(payload)}, got back different content: {describe(reply)}")
            ok(step)

        # Without waiting for replies: the server reads while it writes,
        # and keeps the order.
        step = f"100 messages sent back to back, echoed in order ({label})"
        burst = [f"burst {i} " + text_of(i * 37, i) for i in range(100)]
        for m in burst:
            await ws.send(m)
        for i, m in enumerate(burst):
            reply = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
            expect(reply == m, f"reply {i} is {describe(reply)}, expected {describe(m)}")
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
    finally:
        # After a failure the connection may be half gone; closing it is
        # tidying up, and its errors would only hide the failure above.
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), REPLY_TIMEOUT)
            except Exception:
                pass


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

    def handshake(self, version="13", key=True, extra=()):
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
        lines += extra
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

    def open(self, extra=()):
        status, headers = self.handshake(extra=extra)
        expect(status == 101, f"the handshake was answered with {status}, not 101")
        want = base64.b64encode(hashlib.sha1((self.key + WS_GUID).encode()).digest()).decode()
        got = headers.get("sec-websocket-accept")
        expect(got == want, f"Sec-WebSocket-Accept is {got!r}, expected {want!r}")
        return headers

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, length=None, rsv1=False):
        """A frame as a client builds it; `mask=False` and `length` (announced
        instead of the payload's own) make the invalid ones; `rsv1` marks a
        compressed message (RFC 7692 §6)."""
        n = len(payload) if length is None else length
        head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
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


def long_control_frame(raw):
    raw.open()
    # Control frames carry at most 125 bytes (§5.5).
    raw.send_frame(PING, b"p" * 126)
    return "reason " + repr(raw.expect_close(1002))


def fragmented_control_frame(raw):
    raw.open()
    # Control frames must not be fragmented (§5.5).
    raw.send_frame(PING, b"half", fin=False)
    return "reason " + repr(raw.expect_close(1002))


def rsv1_unnegotiated(raw):
    raw.open()
    # RSV1 means "compressed" only once permessage-deflate is agreed (§5.2).
    raw.send_frame(TEXT, b"plain", rsv1=True)
    return "reason " + repr(raw.expect_close(1002))


def continuation_without_start(raw):
    raw.open()
    raw.send_frame(CONT, b"orphan")
    return "reason " + repr(raw.expect_close(1002))


def new_message_inside_fragments(raw):
    raw.open()
    # A data frame other than a continuation before the FIN (§5.4).
    raw.send_frame(TEXT, b"first", fin=False)
    raw.send_frame(TEXT, b"second")
    return "reason " + repr(raw.expect_close(1002))


def close_one_byte(raw):
    raw.open()
    # A close payload is empty or starts with a two-byte code (§5.5.1).
    raw.send_frame(CLOSE, b"\x03")
    return "reason " + repr(raw.expect_close(1002))


def close_reserved_code(raw):
    raw.open()
    # 1005 is for reporting "no code"; it must never be sent (§7.4.1).
    raw.send_frame(CLOSE, struct.pack("!H", 1005))
    return "reason " + repr(raw.expect_close(1002))


def utf8_split_across_fragments(raw):
    raw.open()
    # "☃" is E2 98 83; the fragments cut it after its first byte. Only the
    # message as a whole need be valid UTF-8 (§5.6).
    snow = "a☃b".encode()
    raw.send_frame(TEXT, snow[:2], fin=False)
    raw.send_frame(CONT, snow[2:])
    message, fin = b"", False
    while not fin:
        fin, opcode, payload = raw.read_frame()
        expect(opcode in (TEXT, CONT), f"expected the echo, got opcode {opcode:#x} ({payload[:40]!r})")
        message += payload
    expect(message == snow, f"the message came back as {message!r}")
    return None


def oversized_in_fragments(raw):
    raw.open()
    # 11 fragments of 1 MiB: each frame is small, the message is not. Sent
    # one by one, stopping at the server's Close: the limit must hold for the
    # message as it grows, not only for one frame's header.
    chunk = b"f" * (1024 * 1024)
    for i in range(OVERSIZED // len(chunk)):
        try:
            raw.send_frame(BINARY if i == 0 else CONT, chunk, fin=False)
        except (BrokenPipeError, ConnectionResetError):
            break  # the server has closed; its Close is in our buffer
    return "reason " + repr(raw.expect_close(1009))


def deflate_bomb(raw):
    headers = raw.open(extra=["Sec-WebSocket-Extensions: permessage-deflate"])
    ext = headers.get("sec-websocket-extensions", "")
    expect("permessage-deflate" in ext, f"the offer of permessage-deflate was answered with {ext!r}")
    # 11 MiB of zeros deflate to about 11 KB: the limit must apply to the
    # inflated size (RFC 7692 §8.1 warns of exactly this).
    z = zlib.compressobj(wbits=-15)
    body = z.compress(bytes(OVERSIZED)) + z.flush(zlib.Z_SYNC_FLUSH)
    raw.send_frame(BINARY, body[:-4], rsv1=True)  # without the 00 00 FF FF tail (§7.2.1)
    return f"{len(body) - 4} bytes on the wire; reason " + repr(raw.expect_close(1009))


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
    ("ping of 126 bytes -> close 1002", long_control_frame),
    ("fragmented ping -> close 1002", fragmented_control_frame),
    ("RSV1 without permessage-deflate -> close 1002", rsv1_unnegotiated),
    ("continuation frame with no message started -> close 1002", continuation_without_start),
    ("new text frame inside a fragmented message -> close 1002", new_message_inside_fragments),
    ("close with a 1-byte payload -> close 1002", close_one_byte),
    ("close with code 1005 -> close 1002", close_reserved_code),
    ("UTF-8 character split across fragments", utf8_split_across_fragments),
    (f"{OVERSIZED // (1024 * 1024)} fragments of 1 MiB -> close 1009", oversized_in_fragments),
    (f"deflated message inflating to {OVERSIZED // (1024 * 1024)} MiB -> close 1009", deflate_bomb),
    ("handshake with Sec-WebSocket-Version: 8 -> 426 naming 13", wrong_version),
    ("handshake without Sec-WebSocket-Key -> 400", missing_key),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the echo endpoint, e.g. ws://127.0.0.1:8888/ws/echo")
    args = parser.parse_args()

    for label in COMPRESSION:
        asyncio.run(library_group(args.url, label))
    for name, body in RAW_CHECKS:
        raw_check(args.url, name, body)

    print(f"python: {passes} passed, {failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
