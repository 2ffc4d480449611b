"""The reverse proxy (`proxy:` routes, `upstreams:`) against real upstream
servers: a threading http.server (upstreams.py), a raw socket server for
garbage, and real clients (raw sockets, curl over HTTP/1.1 and HTTP/2).

What a user checks: the request that reaches the upstream (target, Host,
hop-by-hop fields gone, X-Forwarded-* / Forwarded), the response that comes
back (status, fields, body byte for byte, either framing), bodies both ways,
keep-alive reuse, and what happens when the upstream refuses, stalls,
answers garbage or dies mid-body.
"""

import hashlib
import json
import os
import socket
import subprocess

import pytest

from rawhttp import connect, read_response, send_raw, wait_for
from saker_harness import saker_binary
from upstreams import Upstream, pattern, raw_server

MB = 1024 * 1024


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def config(servers, upstream_extra="", proxy_extra="", top=""):
    lines = ["workers: 1", top,
             "endpoints:", "  a: {url: \"http://127.0.0.1:0\"}",
             "upstreams:", "  app:", "    servers:"]
    lines += ["      - url: %s" % s for s in servers]
    if upstream_extra:
        lines.append("    " + upstream_extra)
    lines += ["routes:", "  - path: /api",
              "    proxy: {upstream: app, strip_prefix: true%s}" % proxy_extra,
              "  - path: /",
              "    proxy: {upstream: app%s}" % proxy_extra]
    return "\n".join(lines) + "\n"


def start(saker_factory, up_ports, **kw):
    return saker_factory(config(["http://127.0.0.1:%d" % p for p in up_ports], **kw))


def get(port, target, headers=(), method="GET", body=b""):
    sock = connect(port)
    head = "%s %s HTTP/1.1\r\nHost: example.test:%d\r\n" % (method, target, port)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if body or method in ("POST", "PUT"):
        head += "Content-Length: %d\r\n" % len(body)
    sock.sendall(head.encode() + b"\r\n" + body)
    r = read_response(sock, timeout=15, head_only=(method == "HEAD"))
    sock.close()
    return r


def seen(r):
    doc = json.loads(r.body)
    return doc, {k.lower(): v for k, v in doc["headers"]}


def curl(*args, timeout=60):
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout)


# ---- what goes up, what comes down ------------------------------------------

def test_request_and_response_pass_through_without_hop_by_hop_fields(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    r = get(inst.port, "/echo?x=1&y=%20", [("Connection", "X-Secret"), ("X-Secret", "1"),
                                           ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
                                           ("Proxy-Authorization", "Basic Zm9v"),
                                           ("X-Kept", "yes")])
    assert r.status == 200
    doc, h = seen(r)
    assert doc["path"] == "/echo?x=1&y=%20"
    assert h["host"] == "example.test:%d" % inst.port
    assert h["x-kept"] == "yes"
    for hop in ("connection", "x-secret", "keep-alive", "te", "proxy-authorization"):
        assert hop not in h, hop
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "example.test:%d" % inst.port
    # The upstream's own hop-by-hop fields stay on its side.
    assert r.header("X-Upstream") == "yes"
    for hop in ("X-Hop", "Keep-Alive"):
        assert r.header(hop) is None, hop
    assert r.header_all("Server") == ["saker"]
    assert r.header("Connection") is None


@pytest.mark.parametrize("target,expected", [
    ("/api/echo?q=1", "/echo?q=1"),
    ("/api", "/"),
    ("/api?q=1", "/?q=1"),
    ("/api/", "/"),
    ("/%61pi/echo%20x", "/echo%20x"),   # another spelling of the prefix: normalised
    ("/api/../api/echo", "/echo"),
])
def test_strip_prefix(saker_factory, upstream, target, expected):
    inst = start(saker_factory, [upstream.port])
    r = get(inst.port, target)
    assert r.status == 200
    assert upstream.requests[-1]["path"] == expected


def test_without_strip_prefix_the_target_goes_as_sent(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    assert get(inst.port, "/other/%7Ex?a=b").status == 200
    assert upstream.requests[-1]["path"] == "/other/%7Ex?a=b"


@pytest.mark.parametrize("n", [0, 1, 65535, 65536 * 3 + 7, 3 * MB])
@pytest.mark.parametrize("kind", ["bytes", "chunked"])
def test_download_both_framings_http1_and_http2(saker_factory, upstream, n, kind):
    inst = start(saker_factory, [upstream.port])
    want = hashlib.sha256(pattern(n)).hexdigest()
    for flags in ([], ["--http2-prior-knowledge"]):
        r = curl(*flags, "http://127.0.0.1:%d/api/%s/%d" % (inst.port, kind, n))
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(r.stdout).hexdigest() == want


def test_head_keeps_the_length_without_a_body(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    r = get(inst.port, "/api/bytes/1234", method="HEAD")
    assert r.status == 200 and r.header("Content-Length") == "1234" and r.body == b""
    r = curl("--http2-prior-knowledge", "-I", "http://127.0.0.1:%d/api/bytes/1234" % inst.port)
    assert r.returncode == 0 and b"content-length: 1234" in r.stdout


@pytest.mark.parametrize("flags", [[], ["-H", "Transfer-Encoding: chunked"],
                                   ["--http2-prior-knowledge"]])
def test_upload_reaches_the_upstream_whole(saker_factory, upstream, tmp_path, flags):
    inst = start(saker_factory, [upstream.port])
    data = os.urandom(5 * MB + 3)
    (tmp_path / "up").write_bytes(data)
    r = curl(*flags, "--data-binary", "@%s" % (tmp_path / "up"),
             "http://127.0.0.1:%d/api/sink" % inst.port)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "%d %s" % (len(data), hashlib.sha256(data).hexdigest())


def test_empty_post_says_content_length_zero(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    r = curl("--http2-prior-knowledge", "-X", "POST", "http://127.0.0.1:%d/echo" % inst.port)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["method"] == "POST"
    assert ["Content-Length", "0"] in doc["headers"]


def test_chunked_request_trailers_go_up(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    sock = connect(inst.port)
    sock.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n")
    r = read_response(sock)
    sock.close()
    doc, h = seen(r)
    assert doc["body"] == "hello world"
    assert h["transfer-encoding"] == "chunked"


# ---- keep-alive -------------------------------------------------------------

def test_upstream_connections_are_kept_and_reused(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    for i in range(20):
        assert get(inst.port, "/api/bytes/%d" % (i * 1000)).status == 200
    assert len(upstream.connections) == 1


def test_upstream_closing_idle_connections_causes_no_502(saker_factory):
    up = Upstream(idle_close=0.2)  # closes a keep-alive connection idle 200 ms
    try:
        inst = start(saker_factory, [up.port])
        for i in range(5):
            assert get(inst.port, "/api/echo").status == 200
            wait_for(lambda: up.closed >= i + 1, 5, message="the upstream closed it")
        assert len(up.connections) == 5
    finally:
        up.close()


# ---- failures ----------------------------------------------------------------

def test_refused_is_502_and_a_second_server_takes_over(saker_factory, upstream):
    dead = free_port()
    inst = start(saker_factory, [dead, upstream.port])
    for _ in range(6):
        assert get(inst.port, "/api/echo").status == 200  # retried on the live one
    assert get(inst.port, "/api/sink", method="POST", body=b"x").status == 200


def test_all_servers_ejected_is_502_at_once(saker_factory):
    dead = [free_port(), free_port()]
    inst = start(saker_factory, dead, upstream_extra="passive: {max_fails: 1, fail_timeout: 60s}")
    assert get(inst.port, "/api/echo").status == 502  # refused by both
    # Now servers listen there, but they are ejected: saker does not even try.
    late = [Upstream(port=p) for p in dead]
    try:
        r = get(inst.port, "/api/echo")
        assert r.status == 502
        assert [up.connections for up in late] == [[], []]
    finally:
        for up in late:
            up.close()
    assert "ejected" in inst.error_log() or "ejected" in inst.stderr()


def test_a_lone_server_that_fails_once_is_retried_and_never_ejected(saker_factory):
    # One server, the default passive health (max_fails 1) and retries (1).
    # Its first connection is closed before any answer: the GET is retried
    # on it, and it stays in use, as nginx keeps an upstream's only server.
    up = Upstream(drop_first=1)
    try:
        inst = start(saker_factory, [up.port])
        r = get(inst.port, "/api/echo")
        assert r.status == 200 and up.dropped == 1
        assert [get(inst.port, "/api/echo").status for _ in range(3)] == [200] * 3
        assert "ejected" not in inst.error_log()
    finally:
        up.close()


def test_a_connect_failure_is_retried_whatever_the_method(saker_factory, upstream):
    # Nothing reached the refusing server, so even a POST goes to the next
    # one (nginx and HAProxy alike); never ejected, the dead one keeps its
    # turn in the round robin.
    dead = free_port()
    inst = start(saker_factory, [dead, upstream.port], upstream_extra="passive: {max_fails: 0}")
    for i in range(4):
        r = get(inst.port, "/api/sink", method="POST", body=b"x%d" % i)
        assert r.status == 200, i
    assert [e["body"] for e in upstream.requests] == [b"x0", b"x1", b"x2", b"x3"]


def test_stalled_upstream_is_504(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port], upstream_extra="timeouts: {read: 300ms}")
    assert get(inst.port, "/api/stall").status == 504


def test_upstream_dying_mid_body_aborts_the_client(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port], upstream_extra="passive: {max_fails: 0}")
    sock = connect(inst.port, timeout=10)
    sock.sendall(b"GET /api/die/100000 HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except ConnectionResetError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head and b"Content-Length: 200000" in head
    assert len(body) < 200000  # never presented as complete
    r = curl("--http2-prior-knowledge", "http://127.0.0.1:%d/api/die/100000" % inst.port)
    assert r.returncode != 0  # RST_STREAM, not a clean end


@pytest.mark.parametrize("answer", [
    b"HELLO WORLD\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
])
def test_garbage_from_the_upstream_is_502(saker_factory, answer):
    port, stop = raw_server(answer)
    try:
        inst = start(saker_factory, [port])
        assert get(inst.port, "/api/x").status == 502
    finally:
        stop()


# ---- forwarding ---------------------------------------------------------------

def test_untrusted_forwarded_fields_are_replaced(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port], proxy_extra=", trusted_proxies: [10.0.0.0/8]")
    _, h = seen(get(inst.port, "/api/echo", [("X-Forwarded-For", "6.6.6.6"),
                                             ("X-Forwarded-Proto", "https"),
                                             ("Forwarded", "for=6.6.6.6")]))
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert "forwarded" not in h


def test_trusted_forwarded_fields_are_appended_to(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port], proxy_extra=", trusted_proxies: [127.0.0.0/8]")
    _, h = seen(get(inst.port, "/api/echo", [("X-Forwarded-For", "203.0.113.9"),
                                             ("X-Forwarded-Proto", "https")]))
    assert h["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert h["x-forwarded-proto"] == "https"


def test_rfc7239_forwarded(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port],
                 proxy_extra=", forwarded: rfc7239, via: true, host: app.internal, "
                             "headers: {X-From: edge}")
    r = get(inst.port, "/api/echo", [("X-Forwarded-For", "6.6.6.6")])
    _, h = seen(r)
    assert h["forwarded"] == 'for=127.0.0.1;proto=http;host="example.test:%d"' % inst.port
    assert "x-forwarded-for" not in h
    assert h["host"] == "app.internal"
    assert h["via"] == "1.1 saker"
    assert h["x-from"] == "edge"
    assert r.header("Via") == "1.1 saker"


# ---- configuration -------------------------------------------------------------

@pytest.mark.parametrize("yaml,message", [
    ("upstreams:\n  app:\n    servers: [{url: \"http://127.0.0.1:1\"}]\nroutes:\n"
     "  - path: /\n    proxy: {upstream: nope}\n", "no upstream named 'nope'"),
    ("upstreams:\n  app:\n    servers: [{url: \"ftp://x\"}]\n", "URL 'ftp://x'"),
    ("upstreams:\n  app:\n    servers: []\n", "at least one server"),
    ("upstreams:\n  app:\n    servers: [{url: \"http://127.0.0.1:1\", weight: 0}]\n", "weight"),
    ("upstreams:\n  app:\n    servers: [{url: \"http://127.0.0.1:1\"}]\n    balance: fastest\n",
     "round_robin"),
    ("upstreams:\n  app:\n    servers: [{url: \"http://127.0.0.1:1\"}]\nroutes:\n"
     "  - path: /\n    proxy: {upstream: app, trusted_proxies: [10.1.0.0/8]}\n", "prefix"),
])
def test_config_errors_name_the_place(tmp_path, yaml, message):
    f = tmp_path / "c.yaml"
    f.write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\n" + yaml)
    r = subprocess.run([saker_binary(), "-t", "-c", str(f)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert message in r.stderr
    assert "c.yaml:" in r.stderr
