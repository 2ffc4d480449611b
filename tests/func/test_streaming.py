"""Responses given later and streamed, request bodies read as streams, and
the tunnel of an upgrade, through real clients (curl, raw sockets, a
frame-level HTTP/2 client) over HTTP/1.1, HTTP/2 and TLS.

saker is driven with its test handler kinds (tests/handlers), which only a
build configured with --enable-test-handlers has (scripts/test and CI
build so); against a release build these tests are skipped, saying why.

  test_stream:  an answer after a timer, N bytes in pieces with
                backpressure; byte i is 'a' + i % 26
  test_echo:    the request body streamed back as it arrives
  test_upgrade: 101, then the tunnel's bytes echoed
"""

import os
import socket
import ssl
import time

import pytest

from certs import make_ca, make_leaf
from h2client import H2Client
from hyperframe.frame import WindowUpdateFrame
from rawhttp import connect, read_response, wait_for
from saker_harness import curl, worker_rss_kb

MB = 1024 * 1024


def pattern(n, start=0):
    return bytes(((start + i) % 26) + 97 for i in range(n))


@pytest.fixture(scope="module", autouse=True)
def test_handlers_built(handlers_built):
    """Every test here needs the test handler kinds (conftest.py)."""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("streamcerts")
    make_ca(d, "ca", "saker-stream-ca")
    make_leaf(d, "leaf", "DNS:localhost,IP:127.0.0.1")
    return d


ROUTES = """routes:
  - path: /stream
    test_stream: {delay: 50ms, bytes: 1000000, piece: 10000, trailer: true}
  - path: /later
    test_stream: {delay: 200ms, bytes: 26, whole: true}
  - path: /big
    test_stream: {bytes: 100MiB, piece: 64KiB}
  - path: /mid
    test_stream: {bytes: 20MiB, piece: 16KiB}
  - path: /slow
    test_stream: {delay: 60s, bytes: 10}
  - path: /echo
    test_echo: {}
  - path: /small
    max_request_body_size: 1000
    test_echo: {}
  - path: /up
    test_upgrade: {}
  - path: /
    return: {status: 200, body: "hi"}
"""


def start(saker_factory, certs=None, extra=""):
    url = "https://127.0.0.1:0" if certs else "http://127.0.0.1:0"
    tls = ""
    if certs is not None:
        tls = "certificates:\n  default: { path: %s/leaf.pem, key: %s/leaf.key }\n" % (certs,
                                                                                         certs)
    return saker_factory("workers: 1\n%s%sendpoints:\n  main: {url: \"%s\"}\n%s"
                         % (tls, extra, url, ROUTES))


# ---- answered later, streamed --------------------------------------------------

@pytest.mark.parametrize("proto", ["http1", "http2", "https1", "https2"])
def test_deferred_and_streamed_answers_parsed_by_curl(saker_factory, certs, proto):
    tls = certs if proto.startswith("https") else None
    inst = start(saker_factory, tls)
    flag = ["--http1.1"] if proto.endswith("1") else (
        ["--http2"] if tls else ["--http2-prior-knowledge"])
    t0 = time.monotonic()
    rc, body, head = curl(inst, "/later", *flag, certs=tls)
    assert rc == 0, head
    assert body == pattern(26)
    assert time.monotonic() - t0 >= 0.2  # the answer waited for its timer
    rc, body, head = curl(inst, "/stream", *flag, certs=tls)
    assert rc == 0, head
    assert body == pattern(1000000)
    if proto.endswith("1"):
        assert "transfer-encoding: chunked" in head.lower()
    assert "x-checksum: 1000000" in head.lower()  # the trailer (curl prints it with headers)


def parse_chunked(data):
    """(head, body, trailers, rest) of the chunked response at the start of
    data, or None while it is incomplete; checks the framing."""
    if b"\r\n\r\n" not in data:
        return None
    head, rest = data.split(b"\r\n\r\n", 1)
    body = b""
    while True:
        if b"\r\n" not in rest:
            return None
        size_line, after = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            if b"\r\n\r\n" not in b"\r\n" + after:
                return None
            trailers, rest = (b"\r\n" + after).split(b"\r\n\r\n", 1)
            return head, body, trailers[2:], rest
        if len(after) < size + 2:
            return None
        assert after[size:size + 2] == b"\r\n", "a chunk without its CRLF"
        body, rest = body + after[:size], after[size + 2:]


def read_chunked(sock, timeout=10):
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        parsed = parse_chunked(data)
        if parsed is not None:
            return parsed
        assert time.monotonic() < deadline, "no end of the chunked body"
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, "closed before the end: %r" % data[-100:]
        data += chunk


def test_chunked_output_on_a_raw_socket(saker_factory):
    inst = start(saker_factory)
    s = connect(inst.port)
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    head, body, trailers, rest = read_chunked(s)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert body == pattern(1000000)
    assert trailers == b"x-checksum: 1000000"
    while not rest.endswith(b"hi"):  # the pipelined request behind it, answered after it
        s.settimeout(5)
        chunk = s.recv(4096)
        assert chunk, rest
        rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    s.close()


def test_http10_gets_a_close_delimited_body(saker_factory):
    inst = start(saker_factory)
    s = connect(inst.port)
    s.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
    data = b""
    s.settimeout(10)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert b"Connection: close" in head
    assert body == pattern(1000000)


def h1_reader(inst):
    s = connect(inst.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
    s.settimeout(5)

    def read():
        chunk = s.recv(256 * 1024)
        assert chunk, "closed early"
        return len(chunk)
    return read


def h2_reader(inst, certs):
    h = H2Client(inst.port, tls_ca="%s/ca.pem" % certs)
    sid = h.request("/big")

    def read():
        h._read(5)
        assert not h.closed, "closed early"
        st = h.streams[sid]
        n, st.body = len(st.body), b""  # counted, not kept
        h.frames.clear()
        return n
    return read


@pytest.mark.memory
@pytest.mark.parametrize("proto", ["http1", "http2-tls"])
def test_slow_reader_of_100_mb_keeps_the_worker_flat(saker_factory, certs, proto):
    """A client that reads slowly while 100 MB stream: the producer is held
    back, not buffered, so the worker's RSS stays flat (figures printed)."""
    inst = start(saker_factory, certs if proto == "http2-tls" else None)
    read = h1_reader(inst) if proto == "http1" else h2_reader(inst, certs)
    rss0 = worker_rss_kb(inst)
    peak, got, next_sample, t0 = rss0, 0, 0, time.monotonic()
    while got < 100 * MB:
        assert time.monotonic() - t0 < 180, "stalled at %d bytes" % got
        got += read()
        if got >= next_sample:
            peak = max(peak, worker_rss_kb(inst))
            next_sample += 4 * MB
            time.sleep(0.05)  # slow: the server waits for this client
    print("\n%s: worker RSS %d kB before, %d kB at most while 100 MB went to a slow reader"
          % (proto, rss0, peak))
    assert peak - rss0 < 16 * 1024, "RSS grew by %d kB" % (peak - rss0)


# ---- abandoned -----------------------------------------------------------------------

def test_abandoned_exchanges_free_their_connections(saker_factory):
    inst = start(saker_factory)
    # A client that leaves before the answer, one that leaves mid-stream,
    # and an HTTP/2 stream reset mid-stream on a connection that goes on.
    a = connect(inst.port)
    a.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    b = connect(inst.port)
    b.sendall(b"GET /mid HTTP/1.1\r\nHost: a\r\n\r\n")
    assert len(b.recv(65536)) > 0
    h = H2Client(inst.port, window=65535)  # the stream stalls at its window...
    h.send_frame(WindowUpdateFrame(0, window_increment=1 << 30))  # ...not the connection
    sid = h.request("/mid")
    h.wait(lambda: len(h.streams[sid].body) > 0, message="data on the stream")
    wait_for(lambda: inst.metric("saker_connections_open") == 3, 5,
             message="three connections open")
    a.close()
    b.close()
    h.rst(sid)
    assert h.get("/").status == 200  # the connection serves on
    h.close()
    wait_for(lambda: inst.metric("saker_connections_open") == 0, 5,
             message="the open-connection gauge back to 0")


# ---- request bodies ---------------------------------------------------------------------

@pytest.mark.parametrize("proto", ["http1", "http2", "https2"])
def test_echo_streams_the_request_body_back(saker_factory, certs, tmp_path, proto):
    tls = certs if proto.startswith("https") else None
    inst = start(saker_factory, tls)
    upload = tmp_path / "up.bin"
    upload.write_bytes(os.urandom(5 * MB + 7))
    flag = ["--http1.1"] if proto.endswith("1") else (
        ["--http2"] if tls else ["--http2-prior-knowledge"])
    rc, body, head = curl(inst, "/echo", *flag, "--data-binary", "@%s" % upload, certs=tls)
    assert rc == 0, head
    assert body == upload.read_bytes()
    if proto == "http1":
        rc, body, head = curl(inst, "/echo", *flag, "-H", "Transfer-Encoding: chunked",
                              "-H", "Expect: 100-continue", "--data-binary",
                              "@%s" % upload, certs=tls)
        assert rc == 0 and body == upload.read_bytes(), head
        assert "HTTP/1.1 100 Continue" in head


def test_request_body_over_the_limit(saker_factory):
    inst = start(saker_factory)
    s = connect(inst.port)
    s.sendall(b"POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
    r = read_response(s)
    assert r.status == 413  # refused on its declared length, before it is read
    s.close()
    rc, body, head = curl(inst, "/small", "--http2-prior-knowledge", "--data-binary",
                          "x" * 5000)
    assert b"xxxx" * 250 != body  # never the whole echo: a reset or a 413
    wait_for(lambda: inst.metric('saker_rejections_total{reason="body_too_large"}') >= 2, 5,
             message="both counted")


def test_chunked_trailers_never_become_request_headers(saker_factory, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "f.txt").write_text("0123456789")
    inst = saker_factory("workers: 1\nendpoints:\n  main: {url: \"http://127.0.0.1:0\"}\n"
                         "routes:\n  - path: /\n    static: {root: %s}\n" % root)
    s = connect(inst.port)
    s.sendall(b"GET /f.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\nRange: bytes=0-0\r\nIf-None-Match: *\r\n\r\n")
    r = read_response(s)
    assert r.status == 200 and r.body == b"0123456789"  # not 206, not 304
    s.close()


# ---- the tunnel ---------------------------------------------------------------------------

UPGRADE = b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"


def recv_exactly(s, n, timeout=5):
    data = b""
    s.settimeout(timeout)
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, "closed after %r" % data
        data += chunk
    return data


def test_upgrade_tunnels_bytes_and_honours_the_upgraded_limit(saker_factory):
    inst = start(saker_factory, extra="limits: {max_concurrent_upgraded_connections: 1}\n")
    s = connect(inst.port)
    s.sendall(UPGRADE + b"hello")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nUpgrade: echo\r\n" in head
    assert recv_exactly(s, 5) == b"hello"
    payload = os.urandom(3 * MB)
    s.sendall(payload[:MB])
    assert recv_exactly(s, MB) == payload[:MB]
    wait_for(lambda: inst.metric(
        'saker_limit_permits_in_use{limit="max_concurrent_upgraded_connections"}') == 1, 5,
        message="the tunnel holds an upgraded permit")
    other = connect(inst.port)
    other.sendall(UPGRADE)
    assert read_response(other).status == 503  # over the limit: the handler answers
    other.close()
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    assert s.recv(1) == b""  # the client's half-close ends the echo, then the tunnel
    s.close()
    wait_for(lambda: inst.metric(
        'saker_limit_permits_in_use{limit="max_concurrent_upgraded_connections"}') == 0, 5,
        message="the permit given back")


def test_upgrade_over_tls(saker_factory, certs):
    inst = start(saker_factory, certs)
    ctx = ssl.create_default_context(cafile="%s/ca.pem" % certs)
    ctx.set_alpn_protocols(["http/1.1"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", inst.port), timeout=5),
                        server_hostname="localhost")
    s.sendall(UPGRADE + b"over tls")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert recv_exactly(s, 8) == b"over tls"
    payload = os.urandom(MB)
    s.sendall(payload)
    assert recv_exactly(s, MB) == payload
    s.close()
    wait_for(lambda: inst.metric("saker_connections_open") == 0, 5,
             message="the tunnel closed with its client")
