#!/usr/bin/env python3
"""tls_conns.py - connections over TLS, one after the other, each a full
handshake and one request.

    tls_conns.py PORT COUNT [PATH]

Each of COUNT connections makes a full TLS handshake (no session is
offered for resumption; the certificate is not verified: it is made for
the run), sends one HTTP/1.1 GET PATH with "Connection: close" and reads
the response to the server's close: what bench/check counts per connection
does not depend on timing. Exits 1 with a message on anything but a 200.
"""

import socket
import ssl
import sys


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/plaintext"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    request = ("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode()
    for _ in range(count):
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60),
                             server_hostname="localhost") as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data.startswith(b"HTTP/1.1 200 "):
                sys.exit("tls_conns.py: %r" % data[:80])


if __name__ == "__main__":
    main()
