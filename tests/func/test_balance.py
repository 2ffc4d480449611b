"""Keep-alive connections shared equally between workers, and never reset.

A TCP listener is one SO_REUSEPORT socket per worker with a steering
program (round-robin with eBPF when the master may load it, else a hash
with classic BPF): every worker gets its share of long-lived connections,
which one shared socket did not give (45 against 20 of 64). The sockets are
never closed while their address is configured, so connections queued on
the socket of a worker that goes away (a reload to fewer workers, a killed
worker) are served by whoever polls that socket next, not reset.
"""

import os
import re
import signal
import socket

from rawhttp import open_idle, read_response, wait_for
from saker_harness import run_sakerctl


def config(workers, body="x", watchdog="60s"):
    return ("workers: %d\nshutdown_timeout: 5s\nworker_watchdog_timeout: %s\n"
            "limits: { keep_alive_timeout: 60s }\n"
            "endpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n"
            "routes:\n  - path: /\n    return: { status: 200, body: \"%s\" }\n"
            % (workers, watchdog, body))


def steering(inst):
    """How the listener is steered, from its start-up line."""
    m = re.search(r"listening on 127\.0\.0\.1:\d+ \(.*; (\d+) sockets?, ([a-z-]+)\)",
                  inst.messages())
    assert m, inst.messages()[-2000:]
    return int(m.group(1)), m.group(2)


def open_per_worker(inst):
    return [w["connections_open"] for w in sorted(inst.workers(), key=lambda w: w["index"])]


def test_keepalive_connections_are_shared_equally(saker_factory):
    inst = saker_factory(config(2))
    sockets, kind = steering(inst)
    assert sockets == 2 and kind in ("round-robin", "hash"), (sockets, kind)
    for total in (64, 200):
        socks = open_idle(inst.port, total)
        wait_for(lambda: sum(open_per_worker(inst)) == total, 5,
                 message="%d connections open" % total)
        shares = open_per_worker(inst)
        if kind == "round-robin":
            # Within 10% of an even share; round-robin is exact.
            assert all(abs(s - total / 2) <= total * 0.05 for s in shares), shares
        else:
            # A hash is binomial: 4 standard deviations under an even share.
            assert all(s >= total / 2 - 4 * (total / 4) ** 0.5 for s in shares), shares
        for s in socks:
            s.close()
        wait_for(lambda: sum(open_per_worker(inst)) == 0, 5, message="connections closed")


def send_requests(port, n):
    """n connections, each with a request sent and no answer read yet."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        socks.append(s)
    return socks


def read_all(socks):
    bodies = []
    for s in socks:
        r = read_response(s, timeout=10)  # a reset raises
        bodies.append((r.status, r.body))
        s.close()
    return bodies


def test_reload_to_fewer_workers_serves_what_waited_on_the_sockets_it_leaves(saker_factory):
    inst = saker_factory(config(3, "old"))
    workers = inst.worker_pids()
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)  # nobody accepts: connections queue on all three sockets
    try:
        socks = send_requests(inst.port, 30)
        text = inst.config_path.read_text().replace("workers: 3", "workers: 1")
        inst.config_path.write_text(text.replace('body: "old"', 'body: "new"'))
        before = inst.status()["reload"]["count"]
        inst.reload()
        wait_for(lambda: inst.status()["reload"]["count"] > before, 15, message="reload outcome")
        assert inst.status()["reload"]["ok"], inst.status()["reload"]["message"]
        # The one new worker polls its socket and the two others' too.
        assert read_all(socks) == [(200, b"new")] * 30
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    wait_for(lambda: len(inst.workers()) == 1, 10, message="the old generation gone")


def test_killed_worker_queue_is_served_by_its_replacement(saker_factory):
    inst = saker_factory(config(2))
    victim = [w for w in inst.workers() if w["index"] == 1][0]["pid"]
    os.kill(victim, signal.SIGSTOP)
    socks = send_requests(inst.port, 20)  # about half wait on the stopped worker's socket
    os.kill(victim, signal.SIGKILL)
    assert read_all(socks) == [(200, b"x")] * 20
    wait_for(lambda: victim not in inst.worker_pids() and len(inst.workers()) == 2, 5,
             message="the replacement running")


def test_after_an_upgrade_the_new_master_steers_to_its_own_workers(saker_factory):
    inst = saker_factory(config(2))
    sockets, kind = steering(inst)
    inst.config_path.write_text(inst.config_path.read_text().replace("workers: 2", "workers: 3"))
    r = run_sakerctl("--shm", inst.shm, "upgrade", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: len(inst.workers()) == 3 and
             all(w["state"] == "running" for w in inst.workers()), 15,
             message="the new master's three workers alone")
    # Its program steers once the old master has let go of the sockets.
    wait_for(lambda: "new connections go to 3 of 3 workers" in inst.messages(), 5,
             message="the new master steering")
    assert "steering new connections" not in inst.messages()
    socks = open_idle(inst.port, 60)
    wait_for(lambda: sum(open_per_worker(inst)) == 60, 5, message="60 connections open")
    shares = open_per_worker(inst)
    if kind == "round-robin":
        assert all(abs(s - 20) <= 3 for s in shares), shares
    else:
        assert all(s >= 20 - 4 * (60 * (1 / 3) * (2 / 3)) ** 0.5 for s in shares), shares
    for s in socks:
        s.close()
