"""PROXY protocol v1 and v2 on listeners (endpoints.x.proxy_protocol with
trusted_sources): the address a trusted proxy names is the client's for
the access log and for what saker forwards (X-Forwarded-For); a peer
outside trusted_sources, a connection without a header, and a malformed
header are refused.
"""

import json
import socket
import struct

import pytest

from rawhttp import connect, read_response, wait_for
from saker_harness import run_sakerctl
from upstreams import Upstream

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


def start(saker_factory, up, trusted="[127.0.0.1]", tmp=None, extra=""):
    return saker_factory(
        "workers: 1\n%saccess_log: %s\n" % (extra, tmp / "access.log") +
        "endpoints:\n  a: {url: \"http://127.0.0.1:0\", proxy_protocol: true, "
        "trusted_sources: %s}\n" % trusted +
        "upstreams:\n  app:\n    servers: [{url: \"http://127.0.0.1:%d\"}]\n" % up.port +
        "routes:\n  - path: /\n    proxy: {upstream: app}\n")


def ask(port, header, split=False):
    sock = connect(port)
    req = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
    if split:
        sock.sendall(header[:5])
        sock.sendall(header[5:] + req)
    else:
        sock.sendall(header + req)
    try:
        return read_response(sock)
    finally:
        sock.close()


def xff(r):
    return {k.lower(): v for k, v in json.loads(r.body)["headers"]}["x-forwarded-for"]


@pytest.mark.parametrize("header,client", [
    (b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 80\r\n", "203.0.113.7"),
    (b"PROXY TCP6 2001:db8::7 ::1 51000 80\r\n", "2001:db8::7"),
    (b"PROXY UNKNOWN\r\n", "127.0.0.1"),
    (SIG + b"\x21\x11" + struct.pack("!H", 12) + socket.inet_aton("198.51.100.9") +
     socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40000, 80), "198.51.100.9"),
    (SIG + b"\x21\x11" + struct.pack("!H", 12 + 7) + socket.inet_aton("198.51.100.10") +
     socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40000, 80) + b"\x04\x00\x04abcd",
     "198.51.100.10"),   # a TLV is skipped
    (SIG + b"\x20\x00\x00\x00", "127.0.0.1"),   # LOCAL
])
def test_the_header_names_the_client(saker_factory, upstream, tmp_path, header, client):
    inst = start(saker_factory, upstream, tmp=tmp_path)
    for split in (False, True):
        r = ask(inst.port, header, split)
        assert r.status == 200 and xff(r) == client
    wait_for(lambda: (tmp_path / "access.log").exists() and
             client in (tmp_path / "access.log").read_text(), 5,
             message="the access log names the client")


def test_the_connection_list_names_the_client(saker_factory, upstream, tmp_path):
    inst = start(saker_factory, upstream, tmp=tmp_path, extra="connection_list: on\n")
    sock = connect(inst.port)
    try:
        sock.sendall(b"PROXY TCP4 203.0.113.8 127.0.0.1 51001 80\r\n")

        def listed():
            r = run_sakerctl("--shm", inst.shm, "conns", "--json")
            assert r.returncode == 0, r.stderr
            return [c["client"] for c in json.loads(r.stdout)["connections"]]
        wait_for(lambda: "203.0.113.8:51001" in listed(), 5,
                 message="sakerctl conns lists the client the header names")
        assert not any(c.startswith("127.0.0.1:") for c in listed())
    finally:
        sock.close()


@pytest.mark.parametrize("header", [
    b"GET / HTTP/1.1\r\n",                         # no header at all
    b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n",    # port out of range
    b"PROXY TCP4 1.2.3.4\r\n",                     # fields missing
    b"PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n",
    SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,      # version 3
    SIG + b"\x21\x11\x00\x04" + b"\x00" * 4,       # TCP4 too short
])
def test_bad_headers_are_refused(saker_factory, upstream, tmp_path, header):
    inst = start(saker_factory, upstream, tmp=tmp_path)
    sock = connect(inst.port)
    sock.sendall(header + b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    try:
        while True:
            piece = sock.recv(4096)
            if not piece:
                break
            data += piece
    except ConnectionResetError:
        pass
    assert data == b""
    assert len(upstream.requests) == 0


def test_untrusted_peers_are_refused(saker_factory, upstream, tmp_path):
    inst = start(saker_factory, upstream, trusted="[10.0.0.0/8]", tmp=tmp_path)
    sock = connect(inst.port)
    sock.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert sock.recv(4096) == b""
    except ConnectionResetError:
        pass
    assert len(upstream.requests) == 0


def test_trusted_sources_are_required(tmp_path):
    import subprocess
    from saker_harness import saker_binary
    f = tmp_path / "c.yaml"
    f.write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\", proxy_protocol: true}\n"
                 "routes:\n  - path: /\n    return: {status: 200}\n")
    r = subprocess.run([saker_binary(), "-t", "-c", str(f)], capture_output=True, text=True)
    assert r.returncode != 0 and "needs trusted_sources" in r.stderr and "c.yaml:2:" in r.stderr


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_upstreams_get_a_header_naming_the_client(saker_factory, tmp_path, version):
    from upstreams import raw_server
    seen = []
    port, stop = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", seen)
    try:
        inst = saker_factory(
            "workers: 1\nendpoints:\n  a: {url: \"http://127.0.0.1:0\"}\n"
            "upstreams:\n  app:\n    servers: [{url: \"http://127.0.0.1:%d\"}]\n"
            "    proxy_protocol: %s\n"
            "routes:\n  - path: /\n    proxy: {upstream: app}\n" % (port, version))
        for _ in range(2):
            sock = connect(inst.port)
            sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).body == b"ok"
            client_port = sock.getsockname()[1]
            sock.close()
            wait_for(lambda: seen, 5, message="the upstream saw the request")
            data = seen.pop()
            if version == "v1":
                assert data.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\nGET /x "
                                       % (client_port, inst.port))
            else:
                assert data[:13] == SIG + b"\x21" and data[13] == 0x11
                assert struct.unpack("!HH", data[24:28]) == (client_port, inst.port)
                assert data[28:].startswith(b"GET /x ")
    finally:
        stop()
