"""sakerctl's control commands against a live instance: reload (valid,
invalid, stuck master), stop (graceful, --now, timeout), drain/undrain,
reopen, top, help; their messages and exit codes without an instance or
without permission; and the LSB init script driving saker end to end.

Exit codes (cli/cli.h): 0 done, 1 failed, 2 usage, 4 permission denied.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from rawhttp import connect, parse_responses, read_response, send_raw, wait_for
from saker_harness import process_alive, run_sakerctl, saker_binary, sakerctl_binary

SRCDIR = Path(__file__).resolve().parents[2]


def config(body="one", workers=2, extra=""):
    return """workers: %d
shutdown_timeout: 30s
%sendpoints:
  main: {url: "http://127.0.0.1:0"}
routes:
  - path: /ready
    status: {kind: readiness}
  - path: /
    return: {status: 200, body: "%s"}
""" % (workers, extra, body)


def ctl(inst, *args, timeout=30):
    """sakerctl -c CONFIG ARGS: the way an operator or an init system runs it."""
    return run_sakerctl("-c", inst.config_path, *args, timeout=timeout)


def get(port, path="/"):
    rs = parse_responses(send_raw(port, b"GET " + path.encode() +
                                  b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    assert len(rs) == 1, rs
    return rs[0]


def ask(sock, path="/"):
    """One request on an open keep-alive connection."""
    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    return read_response(sock)


def rewrite(inst, old, new):
    """Edits the instance's config in place (keeping the lines the harness
    appended: shm_path, error_log, pid_file)."""
    text = inst.config_path.read_text()
    assert old in text
    inst.config_path.write_text(text.replace(old, new))


def line_of(text, needle):
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError("%r not in config" % needle)


# ---- reload ----------------------------------------------------------------

def test_reload_applies_a_changed_config(saker_factory):
    inst = saker_factory(config("one"))
    assert get(inst.port).body == b"one"
    rewrite(inst, '"one"', '"two"')
    r = ctl(inst, "reload")
    assert r.returncode == 0, (r.stdout, r.stderr)
    m = re.match(r"reloaded: generation (\d+) in (\d+) ms$", r.stdout.splitlines()[0])
    assert m, r.stdout
    assert int(m.group(1)) == 2
    st = inst.status()
    assert st["instance"]["generation"] == 2
    assert st["reload"]["count"] == 1 and st["reload"]["ok"] is True
    assert get(inst.port).body == b"two"
    # The human status always shows the last reload's outcome.
    out = run_sakerctl("--shm", inst.shm, "status").stdout
    assert re.search(r"^last reload\s+ok in \d+ ms", out, re.M), out


def test_reload_invalid_config_reports_file_line_column(saker_factory):
    inst = saker_factory(config("one"))
    text = inst.config_path.read_text().replace("shutdown_timeout: 30s\n",
                                                "shutdown_timeout: 30s\nno_such_key: 1\n")
    inst.config_path.write_text(text)
    line = line_of(text, "no_such_key")
    r = ctl(inst, "reload")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    m = re.search(r"^reload failed: (.*)$", r.stderr, re.M)
    assert m, r.stderr
    assert re.search(r"saker\.yaml:%d:\d+: " % line, m.group(1)), r.stderr
    assert "no_such_key" in m.group(1)
    # The error is the master's, said once: no warning about the same config.
    assert "warning" not in r.stderr, r.stderr
    # Nothing changed: the old generation serves the old config.
    st = inst.status()
    assert st["instance"]["generation"] == 1
    assert st["reload"]["ok"] is False and st["reload"]["count"] == 1
    assert get(inst.port).body == b"one"
    out = run_sakerctl("--shm", inst.shm, "status").stdout
    assert re.search(r"^last reload\s+FAILED .*saker\.yaml:%d:" % line, out, re.M), out


def test_reload_yaml_syntax_error(saker_factory):
    """A file libyaml cannot parse: found through --shm, the master reports
    where it broke."""
    inst = saker_factory(config("one"))
    text = inst.config_path.read_text()
    inst.config_path.write_text(text.replace("routes:\n", "routes:\n  - path: [unclosed\n", 1))
    r = run_sakerctl("--shm", inst.shm, "reload")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert re.search(r"^reload failed: .*saker\.yaml:\d+:\d+: ", r.stderr, re.M), r.stderr
    assert get(inst.port).body == b"one"
    # With -c, sakerctl cannot even read shm_path (it follows the error):
    # it says so itself, with the position, and signals nobody.
    r = ctl(inst, "reload")
    assert r.returncode == 1 and re.search(r"saker\.yaml:\d+:\d+: ", r.stderr), r.stderr
    assert inst.status()["reload"]["count"] == 1


def test_reload_with_a_stuck_master_times_out(saker_factory):
    inst = saker_factory(config("one"))
    os.kill(inst.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        r = ctl(inst, "reload", "--timeout", "300ms")
        took = time.monotonic() - start
    finally:
        os.kill(inst.pid, signal.SIGCONT)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no reload outcome after 300ms (is the master stuck?)" in r.stderr, r.stderr
    assert 0.25 <= took < 3, took
    # The HUP was delivered: once running again, the master does reload.
    wait_for(lambda: inst.status()["reload"]["count"] == 1, 10, message="the queued reload")


def test_status_groups_generations_during_reload(saker_factory):
    """An old worker that cannot finish (stopped) keeps its generation
    alive beside the new one; status lists each generation apart."""
    inst = saker_factory(config("one", workers=1))
    old = inst.worker_pids()[0]
    os.kill(old, signal.SIGSTOP)
    try:
        rewrite(inst, '"one"', '"two"')
        r = ctl(inst, "reload")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: len(inst.worker_pids()) == 2, 5, message="two generations live")
        out = run_sakerctl("--shm", inst.shm, "status").stdout
        assert "generation 2 (serving):" in out, out
        assert "generation 1 (old, draining):" in out, out
        assert out.index("generation 2 (serving):") < out.index("generation 1 (old"), out
        assert re.search(r"^\s*\d+\s+%d\s+1\s" % old, out, re.M), out
    finally:
        os.kill(old, signal.SIGCONT)
    wait_for(lambda: old not in inst.worker_pids(), 10, message="old worker gone")
    out = run_sakerctl("--shm", inst.shm, "status").stdout
    assert "generation 2 (serving)" not in out, out  # one generation: no groups


# ---- stop ------------------------------------------------------------------

def test_stop_graceful(saker_factory):
    inst = saker_factory(config())
    pids = inst.worker_pids()
    r = ctl(inst, "stop")
    assert r.returncode == 0, r.stderr
    assert re.match(r"stopped: saker master pid %d exited in \d+ ms$" % inst.pid,
                    r.stdout.strip()), r.stdout
    assert inst.wait_exit(5) == 0
    for p in pids:
        assert not process_alive(p)
    r = ctl(inst, "stop")
    assert r.returncode == 1 and "sakerctl: no saker instance at %s" % inst.shm in r.stderr


def test_stop_now(saker_factory):
    inst = saker_factory(config())
    r = ctl(inst, "stop", "--now")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stopped: ")
    inst.wait_exit(5)


def test_stop_timeout_is_reported_not_escalated(saker_factory):
    inst = saker_factory(config(workers=1))
    worker = inst.worker_pids()[0]
    os.kill(worker, signal.SIGSTOP)  # cannot drain: the graceful stop waits
    try:
        r = ctl(inst, "stop", "--timeout", "500ms")
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "still running after 500ms" in r.stderr, r.stderr
        assert "sakerctl stop --now" in r.stderr, r.stderr
        assert process_alive(inst.pid)  # sakerctl did not kill it
        # What the message suggests works on the stuck stop.
        r = ctl(inst, "stop", "--now", "--timeout", "10s")
        assert r.returncode == 0, r.stderr
        inst.wait_exit(5)
        assert not process_alive(worker)
    finally:
        try:
            os.kill(worker, signal.SIGCONT)
        except ProcessLookupError:
            pass


# ---- drain / undrain --------------------------------------------------------

def answered_within(sock, seconds):
    sock.settimeout(seconds)
    try:
        return sock.recv(1) != b""
    except socket.timeout:
        return False


def test_drain_and_undrain(saker_factory):
    inst = saker_factory(config())
    kept = connect(inst.port)
    assert ask(kept).status == 200
    assert ask(kept, "/ready").status == 200

    r = ctl(inst, "drain")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("draining: saker master pid %d" % inst.pid), r.stdout
    assert inst.status()["instance"]["state"] == "draining"
    # Existing connections are served, and tell load balancers to go away.
    assert ask(kept, "/ready").status == 503
    assert ask(kept).status == 200
    # A new connection may complete in the kernel (the master keeps the
    # listening socket) but nobody accepts it: no answer.
    fresh = connect(inst.port)
    fresh.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert not answered_within(fresh, 1.0), "a drained instance answered a new connection"

    r = ctl(inst, "undrain")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("running: ")
    assert inst.status()["instance"]["state"] == "running"
    # The connection queued while draining is now served, not reset.
    fresh.settimeout(5)
    assert read_response(fresh).status == 200
    assert get(inst.port, "/ready").status == 200
    assert ask(kept).status == 200
    kept.close()
    fresh.close()


def test_reopen(saker_factory):
    inst = saker_factory(config())
    log = Path(inst.error_log_path)
    wait_for(lambda: log.exists() and log.stat().st_size > 0, 5, message="error log written")
    rotated = log.with_suffix(".log.1")
    log.rename(rotated)
    r = ctl(inst, "reopen")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "reopen: signalled saker master pid %d to reopen its logs" % inst.pid
    # Something to log after the reopen: a reload says what it read.
    assert ctl(inst, "reload").returncode == 0
    wait_for(lambda: log.exists() and "reload" in log.read_text(), 5,
             message="a fresh error log after reopen")


# ---- without an instance, without permission ---------------------------------

COMMANDS = [["reload"], ["stop"], ["stop", "--now"], ["drain"], ["undrain"], ["reopen"],
            ["status"], ["top", "--once"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: "-".join(c))
def test_commands_without_instance(tmp_path, cmd):
    missing = tmp_path / "none.shm"
    r = run_sakerctl("--shm", missing, *cmd)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("sakerctl: no saker instance at %s: " % missing), r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("cmd", [["reload", "--timeout"], ["stop", "--timeout", "soon"],
                                 ["drain", "x"], ["top", "--iterations", "-1"],
                                 ["top", "--interval", "0"], ["reopen", "--now"]],
                         ids=lambda c: "-".join(c))
def test_usage_errors(tmp_path, cmd):
    r = run_sakerctl("--shm", tmp_path / "none.shm", *cmd)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "usage: sakerctl" in r.stderr


def as_nobody():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run sakerctl as another user")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = subprocess.run(prefix + [sakerctl_binary(), "version"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("nobody cannot run %s" % sakerctl_binary())
    return prefix


def test_permission_denied_messages(saker_factory):
    prefix = as_nobody()
    # A directory nobody can enter, for a segment it may read.
    d = Path(tempfile.mkdtemp(prefix="saker-perm-", dir="/tmp"))
    try:
        d.chmod(0o755)
        shm = d / "saker.shm"
        inst = saker_factory(config(extra="shm_path: %s\n" % shm))
        assert stat.S_IMODE(shm.stat().st_mode) == 0o640
        # The segment is 0640 root: nobody cannot even read it.
        r = subprocess.run(prefix + [sakerctl_binary(), "--shm", str(shm), "status"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 4, (r.stdout, r.stderr)
        assert "permission denied reading the saker segment %s" % shm in r.stderr, r.stderr
        assert "run as root or as the user that started saker" in r.stderr
        # Readable, but the master is root's: signalling it is refused.
        shm.chmod(0o644)
        for cmd in (["reload"], ["stop"], ["drain"], ["reopen"]):
            r = subprocess.run(prefix + [sakerctl_binary(), "--shm", str(shm), *cmd],
                               capture_output=True, text=True, timeout=10)
            assert r.returncode == 4, (cmd, r.stdout, r.stderr)
            assert r.stderr.strip() == (
                "sakerctl: permission denied signalling saker master pid %d: run as root "
                "or as the user that started saker" % inst.pid), r.stderr
        assert inst.status()["instance"]["state"] == "running"
        assert inst.status()["reload"]["count"] == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- top, help ------------------------------------------------------------------

def test_top_once_shows_every_worker(saker_factory):
    inst = saker_factory(config())
    for _ in range(5):
        assert get(inst.port).status == 200
    r = run_sakerctl("--shm", inst.shm, "top", "--once", "--interval", "200ms")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "\033" not in out, "escape codes in a plain frame"
    assert re.search(r"^saker \S+  master pid %d  generation 1  running" % inst.pid, out, re.M)
    assert re.search(r"^total  \d+ open .* req/s .* cpu ", out, re.M), out
    assert re.search(r"^\s*SLOT\s+PID\s+GEN\s+STATE\s+CPU%\s+OPEN\s+REQ/S\s+IN/S\s+OUT/S", out,
                     re.M), out
    for w in inst.workers():
        assert re.search(r"^\s*%d\s+%d\s+1\s+running\s+[\d.]+\s+\d+\s+[\d.]+\s" %
                         (w["slot"], w["pid"]), out, re.M), (w, out)


def test_top_iterations_prints_plain_frames(saker_factory):
    inst = saker_factory(config())
    r = run_sakerctl("--shm", inst.shm, "top", "--iterations", "3", "--interval", "0.1")
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"^\s*SLOT\s+PID", r.stdout, re.M)) == 3, r.stdout


def test_help_lists_every_command():
    r = run_sakerctl("help")
    assert r.returncode == 0
    for name in ("status", "top", "metrics", "reload", "stop", "drain", "undrain", "reopen",
                 "help", "version"):
        lines = [l for l in r.stdout.splitlines() if re.match(r"^  %s( |$)" % name, l)]
        assert len(lines) == 1, (name, r.stdout)
        assert len(lines[0].split(None, 1)) == 2  # a name and a line of help


# ---- the init script --------------------------------------------------------------

def init_script(tmp_path):
    """The init script as built next to $SAKER, else rendered from the
    template the same way the build does."""
    built = Path(saker_binary()).parent / "conf" / "init.d" / "saker"
    if built.is_file():
        return built
    text = (SRCDIR / "conf" / "init.d" / "saker.in").read_text()
    for key, value in (("sbindir", "/usr/sbin"), ("bindir", "/usr/bin"),
                       ("sysconfdir", "/etc")):
        text = text.replace("@%s@" % key, value)
    path = tmp_path / "saker.init"
    path.write_text(text)
    return path


def test_init_script_lifecycle(tmp_path):
    script = init_script(tmp_path)
    assert "### BEGIN INIT INFO" in script.read_text()
    conf = tmp_path / "saker.yaml"
    conf.write_text(config("one") + "shm_path: %s\nerror_log: %s\npid_file: %s\n"
                    % (tmp_path / "saker.shm", tmp_path / "error.log", tmp_path / "saker.pid"))
    env = dict(os.environ, SAKER=saker_binary(), SAKERCTL=sakerctl_binary(),
               SAKER_CONF=str(conf), SAKER_PIDFILE=str(tmp_path / "saker.pid"),
               SAKER_DEFAULTS=str(tmp_path / "no-defaults"))
    for k in ("SAKER_SHM", "SAKER_CONFIG", "SAKER_URLS"):
        env.pop(k, None)

    def run(action):
        # Output to a file, not a pipe: the daemon must not hold our pipe.
        out = tmp_path / ("%s.out" % action)
        with open(out, "w") as f:
            rc = subprocess.run(["sh", str(script), action], stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, timeout=60).returncode
        return rc, out.read_text()

    def master():
        return int((tmp_path / "saker.pid").read_text())

    assert run("status")[0] == 3
    started = False
    try:
        rc, out = run("start")
        started = rc == 0
        assert rc == 0, out
        rc, out = run("status")
        assert rc == 0 and "generation 1, state running" in out, out
        port = int(re.search(r"127\.0\.0\.1:(\d+)\s*$", out, re.M).group(1))
        assert get(port).body == b"one"
        assert run("start") == (0, "saker: already running\n")

        conf.write_text(conf.read_text().replace('"one"', '"two"'))
        rc, out = run("reload")
        assert rc == 0 and re.search(r"^reloaded: generation 2 in \d+ ms$", out, re.M), out
        rc, out = run("status")
        assert rc == 0 and "generation 2" in out, out
        assert get(port).body == b"two"

        # The instance is found through the pid file, not through the
        # config on disk, which may have changed since the start.
        conf.write_text(conf.read_text().replace(str(tmp_path / "saker.shm"),
                                                 str(tmp_path / "moved.shm")))
        rc, out = run("status")
        assert rc == 0 and "generation 2" in out, out
        pid = master()
        rc, out = run("stop")
        assert rc == 0 and "stopped: saker master pid %d" % pid in out, out
        started = False
        assert not process_alive(pid)
        assert run("status")[0] == 3
        assert run("stop") == (0, "saker: not running\n")
        assert run("reload")[0] == 7
        assert run("frobnicate")[0] == 3
    finally:
        if started and (tmp_path / "saker.pid").exists():
            try:
                os.kill(master(), signal.SIGQUIT)
            except (ProcessLookupError, ValueError):
                pass


def unit_command(key, mainpid):
    """The systemd unit's ExecReload= or ExecStop= line, as systemd runs it."""
    built = Path(saker_binary()).parent / "conf" / "saker.service"
    text = built.read_text() if built.is_file() else \
        (SRCDIR / "conf" / "saker.service.in").read_text()
    line = [l for l in text.splitlines() if l.startswith(key + "=")][0]
    argv = line.split("=", 1)[1].split()
    assert argv[0].endswith("/sakerctl"), line
    return [sakerctl_binary()] + [a.replace("$MAINPID", str(mainpid)) for a in argv[1:]]


def test_systemd_unit_reload_and_stop_use_mainpid(saker_factory, tmp_path):
    inst = saker_factory(config("one"))
    # The config on disk names another segment now: the unit must not care.
    rewrite(inst, "shm_path: %s" % inst.shm, "shm_path: %s" % (tmp_path / "moved.shm"))
    rewrite(inst, '"one"', '"two"')
    r = subprocess.run(unit_command("ExecReload", inst.pid), capture_output=True, text=True,
                       timeout=70)
    assert r.returncode == 0 and "reloaded: generation 2" in r.stdout, (r.stdout, r.stderr)
    assert get(inst.port).body == b"two"
    r = subprocess.run(unit_command("ExecStop", inst.pid), capture_output=True, text=True,
                       timeout=100)
    assert r.returncode == 0 and "stopped: saker master pid %d" % inst.pid in r.stdout, r.stderr
    inst.wait_exit(5)
