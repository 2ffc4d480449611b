"""The master process: CPU pinning, supervision and respawn, graceful and
immediate stops, start-up failures, pid/shm files, listeners of every kind,
--urls/SAKER_URLS, daemon mode and the built-in default configuration."""

import os
import signal
import socket
import subprocess
import time

import pytest

from rawhttp import connect, parse_responses, read_response, recv_closed, send_raw, wait_for
from saker_harness import default_shm_path, process_alive, run_sakerctl

BIG_SIZE = 50 * 1000 * 1000
BIG_TAIL = b"END-OF-BIG-FILE!"


def cfg(url='"http://127.0.0.1:0"', workers=1, root=None, extra="", endpoints=None):
    if endpoints is None:
        endpoints = "  main: {url: %s}\n" % url
    routes = '  - path: /hello\n    return: {status: 200, body: "hello"}\n'
    if root is not None:
        routes += "  - path: /\n    static: {root: %s}\n" % root
    return "workers: %s\n%sendpoints:\n%sroutes:\n%s" % (workers, extra, endpoints, routes)


def hello(port=None, unix=None, host="127.0.0.1"):
    s = connect(port, host=host, unix=unix)
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return read_response(s)
    finally:
        s.close()


def make_big(tmp_path):
    www = tmp_path / "www"
    www.mkdir(exist_ok=True)
    with open(www / "big.bin", "wb") as f:  # sparse: costs no disk
        f.truncate(BIG_SIZE - len(BIG_TAIL))
        f.seek(BIG_SIZE - len(BIG_TAIL))
        f.write(BIG_TAIL)
    return www


def cpus():
    return sorted(os.sched_getaffinity(0))


def cpus_allowed_list(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return None


# ---- pinning and supervision ----------------------------------------------

def test_workers_are_pinned(saker_factory):
    if len(cpus()) < 2:
        pytest.skip("needs 2 CPUs, this process may use %s" % cpus())
    inst = saker_factory(cfg(workers=2))
    ws = inst.workers()
    assert len(ws) == 2
    assert len({w["cpu"] for w in ws}) == 2, ws
    for w in ws:
        allowed = cpus_allowed_list(w["pid"])
        assert allowed is not None and allowed.isdigit(), (w, allowed)
        assert int(allowed) == w["cpu"]
    assert {w["cpu"] for w in ws} <= set(cpus())


def test_killed_worker_is_replaced_and_counters_stay_monotonic(saker_factory):
    inst = saker_factory(cfg(workers=2))
    for _ in range(10):
        assert hello(inst.port).status == 200
    wait_for(lambda: inst.metric("saker_requests_total") == 10, 3, message="10 requests")
    before = inst.metrics()
    old = {w["slot"]: w["pid"] for w in inst.workers()}
    victim = old[0]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        ws = inst.workers()
        return (len(ws) == 2 and all(w["state"] == "running" for w in ws)
                and victim not in [w["pid"] for w in ws]
                and {w["slot"]: w["pid"] for w in ws}.get(1) == old[1])
    wait_for(replaced, 2, message="worker %d replaced by a running one" % victim)
    after = inst.metrics()
    assert after["saker_requests_total"] >= before["saker_requests_total"] == 10
    assert after['saker_responses_total{class="2xx"}'] >= 10
    assert after["saker_connections_accepted_total"] >= before["saker_connections_accepted_total"]
    assert after["saker_worker_deaths_total"] == 1
    assert after["saker_worker_starts_total"] == 3
    assert hello(inst.port).status == 200


def test_crashing_worker_respawned_with_backoff(saker_factory):
    inst = saker_factory(cfg(workers=1))
    delays = []
    pid = inst.worker_pids()[0]
    for i in range(5):
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        def new_running():
            ws = inst.workers()
            if ws and ws[0]["pid"] != pid and ws[0]["state"] == "running":
                return ws[0]["pid"]
            return None
        pid = wait_for(new_running, 12, interval=0.01, message="respawn %d" % (i + 1))
        delays.append(time.monotonic() - killed_at)
        assert inst.running(), "the master must stay up"
    m = inst.metrics()
    assert m["saker_worker_deaths_total"] == 5
    assert m["saker_worker_starts_total"] == 6, "no fork storm: one start per death"
    # backoff: each quick death waits longer than the one before it
    assert delays[-1] > delays[0] + 0.5, delays
    assert delays[-1] > 0.8, delays
    assert hello(inst.port).status == 200


# ---- stopping ----------------------------------------------------------------

def test_sigterm_lets_an_inflight_request_finish(saker_factory, tmp_path):
    www = make_big(tmp_path)
    inst = saker_factory(cfg(root=www, extra="shutdown_timeout: 10s\n"))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(10)
    s.connect(("127.0.0.1", inst.port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    buf = bytearray()
    while len(buf) < 1000000:
        chunk = s.recv(65536)
        assert chunk
        buf += chunk
        time.sleep(0.005)  # deliberate slow reader
    inst.send(signal.SIGTERM)
    t0 = time.monotonic()
    reads = 0
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
            reads += 1
            if reads < 100:
                time.sleep(0.005)  # still slow for a while after the SIGTERM
    finally:
        s.close()
    head, _, body = bytes(buf).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == BIG_SIZE
    assert body.endswith(BIG_TAIL)
    # the loop above ended on EOF: the draining worker closed after the response
    rc = inst.wait_exit(10)
    assert rc == 0
    assert time.monotonic() - t0 < 10


def test_idle_keep_alive_closed_on_sigterm(saker_factory):
    inst = saker_factory(cfg())
    s = connect(inst.port)
    try:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(s).body == b"hello"
        inst.send(signal.SIGTERM)
        assert recv_closed(s, 5), "idle keep-alive connection not closed on SIGTERM"
    finally:
        s.close()
    assert inst.wait_exit(5) == 0


def test_sigquit_stops_at_once(saker_factory, tmp_path):
    www = make_big(tmp_path)
    inst = saker_factory(cfg(root=www, workers=2, extra="shutdown_timeout: 30s\n"))
    workers = inst.worker_pids()
    idle = connect(inst.port)
    busy = connect(inst.port)
    try:
        idle.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(idle).body == b"hello"
        busy.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")  # never read
        assert busy.recv(100).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        inst.send(signal.SIGQUIT)
        inst.wait_exit(3)
        assert time.monotonic() - t0 < 3
        assert recv_closed(idle, 2)
    finally:
        idle.close()
        busy.close()
    wait_for(lambda: not any(process_alive(p) for p in workers), 2, message="workers gone")


def test_shutdown_timeout_kills_a_stuck_connection(saker_factory, tmp_path):
    www = make_big(tmp_path)
    inst = saker_factory(cfg(root=www, extra="shutdown_timeout: 1s\n"))
    workers = inst.worker_pids()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.settimeout(5)
    s.connect(("127.0.0.1", inst.port))
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")  # then never read again
        t0 = time.monotonic()
        inst.send(signal.SIGTERM)
        inst.wait_exit(5)
        took = time.monotonic() - t0
        assert took < 3.5, "exited %.2fs after SIGTERM with shutdown_timeout 1s" % took
        assert took >= 0.8, "exited before shutdown_timeout (%.2fs)" % took
    finally:
        s.close()
    wait_for(lambda: not any(process_alive(p) for p in workers), 2, message="workers gone")


# ---- start-up failures -------------------------------------------------------

def test_second_instance_on_same_port_fails(saker_factory):
    first = saker_factory(cfg())
    port = first.port
    second = saker_factory(cfg(url='"http://127.0.0.1:%d"' % port), expect_ready=False)
    assert second.wait_exit(10) == 1
    msg = second.messages()
    assert "Address already in use" in msg, msg
    assert "127.0.0.1:%d" % port in msg, msg
    assert hello(port).status == 200, "the first instance still serves"
    assert first.status()["instance"]["master_pid"] == first.pid


def test_missing_static_root_fails(saker_factory, tmp_path):
    root = tmp_path / "no-such-root"
    inst = saker_factory(cfg(root=root), expect_ready=False)
    assert inst.wait_exit(10) == 1
    assert str(root) in inst.messages()


def test_unwritable_pid_file_fails(saker_factory):
    inst = saker_factory(cfg() + "pid_file: /nonexistent-dir/x.pid\n", expect_ready=False)
    assert inst.wait_exit(10) == 1
    assert "/nonexistent-dir/x.pid" in inst.messages()
    assert not os.path.exists(inst.shm)


# ---- pid and shm files -------------------------------------------------------

def test_pid_file_and_shm_removed_at_stop(saker_factory):
    inst = saker_factory(cfg(workers=2))
    with open(inst.pid_file) as f:
        assert int(f.read().strip()) == inst.pid
    assert os.path.exists(inst.shm)
    assert inst.stop() == 0
    assert not os.path.exists(inst.pid_file)
    assert not os.path.exists(inst.shm)


# ---- listeners ---------------------------------------------------------------

def test_port_zero_reports_the_real_port(saker_factory):
    inst = saker_factory(cfg())
    (addr, port, kind), = inst.ports
    assert kind == "tcp4" and port != 0
    assert addr == "127.0.0.1:%d" % port
    assert inst.status()["listeners"][0]["url"] == "http://127.0.0.1:0"
    assert hello(port).status == 200


def ipv6_loopback_works():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_localhost_binds_ipv4_and_ipv6_on_one_port(saker_factory):
    if not ipv6_loopback_works():
        pytest.skip("no IPv6 loopback here")
    inst = saker_factory(cfg(url='"http://localhost:0"'))
    kinds = {kind: port for addr, port, kind in inst.ports}
    assert set(kinds) == {"tcp4", "tcp6"}, inst.ports
    assert kinds["tcp4"] == kinds["tcp6"] != 0
    assert hello(kinds["tcp4"], host="127.0.0.1").status == 200
    assert hello(kinds["tcp6"], host="::1").status == 200


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "5", *map(str, args)],
                          capture_output=True, timeout=10)


def test_unix_socket_endpoint(saker_factory, tmp_path):
    path = tmp_path / "s.sock"
    inst = saker_factory(cfg(url='"unix:%s"' % path))
    assert inst.unix_path == str(path)
    assert inst.port is None
    r = curl("--unix-socket", path, "http://localhost/hello")
    assert r.returncode == 0 and r.stdout == b"hello", r
    assert hello(unix=str(path)).body == b"hello"
    assert inst.stop() == 0
    assert not os.path.exists(path), "the socket file is removed at stop"


def test_tcp_and_unix_endpoints_both_serve(saker_factory, tmp_path):
    path = tmp_path / "both.sock"
    inst = saker_factory(cfg(endpoints='  tcp: {url: "http://127.0.0.1:0"}\n'
                                       '  local: {url: "unix:%s"}\n' % path))
    assert hello(inst.port).body == b"hello"
    assert hello(unix=inst.unix_path).body == b"hello"
    r = curl(inst.url("/hello"))
    assert r.stdout == b"hello"


@pytest.mark.parametrize("how", ["--urls", "SAKER_URLS"])
def test_urls_override_config_endpoints(saker_factory, tmp_path, how):
    config_sock = tmp_path / "from-config.sock"
    urls = "http://127.0.0.1:0;unix:%s/a.sock" % tmp_path
    if how == "--urls":
        inst = saker_factory(cfg(url='"unix:%s"' % config_sock), args=("--urls", urls))
    else:
        inst = saker_factory(cfg(url='"unix:%s"' % config_sock), env={"SAKER_URLS": urls})
    listeners = inst.status()["listeners"]
    assert [(l["endpoint"], l["url"], l["kind"]) for l in listeners] == [
        ("url0", "http://127.0.0.1:0", "tcp4"), ("url1", "unix:%s/a.sock" % tmp_path, "unix")]
    assert not config_sock.exists()
    assert hello(inst.port).body == b"hello"
    assert hello(unix=str(tmp_path / "a.sock")).body == b"hello"


def test_daemon_mode(saker_factory):
    inst = saker_factory(cfg(workers=2), args=("-d",), expect_ready=False)
    assert inst.wait_exit(10) == 0
    # exit 0 means serving already: no waiting here
    st = inst.status()
    assert st["instance"]["state"] == "running"
    daemon = st["instance"]["master_pid"]
    assert daemon != inst.pid and process_alive(daemon)
    with open(inst.pid_file) as f:
        assert int(f.read().strip()) == daemon
    assert hello(inst.port).body == b"hello"
    workers = inst.worker_pids()
    inst.stop()
    wait_for(lambda: not process_alive(daemon) and not any(map(process_alive, workers)), 10,
             message="daemon and workers exit on SIGTERM")
    assert not os.path.exists(inst.pid_file)


def port_free(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError as e:
            if family == socket.AF_INET6 and not ipv6_loopback_works():
                continue
            return False, "%s:%d: %s" % (host, port, e)
        finally:
            s.close()
    return True, ""


@pytest.mark.xdist_group("default-instance")  # one at a time in parallel runs
def test_default_config_serves_wwwroot_on_5000(saker_factory, tmp_path):
    free, why = port_free(5000)
    if not free:
        pytest.skip("port 5000 is busy (%s)" % why)
    default_shm = default_shm_path()
    if os.path.exists(default_shm) and \
            run_sakerctl("--shm", default_shm, "status").returncode == 0:
        pytest.skip("a default instance is running (%s)" % default_shm)
    site = tmp_path / "site"
    (site / "wwwroot").mkdir(parents=True)
    (site / "wwwroot" / "index.html").write_bytes(b"<p>default wwwroot</p>\n")
    inst = saker_factory(None, cwd=site, shm=default_shm)
    assert 5000 in [p for _, p, _ in inst.ports]
    r = curl("http://localhost:5000/")
    assert r.returncode == 0 and r.stdout == b"<p>default wwwroot</p>\n", r
    inst.stop()
    assert not os.path.exists(default_shm)


@pytest.mark.xdist_group("default-instance")  # one at a time in parallel runs
def test_default_config_without_wwwroot_fails(saker_factory, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    inst = saker_factory(None, cwd=empty, expect_ready=False)
    assert inst.wait_exit(10) == 1
    assert "./wwwroot" in inst.messages(), inst.messages()


def test_killed_worker_open_connections_leave_the_gauge(saker_factory):
    inst = saker_factory(cfg(workers=1))
    socks = [connect(inst.port) for _ in range(3)]
    try:
        for s in socks:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(s).body == b"hello"
        wait_for(lambda: inst.metric("saker_connections_open") == 3, 3, message="3 open")
        victim = inst.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        for s in socks:
            assert recv_closed(s, 3)
        wait_for(lambda: inst.worker_pids() and inst.worker_pids()[0] != victim, 3,
                 message="worker replaced")
        st = inst.status()
        assert st["totals"]["connections_open"] == 0
        assert st["totals"]["connections_accepted"] == 3
        assert st["totals"]["requests"] == 3
        assert inst.metric("saker_connections_open") == 0
    finally:
        for s in socks:
            s.close()


def test_workers_exit_when_the_master_is_killed(saker_factory):
    inst = saker_factory(cfg(workers=2))
    workers = inst.worker_pids()
    os.kill(inst.pid, signal.SIGKILL)
    inst.wait_exit(5)
    wait_for(lambda: not any(process_alive(p) for p in workers), 5,
             message="workers %s exit after the master died" % workers)


def test_sigint_is_a_graceful_stop(saker_factory):
    inst = saker_factory(cfg(workers=2))
    workers = inst.worker_pids()
    assert inst.stop(signal.SIGINT) == 0
    assert not any(process_alive(p) for p in workers)
    assert not os.path.exists(inst.shm)


def test_daemon_mode_failing_start_exits_1(saker_factory):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        inst = saker_factory(cfg(url='"http://127.0.0.1:%d"' % port), args=("-d",),
                             expect_ready=False)
        assert inst.wait_exit(10) == 1
        # On the terminal, before detaching: the log is a file the user
        # may not think of reading.
        assert "Address already in use" in inst.stderr(), inst.stderr()
        assert "127.0.0.1:%d" % port in inst.stderr()
        assert "discarded" not in inst.stderr()
    finally:
        busy.close()


@pytest.mark.parametrize("daemon", [False, True])
def test_start_error_after_binding_reaches_the_terminal(saker_factory, daemon):
    """A failure after the listeners are bound (here the segment cannot be
    created) reaches stderr too, from the daemon through its first process."""
    inst = saker_factory(cfg() + "shm_path: /nonexistent-dir/x.shm\n",
                         args=("-d",) if daemon else (), expect_ready=False)
    assert inst.wait_exit(10) == 1
    assert "/nonexistent-dir/x.shm" in inst.stderr(), inst.stderr()
    assert "No such file or directory" in inst.stderr()
    assert not os.path.exists(inst.pid_file)
    assert [p for p in os.listdir(inst.tmp) if p.startswith("saker.pid")] == []


def test_daemon_without_error_log_says_where_its_log_went(saker_factory, tmp_path):
    text = cfg() + "error_log: stderr\n"
    inst = saker_factory(text, args=("-d",), expect_ready=False)
    assert inst.wait_exit(10) == 0
    assert "serving; no error_log set, so the daemon's log lines are discarded" in \
        inst.stderr()
    inst.stop()


def test_second_instance_with_the_same_shm_path_refuses(saker_factory, tmp_path):
    shared = tmp_path / "shared.shm"
    first = saker_factory(cfg() + "shm_path: %s\n" % shared)
    second = saker_factory(cfg() + "shm_path: %s\n" % shared, expect_ready=False)
    try:
        rc = second.wait_exit(2)
    except AssertionError:
        rc = None  # still running: it took the segment over
    assert first.status()["instance"]["master_pid"] == first.pid
    assert rc == 1
    assert str(shared) in second.messages()
    assert "in use by a running saker (master pid %d)" % first.pid in second.messages()
