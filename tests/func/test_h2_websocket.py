"""WebSockets over HTTP/2 (RFC 8441): saker announces
SETTINGS_ENABLE_CONNECT_PROTOCOL, and an extended CONNECT (:protocol
websocket) is routed by its :path. Through the proxy it goes up to a
python3-websockets echo server as an HTTP/1.1 handshake, and the frames
ride the stream's DATA both ways under flow control; the module sample
ws_echo serves one itself. A plain CONNECT, or a :protocol nobody serves,
is 501; each tunnel stream holds one max_concurrent_upgraded_connections
permit until it ends, however it ends.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import threading

import pytest

from certs import make_ca, make_leaf
from h2ws import (CANCEL, CONNECT_ERROR, ENABLE_CONNECT_PROTOCOL, OP_BINARY, OP_CLOSE,
                  OP_CONT, OP_PING, OP_PONG, OP_TEXT, H2Connection)
from rawhttp import connect, read_response, wait_for
from saker_harness import saker_binary, sanitized, worker_rss_kb
from test_proxy_websocket import EchoServer
from upstreams import raw_server

pytest.importorskip("websockets", reason="apt-get install python3-websockets")

MB = 1024 * 1024
SIZES = [0, 1, 125, 126, 65535, 65536, 65537, 300000, 4 * MB]


@pytest.fixture
def echo():
    s = EchoServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2wscerts")
    make_ca(d, "ca", "saker-h2ws-ca")
    make_leaf(d, "leaf", "DNS:localhost,IP:127.0.0.1")
    return d


def start(saker_factory, port, top="limits: {max_concurrent_upgraded_connections: 100}\n",
          certs=None, extra_routes=""):
    tls = ""
    if certs is not None:
        tls = "certificates:\n  default: { path: %s/leaf.pem, key: %s/leaf.key }\n" % (
            certs, certs)
    url = "https://127.0.0.1:0" if certs else "http://127.0.0.1:0"
    return saker_factory(
        "workers: 1\n" + top + tls +
        "endpoints:\n  a: {url: \"%s\", protocols: http1_and_http2}\n" % url +
        "upstreams:\n  ws:\n    servers: [{url: \"http://127.0.0.1:%d\"}]\n" % port +
        "routes:\n  - path: /ws\n    proxy: {upstream: ws, websocket: true}\n"
        "  - path: /plain\n    proxy: {upstream: ws, websocket: false}\n" + extra_routes +
        "  - path: /static\n    return: {status: 200, body: \"a page\"}\n")


def upgraded_in_use(inst):
    for limit in inst.status()["limits"]:
        if limit["limit"] == "max_concurrent_upgraded_connections" and limit["endpoint"] is None:
            return limit["in_use"]
    raise AssertionError("no max_concurrent_upgraded_connections in status")


def echo_round(ws, op, payload):
    ws.send(op, payload)
    assert ws.recv_message() == (op, payload)


# ---- SETTINGS ----------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_settings_announce_extended_connect(saker_factory, echo, certs, tls):
    inst = start(saker_factory, echo.port, certs=certs if tls else None)
    c = H2Connection(inst.port, tls_ca=certs / "ca.pem" if tls else None)
    assert c.server_settings.get(ENABLE_CONNECT_PROTOCOL) == 1, c.server_settings
    c.close()


# ---- through the proxy ---------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])
def test_proxy_messages_of_many_sizes_come_back_whole(saker_factory, echo, certs, tls):
    inst = start(saker_factory, echo.port, certs=certs if tls else None)
    c = H2Connection(inst.port, tls_ca=certs / "ca.pem" if tls else None)
    ws = c.websocket("/ws/x?y=1")
    assert ws.status == 200, (ws.status, ws.body)
    assert "sec-websocket-accept" not in ws.headers  # RFC 8441 section 5
    for n in SIZES:
        echo_round(ws, OP_BINARY, os.urandom(n))
        echo_round(ws, OP_TEXT, ("é" * (n // 2)).encode())
    c.close()


def test_proxy_fragments_ping_pong_close_codes_and_end_stream(saker_factory, echo):
    inst = start(saker_factory, echo.port)
    c = H2Connection(inst.port)
    ws = c.websocket("/ws", headers=[("sec-websocket-protocol", "chat")])
    assert ws.status == 200
    parts = [os.urandom(n) for n in (1, 1000, 70000, 5)]
    ws.send(OP_BINARY, parts[0], fin=False)
    for p in parts[1:-1]:
        ws.send(OP_CONT, p, fin=False)
    ws.send(OP_CONT, parts[-1])
    assert ws.recv_message() == (OP_BINARY, b"".join(parts))
    ws.send(OP_PING, b"are you there")
    assert ws.recv_message() == (OP_PONG, b"are you there")
    ws.send(OP_TEXT, b"close:4001")
    op, payload = ws.recv_message()
    assert op == OP_CLOSE and payload == (4001).to_bytes(2, "big") + b"bye"
    ws.send(OP_CLOSE, payload, end_stream=True)  # the close handshake, then our half
    ws.wait_end()
    assert ws.ended, "the upstream's end is END_STREAM, not a reset (%r)" % ws.reset_code
    wait_for(lambda: upgraded_in_use(inst) == 0, 10, message="the permit given back")
    c.close()


def test_proxy_several_tunnels_on_one_connection(saker_factory, echo):
    inst = start(saker_factory, echo.port)
    c = H2Connection(inst.port)
    tunnels = [c.websocket("/ws") for _ in range(8)]
    assert all(ws.status == 200 for ws in tunnels)
    for round_ in range(5):
        for i, ws in enumerate(tunnels):
            ws.send(OP_TEXT, b"%d-%d" % (i, round_))
        for i, ws in enumerate(tunnels):
            assert ws.recv_message() == (OP_TEXT, b"%d-%d" % (i, round_))
    c.close()
    wait_for(lambda: inst.status()["totals"]["connections_open"] == 0, 10,
             message="the connection and its tunnels gone")


def test_upgraded_limit_counts_each_h2_tunnel(saker_factory, echo):
    inst = start(saker_factory, echo.port,
                 top="limits: {max_concurrent_upgraded_connections: 2}\n")
    c = H2Connection(inst.port)
    a, b = c.websocket("/ws"), c.websocket("/ws")
    assert a.status == 200 and b.status == 200
    assert upgraded_in_use(inst) == 2
    third = c.websocket("/ws")
    assert third.status == 503  # the proxy's answer when the upgrade is declined
    # HTTP/1.1 tunnels draw from the same permits.
    s = connect(inst.port)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert read_response(s, head_only=True).status == 503
    s.close()
    a.reset()
    wait_for(lambda: upgraded_in_use(inst) == 1, 10, message="a reset tunnel's permit back")
    again = c.websocket("/ws")
    assert again.status == 200
    echo_round(again, OP_TEXT, b"again")
    c.close()
    wait_for(lambda: upgraded_in_use(inst) == 0, 10, message="every permit back")


def test_client_reset_mid_message_leaves_nothing(saker_factory, echo):
    inst = start(saker_factory, echo.port,
                 top="limits: {max_concurrent_upgraded_connections: 10}\n")
    c = H2Connection(inst.port)
    for _ in range(3):
        ws = c.websocket("/ws")
        assert ws.status == 200
        echo_round(ws, OP_BINARY, b"x" * 1000)
        frame = b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"\0\0\0\0"
        ws.send_bytes(frame + b"y" * 100000)  # a megabyte promised, a tenth sent
        ws.reset()
    wait_for(lambda: upgraded_in_use(inst) == 0, 10, message="the reset tunnels' permits back")
    # The connection lives on: a fresh tunnel works on it.
    ws = c.websocket("/ws")
    echo_round(ws, OP_TEXT, b"still here")
    c.close()
    wait_for(lambda: inst.status()["totals"]["connections_open"] == 0 and
             upgraded_in_use(inst) == 0, 10, message="nothing left open")


def test_a_slow_reader_stops_the_upstream_and_the_writer(saker_factory):
    """Backpressure end to end: a client that gives no window back stops
    saker reading the echo server, which stops reading saker, which stops
    giving the client window: the client cannot push 64 MiB in (the echo
    server itself queues 32 messages), and the
    worker holds a bounded amount meanwhile. Reading again, it all comes
    back intact. (min_response_data_rate is off: a reader that stalls
    past its grace would be reset, over HTTP/1.1 as over HTTP/2; and the
    echo server sends no keep-alive pings, which would wait too long.)"""
    echo = EchoServer(ping_interval=None)
    request_cleanup = echo.close
    inst = start(saker_factory, echo.port,
                 top="limits:\n  max_concurrent_upgraded_connections: 100\n"
                     "  min_response_data_rate: off\n")
    c = H2Connection(inst.port)
    ws = c.websocket("/ws")
    assert ws.status == 200
    ws.read_window = False
    ws.answer_pings = True
    rss_before = worker_rss_kb(inst)
    chunk = os.urandom(256 * 1024)
    sent = 0
    try:
        for _ in range(256):
            ws.send(OP_BINARY, chunk, timeout=3)
            sent += 1
    except AssertionError as e:
        assert "window stayed shut" in str(e)
    assert sent < 256, "the window never closed: nothing pushed back"
    if not sanitized():  # ASan's quarantine keeps freed memory resident
        assert worker_rss_kb(inst) - rss_before < 48 * 1024
    ws.read_window = True
    ws.ack()
    c.flush()
    for _ in range(sent):
        assert ws.recv_message(timeout=60) == (OP_BINARY, chunk)
    c.close()
    request_cleanup()


def test_an_upstream_refusing_the_upgrade_is_passed_through(saker_factory):
    port, stop = raw_server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n"
                            b"Content-Type: text/plain\r\n\r\nnope\n")
    try:
        inst = start(saker_factory, port)
        c = H2Connection(inst.port)
        ws = c.websocket("/ws")
        ws.wait_end()
        assert ws.status == 403 and ws.body == b"nope\n" and ws.ended
        c.close()
    finally:
        stop()


def test_an_upstream_answering_200_is_a_bad_gateway(saker_factory):
    seen = []
    port, stop = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", seen)
    try:
        inst = start(saker_factory, port)
        c = H2Connection(inst.port)
        ws = c.websocket("/ws/p?q=1", headers=[("sec-websocket-protocol", "chat"),
                                               ("sec-websocket-extensions", "x-ext")])
        assert ws.status == 502  # a 200 on HTTP/2 would open a tunnel nobody speaks
        head = seen[0].decode()
        lines = head.split("\r\n")
        assert lines[0] == "GET /ws/p?q=1 HTTP/1.1", lines[0]
        fields = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if l}
        assert fields["upgrade"] == "websocket" and fields["connection"].lower() == "upgrade"
        assert len(fields["sec-websocket-key"]) == 24  # saker's own, base64 of 16 bytes
        assert fields["sec-websocket-version"] == "13"
        assert fields["sec-websocket-protocol"] == "chat"
        assert fields["sec-websocket-extensions"] == "x-ext"
        c.close()
    finally:
        stop()


def one_tunnel_upstream(how):
    """A server for one WebSocket handshake: answers it (101), passes the
    first bytes it reads back, then half-closes ("eof": its FIN) or resets
    ("reset": SO_LINGER 0). Returns (port, thread)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(10)

    def run():
        s, _ = ls.accept()
        ls.close()
        s.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        s.sendall(b"\x81\x05hello")  # an unmasked server frame
        s.recv(4096)
        if how == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        else:
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return ls.getsockname()[1], t


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_upstream_end_is_end_stream_and_its_reset_connect_error(saker_factory, how):
    port, t = one_tunnel_upstream(how)
    inst = start(saker_factory, port)
    c = H2Connection(inst.port)
    ws = c.websocket("/ws")
    assert ws.status == 200
    assert ws.recv_message() == (OP_TEXT, b"hello")
    ws.send(OP_TEXT, b"bye")
    ws.wait_end()
    if how == "eof":
        assert ws.ended and ws.reset_code in (None, 0), ws.reset_code
    else:
        assert ws.reset_code == CONNECT_ERROR, (ws.ended, ws.reset_code)
    wait_for(lambda: upgraded_in_use(inst) == 0, 10, message="the permit back")
    c.close()
    t.join(10)


# ---- what is not a tunnel ----------------------------------------------------------

def test_plain_connect_and_unserved_protocols_are_501(saker_factory, echo):
    inst = start(saker_factory, echo.port)
    c = H2Connection(inst.port, validate=False)  # h2 asks every request for a :path
    # A CONNECT without :protocol: saker is no forward proxy.
    sid = c.h2.get_next_available_stream_id()
    from h2ws import WebSocket
    plain = WebSocket(c, sid)
    c.streams[sid] = plain
    c.h2.send_headers(sid, [(":method", "CONNECT"), (":authority", "example.com:443")])
    c.flush()
    plain.wait_end()
    assert plain.status == 501
    # A :protocol nobody on the route speaks, on a tunnelling route...
    assert c.websocket("/ws", protocol="connect-udp").status == 501
    # ... a route that passes no upgrades, and one that answers 200 itself.
    assert c.websocket("/plain").status == 501
    st = c.websocket("/static")
    st.wait_end()
    assert st.status == 501 and st.body == b"501 Not Implemented\n"
    # No route at all: the usual 404.
    assert c.websocket("/nowhere").status == 404
    c.close()


def test_idle_tunnel_is_cancelled_at_keep_alive_timeout(saker_factory, echo):
    inst = start(saker_factory, echo.port,
                 top="limits: {keep_alive_timeout: 2s, max_concurrent_upgraded_connections: 5}\n")
    c = H2Connection(inst.port)
    ws = c.websocket("/ws")
    echo_round(ws, OP_TEXT, b"then silence")
    c.wait(lambda: ws.reset_code is not None, 15, "the idle tunnel's reset")
    assert ws.reset_code == CANCEL
    wait_for(lambda: upgraded_in_use(inst) == 0, 10, message="the permit back")
    c.close()


def test_access_log_has_the_extended_connect(saker_factory, echo, tmp_path):
    log = tmp_path / "access.log"
    inst = start(saker_factory, echo.port,
                 top="access_log: %s\naccess_log_format: json\n" % log)
    # (No upgraded limit here: none is needed for a tunnel.)
    c = H2Connection(inst.port)
    ws = c.websocket("/ws/logged")
    echo_round(ws, OP_TEXT, b"x")
    c.close()
    inst.send(signal.SIGUSR1)  # flush through a reopen
    text = wait_for(lambda: log.exists() and log.read_text().strip(), 5, message="a log line")
    entry = json.loads(text.splitlines()[0])
    assert entry["method"] == "CONNECT" and entry["target"] == "/ws/logged", entry
    assert entry["status"] == 200 and entry["protocol"] == "HTTP/2.0", entry


# ---- a module's WebSocket ---------------------------------------------------------

def test_module_ws_echo_over_h2(saker_factory):
    so = os.path.join(os.path.dirname(os.path.realpath(saker_binary())), "modules",
                      "ws_echo.so")
    assert os.path.exists(so), "`make check` builds the sample modules"
    inst = saker_factory(
        "workers: 1\nlimits: {max_concurrent_upgraded_connections: 4}\n"
        "endpoints:\n  a: {url: \"http://127.0.0.1:0\", protocols: http1_and_http2}\n"
        "modules:\n  - path: %s\n" % so +
        "routes:\n  - path: /ws\n    module: { handler: ws_echo, max_frame: 1MiB }\n")
    c = H2Connection(inst.port)
    ws = c.websocket("/ws")
    assert ws.status == 200 and "sec-websocket-accept" not in ws.headers
    assert upgraded_in_use(inst) == 1
    for n in (0, 125, 126, 65536, 600000):
        echo_round(ws, OP_BINARY, os.urandom(n))
    ws.send(OP_TEXT, b"frag", fin=False)
    ws.send(OP_CONT, b"mented")
    assert ws.recv_message() == (OP_TEXT, b"fragmented")
    ws.send(OP_PING, b"ping")
    assert ws.recv_message() == (OP_PONG, b"ping")
    ws.send(OP_CLOSE, (1000).to_bytes(2, "big"))
    assert ws.recv_message() == (OP_CLOSE, (1000).to_bytes(2, "big"))
    ws.wait_end()
    assert ws.ended
    wait_for(lambda: upgraded_in_use(inst) == 0, 10, message="the permit back")
    # Not a version it speaks: the module answers 426 itself, on HTTP/2 too.
    assert c.websocket("/ws", version="8").status == 426
    c.close()


def test_reload_ends_old_tunnels_at_shutdown_timeout(saker_factory, echo):
    inst = start(saker_factory, echo.port,
                 top="shutdown_timeout: 6s\n"
                     "limits: {max_concurrent_upgraded_connections: 100}\n")
    old = set(inst.worker_pids())
    c = H2Connection(inst.port)
    ws = c.websocket("/ws")
    echo_round(ws, OP_TEXT, b"before the reload")
    inst.reload()
    # The draining worker keeps the tunnel working until shutdown_timeout...
    wait_for(lambda: set(inst.worker_pids()) - old, 10, message="the new generation")
    c.wait(lambda: c.goaway is not None and c.goaway[0] < 2 ** 31 - 1, 10,
           "the final GOAWAY")  # the stream was before it: it goes on
    echo_round(ws, OP_TEXT, b"while draining")
    # ... then it ends, and its permit comes back with it. (A long
    # shutdown_timeout: the new generation starts slowly under ASan.)
    c.wait(lambda: c.closed or ws.reset_code is not None or ws.ended, 20,
           "the old worker's end")
    wait_for(lambda: not (set(inst.worker_pids()) & old), 10, message="the old worker gone")
    wait_for(lambda: upgraded_in_use(inst) == 0, 10, message="the permit back")
    c.close()
    # The new generation serves tunnels of its own.
    c = H2Connection(inst.port)
    echo_round(c.websocket("/ws"), OP_TEXT, b"after")
    c.close()
