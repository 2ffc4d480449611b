"""The fleet test's client: keep-alive HTTP/1.1 connections through HAProxy
that count every request exactly.

Each connection sends one request at a time (so at most `connections`
requests are in flight) and reads the whole response. A response other
than 200, a connection closed or reset before the response, or a timeout
is a failure, charged to the phase the test is in. A closed connection is
replaced with a new one. Completed requests are also counted per second,
so a rate over any window can be compared with Prometheus'.
"""

import socket
import threading
import time
from collections import Counter

import netns


def _read_response(sock, buf):
    """(status, body, rest, close) of one response with Content-Length."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    return status, rest[:length], rest[length:], close


class Load:
    def __init__(self, ns, address, port, connections=6):
        self.ns, self.address, self.port = ns, address, port
        self.phase = "start"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = Counter()          # phase -> requests answered 200
        self.failures = Counter()    # phase -> failed requests
        self.reasons = []            # (phase, why), the first ones
        self.per_second = Counter()  # int(monotonic) -> requests answered
        self.bodies = Counter()      # phase -> Counter(body)
        self.connections = connections
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(connections)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(40)

    def total_ok(self):
        with self.lock:
            return sum(self.ok.values())

    def requests_between(self, start, end):
        """Requests answered in the whole seconds [start, end) of monotonic time."""
        with self.lock:
            return sum(n for s, n in self.per_second.items() if start <= s < end)

    def _count(self, body):
        with self.lock:
            self.ok[self.phase] += 1
            self.per_second[int(time.monotonic())] += 1
            self.bodies.setdefault(self.phase, Counter())[body] += 1

    def _fail(self, why):
        with self.lock:
            self.failures[self.phase] += 1
            if len(self.reasons) < 50:
                self.reasons.append((self.phase, why))

    def _run(self):
        netns.enter(self.ns)
        request = b"GET / HTTP/1.1\r\nHost: fleet\r\n\r\n"
        while not self.stop.is_set():
            try:
                sock = socket.create_connection((self.address, self.port), timeout=35)
            except OSError as e:
                self._fail("connect: %r" % e)
                time.sleep(0.05)  # a refused connect returns at once: no spin
                continue
            with sock:
                buf = b""
                while not self.stop.is_set():
                    try:
                        sock.sendall(request)
                        status, body, buf, close = _read_response(sock, buf)
                    except (OSError, ValueError, IndexError) as e:
                        self._fail("%r" % e)
                        break
                    if status != 200:
                        self._fail("status %d: %r" % (status, body[:80]))
                    else:
                        self._count(body.decode(errors="replace"))
                    if close:
                        break
