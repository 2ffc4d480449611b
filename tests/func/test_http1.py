"""HTTP/1.1 protocol behaviour over raw sockets: keep-alive, pipelining,
request bodies, HEAD, HTTP/1.0, Connection: close, malformed input, limits,
and a large response read by a slow client."""

import email.utils
import hashlib
import random
import socket
import time

import pytest

from rawhttp import connect, parse_responses, read_response, recv_closed, send_raw, wait_for

PIPELINE = 10


def config(www):
    routes = "".join(
        '  - path: /p%d\n    return: {status: 200, body: "pipelined body number %d"}\n' % (i, i)
        for i in range(PIPELINE))
    return """
workers: 1
endpoints:
  main: {url: "http://127.0.0.1:0"}
routes:
  - path: /a
    return: {status: 200, headers: {Content-Type: text/plain}, body: "AAA"}
  - path: /b
    return: {status: 200, headers: {Content-Type: text/plain}, body: "BBBB"}
%s  - path: /static
    static: {root: %s}
""" % (routes, www)


@pytest.fixture
def inst(saker_factory, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("<h1>index</h1>\n")
    return saker_factory(config(www))


def get(path, extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


def test_keep_alive_reuses_the_connection(inst):
    s = connect(inst.port)
    try:
        s.sendall(get("/a"))
        r1 = read_response(s)
        s.sendall(get("/b"))
        r2 = read_response(s)
    finally:
        s.close()
    assert (r1.status, r1.body) == (200, b"AAA")
    assert (r2.status, r2.body) == (200, b"BBBB")
    assert r1.header("connection", "").lower() != "close"
    wait_for(lambda: inst.metric("saker_requests_total") == 2
             and inst.metric("saker_connections_open") == 0, 3,
             message="2 requests counted and the connection closed")
    m = inst.metrics()
    assert m["saker_connections_accepted_total"] == 1
    assert m["saker_requests_total"] == 2
    assert m['saker_responses_total{class="2xx"}'] == 2


def test_pipelined_requests_answered_in_order(inst):
    order = list(range(PIPELINE))
    random.Random(7).shuffle(order)
    # alternate between the two kinds of route too, with distinct bodies
    paths = []
    for n, i in enumerate(order):
        paths.append("/p%d" % i)
        paths.append("/a" if n % 2 == 0 else "/b")
    paths = paths[:PIPELINE]
    data = b"".join(get(p) for p in paths[:-1]) + get(paths[-1], b"Connection: close\r\n")
    raw = send_raw(inst.port, data)
    responses = parse_responses(raw)
    assert len(responses) == PIPELINE, raw[:500]
    expected = []
    for p in paths:
        if p.startswith("/p"):
            expected.append(b"pipelined body number " + p[2:].encode())
        else:
            expected.append(b"AAA" if p == "/a" else b"BBBB")
    assert [r.status for r in responses] == [200] * PIPELINE
    assert [r.body for r in responses] == expected


def test_pipelined_responses_arrive_together(inst):
    paths = ["/p%d" % i for i in range(PIPELINE)]
    s = connect(inst.port)
    try:
        s.sendall(b"".join(get(p) for p in paths))
        first = s.recv(1 << 20)
    finally:
        s.close()
    responses = parse_responses(first)
    assert [r.body for r in responses] == [
        b"pipelined body number %d" % i for i in range(PIPELINE)], (
        "the first read held %d responses, not all %d" % (len(responses), PIPELINE))


def test_chunked_request_body_then_another_request(inst):
    s = connect(inst.port)
    try:
        s.sendall(b"POST /a HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        r1 = read_response(s)
        s.sendall(get("/b"))
        r2 = read_response(s)
        # and both in one send: body, then a pipelined request
        s.sendall(b"POST /b HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nGET\r\n0\r\n\r\n" + get("/a"))
        r3 = read_response(s)
        r4 = read_response(s)
    finally:
        s.close()
    assert (r1.status, r1.body) == (200, b"AAA")
    assert (r2.status, r2.body) == (200, b"BBBB")
    assert (r3.status, r3.body) == (200, b"BBBB")
    assert (r4.status, r4.body) == (200, b"AAA")


def test_content_length_body_split_over_sends(inst):
    body = b"x" * 1000 + b"GET /b HTTP/1.1\r\n\r\n"  # body bytes that look like a request
    s = connect(inst.port)
    try:
        s.sendall(b"POST /a HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n" % len(body))
        time.sleep(0.05)  # deliberate slow client
        s.sendall(b"\r\n" + body[:10])
        for i in range(10, len(body), 300):
            time.sleep(0.05)
            s.sendall(body[i:i + 300])
        r1 = read_response(s)
        s.sendall(get("/p3"))
        r2 = read_response(s)
    finally:
        s.close()
    assert (r1.status, r1.body) == (200, b"AAA")
    assert (r2.status, r2.body) == (200, b"pipelined body number 3")
    wait_for(lambda: inst.metric("saker_requests_total") == 2, 3,
             message="exactly 2 requests counted")


def test_head_has_content_length_but_no_body(inst):
    s = connect(inst.port)
    try:
        s.sendall(b"HEAD /b HTTP/1.1\r\nHost: test\r\n\r\n" + get("/a"))
        r1 = read_response(s, head_only=True)
        r2 = read_response(s)
    finally:
        s.close()
    assert r1.status == 200
    assert r1.header("content-length") == "4"
    assert r1.body == b""
    # if HEAD had sent a body, its bytes would be parsed as the next status line
    assert (r2.status, r2.body) == (200, b"AAA")


def test_http10_closes(inst):
    s = connect(inst.port)
    try:
        s.sendall(b"GET /a HTTP/1.0\r\n\r\n")
        r = read_response(s)
        assert (r.status, r.body) == (200, b"AAA")
        assert recv_closed(s, 3), "HTTP/1.0 without keep-alive must close"
    finally:
        s.close()


def test_http10_keep_alive_is_honoured(inst):
    s = connect(inst.port)
    try:
        s.sendall(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r1 = read_response(s)
        assert r1.header("connection", "").lower() == "keep-alive"
        s.sendall(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r2 = read_response(s)
        s.sendall(b"GET /a HTTP/1.0\r\n\r\n")
        r3 = read_response(s)
        assert recv_closed(s, 3)
    finally:
        s.close()
    assert [r1.body, r2.body, r3.body] == [b"AAA", b"BBBB", b"AAA"]


def test_connection_close_closes_after_response(inst):
    s = connect(inst.port)
    try:
        s.sendall(get("/a", b"Connection: close\r\n"))
        r = read_response(s)
        assert (r.status, r.body) == (200, b"AAA")
        assert r.header("connection", "").lower() == "close"
        assert recv_closed(s, 3), "Connection: close must close after the response"
    finally:
        s.close()


MALFORMED = {
    "bad method token": b"G@T /a HTTP/1.1\r\nHost: test\r\n\r\n",
    "space in target": b"GET /a b HTTP/1.1\r\nHost: test\r\n\r\n",
    "CL and TE": b"POST /a HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two CLs": b"POST /a HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n"
               b"Content-Length: 4\r\n\r\nabcd",
    "bad chunk size": b"POST /a HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\nabc\r\n0\r\n\r\n",
    "bare LF": b"GET /a HTTP/1.1\nHost: test\n\n",
    "obs-fold": b"GET /a HTTP/1.1\r\nHost: test\r\nX-A: b\r\n  c\r\n\r\n",
    "NUL in header": b"GET /a HTTP/1.1\r\nHost: test\r\nX-A: b\x00c\r\n\r\n",
    "missing Host in 1.1": b"GET /a HTTP/1.1\r\nUser-Agent: t\r\n\r\n",
    "invalid version": b"GET /a HTTP/1.x\r\nHost: test\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_gets_400_and_close(inst, name):
    s = connect(inst.port)
    try:
        s.sendall(MALFORMED[name])
        r = read_response(s)
        assert r.status == 400, "%s: got %s" % (name, r)
        assert recv_closed(s, 3), "%s: the server must close the connection" % name
    finally:
        s.close()
    wait_for(lambda: inst.metric('saker_responses_total{class="4xx"}') == 1, 3,
             message="the 400 counted")
    m = inst.metrics()
    assert m['saker_responses_total{class="2xx"}'] == 0
    assert m['saker_rejections_total{reason="malformed"}'] == 1


@pytest.mark.parametrize("line", [
    b"Content-Length : 3", b"X-A : b", b"X A: b", b"X-A\t: b",
])
def test_whitespace_in_header_name_is_400(inst, line):
    # RFC 9112 section 5.1: a server MUST reject whitespace between a field
    # name and the colon with 400 (a request-smuggling vector otherwise)
    data = b"POST /a HTTP/1.1\r\nHost: test\r\n" + line + b"\r\n\r\nabc" + get("/b")
    s = connect(inst.port)
    try:
        s.sendall(data)
        r = read_response(s)
        assert r.status == 400, r
        assert recv_closed(s, 3)
    finally:
        s.close()


def test_many_pipelined_requests_spanning_reads(inst):
    n = 600
    pad = b"p" * 100
    data = b"".join(b"GET /p%d?seq=%d HTTP/1.1\r\nHost: test\r\nX-Pad: %s\r\n\r\n"
                    % (i % PIPELINE, i, pad) for i in range(n))
    assert len(data) > 64 * 1024
    s = connect(inst.port)
    try:
        s.sendall(data)
        bodies = [read_response(s).body for _ in range(n)]
        # static, return and HEAD mixed in one pipeline
        s.sendall(b"".join(b"GET /static/index.html HTTP/1.1\r\nHost: t\r\n\r\n"
                           b"HEAD /static/index.html HTTP/1.1\r\nHost: t\r\n\r\n"
                           b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n" for _ in range(50)))
        mixed = []
        for _ in range(50):
            mixed += [read_response(s), read_response(s, head_only=True), read_response(s)]
    finally:
        s.close()
    assert bodies == [b"pipelined body number %d" % (i % PIPELINE) for i in range(n)]
    assert [r.body for r in mixed] == [b"<h1>index</h1>\n", b"", b"BBBB"] * 50
    assert all(r.status == 200 for r in mixed)
    assert all(int(r.header("content-length")) == 15 for r in mixed[1::3])
    wait_for(lambda: inst.metric("saker_requests_total") == n + 150, 3,
             message="%d requests counted" % (n + 150))


def test_error_responses_keep_the_connection(inst):
    s = connect(inst.port)
    try:
        s.sendall(get("/nothing"))
        assert read_response(s).status == 404
        s.sendall(b"POST /static/index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        assert read_response(s).status == 405
        s.sendall(get("/a"))
        r = read_response(s)
        assert (r.status, r.body) == (200, b"AAA")
    finally:
        s.close()


def test_byte_counters_are_exact(inst):
    sent = received = 0
    for path in ("/a", "/b", "/p1", "/nothing", "/static/index.html"):
        req = get(path, b"Connection: close\r\n")
        sent += len(req)
        received += len(send_raw(inst.port, req))
    wait_for(lambda: inst.metric("saker_connections_open") == 0
             and inst.metric("saker_requests_total") == 5, 3, message="5 requests done")
    m = inst.metrics()
    assert m["saker_received_bytes_total"] == sent
    assert m["saker_sent_bytes_total"] == received


def test_unknown_path_404(inst):
    r = parse_responses(send_raw(inst.port, get("/nothing-here", b"Connection: close\r\n")))
    assert len(r) == 1 and r[0].status == 404


def test_date_and_server_headers(inst):
    r = parse_responses(send_raw(inst.port, get("/a", b"Connection: close\r\n")))[0]
    assert r.header("server") == "saker"
    date = r.header("date")
    assert date is not None and date.endswith(" GMT"), date
    parsed = email.utils.parsedate_to_datetime(date)
    assert abs(parsed.timestamp() - time.time()) < 5, date
    assert len(r.header_all("date")) == 1 and len(r.header_all("server")) == 1


def test_post_to_static_route_405_with_allow(inst):
    r = parse_responses(send_raw(inst.port, b"POST /static/index.html HTTP/1.1\r\nHost: t\r\n"
                                 b"Content-Length: 2\r\nConnection: close\r\n\r\nhi"))[0]
    assert r.status == 405
    allow = [m.strip() for m in r.header("allow", "").split(",")]
    assert "GET" in allow and "HEAD" in allow and "POST" not in allow


def test_long_target_414(inst):
    s = connect(inst.port)
    try:
        s.sendall(get("/" + "a" * 9000))
        r = read_response(s)
        assert r.status == 414
        assert recv_closed(s, 3)
    finally:
        s.close()


def test_large_header_431(inst):
    s = connect(inst.port)
    try:
        s.sendall(get("/a", b"X-Big: " + b"b" * (33 * 1024) + b"\r\n"))
        r = read_response(s)
        assert r.status == 431
        assert recv_closed(s, 3)
    finally:
        s.close()


def test_ten_megabyte_response_read_slowly(saker_factory, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    data = hashlib.sha256(b"seed").digest() * (10 * 1024 * 1024 // 32)
    (www / "big.bin").write_bytes(data)
    inst = saker_factory(config(www))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    s.settimeout(10)
    s.connect(("127.0.0.1", inst.port))
    try:
        s.sendall(get("/static/big.bin", b"Connection: close\r\n"))
        buf = bytearray()
        reads = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            chunk = s.recv(32 * 1024)
            if not chunk:
                break
            buf += chunk
            reads += 1
            if reads % 40 == 0:
                time.sleep(0.02)  # deliberate slow reader
    finally:
        s.close()
    r = parse_responses(bytes(buf))[0]
    assert r.status == 200
    assert int(r.header("content-length")) == len(data)
    assert len(r.body) == len(data)
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(data).digest()
