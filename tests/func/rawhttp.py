"""rawhttp - HTTP/1.1 over raw sockets, for tests that must control every byte.

    sock = connect(port)                       # or connect(None, unix=path)
    sock.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    r = read_response(sock)                    # one response, buffered reader
    r.status, r.reason, r.headers, r.h["content-length"], r.body

    data = send_raw(port_or_unix_path, b"...")   # send, read until close
    rs = parse_responses(data, head_methods=("HEAD",))

    wait_for(lambda: cond(), timeout=2, message="what we waited for")

read_response keeps the bytes it read past one response in a buffer tied to
the socket, so successive calls on one socket read successive (pipelined)
responses. wait_for is the only way tests wait for something to happen.
"""

import socket
import subprocess
import time
import weakref

__all__ = ["Response", "connect", "send_raw", "read_response", "parse_responses",
           "wait_for", "recv_closed", "open_idle", "ParseError"]


class ParseError(AssertionError):
    pass


class HeaderList(list):
    """[(name, value)] as received, in order; also answers dict-style,
    case-insensitively: headers.get("content-length"), "date" in headers,
    headers["Server"] (first value)."""

    def get(self, name, default=None):
        lname = name.lower()
        for n, v in self:
            if n.lower() == lname:
                return v
        return default

    def __contains__(self, item):
        if isinstance(item, str):
            return self.get(item) is not None
        return list.__contains__(self, item)

    def __getitem__(self, key):
        if isinstance(key, str):
            v = self.get(key)
            if v is None:
                raise KeyError(key)
            return v
        return list.__getitem__(self, key)


class Response:
    """status (int), reason, version, headers (HeaderList), h (dict of
    lower-cased names to the first value), body (bytes), raw_head,
    trailers ([(name, value)] after a chunked body)."""

    def __init__(self, version, status, reason, headers, body, raw_head=b"", trailers=()):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = HeaderList(headers)  # [(name, value)] as received
        self.h = {}
        for n, v in headers:
            self.h.setdefault(n.lower(), v)
        self.body = body
        self.raw_head = raw_head
        self.trailers = list(trailers)  # [(name, value)] of a chunked body's end

    def header(self, name, default=None):
        return self.h.get(name.lower(), default)

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return "<Response %s %s %r body=%d bytes>" % (self.status, self.reason,
                                                     self.headers, len(self.body))


def wait_for(predicate, timeout, interval=0.02, message="condition"):
    """Calls predicate until it returns a true value (which is returned) or
    timeout seconds pass (AssertionError naming message). An exception from
    the predicate (OSError, ValueError, KeyError, IndexError, AssertionError,
    SubprocessError: e.g. status not readable yet) counts as "not yet"; the
    last one is named in the timeout message."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError, IndexError, AssertionError,
                subprocess.SubprocessError) as e:  # e.g. status not readable yet
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise AssertionError("timed out after %.1fs waiting for: %s%s"
                                 % (timeout, message, extra))
        time.sleep(interval)


def connect(port, host="127.0.0.1", unix=None, timeout=5):
    if unix is not None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(unix)
        return s
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def open_idle(port, n, path="/"):
    """n keep-alive connections, each with one request answered 200, left open."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
        assert read_response(s).status == 200
        socks.append(s)
    return socks


def _connect_target(target, timeout):
    if isinstance(target, str):
        return connect(None, unix=target, timeout=timeout)
    return connect(target, timeout=timeout)


def send_raw(target, data, *, read_until_close=True, timeout=5):
    """Sends data to target (a TCP port on 127.0.0.1, or a unix socket path)
    and returns what came back: everything until the server closes (or the
    timeout runs out) with read_until_close, else the first read's worth
    once at least one complete response head arrived."""
    s = _connect_target(target, timeout)
    try:
        s.sendall(data)
        out = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                try:
                    parse_responses(bytes(out))
                    break
                except ParseError:
                    continue
        return bytes(out)
    finally:
        s.close()


class _Reader:
    """A buffer over a socket (kept on the socket between calls)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("read timed out")
        self.sock.settimeout(left)
        chunk = self.sock.recv(262144)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_until(self, sep, deadline):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            if not self.fill(deadline):
                raise ParseError("connection closed before %r (have %r)"
                                 % (sep, bytes(self.buf[:200])))

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            if not self.fill(deadline):
                raise ParseError("connection closed after %d of %d body bytes"
                                 % (len(self.buf), n))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_close(self, deadline):
        while self.fill(deadline):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


_readers = weakref.WeakKeyDictionary()


def _reader_for(sock):
    r = _readers.get(sock)
    if r is None:
        r = _Reader(sock)
        _readers[sock] = r
    return r


def _parse_head(head):
    lines = head[:-4].split(b"\r\n") if head.endswith(b"\r\n\r\n") else head.split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ParseError("bad status line %r" % status_line)
    version, status = parts[0], int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ParseError("bad header line %r" % line)
        headers.append((name, value.strip(" \t")))
    return version, status, reason, headers


def _body_kind(status, headers, head_only):
    h = {n.lower(): v for n, v in headers}
    if head_only or 100 <= status < 200 or status in (204, 304):
        return ("none", 0)
    te = h.get("transfer-encoding")
    if te is not None and "chunked" in te.lower():
        return ("chunked", 0)
    if "content-length" in h:
        return ("length", int(h["content-length"]))
    return ("close", 0)


def _read_one(reader, deadline, head_only):
    head = reader.read_until(b"\r\n\r\n", deadline)
    version, status, reason, headers = _parse_head(head)
    kind, n = _body_kind(status, headers, head_only)
    trailers = []
    if kind == "none":
        body = b""
    elif kind == "length":
        body = reader.read_exact(n, deadline)
    elif kind == "chunked":
        body = bytearray()
        while True:
            size_line = reader.read_until(b"\r\n", deadline)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    line = reader.read_until(b"\r\n", deadline)
                    if line == b"\r\n":
                        break
                    name, _, value = line[:-2].decode("latin-1").partition(":")
                    trailers.append((name, value.strip(" \t")))
                break
            body += reader.read_exact(size, deadline)
            reader.read_exact(2, deadline)
        body = bytes(body)
    else:
        body = reader.read_to_close(deadline)
    return Response(version, status, reason, headers, body, head, trailers)


def read_response(sock, timeout=5, head_only=False):
    """Reads one HTTP/1.x response from sock (head_only: the response to a
    HEAD request, so no body whatever Content-Length says)."""
    reader = _reader_for(sock)
    return _read_one(reader, time.monotonic() + timeout, head_only)


def recv_closed(sock, timeout=5):
    """True when the peer closes sock (recv returns b'' or the connection is
    reset) within timeout, after any buffered bytes; False on timeout."""
    reader = _readers.get(sock)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if not chunk:
            return True
        if reader is not None:
            reader.buf += chunk


class _BytesSource:
    def __init__(self, data):
        self.data = data
        self.done = False

    def settimeout(self, t):
        pass

    def recv(self, n):
        if self.done:
            return b""
        self.done = True
        return self.data


def parse_responses(data, head_methods=()):
    """Parses every response in data (a complete byte string). head_methods
    is a sequence with one entry per response position: when the i-th entry
    is "HEAD" (or True), the i-th response has no body. A bare string or
    set of methods applies nothing by position; pass e.g. ("GET", "HEAD")."""
    reader = _Reader(_BytesSource(bytes(data)))
    reader.fill(time.monotonic() + 1)
    out = []
    i = 0
    head_methods = list(head_methods)
    while reader.buf:
        head_only = False
        if i < len(head_methods):
            m = head_methods[i]
            head_only = m is True or (isinstance(m, str) and m.upper() == "HEAD")
        out.append(_read_one(reader, time.monotonic() + 1, head_only))
        i += 1
    return out
