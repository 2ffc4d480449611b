"""`transport: io_uring`: the workers serve plain connections through a
ring (and epoll stays the default), TLS keeps its path, and a kernel that
refuses io_uring leaves saker serving on epoll with one warning line.
test_uring_*.py run the HTTP/1.1, limits and reload tests on the ring."""

import os
import resource
import signal
import socket
import ssl

import pytest

from certs import make_ca, make_leaf
from rawhttp import connect, parse_responses, read_response
from saker_harness import worker_rss_kb
from uring_transport import GROUP, has_io_uring

DISABLED = "/proc/sys/kernel/io_uring_disabled"
WARNING = "transport: io_uring falls back to epoll"


def config(transport, extra=""):
    return """
workers: 1
%s
endpoints:
  main: {url: "http://127.0.0.1:0"}
%s
routes:
  - path: /
    return: {status: 200, body: "hello"}
""" % ("transport: %s" % transport if transport else "", extra)


def get(path="/"):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n"


def assert_answers(port):
    s = connect(port)
    try:
        s.sendall(get())
        assert read_response(s).body == b"hello"
    finally:
        s.close()


@GROUP
def test_io_uring_serves_through_a_ring(saker_factory):
    inst = saker_factory(config("io_uring"))
    assert has_io_uring(inst.worker_pids()[0])
    s = connect(inst.port)
    try:
        s.sendall(get() * 32)  # a pipelined batch, answered whole and in order
        data = b""
        while len(parse_responses(data)) < 32:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    finally:
        s.close()
    assert [r.body for r in parse_responses(data)] == [b"hello"] * 32
    assert WARNING not in inst.messages()


@pytest.mark.parametrize("transport", [None, "epoll"])
def test_epoll_is_the_default_and_has_no_ring(saker_factory, monkeypatch, transport):
    monkeypatch.delenv("SAKER_TEST_TRANSPORT", raising=False)
    inst = saker_factory(config(transport))
    assert_answers(inst.port)
    assert not has_io_uring(inst.worker_pids()[0])


@GROUP
def test_tls_keeps_its_transport_beside_the_ring(saker_factory, tmp_path):
    make_ca(tmp_path, "ca", "saker-test-ca")
    make_leaf(tmp_path, "localhost", "DNS:localhost,IP:127.0.0.1")
    inst = saker_factory(config("io_uring", """
certificates:
  default: { path: %s/localhost.pem, key: %s/localhost.key }
endpoints:
  main: {url: "http://127.0.0.1:0"}
  secure: {url: "https://127.0.0.1:0"}""" % (tmp_path, tmp_path)).replace(
        'endpoints:\n  main: {url: "http://127.0.0.1:0"}\n\n', "", 1))
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    port = {l["endpoint"]: l["port"] for l in inst.status()["listeners"]}
    plain = connect(port["main"])
    raw = socket.create_connection(("127.0.0.1", port["secure"]), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        for s in (plain, tls, plain, tls):  # both, interleaved, keep-alive
            s.sendall(get())
            assert read_response(s).body == b"hello"
    finally:
        plain.close()
        tls.close()
    assert has_io_uring(inst.worker_pids()[0])


@GROUP
def test_refused_io_uring_falls_back_to_epoll_with_one_warning(saker_factory):
    if not os.path.exists(DISABLED) or not os.access(DISABLED, os.W_OK):
        pytest.skip("%s is not there or not writable: the kernel cannot be made "
                    "to refuse io_uring" % DISABLED)
    with open(DISABLED) as f:
        before = f.read().strip()
    try:
        with open(DISABLED, "w") as f:
            f.write("2")  # io_uring_setup fails with EPERM for every process
        inst = saker_factory(config("io_uring"))
        assert_answers(inst.port)
        pid = inst.worker_pids()[0]
    finally:
        with open(DISABLED, "w") as f:
            f.write(before)
    assert not has_io_uring(pid)
    lines = [l for l in inst.messages().splitlines() if WARNING in l]
    assert len(lines) == 1, inst.messages()
    assert "Operation not permitted" in lines[0], lines


IDLE_CONNECTIONS = 1504


def raise_open_files_limit(count):
    """Enough descriptors for count connections in this process; the old
    limits, to put back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 200
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("the open files limit (%d) is below %d" % (hard, want))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return soft, hard


def open_idle(port, socks, count):
    """count keep-alive connections into socks, one request each, left
    idle. They come 4 at a time: what a turn serving more at once holds
    (receive buffers, output queues) is not a connection's cost."""
    while len(socks) < count:
        batch = [connect(port) for _ in range(4)]
        socks += batch
        for s in batch:
            s.sendall(get())
        for s in batch:
            assert read_response(s).body == b"hello"


def idle_growth_kb(saker_factory, transport):
    """How much the worker's RSS grows for IDLE_CONNECTIONS."""
    inst = saker_factory(config(transport))
    assert has_io_uring(inst.worker_pids()[0]) == (transport == "io_uring")
    assert_answers(inst.port)  # what the first request allocates is not counted
    rss0 = worker_rss_kb(inst)
    socks = []
    try:
        open_idle(inst.port, socks, IDLE_CONNECTIONS)
        return worker_rss_kb(inst) - rss0
    finally:
        for s in socks:
            s.close()


@pytest.mark.memory
@GROUP
def test_an_idle_connection_costs_no_more_than_on_epoll(saker_factory):
    """The ring's state of a connection lives in its struct (where the
    read event would be on epoll), so an idle connection costs the same
    on both transports; a separate handle added about a fifth."""
    soft, hard = raise_open_files_limit(IDLE_CONNECTIONS)
    try:
        epoll = idle_growth_kb(saker_factory, "epoll")
        uring = idle_growth_kb(saker_factory, "io_uring")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print("RSS growth for %d idle connections: epoll %d kB, io_uring %d kB"
          % (IDLE_CONNECTIONS, epoll, uring))
    assert epoll > 0
    assert uring <= epoll * 1.08 + 32, (epoll, uring)


@GROUP
def test_peers_closing_at_once_past_the_completion_ring_leave_it_serving(saker_factory):
    """3,008 idle connections closed together post three times the
    completions the ring holds (1,024): the kernel keeps the rest until
    the ring is entered, which the reap now does. Before, only a
    submission entered it, each time moving one ringful, and a new
    connection's request waited behind the rest: the worker answered no
    one until some other event made it submit, again and again."""
    inst = saker_factory(config("io_uring"))
    worker = inst.worker_pids()[0]
    assert has_io_uring(worker)
    soft, hard = raise_open_files_limit(3008)
    socks = []
    try:
        open_idle(inst.port, socks, 3008)
        os.kill(worker, signal.SIGSTOP)  # every end is then seen in one go
    finally:
        for s in socks:
            s.close()
        os.kill(worker, signal.SIGCONT)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert_answers(inst.port)  # read_response waits 5 s at most
