"""A client load that counts every request exactly, for the tests that
change saker (reloads, upgrades, killed workers, rolled hosts) while it is
served: the functional suite's and the fleet test's.

Keep-alive clients send request after request on one connection (one in
flight each) and reconnect only when the server said Connection: close;
fresh clients open a connection per request. A response other than 200,
a connection closed or reset before its response, or a timeout is a
failure, charged to the phase the test is in (`load.phase`), with its
reason kept (the first 50). Completed requests are also counted per
second, so a rate over any window can be compared with Prometheus'.
"""

import socket
import threading
import time
from collections import Counter

from rawhttp import read_response

REASONS_KEPT = 50


class Load:
    """keepalive + fresh client threads against address:port, started and
    stopped by `with`. enter, if given, runs first in each thread (the
    fleet test's netns.enter)."""

    def __init__(self, port, address="127.0.0.1", keepalive=6, fresh=0, enter=None,
                 host="t", timeout=10):
        self.port, self.address, self.enter = port, address, enter
        self.request = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode()
        self.timeout = timeout
        self.phase = "start"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = Counter()          # phase -> requests answered 200
        self.failures = Counter()    # phase -> failed requests
        self.reasons = []            # (phase, why), the first ones
        self.per_second = Counter()  # int(monotonic) -> requests answered
        self.bodies = Counter()      # phase -> Counter(body)
        self.connections = keepalive + fresh
        self.threads = [threading.Thread(target=self._run, args=(True,), daemon=True)
                        for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self._run, args=(False,), daemon=True)
                         for _ in range(fresh)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(self.timeout + 5)

    def total_ok(self):
        with self.lock:
            return sum(self.ok.values())

    def total_failures(self):
        with self.lock:
            return sum(self.failures.values())

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
            if len(self.reasons) < REASONS_KEPT:
                self.reasons.append((self.phase, why))

    def _one(self, sock):
        """One request on sock; True when the connection may be reused."""
        sock.sendall(self.request)
        r = read_response(sock, timeout=self.timeout)
        if r.status != 200:
            self._fail("status %d: %r" % (r.status, r.body[:80]))
        else:
            self._count(r.body.decode(errors="replace"))
        return (r.header("connection") or "").lower() != "close"

    def _run(self, keepalive):
        if self.enter is not None:
            self.enter()
        kind = "keep-alive" if keepalive else "fresh"
        while not self.stop.is_set():
            try:
                sock = socket.create_connection((self.address, self.port),
                                                timeout=self.timeout)
            except OSError as e:
                self._fail("%s connect: %r" % (kind, e))
                time.sleep(0.05)  # a refused connect returns at once: no spin
                continue
            with sock:
                try:
                    while self._one(sock) and keepalive and not self.stop.is_set():
                        pass
                except Exception as e:  # noqa: BLE001 - every failure is recorded
                    self._fail("%s: %r" % (kind, e))
