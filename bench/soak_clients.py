"""bench/soak.sh's clients: well-behaved ones that count every failure,
and hostile ones, each kind in a loop of its own, bounded in count.

    python3 bench/soak_clients.py PORT SECONDS STATUS_FILE [TLS_PORT]

With TLS_PORT (a `cyclone serve --tls-self-signed` of its own), a checking
client over TLS joins the good ones, and TLS kinds the hostile ones:
handshakes that stall halfway, resets mid-handshake, garbage records, and
clients silent after their handshake.
Every 2 s STATUS_FILE is rewritten with one line: "good_ok good_failed
hostile_done tls_ok" (the hostile connections finished, whatever the
server did to them; tls_ok: the good requests made over TLS). At the end
a line "hostile kinds: KIND COUNT, ..." goes to stdout. Only 127.0.0.1.
"""
import os
import random
import socket
import ssl
import sys
import threading
import time

PORT, SECONDS, STATUS = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
TLS_PORT = int(sys.argv[4]) if len(sys.argv) > 4 else None
# The server's certificate is a throwaway self-signed one: the soak checks
# the server's bookkeeping, not the chain.
TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE
END = time.monotonic() + SECONDS
lock = threading.Lock()
counts = {"good_ok": 0, "good_failed": 0, "hostile": 0, "tls_ok": 0}
kinds_done = {}
failures = []


def bump(key, n=1):
    with lock:
        counts[key] += n


def connect(timeout=10, port=None):
    s = socket.create_connection(("127.0.0.1", port or PORT), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(f):
    """One response from the file object f: (status, body)."""
    line = f.readline()
    if not line:
        raise IOError("closed before a response")
    status = int(line.split()[1])
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    return status, f.read(length)


def good(name, depth, rounds, tls=False):
    """GETs `depth` at a time (pipelined when more than one), every answer
    checked, `rounds` times per connection, until the end; over TLS to
    TLS_PORT with `tls`."""
    batch = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * depth
    while time.monotonic() < END:
        try:
            raw = connect(port=TLS_PORT) if tls else connect()
            with (TLS.wrap_socket(raw) if tls else raw) as s:
                f = s.makefile("rb")
                for _ in range(rounds):
                    s.sendall(batch)
                    for _ in range(depth):
                        status, body = read_response(f)
                        if status == 200 and body == b"Hello, World!":
                            bump("good_ok")
                            if tls:
                                bump("tls_ok")
                        else:
                            bump("good_failed")
                            failures.append(f"{name}: {status} {body[:40]!r}")
        except Exception as e:  # a good client must never fail
            bump("good_failed")
            failures.append(f"{name}: {e!r}")


# The first bytes of a TLS 1.2+ ClientHello: a handshake record of 512
# bytes, of which a stalled handshake sends only this much.
CLIENT_HELLO_START = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def hostile(kind):
    """One hostile connection of `kind`; returns when the server dealt with it."""
    try:
        s = connect(timeout=15, port=TLS_PORT if kind.startswith("tls:") else None)
    except OSError:
        return  # refused under a storm: the server's choice
    try:
        if kind == "slowloris":
            # A head one byte at a time, never finished (the header timeout ends it).
            for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ":
                s.send(bytes([b]))
                time.sleep(0.05)
            s.recv(1024)
        elif kind == "stalled_body":
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
            s.recv(1024)
        elif kind == "reset_mid_request":
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif kind == "flood_never_read":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(2)
            try:
                for _ in range(2000):
                    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * 64)
            except OSError:
                pass  # the server stopped reading or closed: expected
        elif kind == "oversized_head":
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
            s.recv(1024)
        elif kind == "garbage":
            s.sendall(os.urandom(512))
            s.recv(1024)
        elif kind == "tls_on_plain":
            s.sendall(CLIENT_HELLO_START + os.urandom(64))
            s.recv(1024)
        elif kind == "tls:stalled_handshake":
            # Half a ClientHello, then nothing: the handshake timeout ends it.
            s.sendall(CLIENT_HELLO_START + os.urandom(32))
            s.recv(1024)
        elif kind == "tls:reset_mid_handshake":
            s.sendall(CLIENT_HELLO_START + os.urandom(32))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif kind == "tls:garbage_record":
            s.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
            s.recv(1024)
        elif kind == "tls:silent_after_handshake":
            # A whole handshake, then no request (the client gives up first).
            with TLS.wrap_socket(s) as t:
                t.settimeout(5)
                t.recv(1024)
        elif kind == "websocket_never_reads":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            frame = b"\x82\xfe\x10\x00\x00\x00\x00\x00" + b"x" * 4096  # masked, zero key
            s.settimeout(2)
            try:
                for _ in range(1000):
                    s.sendall(frame)
            except OSError:
                pass
        elif kind == "storm":
            extra = []
            for _ in range(200):
                try:
                    extra.append(connect(timeout=5))
                except OSError:
                    break
            for c in extra:
                c.close()
    except OSError:
        pass  # the server closed on us: what it should do to most of these
    finally:
        s.close()
        bump("hostile")
        with lock:
            kinds_done[kind] = kinds_done.get(kind, 0) + 1


KINDS = ["slowloris", "stalled_body", "reset_mid_request", "flood_never_read", "oversized_head",
         "garbage", "tls_on_plain", "websocket_never_reads", "storm"]
if TLS_PORT:
    KINDS += ["tls:stalled_handshake", "tls:reset_mid_handshake",
              "tls:garbage_record", "tls:silent_after_handshake"]


def hostile_loop(seed):
    rnd = random.Random(seed)
    while time.monotonic() < END:
        hostile(rnd.choice(KINDS))


def status_loop():
    while True:
        with lock:
            line = f"{counts['good_ok']} {counts['good_failed']} {counts['hostile']} {counts['tls_ok']}\n"
        with open(STATUS + ".tmp", "w") as f:
            f.write(line)
        os.replace(STATUS + ".tmp", STATUS)
        if time.monotonic() >= END + 30:
            return
        time.sleep(2)


threads = [threading.Thread(target=good, args=("keep-alive", 1, 100)),
           threading.Thread(target=good, args=("pipelined", 16, 20))]
if TLS_PORT:
    threads.append(threading.Thread(target=good, args=("tls keep-alive", 1, 100, True)))
threads += [threading.Thread(target=hostile_loop, args=(i,)) for i in range(8)]
for t in threads:
    t.daemon = True
    t.start()
st = threading.Thread(target=status_loop, daemon=True)
st.start()
for t in threads:
    t.join(timeout=max(0, END - time.monotonic()) + 60)
with lock:
    line = f"{counts['good_ok']} {counts['good_failed']} {counts['hostile']} {counts['tls_ok']}\n"
with open(STATUS, "w") as f:
    f.write(line)
print("hostile kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds_done.items())))
for msg in failures[:10]:
    print("soak: good client failure:", msg, file=sys.stderr)
sys.exit(1 if counts["good_failed"] else 0)
