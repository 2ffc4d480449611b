"""Variables in `proxy: {headers: ...}` values: ${msec}, ${remote_addr},
${remote_port}, ${scheme} and ${host} are replaced per request in the
request the upstream receives; an unknown or unterminated one is a
`saker -t` error naming its file, line and column.
"""

import subprocess
import time

import pytest

from rawhttp import connect, read_response
from saker_harness import saker_binary
from upstreams import Upstream

from test_proxy import config, seen


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


HEADERS = ('headers: {X-Start: "t=${msec}", X-Client: "${remote_addr} ${remote_port}", '
           'X-Scheme: "${scheme}", X-Host: "${host}", X-Literal: "$5 ${host}$"}')


def test_variables_are_replaced_per_request(saker_factory, upstream):
    inst = saker_factory(config(["http://127.0.0.1:%d" % upstream.port],
                                proxy_extra=", " + HEADERS))
    for _ in range(2):  # each request its own values
        sock = connect(inst.port)
        before = time.time()
        sock.sendall(b"GET /api/echo HTTP/1.1\r\nHost: Example.TEST:%d\r\n\r\n" % inst.port)
        r = read_response(sock)
        after = time.time()
        port = sock.getsockname()[1]
        sock.close()
        _, h = seen(r)
        assert h["x-start"].startswith("t=")
        msec = h["x-start"][2:]
        assert len(msec.split(".")[1]) == 3, msec
        assert before - 0.002 <= float(msec) <= after + 0.002
        assert h["x-client"] == "127.0.0.1 %d" % port
        assert h["x-scheme"] == "http"
        assert h["x-host"] == "example.test"
        assert h["x-literal"] == "$5 example.test$"


def test_values_without_variables_go_as_written(saker_factory, upstream):
    inst = saker_factory(config(["http://127.0.0.1:%d" % upstream.port],
                                proxy_extra=", headers: {X-Plain: \"a $b {c}\"}"))
    sock = connect(inst.port)
    sock.sendall(b"GET /api/echo HTTP/1.1\r\nHost: x\r\n\r\n")
    _, h = seen(read_response(sock))
    sock.close()
    assert h["x-plain"] == "a $b {c}"


@pytest.mark.parametrize("lines,bad", [
    (['    proxy: {upstream: app, headers: {X-A: "a${nope}"}}'], "${nope}"),
    (["    proxy:", "      upstream: app", "      headers:", "        X-A: ok ${msecs}"],
     "${msecs}"),
    (["    proxy: {upstream: app, headers: {X-A: 'x ${host} ${msec'}}"], "${msec"),
])
def test_an_unknown_variable_names_its_line_and_column(tmp_path, lines, bad):
    head = ("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\nupstreams:\n  app:\n"
            "    servers: [{url: \"http://127.0.0.1:1\"}]\nroutes:\n  - path: /\n")
    f = tmp_path / "c.yaml"
    f.write_text(head + "\n".join(lines) + "\n")
    r = subprocess.run([saker_binary(), "-t", "-c", str(f)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    line = head.count("\n") + len(lines)
    column = lines[-1].rindex(bad) + 1
    assert "c.yaml:%d:%d: " % (line, column) in r.stderr, r.stderr
    assert "unknown variable '%s" % bad in r.stderr, r.stderr
