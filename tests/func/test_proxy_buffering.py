"""`proxy: {buffer_request_body: SIZE}`: the whole request body is read from
the client before the upstream is contacted, so a slow client never holds
an upstream connection; a body over the bound is 413 and the upstream
never hears of it. The upstream (upstreams.py) records when each of its
connections arrived.
"""

import json
import subprocess
import time

import pytest

from rawhttp import connect, read_response, wait_for
from saker_harness import saker_binary
from upstreams import Upstream, pattern

from test_proxy import config, seen


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


def start(saker_factory, up, bound):
    extra = ", buffer_request_body: %s" % bound if bound else ""
    return saker_factory(config(["http://127.0.0.1:%d" % up.port], proxy_extra=extra))


def ask(inst, data):
    """One raw request on a fresh connection, and its response."""
    sock = connect(inst.port)
    sock.sendall(data)
    r = read_response(sock)
    sock.close()
    return r


def slow_upload(port, body, before_rest):
    """Sends the head and half the body, runs before_rest(), then the rest;
    returns the response and the moment the rest began to leave."""
    sock = connect(port)
    half = len(body) // 2
    sock.sendall(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                 + body[:half])
    before_rest()
    rest_at = time.monotonic()
    sock.sendall(body[half:])
    r = read_response(sock, timeout=15)
    sock.close()
    return r, rest_at


def test_a_slow_clients_body_is_read_whole_before_the_upstream_is_contacted(saker_factory,
                                                                              upstream):
    inst = start(saker_factory, upstream, "1MiB")
    body = pattern(300000)
    # The client pauses mid-body, as a slow one does; the upstream must
    # not have been contacted yet when the rest leaves.
    r, rest_at = slow_upload(inst.port, body, lambda: time.sleep(0.5))
    assert r.status == 200
    assert r.body.split()[0] == b"300000"
    assert len(upstream.connected_at) == 1
    assert upstream.connected_at[0] >= rest_at


def test_without_buffering_the_upstream_is_contacted_at_the_head(saker_factory, upstream):
    """The contrast: streamed, the upstream's connection arrives while the
    client is still sending (which the test above rules out)."""
    inst = start(saker_factory, upstream, None)
    body = pattern(300000)
    r, rest_at = slow_upload(inst.port, body, lambda: wait_for(
        lambda: upstream.connected_at, 10, message="the upstream contacted"))
    assert r.status == 200
    assert upstream.connected_at[0] < rest_at


def test_a_chunked_body_goes_up_with_its_length(saker_factory, upstream):
    inst = start(saker_factory, upstream, "64KiB")
    r = ask(inst, b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    doc, h = seen(r)
    assert doc["body"] == "hello world"
    assert h["content-length"] == "11"
    assert "transfer-encoding" not in h


def test_a_get_without_a_body_goes_up_without_a_length(saker_factory, upstream):
    inst = start(saker_factory, upstream, "true")
    r = ask(inst, b"GET /api/echo HTTP/1.1\r\nHost: x\r\n\r\n")
    doc, h = seen(r)
    assert doc["method"] == "GET"
    assert "content-length" not in h and "transfer-encoding" not in h


def test_a_declared_length_over_the_bound_is_413_before_any_upstream(saker_factory, upstream):
    inst = start(saker_factory, upstream, "64KiB")
    r = ask(inst, b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n")
    assert r.status == 413
    assert upstream.connections == []


def test_a_chunked_body_over_the_bound_is_413_before_any_upstream(saker_factory, upstream):
    inst = start(saker_factory, upstream, "64KiB")
    piece = b"x" * 40000
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    r = ask(inst, b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk + chunk)
    assert r.status == 413
    assert upstream.connections == []


def test_a_body_at_the_bound_goes_through_over_http2(saker_factory, upstream, tmp_path):
    inst = start(saker_factory, upstream, "64KiB")
    f = tmp_path / "body"
    f.write_bytes(pattern(65536))
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@%s" % f,
                        "http://127.0.0.1:%d/api/echo" % inst.port],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["body_len"] == 65536
    assert ["Content-Length", "65536"] in doc["headers"]


@pytest.mark.parametrize("value", ["lots", "-1", "[1]"])
def test_a_bad_bound_names_the_place(tmp_path, value):
    f = tmp_path / "c.yaml"
    f.write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\nupstreams:\n  app:\n"
                 "    servers: [{url: \"http://127.0.0.1:1\"}]\nroutes:\n  - path: /\n"
                 "    proxy: {upstream: app, buffer_request_body: %s}\n" % value)
    r = subprocess.run([saker_binary(), "-t", "-c", str(f)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert "c.yaml:8:" in r.stderr and "buffer_request_body" in r.stderr, r.stderr
