"""bench/soak.sh's clients: well-behaved ones that count every failure,
and hostile ones, each kind in a loop of its own, bounded in count.

    python3 bench/soak_clients.py PORT SECONDS STATUS_FILE

Every 2 s STATUS_FILE is rewritten with one line: "good_ok good_failed
hostile_done hostile_kinds" (the hostile connections finished, whatever
the server did to them). Only 127.0.0.1.
"""
import os
import random
import socket
import sys
import threading
import time

PORT, SECONDS, STATUS = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
END = time.monotonic() + SECONDS
lock = threading.Lock()
counts = {"good_ok": 0, "good_failed": 0, "hostile": 0}
failures = []


def bump(key, n=1):
    with lock:
        counts[key] += n


def connect(timeout=10):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
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


def good(name, depth, rounds):
    """GETs `depth` at a time (pipelined when more than one), every answer
    checked, `rounds` times per connection, until the end."""
    batch = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" * depth
    while time.monotonic() < END:
        try:
            with connect() as s:
                f = s.makefile("rb")
                for _ in range(rounds):
                    s.sendall(batch)
                    for _ in range(depth):
                        status, body = read_response(f)
                        if status == 200 and body == b"Hello, World!":
                            bump("good_ok")
                        else:
                            bump("good_failed")
                            failures.append(f"{name}: {status} {body[:40]!r}")
        except Exception as e:  # a good client must never fail
            bump("good_failed")
            failures.append(f"{name}: {e!r}")


def hostile(kind):
    """One hostile connection of `kind`; returns when the server dealt with it."""
    try:
        s = connect(timeout=15)
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
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))
            s.recv(1024)
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


KINDS = ["slowloris", "stalled_body", "reset_mid_request", "flood_never_read", "oversized_head",
         "garbage", "tls_on_plain", "websocket_never_reads", "storm"]


def hostile_loop(seed):
    rnd = random.Random(seed)
    while time.monotonic() < END:
        hostile(rnd.choice(KINDS))


def status_loop():
    while True:
        with lock:
            line = f"{counts['good_ok']} {counts['good_failed']} {counts['hostile']}\n"
        with open(STATUS + ".tmp", "w") as f:
            f.write(line)
        os.replace(STATUS + ".tmp", STATUS)
        if time.monotonic() >= END + 30:
            return
        time.sleep(2)


threads = [threading.Thread(target=good, args=("keep-alive", 1, 100)),
           threading.Thread(target=good, args=("pipelined", 16, 20))]
threads += [threading.Thread(target=hostile_loop, args=(i,)) for i in range(8)]
for t in threads:
    t.daemon = True
    t.start()
st = threading.Thread(target=status_loop, daemon=True)
st.start()
for t in threads:
    t.join(timeout=max(0, END - time.monotonic()) + 60)
with lock:
    line = f"{counts['good_ok']} {counts['good_failed']} {counts['hostile']}\n"
with open(STATUS, "w") as f:
    f.write(line)
for msg in failures[:10]:
    print("soak: good client failure:", msg, file=sys.stderr)
sys.exit(1 if counts["good_failed"] else 0)
