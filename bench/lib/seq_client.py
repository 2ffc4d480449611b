#!/usr/bin/env python3
"""seq_client.py - a fixed HTTP/1.1 request mix, one connection, in lock step.

    seq_client.py PORT REQUESTS PATH DEPTH

Sends REQUESTS requests for PATH on one keep-alive connection, DEPTH per
write (1: one at a time; 16: pipelined), and reads every response before
the next write, so the server sees the same reads every run: what
bench/check counts does not depend on timing. Exits 1 with a message on
anything but a 200 with a Content-Length.
"""

import socket
import sys


def read_response(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("seq_client.py: connection closed")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200 "):
        sys.exit("seq_client.py: %r" % lines[0])
    length = [l.split(b":", 1)[1] for l in lines[1:] if l.lower().startswith(b"content-length:")]
    if not length:
        sys.exit("seq_client.py: no Content-Length")
    size = int(length[0])
    while len(buf) < size:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("seq_client.py: connection closed in a body")
        buf += chunk
    return buf[size:]


def main():
    port, requests, path, depth = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    batch = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode() * depth
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        buf = b""
        for _ in range(requests // depth):
            sock.sendall(batch)
            for _ in range(depth):
                buf = read_response(sock, buf)


if __name__ == "__main__":
    main()
