"""`sakerctl conns`: each worker's current connections, read from shm.

What an operator is promised, with `connection_list: on`: every open
connection listed with its client, protocol, state (reading head, reading
body, writing, idle, ...), age, bytes and its last request line (cut to
fit); a closed connection leaves the list; past the per-worker table, the
rest are counted as unlisted. Off (the default), the command says how to
turn it on.
"""

import json
import socket
import subprocess
import time

import pytest

from h2client import H2Client
from rawhttp import connect, read_response, wait_for
from saker_harness import run_sakerctl, saker_binary


def config(extra="connection_list: on\n", workers=1, root=None):
    text = "workers: %d\n%sendpoints:\n  main: { url: \"http://127.0.0.1:0\" }\nroutes:\n" % (
        workers, extra)
    text += "  - path: /upload\n    return: { status: 200 }\n"
    if root is not None:
        text += "  - path: /files\n    static: { root: %s }\n" % root
    text += "  - path: /\n    return: { status: 200, body: \"hello\" }\n"
    return text


def conns(inst):
    r = run_sakerctl("--shm", inst.shm, "conns", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def by_port(listing, sock):
    port = sock.getsockname()[1]
    for c in listing["connections"]:
        if c["client"] == "127.0.0.1:%d" % port:
            return c
    return None


def entry(inst, sock, state):
    """The listing's entry of sock once it is in state."""
    return wait_for(lambda: (lambda c: c if c and c["state"] == state else None)(
        by_port(conns(inst), sock)), 5, message="%s listed as %s" % (sock, state))


def test_each_connection_with_its_state(saker_factory, tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    (root / "big.bin").write_bytes(b"y" * (32 << 20))
    inst = saker_factory(config(root=root))

    idle = connect(inst.port)
    request = b"GET /?q=1 HTTP/1.1\r\nHost: a\r\n\r\n"
    idle.sendall(request)
    assert read_response(idle).status == 200
    c = entry(inst, idle, "idle")
    assert c["protocol"] == "http/1.1" and c["tls"] is False
    assert c["request"] == "GET /?q=1 HTTP/1.1"
    assert c["bytes_in"] == len(request) and c["bytes_out"] > 0 and c["age_ms"] >= 0

    head = connect(inst.port)
    head.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
    entry(inst, head, "reading head")

    body = connect(inst.port)
    body.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
    c = entry(inst, body, "reading body")
    assert c["request"] == "POST /upload HTTP/1.1"

    writing = socket.socket()
    writing.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    writing.connect(("127.0.0.1", inst.port))
    writing.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")  # and read nothing
    c = entry(inst, writing, "writing")
    assert c["request"] == "GET /files/big.bin HTTP/1.1"

    long = connect(inst.port)
    long.sendall(b"GET /" + b"x" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(long).status == 200
    c = entry(inst, long, "idle")
    assert c["request"] == "GET /" + "x" * 154  # 159 bytes: the entry's room

    h2 = H2Client(inst.port)
    assert h2.get("/h2").status == 200
    c = entry(inst, h2.sock, "idle")
    assert c["protocol"] == "h2" and c["request"] == "GET /h2 HTTP/2"

    text = run_sakerctl("--shm", inst.shm, "conns").stdout
    assert "reading body" in text and "POST /upload HTTP/1.1" in text
    assert "6 connections listed" in text

    # A closed connection leaves the list.
    idle.close()
    wait_for(lambda: not any(x["request"] == "GET /?q=1 HTTP/1.1"
                             for x in conns(inst)["connections"]),
             5, message="the closed connection gone")
    for s in (head, body, writing, long):
        s.close()


def test_connections_past_the_table_are_counted(saker_factory):
    # Opening 300 connections can take longer than the default 30 s
    # request_headers_timeout on a loaded machine: none may close early.
    inst = saker_factory(config(extra="connection_list: on\n"
                                "limits: { request_headers_timeout: 10m }\n"))
    # inst.port runs `sakerctl status` each time (80 ms under ASan): once.
    port = inst.port
    socks = [connect(port) for _ in range(300)]
    listing = wait_for(lambda: (lambda l: l if len(l["connections"]) + l["unlisted"] == 300
                                else None)(conns(inst)), 10, message="300 connections seen")
    assert len(listing["connections"]) == 256 and listing["unlisted"] == 44
    text = run_sakerctl("--shm", inst.shm, "conns").stdout
    assert "256 connections listed, 44 more not (a worker lists 256)" in text
    for s in socks[:100]:
        s.close()
    # Freed entries go to the connections that had none, at their next event.
    for s in socks[100:]:
        s.sendall(b"G")
    wait_for(lambda: (lambda l: len(l["connections"]) == 200 and l["unlisted"] == 0)(
        conns(inst)), 10, message="the unlisted ones listed")
    for s in socks[100:]:
        s.close()


def test_off_by_default(saker_factory):
    inst = saker_factory(config(extra=""))
    s = connect(inst.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(s).status == 200
    assert conns(inst) == {"connections": [], "unlisted": 0, "enabled": False}
    r = run_sakerctl("--shm", inst.shm, "conns")
    assert r.returncode == 0
    assert "set connection_list: on and reload" in r.stdout
    s.close()
    r = run_sakerctl("--shm", inst.shm, "conns", "--slot")
    assert r.returncode == 2 and "--slot needs a value" in r.stderr


def test_states_come_from_each_protocol(saker_factory, tmp_path):
    """A handler still at work is handling (HTTP/1.1 and an HTTP/2
    stream alike), an upgraded connection is a tunnel: the states come
    from the protocol speaking over the connection. Needs the test handler
    kinds (configure --enable-test-handlers)."""
    probe = tmp_path / "probe.yaml"
    probe.write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\n"
                     "routes:\n  - path: /\n    test_stream: {bytes: 1}\n")
    r = subprocess.run([saker_binary(), "-t", "-c", str(probe)], capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip("saker was built without --enable-test-handlers")
    inst = saker_factory("workers: 1\nconnection_list: on\n"
                         "endpoints:\n  main: { url: \"http://127.0.0.1:0\" }\nroutes:\n"
                         "  - path: /slow\n    test_stream: {delay: 60s, bytes: 10}\n"
                         "  - path: /up\n    test_upgrade: {}\n")
    slow = connect(inst.port)
    slow.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    assert entry(inst, slow, "handling")["request"] == "GET /slow HTTP/1.1"
    h2 = H2Client(inst.port)
    h2.request("/slow")
    c = entry(inst, h2.sock, "handling")
    assert c["protocol"] == "h2" and c["request"] == "GET /slow HTTP/2"
    up = connect(inst.port)
    up.sendall(b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
    assert entry(inst, up, "tunnel")["request"] == "GET /up HTTP/1.1"
    for s in (slow, h2.sock, up):
        s.close()
