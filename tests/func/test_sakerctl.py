"""sakerctl against a live instance (status, status --json, metrics) and
without one; and the `status` route kinds served over HTTP."""

import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

from rawhttp import connect, parse_responses, read_response, send_raw, wait_for
from saker_harness import parse_metrics, run_sakerctl, sakerctl_binary

CONFIG = """
workers: 2
endpoints:
  main: {url: "http://127.0.0.1:0"}
routes:
  - path: /live
    status: {kind: liveness}
  - path: /ready
    status: {kind: readiness}
  - path: /metrics
    status: {kind: metrics}
  - path: /
    return: {status: 200, body: "ok"}
"""


@pytest.fixture
def inst(saker_factory):
    return saker_factory(CONFIG)


def get(inst, path):
    rs = parse_responses(send_raw(inst.port, b"GET " + path.encode() +
                                  b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    assert len(rs) == 1
    return rs[0]


def send_requests(inst, n, path="/"):
    """n requests over a few keep-alive connections; returns when all answered."""
    done = 0
    while done < n:
        s = connect(inst.port)
        try:
            for _ in range(min(7, n - done)):
                s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
                r = read_response(s)
                assert r.status == 200
                done += 1
        finally:
            s.close()


def settled(inst, n):
    wait_for(lambda: inst.metric("saker_requests_total") == n
             and inst.metric('saker_responses_total{class="2xx"}') == n
             and inst.metric("saker_connections_open") == 0, 3,
             message="%d requests and responses counted, connections closed" % n)


def test_status_human(inst):
    r = run_sakerctl("--shm", inst.shm, "status")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert re.search(r"^saker \S+ master pid %d, up \S+, generation 1, state running$"
                     % inst.pid, out, re.M), out
    assert "listeners:" in out
    assert re.search(r"^\s+main\s+http://127\.0\.0\.1:0\s+127\.0\.0\.1:%d$" % inst.port,
                     out, re.M), out
    assert re.search(r"^\s*SLOT\s+PID\s+GEN\s+CPU\s+STATE", out, re.M), out
    for w in inst.workers():
        assert re.search(r"^\s*%d\s+%d\s+1\s+%d\s+running\b" % (w["slot"], w["pid"], w["cpu"]),
                         out, re.M), (w, out)


def test_status_json_shape(inst):
    send_requests(inst, 3)
    settled(inst, 3)
    st = inst.status()
    assert set(st) >= {"instance", "listeners", "reload", "totals", "master", "workers"}
    assert set(st["instance"]) >= {"master_pid", "started_at", "uptime_seconds", "state",
                                   "generation", "workers_per_generation", "layout_version",
                                   "shm_path"}
    assert st["instance"]["master_pid"] == inst.pid
    assert st["instance"]["state"] == "running"
    assert st["instance"]["workers_per_generation"] == 2
    assert st["instance"]["shm_path"] == inst.shm
    (l,) = st["listeners"]
    assert l == {"endpoint": "main", "url": "http://127.0.0.1:0",
                 "address": "127.0.0.1:%d" % inst.port, "port": inst.port, "kind": "tcp4"}
    assert set(st["reload"]) >= {"count", "ok", "message", "duration_ms", "finished_at"}
    t = st["totals"]
    assert set(t) >= {"connections_accepted", "connections_open", "requests", "responses",
                      "bytes_in", "bytes_out", "rejections"}
    assert set(t["responses"]) == {"1xx", "2xx", "3xx", "4xx", "5xx"}
    assert t["requests"] == 3 and t["responses"]["2xx"] == 3
    assert t["bytes_in"] > 0 and t["bytes_out"] > 0
    assert all(isinstance(v, int) for v in t["rejections"].values())
    assert "malformed" in t["rejections"]
    assert set(st["master"]) >= {"worker_starts", "worker_deaths", "watchdog_kills"}
    assert st["master"]["worker_starts"] == 2
    assert len(st["workers"]) == 2
    for w in st["workers"]:
        assert set(w) >= {"slot", "pid", "cpu", "generation", "index", "state",
                          "heartbeat_age_ms", "started_at", "connections_open",
                          "connections_accepted", "requests", "responses", "bytes_in",
                          "bytes_out"}
        assert w["state"] == "running" and w["generation"] == 1
        assert 0 <= w["heartbeat_age_ms"] < 3000, w
        assert abs(w["started_at"] - time.time()) < 60
    assert abs(st["instance"]["started_at"] - time.time()) < 60
    assert 0 <= st["instance"]["uptime_seconds"] < 60
    assert sorted(w["index"] for w in st["workers"]) == [0, 1]
    assert sum(w["requests"] for w in st["workers"]) == 3


def test_metrics_count_exactly_the_requests_sent(inst):
    n = 23
    send_requests(inst, n)
    settled(inst, n)
    text = inst.metrics_text()
    m = parse_metrics(text)
    assert m["saker_requests_total"] == n
    assert m['saker_responses_total{class="2xx"}'] == n
    for cls in ("1xx", "3xx", "4xx", "5xx"):
        assert m['saker_responses_total{class="%s"}' % cls] == 0
    assert m["saker_connections_accepted_total"] == (n + 6) // 7
    assert m["saker_up"] == 1
    assert sum(v for k, v in m.items() if k.startswith("saker_worker_requests_total{")) == n
    # every family has HELP and TYPE; counters end in _total; a
    # histogram's samples are its name with _bucket, _sum and _count
    helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))

    def family(sample):
        name = sample.split("{")[0]
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        return base if types.get(base) == "histogram" else name
    families = {family(k) for k in m}
    assert families <= helps and families <= set(types), families - helps
    for name, kind in types.items():
        assert kind in ("counter", "gauge", "histogram"), (name, kind)
        assert (kind == "counter") == name.endswith("_total"), (name, kind)
        assert name.startswith("saker_")


def test_metrics_monotonic_across_worker_kill(inst):
    n = 20
    send_requests(inst, n)
    settled(inst, n)
    before = inst.metrics()
    victim = inst.workers()[0]
    assert victim["requests"] > 0 or inst.workers()[1]["requests"] > 0
    os.kill(victim["pid"], signal.SIGKILL)
    wait_for(lambda: victim["pid"] not in inst.worker_pids()
             and len(inst.workers()) == 2
             and all(w["state"] == "running" for w in inst.workers()), 3,
             message="worker replaced")
    after = inst.metrics()
    for name, value in before.items():
        if name.endswith("_total") and "{slot=" not in name:
            assert after[name] >= value, name
    assert after["saker_requests_total"] == n
    assert after['saker_responses_total{class="2xx"}'] == n
    assert after["saker_connections_open"] == 0
    send_requests(inst, 5)
    settled(inst, n + 5)


def test_status_without_instance(tmp_path):
    missing = tmp_path / "nothing.shm"
    r = run_sakerctl("--shm", missing, "status")
    assert r.returncode == 1
    assert "no saker instance at %s" % missing in r.stderr, r.stderr
    r = run_sakerctl("--shm", missing, "status", "--json")
    assert r.returncode == 1 and r.stdout == "" and str(missing) in r.stderr
    r = run_sakerctl("--shm", missing, "metrics")
    assert r.returncode == 1 and r.stdout == "" and str(missing) in r.stderr


@pytest.mark.parametrize("content", [b"hello\n", b"\0" * 65536, os.urandom(8192)],
                         ids=["text", "zeros", "random"])
def test_status_on_a_file_that_is_not_shm(tmp_path, content):
    bogus = tmp_path / "bogus.shm"
    bogus.write_bytes(content)
    r = run_sakerctl("--shm", bogus, "status", "--json")
    assert r.returncode == 1
    assert r.stdout == ""
    assert str(bogus) in r.stderr and "not a saker shm segment" in r.stderr, r.stderr


def test_stale_segment_of_a_dead_master(saker_factory):
    inst = saker_factory(CONFIG)
    os.kill(inst.pid, signal.SIGKILL)
    inst.wait_exit(5)
    assert os.path.exists(inst.shm)
    r = run_sakerctl("--shm", inst.shm, "status")
    assert r.returncode == 1
    assert "not running" in r.stderr and str(inst.pid) in r.stderr, r.stderr


def test_config_option_finds_the_instance(inst):
    r = run_sakerctl("-c", inst.config_path, "status", "--json")
    assert r.returncode == 0, r.stderr
    assert '"master_pid":%d' % inst.pid in r.stdout
    r = run_sakerctl("status", "--json", env={"SAKER_CONFIG": str(inst.config_path)})
    assert r.returncode == 0 and '"master_pid":%d' % inst.pid in r.stdout, r.stderr
    r = run_sakerctl("status", env={"SAKER_SHM": inst.shm})
    assert r.returncode == 0 and "master pid %d" % inst.pid in r.stdout, r.stderr


def test_global_options_before_or_after_the_command(inst):
    for args in (["-c", inst.config_path, "status", "--json"],
                 ["status", "-c", inst.config_path, "--json"],
                 ["status", "--json", "--config=%s" % inst.config_path],
                 ["status", "--json", "--shm", inst.shm]):
        r = run_sakerctl(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert '"master_pid":%d' % inst.pid in r.stdout, args
    r = run_sakerctl("status", "-c")
    assert r.returncode == 2 and "option '-c' needs an argument" in r.stderr, r.stderr
    r = run_sakerctl("status", "-h")
    assert r.returncode == 0 and "usage: sakerctl" in r.stdout


def test_pid_and_pid_file_find_the_instance_whatever_the_config_says(inst, tmp_path):
    """systemd's $MAINPID and the init script's pid file: the instance is
    found through its master, so an edited shm_path loses nothing."""
    text = inst.config_path.read_text()
    inst.config_path.write_text(text.replace("shm_path: %s" % inst.shm,
                                             "shm_path: %s" % (tmp_path / "elsewhere.shm")))
    try:
        for args in (["--pid", str(inst.pid)], ["--pid-file", inst.pid_file]):
            r = run_sakerctl("status", "--json", *args)
            assert r.returncode == 0, (args, r.stderr)
            assert '"master_pid":%d' % inst.pid in r.stdout
        worker = inst.worker_pids()[0]
        r = run_sakerctl("--pid", str(worker), "stop")
        assert r.returncode == 1
        assert "pid %d is not the saker master of %s" % (worker, inst.shm) in r.stderr, r.stderr
        r = run_sakerctl("--pid", str(os.getpid()), "status")
        assert r.returncode == 1 and "maps no saker shm segment" in r.stderr, r.stderr
        r = run_sakerctl("--pid", "12x", "status")
        assert r.returncode == 1 and "'12x' is not a process id" in r.stderr, r.stderr
        r = run_sakerctl("--pid-file", tmp_path / "none.pid", "status")
        assert r.returncode == 1 and "none.pid" in r.stderr, r.stderr
    finally:
        inst.config_path.write_text(text)


def test_unknown_command_is_usage_error(tmp_path):
    r = run_sakerctl("--shm", tmp_path / "x.shm", "no-such-command")
    assert r.returncode == 2
    assert "unknown command" in r.stderr and "usage:" in r.stderr
    r = run_sakerctl("--shm", tmp_path / "x.shm", "status", "--bogus")
    assert r.returncode == 2
    r = run_sakerctl()
    assert r.returncode == 2


def test_status_routes_over_http(inst):
    r = get(inst, "/live")
    assert r.status == 200
    r = get(inst, "/ready")
    assert r.status == 200
    assert r.header("cache-control") == "no-store"


def test_metrics_over_http_match_sakerctl(inst):
    n = 9
    send_requests(inst, n)
    settled(inst, n)
    r = get(inst, "/metrics")
    assert r.status == 200
    assert r.header("content-type").startswith("text/plain; version=0.0.4")
    http = parse_metrics(r.body.decode())
    wait_for(lambda: inst.metric("saker_connections_open") == 0, 3, message="closed")
    ctl = inst.metrics()
    # the /metrics request itself is counted before its body is rendered
    assert http["saker_requests_total"] == n + 1
    assert ctl["saker_requests_total"] == n + 1
    assert http['saker_responses_total{class="2xx"}'] == n
    assert ctl['saker_responses_total{class="2xx"}'] == n + 1
    assert set(http) == set(ctl)
    assert http["saker_worker_starts_total"] == ctl["saker_worker_starts_total"] == 2


# ---- a hostile or shrinking segment ----------------------------------------
# sakerctl reads the segment as untrusted input. These work on a copy of a
# live instance's segment (its master is alive, so sakerctl reads it), which
# the test then shrinks or fills with what it likes.

# The header's first fields (shm_layout.h): magic, layout_version,
# header_size, slot_size, slot_count, total_size, master_pid, reserved0,
# started_at, then server_version and the master's identity (start ticks,
# executable device and inode), which sakerctl checks against /proc.
PREFIX = struct.Struct("<QIIIIQiiq")
MASTER_IDENTITY = slice(80, 104)


def copy_segment(inst, tmp_path):
    copy = tmp_path / "copy.shm"
    shutil.copyfile(inst.shm, copy)
    os.chmod(copy, 0o600)
    return copy


def test_top_survives_a_segment_truncated_under_it(inst, tmp_path):
    """A file that shrinks under `sakerctl top` ends it with the reason:
    it read the segment through a mapping and died of SIGBUS."""
    copy = copy_segment(inst, tmp_path)
    out_path = tmp_path / "top.out"
    with open(out_path, "wb") as out:
        top = subprocess.Popen([sakerctl_binary(), "--shm", str(copy), "top",
                                "--interval", "50ms", "--iterations", "1000"],
                               stdout=out, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: out_path.read_bytes().count(b"SLOT") >= 2, 10,
                 message="two frames of top")
        os.truncate(copy, 4096)
        _, err = top.communicate(timeout=10)
    finally:
        if top.poll() is None:
            top.kill()
            top.wait()
    assert top.returncode == 1, (top.returncode, err)
    assert "%s: truncated segment (4096 bytes, expected " % copy in err.decode(), err


def test_reading_extreme_values(inst, tmp_path):
    """Times at the ends of int64 (started_at = INT64_MIN): uptime saturates
    instead of overflowing (undefined behaviour, and a wrapped "0s")."""
    copy = copy_segment(inst, tmp_path)
    with open(copy, "r+b") as f:
        fields = list(PREFIX.unpack(f.read(PREFIX.size)))
        fields[-1] = -2 ** 63
        f.seek(0)
        f.write(PREFIX.pack(*fields))
    r = run_sakerctl("--shm", copy, "status", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["instance"]["uptime_seconds"] == 2 ** 63 - 1
    r = run_sakerctl("--shm", copy, "status")
    assert r.returncode == 0 and ", up 106751991167300d15h30m7s," in r.stdout, r.stdout
    r = run_sakerctl("--shm", copy, "metrics")
    assert r.returncode == 0, r.stderr
    assert parse_metrics(r.stdout)["saker_start_time_seconds"] == float(2 ** 63)
    r = run_sakerctl("--shm", copy, "top", "--once", "--interval", "50ms")
    assert r.returncode == 0 and "up 106751991167300d15h30m7s" in r.stdout, r.stdout


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reading_a_segment_of_random_bytes(inst, tmp_path, seed):
    """Everything but the sizes and the master's pid and identity is noise:
    counts past their tables, strings without a NUL, odd sequences. Every
    view still renders (a torn header is a warning), and the JSON stays
    JSON."""
    copy = copy_segment(inst, tmp_path)
    image = bytearray(copy.read_bytes())
    identity = image[MASTER_IDENTITY]
    image[36:] = random.Random(seed).randbytes(len(image) - 36)
    image[MASTER_IDENTITY] = identity
    copy.write_bytes(bytes(image))
    r = run_sakerctl("--shm", copy, "status", "--json", timeout=30)
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)
    r = subprocess.run([sakerctl_binary(), "--shm", str(copy), "metrics"], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    parse_metrics(r.stdout.decode("utf-8"))  # label values are UTF-8, or Prometheus refuses
    # The terminal views pass bytes >= 0x80 through (a name may be UTF-8),
    # never a control character.
    for args in (("status",), ("top", "--once", "--interval", "50ms")):
        r = subprocess.run([sakerctl_binary(), "--shm", str(copy), *args],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, (args, r.stderr)
        assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", r.stdout), (args, r.stdout)
