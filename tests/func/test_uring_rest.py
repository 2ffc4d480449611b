"""`transport: io_uring` at rest after a burst: the provided receive
buffers the ring grew to while many connections received at once, and
the spares a turn that served them all left behind, go back when the
worker is quiet, as they do on epoll; and every connection is served
afterwards: those idle across that, and one whose input was waiting,
unread, while it happened."""

import os
import resource
import signal
import threading
import time

import pytest

from rawhttp import connect, parse_responses, read_response
from saker_harness import wait_for_quiet_trim, wait_for_worker_rss_at_most, worker_rss_kb
from test_uring import get, open_idle, raise_open_files_limit
from uring_transport import GROUP, has_io_uring, io_uring_transport  # noqa: F401

pytestmark = GROUP

BURST = 400  # connections receiving at once: the ring grows from 32 buffers

CONFIG = """
workers: 1
endpoints:
  main: {url: "http://127.0.0.1:0"}
routes:
  - path: /big
    return: {status: 200, body: "%s"}
  - path: /
    return: {status: 200, body: "hello"}
""" % ("b" * 16384)


def burst(worker, socks):
    """A request on every connection while the worker is stopped: it finds
    them all received at once when it goes on."""
    os.kill(worker, signal.SIGSTOP)
    try:
        for s in socks:
            s.sendall(get())
    finally:
        os.kill(worker, signal.SIGCONT)
    for s in socks:
        assert read_response(s).body == b"hello"


def assert_all_served(socks):
    for s in socks:
        s.sendall(get())
    for s in socks:
        assert read_response(s).body == b"hello"


@pytest.fixture
def burst_conns(saker_factory):
    inst = saker_factory(CONFIG)
    worker = inst.worker_pids()[0]
    assert has_io_uring(worker)
    soft, hard = raise_open_files_limit(BURST)
    socks = []
    try:
        open_idle(inst.port, socks, BURST)  # 4 at a time: the ring keeps its 32 buffers
        yield inst, worker, socks
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.memory
def test_worker_at_rest_after_a_burst_is_back_to_its_rss_before(burst_conns):
    """The burst grows the ring's receive buffers (hundreds of 2 KiB
    buffers, from 32) and leaves an HTTP/1 state, an output buffer and a
    route statistics stamp per connection served in its turn: a quiet
    worker gives all of it back. Before, the buffers stayed for the life
    of the worker, and the spare states and stamps with them (about
    1.1 MB here)."""
    inst, worker, socks = burst_conns
    wait_for_quiet_trim(inst)
    before = worker_rss_kb(inst)
    burst(worker, socks)
    peak = worker_rss_kb(inst)
    assert peak >= before + 512, (before, peak)  # else the burst proves nothing
    bound = before + 64
    at_rest = wait_for_worker_rss_at_most(
        inst, bound, "the worker's Rss stayed above %d kB after the burst (%d kB before, %d after)"
        % (bound, before, peak))
    print("worker Rss: %d kB before a burst of %d connections, %d after it, %d at rest"
          % (before, BURST, peak, at_rest))
    assert_all_served(socks)
    burst(worker, socks)  # the ring grows again from its smaller self
    assert worker_rss_kb(inst) >= at_rest + 256


def test_connections_idle_across_the_shrink_are_served(burst_conns):
    """Their multishot receives stay armed in the kernel while the buffer
    group is registered anew, and take from the new ring."""
    inst, worker, socks = burst_conns
    burst(worker, socks)
    wait_for_quiet_trim(inst)
    assert_all_served(socks)
    burst(worker, socks)
    wait_for_quiet_trim(inst)
    burst(worker, socks)


def test_input_held_unread_across_the_shrink_is_answered_whole(burst_conns):
    """A client sends a long pipelined batch and reads nothing: the worker
    stops reading once its output is blocked, holding what it had
    received in provided buffers through the quiet spell (the ring grew
    first: they may be among those taken back). When the client reads,
    every request is answered, in order."""
    inst, worker, socks = burst_conns
    burst(worker, socks)
    paths = ["/big" if i % 3 else "/" for i in range(3000)]
    reader = connect(inst.port)
    sender = threading.Thread(target=reader.sendall,
                              args=(b"".join(get(p) for p in paths),), daemon=True)
    try:
        sender.start()
        wait_for_quiet_trim(inst)
        assert_all_served(socks)
        chunks, count = [b""], 0
        deadline = time.monotonic() + 60
        while count < len(paths):
            assert time.monotonic() < deadline, count
            chunk = reader.recv(1 << 20)
            assert chunk, "closed after %d responses" % count
            count += (chunks[-1][-11:] + chunk).count(b"HTTP/1.1 200")
            chunks.append(chunk)
        sender.join(10)
        assert not sender.is_alive()
    finally:
        reader.close()
    bodies = [r.body for r in parse_responses(b"".join(chunks))]
    assert bodies == [b"b" * 16384 if p == "/big" else b"hello" for p in paths]
