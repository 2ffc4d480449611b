"""Replays the raw request corpus (tests/corpus/{valid,invalid}/*.http).

Each file starts with "# expect: STATUS... close|open" (see
tests/corpus/make_corpus.py); the rest is sent byte for byte over one
connection, and every response's status is checked in order, then whether
the server closed the connection (close) or kept it open (open). Nothing
may come back beyond the expected responses.
"""

import glob
import os
import socket
import time

import pytest

from rawhttp import ParseError, connect, parse_responses

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
FILES = sorted(glob.glob(os.path.join(CORPUS, "*", "*.http")))

# HTTP/1.1 only: on the default http1_and_http2 endpoint the HTTP/2
# preface starts an HTTP/2 connection (test_http2.py) instead of the 400
# an HTTP/1.1 server owes it.
CONFIG = """
workers: 1
limits: {keep_alive_timeout: 30s}
endpoints:
  main: {url: "http://127.0.0.1:0", protocols: http1}
routes:
  - path: /
    return: {status: 200, headers: {Content-Type: text/plain}, body: "ok"}
"""


def load(path):
    with open(path, "rb") as f:
        first, _, data = f.read().partition(b"\n")
    words = first.decode().split()
    assert words[:2] == ["#", "expect:"], "%s: no '# expect:' line" % path
    statuses = []
    heads = []
    for w in words[2:-1]:
        status, _, method = w.partition("/")
        statuses.append(int(status))
        heads.append(method or "GET")
    assert words[-1] in ("close", "open"), path
    return statuses, heads, words[-1] == "close", data


def exchange(port, data, want_close, count):
    """Sends data; returns (bytes received, closed by the server)."""
    s = connect(port)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = bytearray()
    # A close is waited for up to 3 s; an open connection is given 0.5 s to
    # show it is not closing (its responses come at once).
    deadline = time.monotonic() + (3 if want_close else 0.5)
    closed = False
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        out += chunk
    s.close()
    return bytes(out), closed


@pytest.fixture(scope="module")
def server():
    # Module-scoped: one saker for the whole corpus (the factory fixture is
    # function-scoped, so the instance is started by hand here).
    import tempfile
    from saker_harness import Harness
    with tempfile.TemporaryDirectory() as tmp:
        harness = Harness(tmp)
        inst = harness.start(CONFIG)
        yield inst
        leftovers = harness.cleanup()
        assert not leftovers


@pytest.mark.parametrize("path", FILES, ids=[os.path.relpath(p, CORPUS)[:-5] for p in FILES])
def test_corpus(server, path):
    statuses, heads, want_close, data = load(path)
    received, closed = exchange(server.port, data, want_close, len(statuses))
    try:
        responses = parse_responses(received, head_methods=heads)
    except ParseError as e:
        pytest.fail("%s: unparsable reply %r: %s" % (path, received[:300], e))
    got = [r.status for r in responses]
    assert got == statuses, "statuses %s, expected %s; reply %r" % (got, statuses, received[:300])
    assert closed == want_close, "connection %s, expected %s" % (
        "closed" if closed else "open", "close" if want_close else "open")
    if want_close and statuses:
        assert responses[-1].header("connection", "").lower() == "close"


def test_corpus_is_not_empty():
    assert len(FILES) > 100
    assert any("/valid/" in f for f in FILES) and any("/invalid/" in f for f in FILES)
