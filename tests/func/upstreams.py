"""upstreams - real backend servers for the proxy tests, on 127.0.0.1 port 0.

    up = Upstream()                 # a threading http.server, HTTP/1.1 keep-alive
    up.port, up.requests            # what it saw: dicts of method, path, headers, body
    up.connections                  # client ports it accepted, in order
    up.connected_at                 # time.monotonic() of each accept, in order
    up.close()                      # stops it (and closes its connections)

Paths it serves:
    /echo...       200, JSON of what it received (method, path, headers, body length)
    /bytes/N       N bytes of a pattern (byte i is 'a' + i % 26), Content-Length
    /chunked/N     the same, chunked
    /text/N        the pattern as text/plain, chunked in pieces of 1 to 70000 bytes
    /gzipped/N     the pattern gzip-compressed, Content-Encoding: gzip, text/plain
    /trailers/N    the same, chunked, ending with trailer fields: X-Checksum (the
                   body's sha256), X-Count (N), and Content-Type and Keep-Alive,
                   which a trailer may not carry
    /sink          reads the request body (any framing), answers its length and sha256
    /status/CODE   that status, empty body
    /stall         sends nothing (until close)
    /die/N         promises 2*N bytes, sends N, closes
    /healthz       up.set_health(STATUS)'s status (200 at first); not in requests
Options: idle_close=SECONDS closes a keep-alive connection idle that long;
drop_first=N closes each of its first N connections once it has read the
request head, answering nothing (up.dropped counts them);
unix=PATH listens on a Unix socket instead; tls=SSLContext serves HTTPS.

Also: raw_server(script) -> (port, stop): a socket server that reads a
request head and writes the given bytes, for garbage answers.
"""

import gzip
import hashlib
import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Upstream", "raw_server", "pattern"]


def pattern(n, start=0):
    return bytes(((start + i) % 26) + 97 for i in range(n))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        if self.server.idle_close:
            self.request.settimeout(self.server.idle_close)
        with self.server.lock:
            self.server.connections.append(self._port())
            self.server.connected_at.append(time.monotonic())

    def handle(self):
        with self.server.lock:
            drop = self.server.dropped < self.server.drop_first
            self.server.dropped += drop
        if not drop:
            return super().handle()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # the whole head, then a close without a byte of answer

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.lock:
                self.server.closed += 1

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        if n <= (1 << 20):
            return self.rfile.read(n)
        h = hashlib.sha256()
        total = 0
        while total < n:
            piece = self.rfile.read(min(1 << 20, n - total))
            if not piece:
                break
            h.update(piece)
            total += len(piece)
        self._sink = (total, h.hexdigest())
        return None

    def _port(self):
        return self.client_address[1] if isinstance(self.client_address, tuple) else 0

    def _record(self, body):
        entry = {"method": self.command, "path": self.path,
                 "headers": [[k, v] for k, v in self.headers.items()],
                 "body": body, "port": self._port()}
        with self.server.lock:
            self.server.requests.append(entry)
        return entry

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self):
        self._sink = None
        if self.path == "/healthz":
            with self.server.lock:
                self.server.health_checks += 1
            return self._send(self.server.health_status)
        body = self._read_body()
        entry = self._record(body if body is not None else b"")
        path = self.path.split("?")[0]
        if path.startswith("/sink") or self._sink is not None:
            total, digest = self._sink if self._sink else (len(body), hashlib.sha256(body).hexdigest())
            return self._send(200, ("%d %s" % (total, digest)).encode())
        if path.startswith("/bytes/"):
            return self._send(200, pattern(int(path[7:])), [("Content-Type", "text/plain")])
        if path.startswith("/chunked/"):
            return self._chunked(int(path[9:]))
        if path.startswith("/text/"):
            return self._chunked(int(path[6:]), [("Content-Type", "text/plain")],
                                 [1, 4095, 16384, 16385, 70000, 7])
        if path.startswith("/gzipped/"):
            return self._send(200, gzip.compress(pattern(int(path[9:]))),
                              [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")])
        if path.startswith("/trailers/"):
            n = int(path[10:])
            return self._chunked(n, trailers=[
                ("X-Checksum", hashlib.sha256(pattern(n)).hexdigest()),
                ("X-Count", str(n)), ("Content-Type", "text/evil"), ("Keep-Alive", "timeout=1")])
        if path.startswith("/status/"):
            return self._send(int(path[8:]))
        if path.startswith("/stall"):
            self.server.stalled.wait(30)
            self.close_connection = True
            return
        if path.startswith("/die/"):
            n = int(path[5:])
            self.send_response(200)
            self.send_header("Content-Length", str(2 * n))
            self.end_headers()
            self.wfile.write(pattern(n))
            self.wfile.flush()
            self.close_connection = True
            return
        out = dict(entry)
        out["body_len"] = len(entry["body"])
        out["body"] = entry["body"].decode("latin-1")
        self._send(200, json.dumps(out).encode(),
                   [("Content-Type", "application/json"), ("X-Upstream", "yes"),
                    ("Connection", "X-Hop"), ("X-Hop", "secret"), ("Keep-Alive", "timeout=5")])

    def _chunked(self, n, headers=(), sizes=(65536,), trailers=()):
        self.send_response(200)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        if trailers:
            self.send_header("Trailer", ", ".join(k for k, _ in trailers))
        self.end_headers()
        if self.command == "HEAD":
            return
        data, i, k = pattern(n), 0, 0
        while i < n:
            piece = data[i:i + sizes[k % len(sizes)]]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            i, k = i + len(piece), k + 1
        self.wfile.write(b"0\r\n" + b"".join(b"%s: %s\r\n" % (name.encode(), value.encode())
                                               for name, value in trailers) + b"\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class Upstream:
    def __init__(self, idle_close=None, port=0, unix=None, tls=None, drop_first=0):
        if unix is not None:
            self.server = _UnixServer(unix, _Handler)
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        if tls is not None:  # an ssl.SSLContext (server side)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.server.lock = threading.Lock()
        self.server.requests = []
        self.server.connections = []
        self.server.connected_at = []
        self.server.closed = 0
        self.server.idle_close = idle_close
        self.server.drop_first = drop_first
        self.server.dropped = 0
        self.server.stalled = threading.Event()
        self.server.health_status = 200
        self.server.health_checks = 0
        self.port = self.server.server_address[1] if unix is None else None
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def set_health(self, status):
        with self.server.lock:
            self.server.health_status = status

    @property
    def connections(self):
        with self.server.lock:
            return list(self.server.connections)

    @property
    def connected_at(self):
        with self.server.lock:
            return list(self.server.connected_at)

    @property
    def dropped(self):
        with self.server.lock:
            return self.server.dropped

    @property
    def closed(self):
        with self.server.lock:
            return self.server.closed

    def close(self):
        self.server.stalled.set()
        self.server.shutdown()
        self.server.server_close()


def raw_server(answer, seen=None):
    """A server that answers every connection's first request head with the
    bytes `answer`, then closes; what each connection sent up to the end
    of that head is appended to the list `seen`. Returns (port, stop)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    ls.settimeout(0.2)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                s, _ = ls.accept()
            except OSError:
                continue
            with s:
                s.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        piece = s.recv(65536)
                        if not piece:
                            break
                        data += piece
                    if seen is not None:
                        seen.append(data)
                    s.sendall(answer)
                except OSError:
                    pass
        ls.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def halt():
        stop.set()
        t.join(5)
    return ls.getsockname()[1], halt
