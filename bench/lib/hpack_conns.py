#!/usr/bin/env python3
"""hpack_conns.py PORT N - bench/check's hpack workload: N HTTP/2
connections (clear text, prior knowledge), one after the other, each
sending six header blocks that insert a 3.9 KB field into the HPACK table
and reference it 16,000 times (one byte each: bench/attack's HPACK
amplification), then reading until the server closes the connection.
Exits 1 if the server kept one open for 20 s. Stdlib only: the blocks
are written by hand."""

import socket
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def integer(value, prefix_bits, first=0):
    """RFC 7541 section 5.1."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append(value & 0x7f | 0x80)
        value >>= 7
    return bytes(out + [value])


def string(raw):
    return integer(len(raw), 7) + raw


def block(port):
    head = b"\x82\x86"  # :method GET, :scheme http (static table)
    head += integer(4, 4) + string(b"/plaintext")  # :path, name from the table
    head += integer(1, 4) + string(b"127.0.0.1:%d" % port)  # :authority
    insert = b"\x40" + string(b"x-big") + string(b"b" * 3900)  # incremental indexing
    return head + insert + b"\xbe" * 16000  # index 62: the entry just inserted


def payload(port):
    out = PREFACE + frame(4, 0, 0, b"")
    data = block(port)
    pieces = [data[i:i + 16384] for i in range(0, len(data), 16384)]
    for sid in range(1, 13, 2):
        for n, piece in enumerate(pieces):
            flags = (0x4 if n == len(pieces) - 1 else 0) | (0x1 if n == 0 else 0)
            out += frame(1 if n == 0 else 9, flags, sid, piece)
    return out


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    data = payload(port)
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            try:
                s.sendall(data)
            except OSError:
                pass  # closed while sending: what it is for
            try:
                while s.recv(65536):
                    pass
            except socket.timeout:
                sys.exit("hpack_conns: the server kept an attacking connection open")
            except OSError:
                pass


if __name__ == "__main__":
    main()
