"""Three saker hosts behind HAProxy, rolled under load, watched by Prometheus.

The fleet lives in network namespaces the test makes (and removes, even
when it fails): a client, a balancer (HAProxy and Prometheus) and three
hosts, joined by veth pairs with addresses that exist only inside them.

    client 10.77.100.2 ── 10.77.100.1 lb: HAProxy :8080, Prometheus :9090
                                      ├── 10.77.1.1 ── 10.77.1.2 h1: saker :8080 (public), :9100 (admin)
                                      ├── 10.77.2.1 ── 10.77.2.2 h2
                                      └── 10.77.3.1 ── 10.77.3.2 h3

It uses the files an operator copies: deploy/haproxy/haproxy.cfg,
deploy/prometheus/ and deploy/rolling. Under a steady client load it
checks, phase by phase, and prints the figures:

  steady     Prometheus scraped all three hosts; over the minute that
             follows (steady load, then the rolls below: counters carry on
             through reloads and upgrades) its recording rule's fleet
             request rate is the client's, within 5%
  roll       a config change rolled host by host: 0 failed requests
  upgrade    a binary upgrade rolled host by host: 0 failed requests
  bad-roll   a roll whose second host gets a broken config stops there:
             h1 runs the new config, h2 and h3 the old, 0 failed requests
  kill-worker  SIGKILL to one worker of h1: at most the requests in flight fail
  kill-host  SIGKILL to every process of h3: at most the requests in flight
             fail, HAProxy takes h3 out, and nothing fails after that
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import netns

# The counting client is the functional suite's.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "func"))
from load import Load  # noqa: E402

SRCDIR = Path(os.environ.get("SRCDIR", Path(__file__).resolve().parents[2]))
SAKER = os.environ.get("SAKER", str(SRCDIR / "build" / "saker"))
SAKERCTL = os.environ.get("SAKERCTL", str(SRCDIR / "build" / "sakerctl"))
HOSTS = ("h1", "h2", "h3")
LB, CLIENT = "10.77.100.1", "10.77.100.2"
RATE_WINDOW = 60  # the recording rule's rate(...[1m])


def host_address(i):
    return "10.77.%d.2" % i


def wait(what, predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError):
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def saker_config(d, i, body, proxy=None):
    public = '"http://%s:8080"' % host_address(i)
    if proxy:
        public += ", " + proxy % ("10.77.%d.1" % i)  # the balancer's side of the link
    return """workers: 2
shutdown_timeout: 10s
shm_path: {d}/saker.shm
pid_file: {d}/saker.pid
error_log: {d}/error.log
access_log: {d}/access.log
endpoints:
  public: {{ url: {public} }}
  admin: {{ url: "http://{a}:9100" }}
routes:
  - endpoint: admin
    path: /metrics
    status: {{ kind: metrics }}
  - path: /healthz
    status: {{ kind: readiness }}
  - path: /
    return: {{ status: 200, body: "h{i} {body}" }}
""".format(d=d, a=host_address(i), i=i, body=body, public=public)


class Fleet:
    def __init__(self, tmp):
        self.tmp = tmp
        self.ns = netns.Namespaces("skf%d" % os.getpid())
        self.procs = []
        self.haproxy_socket = str(tmp / "haproxy.sock")
        self.proxy = None  # the endpoint's PROXY protocol option, when on

    def build(self):
        for short in ("cl", "lb") + HOSTS:
            self.ns.add(short)
        self.ns.link("cl", CLIENT, "lb", LB, "eth0", "vcl")
        for i, h in enumerate(HOSTS, 1):
            self.ns.link("lb", "10.77.%d.1" % i, h, host_address(i), "v" + h, "eth0")

    def spawn(self, short, argv, log, env=None):
        full_env = dict(os.environ, **(env or {}))
        with open(log, "wb") as out:
            p = subprocess.Popen(["ip", "netns", "exec", self.ns.name(short), *argv],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 env=full_env)
        self.procs.append(p)
        return p

    def host_dir(self, h):
        return self.tmp / h

    def write_config(self, h, body, path=None):
        i = HOSTS.index(h) + 1
        (path or self.host_dir(h) / "saker.yaml").write_text(
            saker_config(self.host_dir(h), i, body, self.proxy))

    def start_hosts(self):
        for h in HOSTS:
            self.host_dir(h).mkdir()
            self.write_config(h, "v1")
            self.spawn(h, [SAKER, "-c", str(self.host_dir(h) / "saker.yaml")],
                       self.host_dir(h) / "stderr")
        for h in HOSTS:
            wait("%s serving" % h, lambda: self.status(h)["instance"]["state"] == "running", 20)

    def ctl(self, h, *args, timeout=60):
        return subprocess.run([SAKERCTL, "--shm", str(self.host_dir(h) / "saker.shm"), *args],
                              capture_output=True, text=True, timeout=timeout)

    def status(self, h):
        r = self.ctl(h, "status", "--json", timeout=10)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def start_haproxy(self, send_proxy):
        env = {"SAKER_FRONTEND": "%s:8080" % LB, "HAPROXY_STATS": self.haproxy_socket,
               "HAPROXY_METRICS": "%s:8404" % LB}
        for i, h in enumerate(HOSTS, 1):
            env["SAKER_" + h.upper()] = "%s:8080" % host_address(i)
        if send_proxy:
            env["SAKER_SEND_PROXY"] = "1"
        self.spawn("lb", ["haproxy", "-db", "-f", str(SRCDIR / "deploy/haproxy/haproxy.cfg")],
                   self.tmp / "haproxy.log", env)
        wait("HAProxy to see every host UP",
             lambda: all(self.haproxy_status(h).startswith("UP") for h in HOSTS), 20)

    def haproxy(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.haproxy_socket)
            s.sendall(line.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data.decode()
                data += chunk

    def haproxy_status(self, h):
        lines = self.haproxy("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "saker" and row.get("svname") == h:
                return row["status"]
        return ""

    def start_prometheus(self):
        d = self.tmp / "prometheus"
        shutil.copytree(SRCDIR / "deploy/prometheus", d)
        conf = (d / "prometheus.yml").read_text()
        # Scrape and evaluate every second: the test cannot wait minutes.
        conf = conf.replace("scrape_interval: 15s", "scrape_interval: 1s")
        conf = conf.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        (d / "prometheus.yml").write_text(conf)
        (d / "targets/saker.yml").write_text("".join(
            '- targets: ["%s:9100"]\n  labels: { host: %s }\n' % (host_address(i), h)
            for i, h in enumerate(HOSTS, 1)))
        (d / "targets/haproxy.yml").write_text('- targets: ["%s:8404"]\n' % LB)
        self.spawn("lb", ["prometheus", "--config.file=%s" % (d / "prometheus.yml"),
                          "--storage.tsdb.path=%s" % (d / "data"),
                          "--web.listen-address=%s:9090" % LB],
                   self.tmp / "prometheus.log")
        wait("Prometheus to answer", lambda: self.query("up") is not None, 30)

    def query(self, expr, at=None):
        """The instant vector of expr, queried from the client namespace."""
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        url = "http://%s:9090/api/v1/query?%s" % (LB, urllib.parse.urlencode(params))

        def get():
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)["data"]["result"]
        return netns.call_in(self.ns.name("cl"), get)

    def roll(self, *args):
        cmd = [str(SRCDIR / "deploy/rolling"), "--haproxy-socket", self.haproxy_socket,
               "--backend", "saker", "--exec", "ip netns exec %s-{host}" % self.ns.prefix,
               "--sakerctl", "--shm %s/{host}/saker.shm" % self.tmp,
               "--sakerctl-binary", SAKERCTL, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        print(r.stdout + r.stderr)
        return r

    def body(self, h):
        """What host h answers now, asked directly from the balancer (with
        a PROXY v2 LOCAL header first when the endpoint wants one, as
        HAProxy's own health checks send). The query keeps these requests
        out of the access-log check, which reads the clients' "GET / "."""
        i = HOSTS.index(h) + 1
        url = "http://%s:8080/?direct" % host_address(i)

        def get():
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()

        def get_after_local_header():
            with socket.create_connection((host_address(i), 8080), timeout=5) as s:
                s.sendall(PROXY_V2_LOCAL + b"GET /?direct HTTP/1.1\r\nHost: h\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            head, _, payload = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                raise OSError("host %s answered %r" % (h, head[:40]))
            return payload.decode()
        return netns.call_in(self.ns.name("lb"), get_after_local_header if self.proxy else get)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.ns.remove()  # and whatever an upgrade started in them


# How an endpoint accepts the PROXY protocol, from the balancer's address
# only. Switched on when this saker's `saker -t` accepts it; a saker that
# does not read the PROXY protocol skips the access-log check with the reason.
PROXY_OPTION = 'proxy_protocol: true, trusted_sources: ["%s"]'
# A PROXY v2 header with the LOCAL command: the connection is the
# balancer's own, and the address saker sees is the real peer's.
PROXY_V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"


def proxy_protocol_key(tmp):
    """The endpoint option for PROXY v2 from the balancer, or None."""
    option = PROXY_OPTION % "10.77.1.1"
    config = tmp / "proxy-probe.yaml"
    config.write_text('endpoints:\n  public: { url: "http://127.0.0.1:0", %s }\n'
                      'routes:\n  - path: /\n    return: { status: 200, body: ok }\n' % option)
    r = subprocess.run([SAKER, "-t", "-c", str(config)], capture_output=True, text=True,
                       timeout=30)
    return PROXY_OPTION if r.returncode == 0 else None


def figures(title, rows):
    print("\n== %s" % title)
    for name, value in rows:
        print("  %-38s %s" % (name, value))


def prometheus_window_start(fleet):
    """When every host is scraped: the rate window starts filling."""
    wait("Prometheus to scrape all three hosts",
         lambda: len([s for s in fleet.query('up{job="saker"} == 1')]) == 3, 30)
    return time.monotonic()


def measure_prometheus(fleet, load, started):
    """Hosts scraped, the fleet's rate as the recording rule has it and as
    the client counted it, once a full window lies behind the rule."""
    wait("a full rate window", lambda: time.monotonic() - started > RATE_WINDOW + 5,
         RATE_WINDOW + 10, interval=1)
    at_mono, at_wall = time.monotonic(), time.time()
    result = fleet.query("job:saker_requests:rate1m", at=at_wall)
    end = int(at_mono)
    return {
        "rule": float(result[0]["value"][1]) if result else None,
        "client": load.requests_between(end - RATE_WINDOW, end) / RATE_WINDOW,
        "per_host": {s["metric"].get("host"): float(s["value"][1])
                     for s in fleet.query("instance:saker_requests:rate1m", at=at_wall)},
        "up": {s["metric"].get("host") for s in fleet.query('up{job="saker"} == 1',
                                                             at=at_wall)},
    }


def drain_times(output):
    return [float(x) for x in re.findall(r"out of rotation in ([0-9.]+) s", output)]


def phase(load, name):
    load.phase = name
    before = load.total_ok()
    wait("load in phase %s" % name, lambda: load.total_ok() >= before + 50, 30)


def run_phases(fleet, tmp_path, results):
    fleet.proxy = results["proxy_key"]
    fleet.start_hosts()
    fleet.start_haproxy(send_proxy=fleet.proxy is not None)
    if results["prometheus"]:
        fleet.start_prometheus()
    ns = fleet.ns.name("cl")
    with Load(8080, LB, keepalive=6, enter=lambda: netns.enter(ns), host="fleet",
              timeout=35) as load:
        results["load"] = load
        phase(load, "steady")
        # The rate window runs on through the rolls (a minute of waiting
        # less), and ends before a kill takes a host's counters away.
        window = prometheus_window_start(fleet) if results["prometheus"] else None
        run_rolls(fleet, load, tmp_path, results)
        if window is not None:
            results["scrape"] = measure_prometheus(fleet, load, window)
        run_kills(fleet, load, results)
    log = (fleet.host_dir("h1") / "access.log").read_text()
    results["addresses"] = {line.split(" ", 1)[0] for line in log.splitlines()
                            if '"GET / ' in line}


def run_rolls(fleet, load, tmp_path, results):
    """A config change, a binary upgrade, a roll that fails on h2."""
    phase(load, "roll")
    for h in HOSTS:
        fleet.write_config(h, "v2", tmp_path / ("next-%s.yaml" % h))
    r = fleet.roll("--before", "cp %s/next-{host}.yaml %s/{host}/saker.yaml"
                   % (tmp_path, tmp_path), "reload", *HOSTS)
    assert r.returncode == 0
    results["roll_drains"] = drain_times(r.stdout)
    results["roll_bodies"] = [fleet.body(h) for h in HOSTS]

    phase(load, "upgrade")
    masters = [fleet.status(h)["instance"]["master_pid"] for h in HOSTS]
    new_binary = tmp_path / "saker-new"
    shutil.copy(SAKER, new_binary)
    r = fleet.roll("upgrade", "--binary", str(new_binary), *HOSTS)
    assert r.returncode == 0
    results["upgrade_drains"] = drain_times(r.stdout)
    results["masters"] = (masters, [fleet.status(h)["instance"]["master_pid"]
                                    for h in HOSTS])

    phase(load, "bad-roll")
    fleet.write_config("h1", "v3", tmp_path / "next-h1.yaml")
    (tmp_path / "next-h2.yaml").write_text("workers: 2\nendpoints: [broken\n")
    r = fleet.roll("--before", "cp %s/next-{host}.yaml %s/{host}/saker.yaml"
                   % (tmp_path, tmp_path), "reload", *HOSTS)
    results["bad_roll"] = (r.returncode, r.stderr)
    results["bad_roll_bodies"] = [fleet.body(h) for h in HOSTS]
    wait("h2 back UP", lambda: fleet.haproxy_status("h2").startswith("UP"), 20)


def run_kills(fleet, load, results):
    """SIGKILL to a worker of h1, then to every process of h3."""
    phase(load, "kill-worker")
    victim = [w["pid"] for w in fleet.status("h1")["workers"] if w["state"] == "running"][0]
    os.kill(victim, signal.SIGKILL)
    wait("h1's worker respawned", lambda: len([
        w for w in fleet.status("h1")["workers"] if w["state"] == "running"]) == 2, 20)

    phase(load, "kill-host")
    st = fleet.status("h3")
    for pid in [st["instance"]["master_pid"]] + [w["pid"] for w in st["workers"]]:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    wait("HAProxy to take h3 out",
         lambda: fleet.haproxy_status("h3").startswith("DOWN"), 20)
    results["down_after"] = time.monotonic() - killed
    phase(load, "after-kill")
    settled = load.total_ok()
    wait("load after the kill", lambda: load.total_ok() >= settled + 500, 30)


def print_figures(results):
    load = results["load"]
    f = load.failures
    figures("client (%d keep-alive connections through HAProxy)" % load.connections, [
        ("requests answered 200", sum(load.ok.values())),
        ("failed requests, all phases", sum(f.values())),
    ] + [("  %s: answered / failed" % p, "%d / %d" % (load.ok[p], f[p])) for p in PHASES] + [
        ("time to drain a host, config roll (s)",
         " ".join("%.2f" % t for t in results.get("roll_drains", []))),
        ("time to drain a host, upgrade (s)",
         " ".join("%.2f" % t for t in results.get("upgrade_drains", []))),
        ("killed host marked DOWN after (s)", "%.2f" % results.get("down_after", -1)),
    ])
    scrape = results.get("scrape")
    if scrape:
        figures("Prometheus, steady load and rolls", [
            ("hosts scraped (up == 1)", ", ".join(sorted(scrape["up"]))),
            ("client requests/s (last 60 s, rolls included)", "%.1f" % scrape["client"]),
            ("job:saker_requests:rate1m", "%s" % scrape["rule"]),
            ("instance:saker_requests:rate1m", ", ".join(
                "%s %.1f" % (h, r) for h, r in sorted(scrape["per_host"].items()))),
        ])
    figures("access log of h1", [("client addresses", ", ".join(sorted(
        results.get("addresses", ())))), ("PROXY v2", "on" if results["proxy_key"] else "off")])
    if load.reasons:
        print("first failures:", load.reasons[:10])


PHASES = ("steady", "roll", "upgrade", "bad-roll", "kill-worker", "kill-host", "after-kill")


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    for tool in ("ip", "haproxy"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed (scripts/deps --test)" % tool)
    tmp_path = tmp_path_factory.mktemp("fleet")
    results = {"proxy_key": proxy_protocol_key(tmp_path),
               "prometheus": shutil.which("prometheus") is not None}
    fleet = Fleet(tmp_path)
    try:
        try:
            fleet.build()
        except RuntimeError as e:
            if "Operation not permitted" not in str(e):
                raise
            pytest.skip("no network namespaces here (a container without "
                        "CAP_SYS_ADMIN?): %s" % e)
        run_phases(fleet, tmp_path, results)
    finally:
        fleet.stop()
        if "load" in results:
            print_figures(results)
    return results


def test_rolls_lose_no_request(fleet_run):
    f = fleet_run["load"].failures
    for p in ("steady", "roll", "upgrade", "bad-roll", "after-kill"):
        assert f[p] == 0, (p, [r for r in fleet_run["load"].reasons if r[0] == p][:5])
    assert fleet_run["roll_bodies"] == ["h1 v2", "h2 v2", "h3 v2"]
    before, after = fleet_run["masters"]
    assert all(a != b for a, b in zip(before, after)), (before, after)
    assert len(fleet_run["roll_drains"]) == len(fleet_run["upgrade_drains"]) == 3


def test_a_roll_stops_at_the_first_host_that_fails(fleet_run):
    status, stderr = fleet_run["bad_roll"]
    assert status == 1
    assert "h2: reload failed" in stderr
    assert re.search(r"h2/saker\.yaml:\d+:\d+", stderr), stderr  # saker's file:line:column
    assert fleet_run["bad_roll_bodies"] == ["h1 v3", "h2 v2", "h3 v2"]


def test_killed_worker_and_host_fail_only_requests_in_flight(fleet_run):
    load = fleet_run["load"]
    assert load.failures["kill-worker"] <= load.connections
    assert load.failures["kill-host"] <= load.connections
    assert load.failures["after-kill"] == 0


def test_prometheus_scrapes_every_host_and_rates_match_the_client(fleet_run):
    if not fleet_run["prometheus"]:
        pytest.skip("prometheus is not installed (scripts/deps --test)")
    scrape = fleet_run["scrape"]
    assert scrape["up"] == set(HOSTS)
    assert scrape["rule"] is not None, "job:saker_requests:rate1m has no value"
    assert abs(scrape["rule"] - scrape["client"]) <= 0.05 * scrape["client"], scrape


def test_access_logs_show_the_client_through_proxy_v2(fleet_run):
    if fleet_run["proxy_key"] is None:
        pytest.skip("saker -t refuses the endpoint option %s (no PROXY protocol yet): h1 "
                    "logged %s (the balancer), not the client %s"
                    % (PROXY_OPTION % "ADDRESS", ", ".join(sorted(fleet_run["addresses"])),
                       CLIENT))
    assert fleet_run["addresses"] == {CLIENT}
