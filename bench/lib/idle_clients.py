#!/usr/bin/env python3
"""idle_clients.py - open N keep-alive connections, one request each, then idle.

    idle_clients.py [--tls] HOST PORT COUNT [PATH] [BATCH]

Opens COUNT TCP connections to HOST:PORT, at most BATCH in flight at once,
sends one "GET PATH HTTP/1.1" on each and reads the complete response, leaving
every connection open and idle. With --tls each connection first completes a
TLS handshake (certificate not verified: the server's is made for the run).
Then prints "ready COUNT" on stdout and waits until stdin reaches EOF (or
SIGTERM), closes everything and exits 0.
On any failure it prints "error: ..." on stdout and exits 1.
"""

import select
import ssl
import sys
import time

from idle_common import (connect_error, connect_nonblocking, fail, handshake_step, hold,
                         raise_nofile)


def main():
    args = sys.argv[1:]
    tls = None
    if args and args[0] == "--tls":
        args = args[1:]
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    if len(args) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    host, port, count = args[0], int(args[1]), int(args[2])
    path = args[3] if len(args) > 3 else "/plaintext"
    batch = int(args[4]) if len(args) > 4 else 100

    raise_nofile(count)

    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode()
    ep = select.epoll()
    conns = {}      # fd -> [socket, state, buffer]
    idle = []       # sockets that finished their exchange
    started = 0
    deadline = time.monotonic() + 120

    def start_one():
        s = connect_nonblocking(host, port)
        conns[s.fileno()] = [s, "connecting", b""]
        ep.register(s.fileno(), select.EPOLLOUT)

    while len(idle) < count:
        while started < count and len(conns) < batch:
            start_one()
            started += 1
        if time.monotonic() > deadline:
            fail("timed out with %d of %d connections ready" % (len(idle), count))
        for fd, ev in ep.poll(1.0):
            c = conns[fd]
            s = c[0]
            if c[1] == "connecting":
                connect_error(s)
                if tls is not None:
                    s = c[0] = tls.wrap_socket(s, do_handshake_on_connect=False)
                    c[1] = "handshaking"
                else:
                    s.send(request)     # tiny; fits in an empty socket buffer
                    c[1] = "reading"
                    ep.modify(fd, select.EPOLLIN)
                    continue
            if c[1] == "handshaking":
                if not handshake_step(ep, fd, s):
                    continue
                s.send(request)
                c[1] = "reading"
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                data = s.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            if not data:
                fail("server closed a connection before responding")
            c[2] += data
            head_end = c[2].find(b"\r\n\r\n")
            if head_end < 0:
                continue
            head = c[2][:head_end].decode("latin-1")
            status = head.split(" ", 2)
            if len(status) < 2 or status[1] != "200":
                fail("unexpected status line: %r" % head.split("\r\n")[0])
            clen = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    clen = int(v.strip())
            if len(c[2]) - (head_end + 4) < clen:
                continue
            ep.unregister(fd)
            del conns[fd]
            idle.append(s)

    hold(idle)


if __name__ == "__main__":
    main()
