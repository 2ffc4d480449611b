"""Trailer fields of a chunked upstream response are passed on: to an
HTTP/1.1 client in the last chunk (always: like HAProxy, not only when it
sent TE: trailers), to an HTTP/2 client as trailing HEADERS, less the
fields a trailer may not carry (Content-Type) and hop-by-hop ones
(Keep-Alive). The upstream (upstreams.py /trailers/N) ends N bytes of its
pattern with X-Checksum (their sha256) and X-Count.
"""

import hashlib

import pytest

from h2client import H2Client
from rawhttp import connect, read_response
from upstreams import Upstream, pattern

from test_proxy import start


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


@pytest.mark.parametrize("n", [0, 100, 300000])
@pytest.mark.parametrize("te", [None, "trailers"])
def test_http1_client_gets_the_upstreams_trailers(saker_factory, upstream, n, te):
    inst = start(saker_factory, [upstream.port])
    sock = connect(inst.port)
    extra = "TE: %s\r\nConnection: TE\r\n" % te if te else ""
    sock.sendall(("GET /trailers/%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (n, extra)).encode())
    r = read_response(sock, timeout=15)
    sock.close()
    assert r.status == 200
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == pattern(n)
    t = dict((k.lower(), v) for k, v in r.trailers)
    assert t.get("x-checksum") == hashlib.sha256(pattern(n)).hexdigest()
    assert t.get("x-count") == str(n)
    assert "content-type" not in t and "keep-alive" not in t
    assert r.header("Content-Type") != "text/evil"


def test_http2_client_gets_them_as_trailing_headers(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    n = 300000
    with H2Client(inst.port) as c:
        st = c.get("/trailers/%d" % n, timeout=15)
    assert st.status == 200 and st.ended
    assert st.body == pattern(n)
    names = [k for k, _ in st.header_list]
    # After the response head's fields: a second HEADERS block.
    assert names.index("x-checksum") > names.index(":status")
    assert st.headers["x-checksum"] == hashlib.sha256(pattern(n)).hexdigest()
    assert st.headers["x-count"] == str(n)
    assert "keep-alive" not in names
    assert st.headers.get("content-type") != "text/evil"


def test_a_response_with_a_length_has_none(saker_factory, upstream):
    inst = start(saker_factory, [upstream.port])
    sock = connect(inst.port)
    sock.sendall(b"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_response(sock)
    sock.close()
    assert r.status == 200 and r.body == pattern(1000)
    assert r.trailers == []
