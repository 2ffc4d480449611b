"""Local security: saker runs as root beside users who may not be friendly.

What root is promised: saker never writes through a symlink someone
planted where it creates its segment, pid file or Unix sockets; a forged
segment can neither make root's sakerctl signal an arbitrary process nor
keep a root saker from starting; a second saker that fails to start leaves
the running one's pid file alone; files the master creates have their
final owner and mode from the start. The attacker's files are made here as
a test would make them (as root, chown'ed to nobody).
"""

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from rawhttp import read_response, wait_for
from saker_harness import default_shm_path, run_sakerctl, saker_binary

NOBODY = 65534
MASTER_PID_OFFSET = 32  # magic 8, version 4, sizes 4 + 4, slot count 4, total 8


def config(body="ok", extra=""):
    return ('workers: 1\n%sendpoints:\n  main: { url: "http://127.0.0.1:0" }\n'
            'routes:\n  - path: /\n    return: { status: 200, body: "%s" }\n' % (extra, body))


def get(port, path="/"):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
        return read_response(s)


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: these are root's files and root's sakerctl")


@pytest.fixture
def shared_dir():
    """A world-writable sticky directory, as /tmp or /dev/shm, that other
    users (and saker's workers) can enter."""
    d = Path(tempfile.mkdtemp(prefix="saker-shared-", dir="/tmp"))
    d.chmod(0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def victim_process():
    p = subprocess.Popen(["sleep", "60"])
    yield p
    p.kill()
    p.wait()


def forged_segment(inst, path, pid, owner=NOBODY, mode=0o644):
    """A copy of a real segment (right magic, version and sizes) naming pid
    as its master, owned by owner."""
    data = bytearray(Path(inst.shm).read_bytes())
    data[MASTER_PID_OFFSET:MASTER_PID_OFFSET + 4] = pid.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    os.chown(path, owner, owner)
    path.chmod(mode)
    return path


# ---- item: files are never created through a planted symlink --------------------

@pytest.mark.parametrize("key", ["pid_file", "shm_path"])
def test_symlink_at_a_file_saker_makes_is_replaced_not_followed(saker_factory, shared_dir,
                                                                  key):
    needs_root()
    victim = shared_dir / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    planted = shared_dir / "saker.file"
    planted.symlink_to(victim)
    inst = saker_factory(config() + "%s: %s\n" % (key, planted))
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not planted.is_symlink()
    if key == "pid_file":
        assert int(planted.read_text()) == inst.pid
    else:
        assert stat.S_IMODE(planted.stat().st_mode) == 0o640
    assert inst.stop() == 0
    assert not planted.exists() and victim.read_text() == "precious\n"


def strace_calls(tmp_path, cmd):
    if shutil.which("strace") is None:
        pytest.fail("strace is missing (scripts/deps --test installs it)")
    trace = tmp_path / "trace"
    # LeakSanitizer cannot work under ptrace (an ASan build would report
    # that instead of a leak): no leak check in a traced run.
    asan = os.environ.get("ASAN_OPTIONS", "")
    return trace, ["env", "ASAN_OPTIONS=%s%sdetect_leaks=0" % (asan, ":" if asan else ""),
                   "strace", "-f", "-qq", "-o", str(trace),
                   "-e", "trace=open,openat,creat,chmod,fchmodat,truncate,unlink,unlinkat",
                   *cmd]


def test_files_are_created_exclusively_and_never_chmodded_by_path(tmp_path, shared_dir):
    """Between a check and an open by name, another user can plant a
    symlink: every file saker makes in a shared directory is created with
    O_EXCL (a random name, then renamed into place), and the Unix socket's
    mode comes from the umask at bind(), never from chmod on its path."""
    needs_root()
    shm, pid_file, sock = shared_dir / "s.shm", shared_dir / "s.pid", shared_dir / "s.sock"
    conf = tmp_path / "saker.yaml"
    conf.write_text("workers: 1\nshm_path: %s\npid_file: %s\nerror_log: %s\n"
                    "endpoints:\n  main: { url: \"unix:%s\" }\n"
                    "routes:\n  - path: /\n    return: { status: 200 }\n"
                    % (shm, pid_file, tmp_path / "error.log", sock))
    trace, cmd = strace_calls(tmp_path, [saker_binary(), "-c", str(conf)])
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # The pid file is put in place once the workers are forked.
        master = wait_for(lambda: run_sakerctl("--shm", shm, "status").returncode == 0
                          and int(pid_file.read_text()), 15,
                          message="saker serving under strace")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
        os.kill(master, signal.SIGTERM)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    bad = []
    for line in trace.read_text().splitlines():
        if str(shared_dir) not in line:
            continue
        if "chmod" in line or "truncate(" in line:
            bad.append(line)
        elif ("open" in line or "creat(" in line) and "O_CREAT" in line and "O_EXCL" not in line:
            bad.append(line)
    assert bad == [], "\n".join(bad)


@pytest.mark.xdist_group("default-instance")  # one at a time in parallel runs
def test_default_segment_lives_in_a_root_only_directory(saker_factory, tmp_path):
    needs_root()
    default = Path(default_shm_path())
    if default.exists() and run_sakerctl("status").returncode == 0:
        pytest.skip("a default instance is running (%s)" % default)
    site = tmp_path / "site"
    (site / "wwwroot").mkdir(parents=True)
    (site / "wwwroot" / "index.html").write_text("hi\n")
    inst = saker_factory(None, args=("--urls", "http://127.0.0.1:0"), cwd=site,
                         shm=str(default))
    assert default == Path("/run/saker/saker.shm")
    d = default.parent.lstat()
    assert stat.S_ISDIR(d.st_mode) and d.st_uid == 0
    assert stat.S_IMODE(d.st_mode) & 0o022 == 0, oct(d.st_mode)
    assert default.lstat().st_uid == 0 and stat.S_IMODE(default.lstat().st_mode) == 0o640
    # sakerctl finds the default instance without being told where.
    r = run_sakerctl("status", "--json")
    assert r.returncode == 0, r.stderr
    assert '"master_pid":%d' % inst.pid in r.stdout
    inst.stop()
    assert not default.exists()


def test_run_directory_someone_else_made_is_refused(shared_dir):
    """Without root, the default directory is the user's runtime directory
    (or a private one in /dev/shm): one that another user made is refused."""
    needs_root()
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to run saker as another user")
    planted = shared_dir / "runtime"
    planted.mkdir()
    planted.chmod(0o755)  # root's, as another user would have made it
    conf = shared_dir / "saker.yaml"
    conf.write_text(config())
    conf.chmod(0o644)
    r = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                        "--clear-groups", saker_binary(), "-c", str(conf)],
                       capture_output=True, text=True, timeout=20, cwd=str(shared_dir),
                       env=dict(os.environ, XDG_RUNTIME_DIR=str(planted)))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "run directory %s: owned by uid 0, not by saker's uid %d" % (planted, NOBODY) \
        in r.stderr, r.stderr
    assert os.listdir(planted) == []


# ---- a forged segment ---------------------------------------------------------------

@pytest.mark.parametrize("command", [["stop"], ["reload"], ["drain"], ["reopen"], ["stop", "--now"]])
def test_forged_segment_does_not_make_root_signal_anyone(saker_factory, shared_dir,
                                                         victim_process, command):
    needs_root()
    inst = saker_factory(config())
    fake = forged_segment(inst, shared_dir / "fake.shm", victim_process.pid)
    r = run_sakerctl("--shm", fake, *command)
    assert r.returncode != 0, r.stdout
    assert "owned by uid %d, neither root nor you: not trusted" % NOBODY in r.stderr, r.stderr
    # Root's own file naming a process that is not its master: refused too.
    os.chown(fake, 0, 0)
    r = run_sakerctl("--shm", fake, *command)
    assert r.returncode != 0, r.stdout
    assert "is not the saker master" in r.stderr, r.stderr
    fake.chmod(0o666)
    r = run_sakerctl("--shm", fake, *command)
    assert r.returncode != 0 and "writable by others" in r.stderr, r.stderr
    assert victim_process.poll() is None, "sakerctl signalled pid %d" % victim_process.pid
    assert inst.status()["instance"]["state"] == "running"


def test_forged_segment_does_not_keep_root_saker_from_starting(saker_factory, shared_dir):
    needs_root()
    first = saker_factory(config("first"))
    shm = shared_dir / "saker.shm"
    # Another user's file naming a live saker master as its own.
    forged_segment(first, shm, first.pid)
    second = saker_factory(config("second") + "shm_path: %s\n" % shm)
    assert second.status()["instance"]["master_pid"] == second.pid
    assert shm.lstat().st_uid == 0
    assert get(second.port).body == b"second"
    assert get(first.port).body == b"first"


def test_status_refuses_a_symlinked_segment(saker_factory, shared_dir):
    inst = saker_factory(config())
    link = shared_dir / "link.shm"
    link.symlink_to(inst.shm)
    r = run_sakerctl("--shm", link, "status")
    assert r.returncode == 1 and "symbolic link" in r.stderr, r.stderr


# ---- pid file ------------------------------------------------------------------------

def test_second_saker_leaves_the_running_pid_file(saker_factory):
    first = saker_factory(config())
    port = first.port
    text = first.config_path.read_text().replace('"http://127.0.0.1:0"',
                                                 '"http://127.0.0.1:%d"' % port)
    # The same config: same port, same pid file, same segment.
    same = text
    second = saker_factory(same, expect_ready=False)
    assert second.wait_exit(10) == 1
    assert Path(first.pid_file).read_text().strip() == str(first.pid)
    # Another segment, same port and pid file: it fails at bind, later.
    other = text.replace("shm_path: %s" % first.shm, "shm_path: %s" % (first.tmp / "b.shm"))
    third = saker_factory(other, expect_ready=False)
    assert third.wait_exit(10) == 1
    assert "Address already in use" in third.messages()
    assert Path(first.pid_file).read_text().strip() == str(first.pid)
    leftovers = [p for p in os.listdir(first.tmp) if p.startswith("saker.pid.")]
    assert leftovers == [], leftovers
    assert get(port).status == 200


# ---- log files -----------------------------------------------------------------------

def test_logs_belong_to_the_worker_user_from_the_start(saker_factory, shared_dir):
    """The master makes the logs, 0640 and owned by `user:`, so a worker
    that dropped root can open them again after a rotation."""
    needs_root()
    logs = shared_dir / "logs"
    logs.mkdir()
    logs.chmod(0o755)  # root's directory: a worker cannot create files in it
    error_log, access_log = logs / "error.log", logs / "access.log"
    inst = saker_factory(config(extra="user: nobody\n") +
                         "error_log: %s\naccess_log: %s\n" % (error_log, access_log))
    nobody = pwd.getpwnam("nobody")
    for f in (error_log, access_log):
        st = f.stat()
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), f
        assert stat.S_IMODE(st.st_mode) == 0o640, f
    assert get(inst.port).status == 200
    wait_for(lambda: access_log.stat().st_size > 0, 5, message="an access log line")
    os.rename(access_log, logs / "access.log.1")
    os.rename(error_log, logs / "error.log.1")
    r = run_sakerctl("--shm", inst.shm, "reopen")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: access_log.exists() and error_log.exists(), 5, message="new logs")
    assert access_log.stat().st_uid == nobody.pw_uid
    wait_for(lambda: get(inst.port).status == 200 and access_log.stat().st_size > 0, 5,
             message="the worker writes into the new access log")
    assert "Permission denied" not in (logs / "error.log.1").read_text() + \
        error_log.read_text()


def test_unix_socket_mode_does_not_depend_on_the_umask(saker_factory, tmp_path):
    sock = tmp_path / "u.sock"
    text = ('workers: 1\nendpoints:\n  main: { url: "unix:%s" }\n'
            'routes:\n  - path: /\n    return: { status: 200 }\n' % sock)
    old = os.umask(0o077)
    try:
        saker_factory(text)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
