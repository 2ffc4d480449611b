"""Kestrel's limits and timeouts against real slow and hostile clients.

Every limit triggers with its status and is counted by reason in shm
(`sakerctl metrics`: saker_rejections_total{reason=...}); while limits are
being hit on some connections, a normal client on another connection is
served. Timeouts use small configured values (1 s) so each test stays short;
the heartbeat that enforces them runs once a second, so waits allow ~3 s.
"""

import json
import os
import signal
import socket
import threading
import time

import pytest

from rawhttp import connect, read_response, send_raw, wait_for
from saker_harness import _proc_state, run_sakerctl, worker_rss_kb


def rejections(inst, reason):
    return inst.metric('saker_rejections_total{reason="%s"}' % reason)


def wait_rejection(inst, reason, at_least=1, timeout=5):
    wait_for(lambda: rejections(inst, reason) >= at_least, timeout,
             message="saker_rejections_total{reason=%s} >= %d" % (reason, at_least))


def get(port, path="/ok", host="a", timeout=5):
    return send_raw(port, ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                           % (path, host)).encode(), timeout=timeout)


def status_of(data):
    assert data.startswith(b"HTTP/1.1 "), data[:80]
    return int(data[9:12])


def read_until_close(sock, timeout=5):
    """Everything the server sends until it closes; None if it never does."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return bytes(out)
        if not chunk:
            return bytes(out)
        out += chunk
    return None


def assert_normal_client_served(port):
    t0 = time.monotonic()
    data = get(port)
    assert status_of(data) == 200 and data.endswith(b"ok"), data[:200]
    assert time.monotonic() - t0 < 1.0, "a normal client waited %.2fs" % (time.monotonic() - t0)


BASE = """
workers: %(workers)d
endpoints:
  main: {url: "http://127.0.0.1:0"}
%(extra)s
routes:
  - path: /ok
    return: {status: 200, body: "ok"}
  - path: /upload
    max_request_body_size: 10
    return: {status: 200, body: "uploaded"}
  - path: /big
    static: {root: %(root)s}
"""


def config(tmp_path, extra="", workers=2):
    root = tmp_path / "www"
    if not root.exists():
        root.mkdir()
        with open(root / "big.bin", "wb") as f:
            f.write(os.urandom(1 << 20) * 32)  # 32 MiB: far more than socket buffers hold
    return BASE % {"workers": workers, "extra": extra, "root": root}


# ---- timeouts --------------------------------------------------------------

def test_request_headers_timeout_is_408_and_close(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits: {request_headers_timeout: 1s}"))
    # Each sends right after its connect: one that waited for the other
    # connects (seconds on a loaded machine) would rightly be closed as
    # silent at 1 s, without a 408.
    slow = []
    for _ in range(20):
        slow.append(connect(inst.port))
        slow[-1].sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n")  # never finished
    assert_normal_client_served(inst.port)
    t0 = time.monotonic()
    for s in slow:
        data = read_until_close(s, timeout=4)
        assert data is not None, "no close after request_headers_timeout"
        assert status_of(data) == 408 and b"Connection: close" in data
        s.close()
    assert time.monotonic() - t0 < 4
    wait_rejection(inst, "headers_timeout", 20)


def client_states(inst):
    """{client address: state} of the worker's connections (sakerctl conns)."""
    r = run_sakerctl("--shm", inst.shm, "conns", "--json")
    assert r.returncode == 0, r.stderr
    return {c["client"]: c["state"] for c in json.loads(r.stdout)["connections"]}


def wait_states(inst, expected):
    """Until each socket of expected ({state: [socket]}) is listed in its state."""
    want = {"127.0.0.1:%d" % s.getsockname()[1]: state
            for state, socks in expected.items() for s in socks}

    def listed():
        got = client_states(inst)
        return all(got.get(name, "gone") in ok for name, ok in want.items())
    wait_for(listed, 10, message="connections in %s" % list(expected))


def test_bytes_in_the_socket_are_read_before_a_deadline_judges(saker_factory, tmp_path):
    # A worker that is stopped (or only slow) past a deadline must not
    # time out what came in time: nginx reads before it times out. Three
    # kinds wait with their bytes in the socket while the worker is
    # stopped: a first request on a connection accepted before (its
    # accept deadline), the end of a head whose start was read (its head
    # deadline), the next request on a kept-alive connection (its idle
    # deadline). All are answered, none gets a 408 or a close.
    inst = saker_factory(config(tmp_path, "connection_list: on\nlimits: "
                                          "{request_headers_timeout: 6s, keep_alive_timeout: 6s}",
                                workers=1))
    started = time.monotonic()
    kept = [connect(inst.port) for _ in range(5)]
    for s in kept:
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s).status == 200
    split = [connect(inst.port) for _ in range(5)]
    for s in split:
        s.sendall(b"GET /ok HTTP/1.1\r\n")
    fresh = [connect(inst.port) for _ in range(5)]
    # fresh: listed (accepted), whatever the state of a connection that
    # sent nothing is called.
    wait_states(inst, {("idle",): kept, ("reading head",): split,
                       ("idle", "reading head"): fresh})
    worker = inst.worker_pids()[0]
    os.kill(worker, signal.SIGSTOP)
    try:
        wait_for(lambda: _proc_state(worker) == "T", 5, message="the worker stopped")
        assert time.monotonic() - started < 5, "set up too slowly to stop before the deadlines"
        for s in fresh + kept:
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        for s in split:
            s.sendall(b"Host: a\r\n\r\n")
        # Not a synchronisation: the time that must pass is the condition
        # under test. Every connection started after `started`, so by
        # started + 8 s each deadline (6 s, heartbeat 1 s) is behind.
        time.sleep(max(0.0, started + 8 - time.monotonic()))
    finally:
        os.kill(worker, signal.SIGCONT)
    for s in fresh + split + kept:
        r = read_response(s)
        assert (r.status, r.body) == (200, b"ok")
        s.close()
    assert rejections(inst, "headers_timeout") == 0


@pytest.mark.timing
def test_request_headers_timeout_default_is_30s(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path))
    s = connect(inst.port)
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n")
    assert read_until_close(s, timeout=2.5) is None  # still waiting, well before 30 s
    s.close()


def test_connection_that_sends_nothing_is_closed_at_request_headers_timeout(
        saker_factory, tmp_path):
    # Each one holds a descriptor: until keep_alive_timeout (60 s here) they
    # would let a client fill the open-files limit for free.
    inst = saker_factory(config(tmp_path, "limits: {request_headers_timeout: 1s, "
                                          "keep_alive_timeout: 60s}"))
    silent = [connect(inst.port) for _ in range(10)]
    assert_normal_client_served(inst.port)
    t0 = time.monotonic()
    for s in silent:
        assert read_until_close(s, timeout=4) == b"", "a silent connection was kept"
        s.close()
    assert time.monotonic() - t0 < 4
    # One that has spoken is idle in keep-alive, and keeps its 60 s.
    s = connect(inst.port)
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(s).status == 200
    assert read_until_close(s, timeout=2.5) is None
    s.close()


def test_keep_alive_timeout_closes_idle_connection(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits: {keep_alive_timeout: 1s}"))
    s = connect(inst.port)
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(s).status == 200
    t0 = time.monotonic()
    assert read_until_close(s, timeout=4) == b"", "idle connection not closed silently"
    assert 0.5 < time.monotonic() - t0 < 3.5
    s.close()


# ---- sizes -------------------------------------------------------------------

def test_body_size_limits(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits: {max_request_body_size: 100}"))
    # Content-Length over the limit: 413 before the body is read.
    data = send_raw(inst.port, b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n")
    assert status_of(data) == 413 and b"Connection: close" in data
    # At the limit: fine.
    data = send_raw(inst.port, b"POST /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                               b"Content-Length: 100\r\n\r\n" + b"x" * 100)
    assert status_of(data) == 200
    # Chunked: 413 and close as soon as the limit is crossed.
    data = send_raw(inst.port, b"POST /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                               b"\r\n40\r\n" + b"x" * 64 + b"\r\n40\r\n" + b"x" * 64 + b"\r\n")
    assert status_of(data) == 413
    # The route's own limit (10) is below the endpoint's.
    data = send_raw(inst.port, b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
    assert status_of(data) == 413
    data = send_raw(inst.port, b"POST /upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                               b"Content-Length: 10\r\n\r\n0123456789")
    assert status_of(data) == 200 and data.endswith(b"uploaded")
    wait_rejection(inst, "body_too_large", 3)


def test_default_body_limit_is_30000000(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path))
    data = send_raw(inst.port, b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 30000001\r\n\r\n")
    assert status_of(data) == 413
    s = connect(inst.port)
    s.sendall(b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 30000000\r\n\r\nabc")
    assert read_until_close(s, timeout=0.5) is None  # accepted: waiting for the body
    s.close()


def test_per_endpoint_limits_override_top_level(saker_factory, tmp_path):
    extra = """  small:
    url: "http://127.0.0.1:0"
    limits: {max_request_body_size: 5, max_request_header_count: 3}
limits: {max_request_body_size: 50}
"""
    text = config(tmp_path).replace('  main: {url: "http://127.0.0.1:0"}\n',
                                    '  main: {url: "http://127.0.0.1:0"}\n' + extra)
    inst = saker_factory(text)
    ports = [p for _, p, k in inst.ports if k == "tcp4"]
    assert len(ports) == 2
    main, small = ports
    body = b"POST /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 6\r\n\r\nabcdef"
    assert status_of(send_raw(main, body)) == 200
    assert status_of(send_raw(small, body)) == 413
    many = b"GET /ok HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
    assert status_of(send_raw(small, many)) == 431
    assert status_of(send_raw(main, many, read_until_close=False)) == 200


def test_request_line_and_header_limits(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits: {max_request_line_size: 1KB, "
                                          "max_request_headers_total_size: 2KB, "
                                          "max_request_header_count: 5}"))
    data = send_raw(inst.port, b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(data) == 414
    data = send_raw(inst.port, b"GET /ok HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 2100 + b"\r\n\r\n")
    assert status_of(data) == 431
    data = send_raw(inst.port, b"GET /ok HTTP/1.1\r\nHost: a\r\n" +
                    b"".join(b"X-%d: v\r\n" % i for i in range(6)) + b"\r\n")
    assert status_of(data) == 431
    assert_normal_client_served(inst.port)
    wait_rejection(inst, "request_line_too_long")
    wait_rejection(inst, "headers_too_large")
    wait_rejection(inst, "too_many_headers")


def test_default_header_limits(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path))
    data = send_raw(inst.port, b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(data) == 414
    data = send_raw(inst.port, b"GET /ok HTTP/1.1\r\nHost: a\r\n" +
                    b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n")
    assert status_of(data) == 431
    data = send_raw(inst.port, b"GET /ok HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 33000 + b"\r\n\r\n")
    assert status_of(data) == 431


# ---- hosts -------------------------------------------------------------------

def test_allowed_hosts(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, 'allowed_hosts: [example.com, "*.example.org"]'))
    for host, want in [("example.com", 200), ("EXAMPLE.com:8080", 200),
                       ("a.example.org", 200), ("a.b.example.org", 200),
                       ("example.org", 400), ("evil.com", 400), ("example.com.evil", 400)]:
        assert status_of(get(inst.port, host=host)) == want, host
    wait_rejection(inst, "host_not_allowed", 3)
    # HTTP/1.0 without Host passes (Kestrel's AllowEmptyHosts).
    assert status_of(send_raw(inst.port, b"GET /ok HTTP/1.0\r\n\r\n")) == 200


# ---- data rates ----------------------------------------------------------------

def test_slow_request_body_gets_408(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits:\n  min_request_body_data_rate: "
                                          "{bytes_per_second: 1000, grace_period: 1s}"))
    s = connect(inst.port)
    s.sendall(b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
    t0 = time.monotonic()
    data = None
    while time.monotonic() - t0 < 6:
        try:
            s.sendall(b"x" * 10)
        except OSError:
            break
        data = read_until_close(s, timeout=0.5)
        if data is not None:
            break
    assert data is not None, "slow body never cut off"
    assert status_of(data) == 408
    assert time.monotonic() - t0 < 4
    assert_normal_client_served(inst.port)
    wait_rejection(inst, "body_rate")
    s.close()


def test_fast_enough_body_is_accepted(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits:\n  min_request_body_data_rate: "
                                          "{bytes_per_second: 100, grace_period: 1s}"))
    s = connect(inst.port)
    s.sendall(b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 600\r\n\r\n")
    for _ in range(3):  # 200 B/s for 3 s
        time.sleep(1)
        s.sendall(b"x" * 200)
    assert read_response(s).status == 200
    s.close()


def test_slow_reader_is_disconnected(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits:\n  min_response_data_rate: "
                                          "{bytes_per_second: 100000, grace_period: 1s}"))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", inst.port))
    s.sendall(b"GET /big/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_normal_client_served(inst.port)
    wait_rejection(inst, "response_rate", timeout=6)
    # What is left in the pipe is less than the file, then the end.
    data = read_until_close(s, timeout=5)
    assert data is not None and len(data) < 32 << 20
    s.close()


def test_response_rate_spares_a_client_that_reads(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits:\n  min_response_data_rate: "
                                          "{bytes_per_second: 100000, grace_period: 1s}"))
    s = connect(inst.port)
    s.sendall(b"GET /big/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
    r = read_response(s, timeout=20)
    assert r.status == 200 and len(r.body) == 32 << 20
    s.close()
    assert rejections(inst, "response_rate") == 0


def read_at(sock, rate, seconds):
    """Reads at about rate bytes a second for seconds (or until the server
    closes): the bytes read, and whether it closed."""
    got, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        due = int(rate * (time.monotonic() - t0)) - got
        if due <= 0:
            time.sleep(0.05)
            continue
        sock.settimeout(2)
        try:
            chunk = sock.recv(min(due, 4096))
        except (ConnectionResetError, socket.timeout):
            return got, True
        if not chunk:
            return got, True
        got += len(chunk)
    return got, False


@pytest.mark.timing
def test_response_rate_is_measured_as_the_peer_acknowledges(saker_factory, tmp_path):
    """min_response_data_rate 1000 B/s: an honest reader at 4 KB/s keeps
    its connection, though the kernel holds megabytes of the response and
    calls the socket writable only once much of them drained (nothing was
    written for seconds: it was cut off); a reader at 100 B/s is cut off
    (the bytes written into the kernel's growing buffer made it look fast)."""
    inst = saker_factory(config(tmp_path, "limits:\n  min_response_data_rate: "
                                          "{bytes_per_second: 1000, grace_period: 2s}", workers=1))
    honest = connect(inst.port)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", inst.port))
    for s in (honest, slow):
        s.sendall(b"GET /big/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
    t = threading.Thread(target=read_at, args=(slow, 100, 10))
    t.start()
    got, closed = read_at(honest, 4096, 10)
    t.join()
    assert not closed and got > 30 * 1024, (got, closed)
    # One rejection, the slow reader's: its connection was reset (what its
    # own receive buffer held is still read first), the honest one stays.
    assert rejections(inst, "response_rate") == 1
    data = read_until_close(slow, timeout=5)
    assert data is not None and len(data) < 1 << 20
    got, closed = read_at(honest, 4096, 1)
    assert not closed and got > 0
    honest.close()
    slow.close()


# ---- body draining ------------------------------------------------------------

def test_body_after_early_answer_is_drained_and_connection_reused(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path))
    s = connect(inst.port)
    s.sendall(b"POST /ok HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
              b"Content-Length: 1000\r\n\r\n")
    r = read_response(s)
    assert r.status == 200  # the final answer, not 100 Continue: nobody wants the body
    s.sendall(b"x" * 1000)  # the client sends it anyway
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(s).status == 200
    s.close()


@pytest.mark.timing
def test_body_drain_stops_after_5s(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits: {min_request_body_data_rate: off}"))
    s = connect(inst.port)
    s.sendall(b"POST /ok HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
              b"Content-Length: 100000\r\n\r\n")
    assert read_response(s).status == 200
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 9:
        try:
            s.sendall(b"x" * 100)
        except OSError:
            closed = True
            break
        if read_until_close(s, timeout=0.5) is not None:
            closed = True
            break
    assert closed and 4.5 < time.monotonic() - t0 < 8


# ---- max_concurrent_connections -------------------------------------------------

def open_served(port, n):
    """n connections, each with one request answered, kept open."""
    socks = []
    for _ in range(n):
        s = connect(port)
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s).status == 200
        socks.append(s)
    return socks


def refused(port):
    """True when a new connection is closed without any response."""
    s = connect(port)
    try:
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
    except OSError:
        s.close()
        return True
    data = read_until_close(s, timeout=1)
    s.close()
    return data == b""


def test_limits_in_force_show_in_status_and_metrics(saker_factory, tmp_path):
    extra = """  capped:
    url: "http://127.0.0.1:0"
    limits: {max_concurrent_connections: 5}
limits: {max_concurrent_connections: 100}"""
    inst = saker_factory(config(tmp_path, extra))
    capped = [l["port"] for l in inst.status()["listeners"] if l["endpoint"] == "capped"][0]
    socks = open_served(inst.port, 2) + open_served(capped, 3)
    wait_for(lambda: inst.metric('saker_limit_permits_in_use{limit="max_concurrent_connections"}')
             == 5, 5, message="5 instance-wide permits in use")
    m = inst.metrics()
    assert m['saker_limit_permits{limit="max_concurrent_connections"}'] == 100
    key = 'limit="max_concurrent_connections",endpoint="capped"'
    assert m["saker_limit_permits{%s}" % key] == 5
    assert m["saker_limit_permits_in_use{%s}" % key] == 3
    limits = inst.status()["limits"]
    assert {"limit": "max_concurrent_connections", "endpoint": None, "permits": 100,
            "in_use": 5} in limits
    assert {"limit": "max_concurrent_connections", "endpoint": "capped", "permits": 5,
            "in_use": 3} in limits
    for s in socks:
        s.close()


def test_max_concurrent_connections_is_exact_across_workers(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits: {max_concurrent_connections: 100}",
                                workers=4))
    socks = open_served(inst.port, 100)
    assert refused(inst.port), "the 101st connection was served"
    wait_rejection(inst, "connection_limit", 1)
    # Still exact: a few more tries are all refused (whichever worker accepts).
    assert all(refused(inst.port) for _ in range(8))
    # The 100 are still served.
    for s in socks[:10]:
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s).status == 200
    # Closing one admits exactly one more.
    socks.pop().close()
    wait_for(lambda: not refused_and_keep(inst.port, socks), 3,
             message="a new connection admitted after one closed")
    assert refused(inst.port)
    for s in socks:
        s.close()


def refused_and_keep(port, socks):
    s = connect(port)
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        r = read_response(s, timeout=1)
    except (AssertionError, OSError):
        s.close()
        return True
    assert r.status == 200
    socks.append(s)
    return False


def test_killed_worker_permits_come_back(saker_factory, tmp_path):
    inst = saker_factory(config(tmp_path, "limits: {max_concurrent_connections: 20}",
                                workers=2))
    socks = open_served(inst.port, 20)
    assert refused(inst.port)
    # Workers share one listening socket, so the split between them is the
    # kernel's: kill the one holding the most.
    wait_for(lambda: sum(w["connections_open"] for w in inst.workers()) == 20, 5,
             message="20 connections open")
    victim = max(inst.workers(), key=lambda w: w["connections_open"])["pid"]
    os.kill(victim, signal.SIGKILL)

    def alive(s):
        try:
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
            return read_response(s, timeout=2).status == 200
        except (AssertionError, OSError):
            return False

    wait_for(lambda: victim not in inst.worker_pids() and
             len(inst.workers()) == 2 and all(w["state"] == "running" for w in inst.workers()),
             10, message="the killed worker replaced")
    survivors = [s for s in socks if alive(s)]
    lost = 20 - len(survivors)
    assert lost > 0, "the killed worker held none of the connections"
    # The budget is whole again: exactly `lost` new connections fit.
    extra = []
    deadline = time.monotonic() + 10
    while len(extra) < lost and time.monotonic() < deadline:
        if refused_and_keep(inst.port, extra):
            time.sleep(0.1)
    assert len(extra) == lost, "%d of %d permits came back" % (len(extra), lost)
    assert refused(inst.port)
    for s in survivors + extra:
        s.close()


# ---- logs ----------------------------------------------------------------------

def test_access_log_combined_json_off_and_reopen(saker_factory, tmp_path):
    log = tmp_path / "access.log"
    extra = """  quiet:
    url: "http://127.0.0.1:0"
    access_log: false
access_log: %s
""" % log
    text = config(tmp_path, workers=2).replace('  main: {url: "http://127.0.0.1:0"}\n',
                                                '  main: {url: "http://127.0.0.1:0"}\n' + extra)
    inst = saker_factory(text)
    main, quiet = [p for _, p, k in inst.ports if k == "tcp4"]
    send_raw(main, b"GET /ok?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1\r\nReferer: r\r\n"
                   b"Connection: close\r\n\r\n")
    send_raw(quiet, b"GET /ok?quiet HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    wait_for(lambda: log.exists() and b"\n" in log.read_bytes(), 3, message="a log line")
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("127.0.0.1 - - [")
    assert lines[0].endswith('+0000] "GET /ok?x=1 HTTP/1.1" 200 2 "r" "t/1"'), lines[0]
    # logrotate: move the file away, SIGUSR1, new lines go to a new file.
    os.rename(log, tmp_path / "access.log.1")
    for pid in inst.worker_pids():
        os.kill(pid, signal.SIGUSR1)

    def logged_in_new_file():
        get(main, "/ok?after")  # until a worker has reopened, lines go to the old file
        return log.exists() and b"after" in log.read_bytes()
    wait_for(logged_in_new_file, 5, interval=0.3, message="reopened log")


def test_access_log_json(saker_factory, tmp_path):
    log = tmp_path / "access.json"
    inst = saker_factory(config(tmp_path, "access_log: %s\naccess_log_format: json" % log))
    get(inst.port, "/nothing")
    wait_for(lambda: log.exists() and b"\n" in log.read_bytes(), 3, message="a log line")
    import json
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["remote"] == "127.0.0.1" and entry["method"] == "GET"
    assert entry["target"] == "/nothing" and entry["status"] == 404
    assert entry["protocol"] == "HTTP/1.1" and entry["endpoint"] == "main"
    assert set(entry) == {"time", "remote", "method", "target", "protocol", "status",
                          "bytes_sent", "referer", "user_agent", "duration_ms", "endpoint"}


# ---- pipelining without reading ------------------------------------------------------

PIPELINE_CONFIG = """
workers: 1
limits: {keep_alive_timeout: 60s}
endpoints:
  main: {url: "http://127.0.0.1:0"}
routes:
  - path: /
    return: {status: 200, headers: {Content-Type: text/plain}, body: "%s"}
"""


def push_until_blocked(sock, data, timeout=10):
    """Sends data until the server stops taking it (its reading paused)."""
    sock.setblocking(False)
    sent, idle_since = 0, None
    deadline = time.monotonic() + timeout
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += sock.send(data[sent:sent + 262144])
            idle_since = None
        except BlockingIOError:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 0.5:
                break  # nothing taken for half a second: the server stopped reading
            time.sleep(0.01)
    return sent


@pytest.mark.memory
def test_pipelining_client_that_never_reads_holds_bounded_memory(saker_factory):
    """40 connections pipeline 4 MB of requests each and read nothing: the
    worker stops parsing once a connection's output queue holds its
    high-water mark (256 KiB), so its heap stays far below the ~3.5 MB a
    connection took when a read's requests were all answered at once."""
    inst = saker_factory(PIPELINE_CONFIG % ("x" * 1000))
    request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    flood = request * (4 * 1024 * 1024 // len(request))
    rss0 = worker_rss_kb(inst)
    socks = []
    try:
        for _ in range(40):
            s = connect(inst.port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            socks.append(s)
            push_until_blocked(s, flood)
        grown = worker_rss_kb(inst) - rss0
        print("worker RSS grew by %d kB for 40 connections" % grown)
        # Under ASan, freed memory waits in its quarantine: RSS says nothing.
        assert grown < 40 * 384, "RSS grew by %d kB" % grown
        assert status_of(get(inst.port)) == 200  # others are served meanwhile
    finally:
        for s in socks:
            s.close()


def test_deep_pipeline_is_answered_whole_and_in_order(saker_factory):
    """Parsing pauses at the high-water mark and resumes as the client
    reads: every one of 30,000 pipelined requests is answered, in order,
    also when the client half-closes right after sending them."""
    inst = saker_factory(PIPELINE_CONFIG % ("x" * 100))
    n = 30000
    batch = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(n))
    for half_close in (False, True):
        s = connect(inst.port)
        threading.Thread(target=lambda: (s.sendall(batch),
                                         s.shutdown(socket.SHUT_WR) if half_close else None),
                         daemon=True).start()
        out = bytearray()
        deadline = time.monotonic() + 30
        while out.count(b"HTTP/1.1 200 OK\r\n") < n and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(1 << 20)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        s.close()
        assert out.count(b"HTTP/1.1 200 OK\r\n") == n, (half_close, out.count(b"HTTP/1.1 200"))
