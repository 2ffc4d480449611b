#!/usr/bin/env python3
"""h2_idle_clients.py - open N HTTP/2 connections, one request each (or
REQUESTS), then idle.

    h2_idle_clients.py [--clear] HOST PORT COUNT [PATH] [BATCH] [REQUESTS]

Opens COUNT TCP connections to HOST:PORT, at most BATCH in flight at once.
On each: a TLS handshake offering ALPN "h2" only (certificate not verified:
the server's is made for the run; --clear: no TLS, HTTP/2 with prior
knowledge), the client preface and SETTINGS, one GET PATH on stream 1 (one
HEADERS frame with END_STREAM), then the whole response is read, the server's
SETTINGS acknowledged and the received DATA given back in WINDOW_UPDATEs.
With REQUESTS > 1, PATH holds a %d, replaced by 0, 1, ... REQUESTS - 1: the
GETs go one after the other (streams 1, 3, 5, ...), each once the response
before it has ended. The connection is then left open and idle (no PING,
no GOAWAY).
Prints "ready COUNT" on stdout and waits until stdin reaches EOF (or
SIGTERM), closes everything and exits 0.
On any failure it prints "error: ..." on stdout and exits 1.

Needs the python3 "h2" package (Debian: python3-h2, in /usr/bin/python3).
"""

import select
import ssl
import sys
import time

from idle_common import (connect_error, connect_nonblocking, fail, handshake_step, hold,
                         raise_nofile)

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    sys.stdout.write("error: the python3 h2 package is missing (apt-get install python3-h2)\n")
    sys.exit(1)


class Conn:
    __slots__ = ("sock", "state", "h2", "status", "body", "out", "sent")

    def __init__(self, sock):
        self.sock = sock
        self.state = "connecting"
        self.h2 = None
        self.status = None
        self.body = 0
        self.out = b""
        self.sent = 0


def main():
    args = sys.argv[1:]
    clear = False
    if args and args[0] == "--clear":
        clear = True
        args = args[1:]
    if len(args) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    host, port, count = args[0], int(args[1]), int(args[2])
    path = args[3] if len(args) > 3 else "/plaintext"
    batch = int(args[4]) if len(args) > 4 else 100
    requests = int(args[5]) if len(args) > 5 else 1
    if requests > 1 and "%d" not in path:
        fail("REQUESTS > 1 needs a %d in PATH")

    tls = None
    if not clear:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        tls.set_alpn_protocols(["h2"])

    raise_nofile(count)

    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    def headers(i):
        return [(":method", "GET"), (":scheme", "http" if clear else "https"),
                (":authority", "%s:%d" % (host, port)),
                (":path", path % i if requests > 1 else path)]
    ep = select.epoll()
    conns = {}      # fd -> Conn
    idle = []       # connections that finished their exchange
    started = 0
    deadline = time.monotonic() + 120

    def start_one():
        s = connect_nonblocking(host, port)
        conns[s.fileno()] = Conn(s)
        ep.register(s.fileno(), select.EPOLLOUT)

    def flush(c):
        """Send what the h2 state machine has queued; False if it blocked."""
        c.out += c.h2.data_to_send()
        while c.out:
            try:
                n = c.sock.send(c.out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return False
            c.out = c.out[n:]
        return True

    def start_h2(c):
        c.h2 = h2.connection.H2Connection(config=config)
        c.h2.initiate_connection()          # preface + SETTINGS
        c.h2.send_headers(1, headers(0), end_stream=True)
        c.sent = 1
        c.state = "reading"
        flush(c)                            # tiny; fits in an empty socket buffer

    while len(idle) < count:
        while started < count and len(conns) < batch:
            start_one()
            started += 1
        if time.monotonic() > deadline:
            fail("timed out with %d of %d connections ready" % (len(idle), count))
        for fd, ev in ep.poll(1.0):
            c = conns[fd]
            s = c.sock
            if c.state == "connecting":
                connect_error(s)
                if tls is None:
                    start_h2(c)
                    ep.modify(fd, select.EPOLLIN)
                    continue
                s = c.sock = tls.wrap_socket(s, do_handshake_on_connect=False)
                c.state = "handshaking"
            if c.state == "handshaking":
                if not handshake_step(ep, fd, s):
                    continue
                if s.selected_alpn_protocol() != "h2":
                    fail("the server chose ALPN %r, not h2" % s.selected_alpn_protocol())
                start_h2(c)
                ep.modify(fd, select.EPOLLIN)
                continue
            if c.state == "finishing":
                if flush(c):
                    ep.unregister(fd)
                    del conns[fd]
                    idle.append(c)
                continue
            if c.out and not flush(c):
                continue
            try:
                data = s.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except (ssl.SSLError, OSError) as e:
                fail("recv: %s" % e)
            if not data:
                fail("server closed a connection before responding")
            try:
                events = c.h2.receive_data(data)
            except Exception as e:      # h2.exceptions.ProtocolError and kin
                fail("HTTP/2 protocol error from the server: %s" % e)
            done = False
            for e in events:
                if isinstance(e, h2.events.ResponseReceived):
                    c.status = dict(e.headers).get(":status")
                    if c.status != "200":
                        fail("unexpected :status %r" % c.status)
                elif isinstance(e, h2.events.DataReceived):
                    c.body += len(e.data)
                    c.h2.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    if c.status is None:
                        fail("stream ended without a response")
                    if c.sent < requests:   # the next GET, on the next stream
                        c.h2.send_headers(2 * c.sent + 1, headers(c.sent), end_stream=True)
                        c.sent += 1
                        c.status = None
                    else:
                        done = True
                elif isinstance(e, h2.events.StreamReset):
                    fail("the server reset the stream (error %s)" % e.error_code)
                elif isinstance(e, h2.events.ConnectionTerminated):
                    fail("the server sent GOAWAY (error %s)" % e.error_code)
            flushed = flush(c)
            if done:
                if c.status is None:
                    fail("stream ended without a response")
                if not flushed:
                    # rare: keep it until the SETTINGS ack / WINDOW_UPDATE went out
                    ep.modify(fd, select.EPOLLOUT)
                    c.state = "finishing"
                    continue
                ep.unregister(fd)
                del conns[fd]
                idle.append(c)

    hold([c.sock for c in idle])


if __name__ == "__main__":
    main()
