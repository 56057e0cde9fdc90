"""Load for bench/callgrind.sh: 8 keep-alive connections, BATCHES writes of
DEPTH pipelined `GET PATH` each, every answer read before the next write.

    python3 bench/callgrind_client.py PORT BATCHES DEPTH PATH
"""
import socket
import sys

port, batches, depth, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
request = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") * depth
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
for _ in range(batches):
    for c in conns:
        c.sendall(request)
    for c in conns:
        got = b""
        # Each answer carries one Content-Length line.
        while got.count(b"Content-Length:") < depth or not got.endswith(b"Hello, World!"):
            data = c.recv(65536)
            assert data, "server closed the connection"
            got += data
