"""saker_harness - start real saker instances for the functional tests.

Binaries come from $SAKER and $SAKERCTL (absolute paths; `make check`
exports them from the build directory). When unset, `saker` and `sakerctl`
are looked up on PATH; if that fails too the tests stop with a message
saying how to set them.

    def test_x(saker_factory):
        inst = saker_factory(CONFIG_YAML)          # waits until serving
        inst.port, inst.url("/"), inst.metrics(), inst.status(), ...

`start(config_yaml, *, args=(), env=None, expect_ready=True, timeout=10.0)`
writes the config to <tmp>/saker.yaml (the first instance of a test uses the
test's tmp_path; further instances get tmp_path/"i2", "i3", ...). When the
YAML has no top-level shm_path, error_log or pid_file key, the missing ones
are appended, pointing into <tmp>. Then `SAKER -c FILE *args` runs with
stdout/stderr going to <tmp>/stdout and <tmp>/stderr, and start waits until
`sakerctl --shm SHM status --json` reports state "running" and every worker
"running". With expect_ready=False it returns as soon as the process is
spawned (use inst.wait_exit(timeout) and inst.stderr() then).

Extensions beyond that contract (all keyword-only, all optional):
  config_yaml=None  run without -c (the built-in default config);
  cwd=PATH          working directory of saker (default: <tmp>);
  shm=PATH          where the segment is when the YAML cannot say so
                    (default config, or an shm_path the harness cannot see).
env: a dict of variables added to (value None: removed from) the test
runner's environment; SAKER_URLS is removed unless given.

At teardown every instance is stopped by pid: SIGTERM to the master, up to
10 s, then SIGKILL to the master and every worker pid ever seen in status,
then killpg of saker's session as a last resort; the fixture then asserts
that none of those processes is left.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from rawhttp import wait_for

__all__ = ["Instance", "Harness", "saker_binary", "sakerctl_binary", "run_sakerctl",
           "parse_metrics", "wait_for", "default_shm_path", "sanitized",
           "sanitizer_reports_in", "curl", "worker_rss_kb"]


def _binary(env_name, prog):
    path = os.environ.get(env_name)
    if path:
        if not os.path.isabs(path):
            path = os.path.abspath(path)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise RuntimeError("%s=%s is not an executable file" % (env_name, path))
        return path
    found = shutil.which(prog)
    if found:
        return os.path.abspath(found)
    raise RuntimeError(
        "cannot find the %s binary: set %s to its absolute path, e.g. "
        "%s=/path/to/build/%s (make check does this)" % (prog, env_name, env_name, prog))


def saker_binary():
    return _binary("SAKER", "saker")


def sakerctl_binary():
    return _binary("SAKERCTL", "sakerctl")


_SANITIZED = {}


def sanitized():
    """True when $SAKER is built with AddressSanitizer (scripts/test's
    build-asan): tests that measure memory skip, saying why."""
    path = saker_binary()
    if path not in _SANITIZED:
        with open(path, "rb") as f:
            _SANITIZED[path] = b"__asan_init" in f.read()
    return _SANITIZED[path]


_REPORT = re.compile(r"^.*(?:ERROR: (?:Address|Leak|Undefined)\w*Sanitizer|"
                     r"runtime error: |SUMMARY: \w+Sanitizer).*$", re.M)


def sanitizer_reports_in(text):
    """The lines of text that begin a sanitizer report, or ""."""
    return "\n".join(m.group(0) for m in _REPORT.finditer(text))


def run_sakerctl(*args, timeout=10, env=None, cwd=None):
    """Runs sakerctl ARGS; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    for k in ("SAKER_SHM", "SAKER_CONFIG"):
        full_env.pop(k, None)
    if env:
        for k, v in env.items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
    return subprocess.run([sakerctl_binary(), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd)


# A label value is quoted, with \\, \" and \n escaped; it may hold '}'.
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[^"}]|"(?:[^"\\\n]|\\.)*")*\})?)'
                     r'[ \t]+(\S+)$')


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': float} (labels exactly as printed)."""
    out = {}
    for line in text.split("\n"):  # the format's only line end (not str.splitlines')
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise AssertionError("malformed metrics line: %r" % line)
        out[m.group(1)] = float(m.group(2))
    return out


def default_shm_path():
    """Where saker puts its segment when the config names none (and where
    sakerctl looks without options): /run/saker as root, else the user's
    runtime directory, else a private directory in /dev/shm."""
    if os.geteuid() == 0:
        return "/run/saker/saker.shm"
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        return runtime + "/saker.shm"
    return "/dev/shm/saker-%d/saker.shm" % os.geteuid()


def _has_top_level_key(yaml_text, key):
    return re.search(r'^%s\s*:' % re.escape(key), yaml_text, re.MULTILINE) is not None


def _top_level_value(yaml_text, key):
    m = re.search(r'^%s\s*:\s*(.*?)\s*(?:#.*)?$' % re.escape(key), yaml_text, re.MULTILINE)
    if m is None:
        return None
    v = m.group(1)
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1]
    return v or None


def _proc_state(pid):
    """The one-letter state of pid, or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rfind(")") + 2:].split(" ", 1)[0]


def process_alive(pid):
    """True when pid exists and is not a zombie."""
    state = _proc_state(pid)
    return state is not None and state not in ("Z", "X")


def _is_saker(pid):
    """pid runs the saker binary (guards against pid reuse before a kill)."""
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False
    exe = exe.replace(" (deleted)", "")
    try:
        return os.path.samefile(exe, saker_binary())
    except OSError:
        return os.path.basename(exe) == os.path.basename(saker_binary())


def _has_tag(pid, tag):
    """pid carries our SAKER_HARNESS_TAG (inherited by workers and by a -d
    daemon): it is a process this instance started, not another saker that
    happens to use the same shm path or a reused pid."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return (b"SAKER_HARNESS_TAG=" + tag.encode()) in f.read().split(b"\0")
    except OSError:
        return False


class Instance:
    """One saker master started by the harness."""

    def __init__(self, proc, tmp, config_path, shm, pid_file, error_log, stdout_path,
                 stderr_path, tag=""):
        self.proc = proc
        self.tag = tag
        self.pid = proc.pid
        self.tmp = Path(tmp)
        self.config_path = Path(config_path) if config_path else None
        self.shm = str(shm)
        self.pid_file = pid_file
        self.error_log_path = error_log
        self.stdout_path = Path(stdout_path)
        self.stderr_path = Path(stderr_path)
        self.seen_pids = {proc.pid}
        self.last_master = proc.pid
        self.pgid = proc.pid  # start_new_session=True
        self._listeners = None

    # -- state -----------------------------------------------------------
    def status(self):
        r = run_sakerctl("--shm", self.shm, "status", "--json")
        if r.returncode != 0:
            raise AssertionError("sakerctl status --json failed (%d): %s"
                                 % (r.returncode, r.stderr.strip()))
        st = json.loads(r.stdout)
        self._remember(st)
        return st

    def _remember(self, st):
        mp = st.get("instance", {}).get("master_pid")
        if mp and self.owns(int(mp)):
            self.seen_pids.add(int(mp))
            self.last_master = int(mp)
            for w in st.get("workers", []):
                if w.get("pid") and self.owns(int(w["pid"])):
                    self.seen_pids.add(int(w["pid"]))

    def owns(self, pid):
        """pid is a live process this instance started (master, worker or
        the -d daemon), judged by the tag in its environment."""
        if pid == self.proc.pid:
            return self.proc.poll() is None
        return process_alive(pid) and _has_tag(pid, self.tag)

    def try_status(self):
        """status() or None when sakerctl cannot read the instance."""
        try:
            return self.status()
        except (AssertionError, ValueError, subprocess.TimeoutExpired):
            return None

    def metrics_text(self):
        r = run_sakerctl("--shm", self.shm, "metrics")
        if r.returncode != 0:
            raise AssertionError("sakerctl metrics failed (%d): %s"
                                 % (r.returncode, r.stderr.strip()))
        return r.stdout

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def metric(self, name):
        return self.metrics().get(name, 0)

    def workers(self):
        return self.status()["workers"]

    def worker_pids(self):
        return [w["pid"] for w in self.workers()]

    @property
    def master_pid(self):
        """The pid of the serving master (differs from .pid with -d)."""
        self.try_status()
        return self.last_master

    # -- listeners -------------------------------------------------------
    @property
    def ports(self):
        """[(address, port, kind)] from status (the last ones seen when the
        instance can no longer be read, e.g. after it stopped)."""
        st = self.try_status() if self.proc.poll() is None or self.last_master != self.pid \
            else None
        if st is not None:
            self._listeners = [(l["address"], l["port"], l["kind"]) for l in st["listeners"]]
        if self._listeners is None:
            self.status()  # raises with sakerctl's message
        return list(self._listeners)

    @property
    def port(self):
        for kind in ("tcp4", "tcp6"):
            for addr, port, k in self.ports:
                if k == kind:
                    return port
        return None

    @property
    def unix_path(self):
        for addr, port, k in self.ports:
            if k == "unix":
                return addr
        return None

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    # -- output ----------------------------------------------------------
    def error_log(self):
        if self.error_log_path and os.path.exists(self.error_log_path):
            return Path(self.error_log_path).read_text(errors="replace")
        return ""

    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stdout(self):
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def messages(self):
        """stderr and error log together (saker logs to one or the other)."""
        return self.stderr() + self.error_log()

    # -- control ---------------------------------------------------------
    def reload(self):
        os.kill(self.master_pid, signal.SIGHUP)

    def send(self, sig):
        os.kill(self.master_pid, sig)

    def wait_exit(self, timeout):
        """Waits for the started process to exit; returns its exit status."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("saker (pid %d) did not exit within %.1fs\nstderr:\n%s"
                                 % (self.pid, timeout, self.messages()[-3000:]))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals the master and waits for it to exit. Returns the exit
        status of the process the harness started (None when that was a
        -d launcher and the daemon it left is what got stopped)."""
        self.try_status()
        master = self.last_master
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            return self.wait_exit(timeout)
        if process_alive(master) and _is_saker(master) and self.owns(master):
            os.kill(master, sig)
            wait_for(lambda: not process_alive(master), timeout,
                     message="saker master %d did not exit within %ss" % (master, timeout))
        return None if master != self.proc.pid else self.proc.returncode

    def running(self):
        return self.proc.poll() is None

    def wait_ready(self, timeout=10.0):
        """Waits until the instance is running with every worker running."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            st = self.try_status()
            if st is not None:
                last = st
                ws = st.get("workers", [])
                if (st["instance"]["state"] == "running" and ws
                        and self.owns(st["instance"]["master_pid"])
                        and len([w for w in ws if w["state"] == "running"])
                        >= st["instance"]["workers_per_generation"]
                        and all(w["state"] == "running" for w in ws)):
                    return st
            if self.proc.poll() is not None and self.proc.returncode != 0:
                raise AssertionError(
                    "saker exited with %d before it was ready\nstderr:\n%s\nerror log:\n%s"
                    % (self.proc.returncode, self.stderr()[-3000:], self.error_log()[-3000:]))
            if time.monotonic() >= deadline:
                raise AssertionError(
                    "saker not ready within %.1fs; last status: %s\nstderr:\n%s\nerror log:\n%s"
                    % (timeout, json.dumps(last)[:2000], self.stderr()[-3000:],
                       self.error_log()[-3000:]))
            time.sleep(0.02)

    # -- teardown --------------------------------------------------------
    def _cleanup(self):
        """Stops everything this instance started; returns pids still alive."""
        self.try_status()
        if self.pid_file:
            try:
                p = int(Path(self.pid_file).read_text().strip())
                if process_alive(p) and _is_saker(p) and self.owns(p):
                    self.seen_pids.add(p)
                    if p != self.proc.pid:
                        self.last_master = p
            except (OSError, ValueError):
                pass
        pids = set(self.seen_pids)
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        # A -d daemon's master is not our child: signal it by pid too.
        for p in {self.last_master} - {self.proc.pid}:
            if process_alive(p) and _is_saker(p) and self.owns(p):
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.proc.poll()
            if not any(process_alive(p) for p in pids):
                break
            time.sleep(0.02)
        for p in pids:
            if process_alive(p) and _is_saker(p) and self.owns(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(process_alive(p) for p in pids):
            time.sleep(0.02)
        return sorted(p for p in pids if process_alive(p) and _is_saker(p) and self.owns(p))


def _socket_activated(cmd, sockets, env):
    """cmd under systemd-socket-activate, which passes on only the
    variables named with -E: all of env's."""
    wrapper = [shutil.which("systemd-socket-activate") or "systemd-socket-activate"]
    for address, _ in sockets:
        wrapper += ["-l", str(address)]
    wrapper.append("--fdname=" + ":".join(name for _, name in sockets))
    for name in env:
        wrapper += ["-E", name]
    return wrapper + cmd


class Harness:
    """What the saker_factory fixture yields the start function of."""

    def __init__(self, tmp_path):
        self.tmp_path = Path(tmp_path)
        self.instances = []

    def _next_dir(self):
        n = len(self.instances) + 1
        d = self.tmp_path if n == 1 else self.tmp_path / ("i%d" % n)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def start(self, config_yaml, *, args=(), env=None, expect_ready=True, timeout=10.0,
              cwd=None, shm=None, activate=None):
        """activate: [(address, name), ...] runs saker under systemd's
        systemd-socket-activate, which listens on each address and starts
        saker (same pid) with them as named sockets at the first connection;
        expect_ready then must be False."""
        saker = saker_binary()
        sakerctl_binary()  # fail early and clearly when it is missing
        tmp = self._next_dir()
        pid_file = error_log = None
        config_path = None
        if config_yaml is not None:
            text = config_yaml
            extra = []
            if not _has_top_level_key(text, "shm_path"):
                extra.append("shm_path: %s" % (tmp / "saker.shm"))
            if not _has_top_level_key(text, "error_log"):
                extra.append("error_log: %s" % (tmp / "error.log"))
            if not _has_top_level_key(text, "pid_file"):
                extra.append("pid_file: %s" % (tmp / "saker.pid"))
            # SAKER_TEST_TRANSPORT=io_uring runs a test on that transport
            # (test_uring.py does for its subset of the suite).
            transport = os.environ.get("SAKER_TEST_TRANSPORT")
            if transport and not _has_top_level_key(text, "transport"):
                extra.append("transport: %s" % transport)
            if extra:
                if text and not text.endswith("\n"):
                    text += "\n"
                text += "\n".join(extra) + "\n"
            config_path = tmp / "saker.yaml"
            config_path.write_text(text)
            shm_path = shm or _top_level_value(text, "shm_path")
            pid_file = _top_level_value(text, "pid_file")
            error_log = _top_level_value(text, "error_log")
            cmd = [saker, "-c", str(config_path), *map(str, args)]
        else:
            shm_path = shm or default_shm_path()
            cmd = [saker, *map(str, args)]
        full_env = dict(os.environ)
        full_env.pop("SAKER_URLS", None)
        tag = "%d-%d-%s" % (os.getpid(), len(self.instances) + 1, os.urandom(6).hex())
        full_env["SAKER_HARNESS_TAG"] = tag
        if env:
            for k, v in env.items():
                if v is None:
                    full_env.pop(k, None)
                else:
                    full_env[k] = str(v)
        if activate:
            cmd = _socket_activated(cmd, activate, full_env)
        stdout_path = tmp / "stdout"
        stderr_path = tmp / "stderr"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=str(cwd or tmp), env=full_env,
                                    start_new_session=True)
        inst = Instance(proc, tmp, config_path, shm_path, pid_file, error_log, stdout_path,
                        stderr_path, tag)
        self.instances.append(inst)
        if expect_ready:
            inst.wait_ready(timeout)
        return inst

    def cleanup(self):
        leftovers = []
        for inst in reversed(self.instances):
            leftovers += inst._cleanup()
        return leftovers


def curl(inst, path, *args, certs=None, timeout=60):
    """curl against inst's first TCP port (https with certs: a directory
    holding ca.pem): (exit status, body bytes, response head text)."""
    scheme = "https" if certs else "http"
    cmd = ["curl", "-sS", "--max-time", str(timeout), "-o", "-", "-D", "/dev/stderr"]
    if certs:
        cmd += ["--cacert", "%s/ca.pem" % certs]
    cmd += list(args) + ["%s://127.0.0.1:%d%s" % (scheme, inst.port, path)]
    r = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def worker_rss_kb(inst):
    """VmRSS of inst's first worker, in kB."""
    pid = inst.worker_pids()[0]
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_for_worker_rss_at_most(inst, bound_kb, message):
    """The first worker's Rss (kB) once it is at most bound_kb: a quiet
    worker gives its free memory back a heartbeat or two after its last
    request. Polled for 15 s; message names the wait if it fails."""
    return wait_for(lambda: (lambda rss: rss if rss <= bound_kb else None)(worker_rss_kb(inst)),
                    15, interval=0.05, message=message)


def wait_for_quiet_trim(inst):
    """Returns once the first worker has begun three heartbeats since the
    call (each writes the shm heartbeat, which resets its age): the first
    notes the quiet spell, the second trims (a worker quiet for a
    heartbeat gives its free memory back), the third begins once that is
    done."""
    seen = {"ticks": 0, "age": None}

    def third_tick():
        age = inst.status()["workers"][0]["heartbeat_age_ms"]
        if seen["age"] is not None and age < seen["age"]:
            seen["ticks"] += 1
        seen["age"] = age
        return True if seen["ticks"] >= 3 else None

    wait_for(third_tick, 15, interval=0.05, message="the worker's heartbeat stalled")

