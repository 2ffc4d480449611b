"""Descriptor exhaustion: a worker at its open-files limit.

A worker whose RLIMIT_NOFILE is lowered while it runs (prlimit on its pid,
as a small `ulimit -n` would) is filled with real client connections, with
more queued behind them that it cannot accept. What an operator must see:
the worker does not spin (its CPU time grows far slower than the clock),
the error log grows by a few lines, not one per attempt, connections it
already has are still answered, and once descriptors come back it accepts
what was queued and serves it.
"""

import os
import resource
import socket
import time

from rawhttp import connect, read_response, wait_for

CONFIG = """
workers: 1
limits: { keep_alive_timeout: 60s, request_headers_timeout: 60s }
endpoints:
  main: { url: "http://127.0.0.1:0" }
routes:
  - path: /
    return: { status: 200, body: "ok" }
"""

ROOM = 20     # connections the worker can still take under the lowered limit
QUEUED = 20   # connections left in the listen queue, waiting for a descriptor


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def get(sock):
    sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    r = read_response(sock, timeout=5)
    return r.status, r.body


def accept_failures(inst):
    return inst.error_log().count("accept4() failed: Too many open files")


def test_worker_out_of_descriptors_backs_off_and_recovers(saker_factory):
    inst = saker_factory(CONFIG)
    worker = inst.worker_pids()[0]
    early = connect(inst.port)
    assert get(early) == (200, b"ok")  # a keep-alive client from before

    limit = open_fds(worker) + ROOM
    resource.prlimit(worker, resource.RLIMIT_NOFILE, (limit, limit))
    fillers = []
    for _ in range(ROOM + QUEUED):
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        fillers.append(s)
    wait_for(lambda: open_fds(worker) >= limit, 5, message="the worker at its limit")
    wait_for(lambda: accept_failures(inst) >= 1, 5, message="accept4 failing with EMFILE")

    log_before = len(inst.error_log().splitlines())
    cpu_before, t0 = cpu_seconds(worker), time.monotonic()
    deadline = t0 + 3
    while time.monotonic() < deadline:
        assert get(early) == (200, b"ok"), "an open connection went unanswered"
        time.sleep(0.2)  # a client's pace, not synchronisation
    wall = time.monotonic() - t0
    cpu = cpu_seconds(worker) - cpu_before
    log_growth = len(inst.error_log().splitlines()) - log_before
    # A worker retrying at once uses a whole CPU and writes a line a try.
    assert cpu < 0.25 * wall, "worker used %.2f s of CPU in %.2f s" % (cpu, wall)
    assert log_growth <= 3, inst.error_log()[-2000:]
    assert open_fds(worker) <= limit

    # Descriptors come back: what waited in the queue is accepted and served.
    for s in fillers[:ROOM]:
        s.close()
    for s in fillers[ROOM:]:
        r = read_response(s, timeout=5)
        assert (r.status, r.body) == (200, b"ok")
        s.close()
    assert get(early) == (200, b"ok")
    early.close()
    # The flood's count comes out as one line once its interval is over.
    wait_for(lambda: "more like it in" in inst.error_log(), 10,
             message="the count of the suppressed accept4 lines")
    assert accept_failures(inst) <= 3
