"""Upstreams of the proxy as a whole: balancing over several servers,
active health checks run by one worker and obeyed by all, Unix socket
servers, and what sakerctl status, status --json and metrics say of them.
"""

import collections
import json
import os
import subprocess

import pytest

from rawhttp import connect, read_response, wait_for
from saker_harness import parse_metrics, run_sakerctl
from upstreams import Upstream


@pytest.fixture
def ups():
    made = []

    def make(**kw):
        u = Upstream(**kw)
        made.append(u)
        return u
    yield make
    for u in made:
        u.close()


def config(servers, extra="", workers=1):
    lines = ["workers: %d" % workers, "endpoints:", "  a: {url: \"http://127.0.0.1:0\"}",
             "upstreams:", "  app:", "    servers:"]
    lines += ["      - " + s for s in servers]
    if extra:
        lines += ["    " + e for e in extra.split("\n")]
    lines += ["routes:", "  - path: /", "    proxy: {upstream: app}"]
    return "\n".join(lines) + "\n"


def get(port, path="/echo"):
    sock = connect(port)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    r = read_response(sock, timeout=15)
    sock.close()
    return r


def served(u):
    return len(u.requests)


def status_upstreams(inst):
    return {s["url"]: s for s in inst.status()["upstreams"]}


def test_weighted_round_robin(saker_factory, ups):
    a, b = ups(), ups()
    inst = saker_factory(config(["{url: \"http://127.0.0.1:%d\", weight: 3}" % a.port,
                                 "{url: \"http://127.0.0.1:%d\"}" % b.port]))
    for _ in range(40):
        assert get(inst.port).status == 200
    assert (served(a), served(b)) == (30, 10)


def test_client_ip_hash_keeps_a_client_on_one_server(saker_factory, ups):
    servers = [ups() for _ in range(3)]
    inst = saker_factory(config(["{url: \"http://127.0.0.1:%d\"}" % u.port for u in servers],
                                "balance: client_ip_hash"))
    for _ in range(12):
        assert get(inst.port).status == 200
    assert sorted(served(u) for u in servers) == [0, 0, 12]


@pytest.mark.parametrize("balance", ["least_connections", "random_two_choices"])
def test_other_balances_use_every_server(saker_factory, ups, balance):
    a, b = ups(), ups()
    inst = saker_factory(config(["{url: \"http://127.0.0.1:%d\"}" % a.port,
                                 "{url: \"http://127.0.0.1:%d\"}" % b.port],
                                "balance: %s" % balance))
    for _ in range(40):
        assert get(inst.port).status == 200
    assert served(a) > 0 and served(b) > 0 and served(a) + served(b) == 40


def test_unix_socket_server(saker_factory, ups, tmp_path):
    path = str(tmp_path / "app.sock")
    u = ups(unix=path)
    inst = saker_factory(config(["{url: \"unix:%s\"}" % path]))
    for _ in range(3):
        r = get(inst.port, "/echo?u=1")
        assert r.status == 200 and json.loads(r.body)["path"] == "/echo?u=1"
    assert len(u.connections) == 1  # kept alive


def test_health_checks_take_a_server_out_for_every_worker(saker_factory, ups):
    good, bad = ups(), ups()
    inst = saker_factory(config(["{url: \"http://127.0.0.1:%d\"}" % good.port,
                                 "{url: \"http://127.0.0.1:%d\"}" % bad.port],
                                "health_check: {path: /healthz, interval: 100ms, timeout: 1s, "
                                "rise: 1, fall: 2}", workers=2))
    bad_url = "http://127.0.0.1:%d" % bad.port
    wait_for(lambda: status_upstreams(inst)[bad_url]["checks_ok"] >= 1, 10, message="checks")
    bad.set_health(503)
    wait_for(lambda: status_upstreams(inst)[bad_url]["state"] == "down", 10,
             message="the failing server marked down")
    before = served(bad)
    for _ in range(30):  # over both workers: every one of them skips it
        assert get(inst.port).status == 200
    assert served(bad) == before
    # One worker checks, not each: two workers, checks at 100 ms.
    s = status_upstreams(inst)[bad_url]
    assert s["checks_failed"] >= 2
    bad.set_health(200)
    wait_for(lambda: status_upstreams(inst)[bad_url]["state"] == "up", 10,
             message="back up")
    for _ in range(10):
        assert get(inst.port).status == 200
    assert served(bad) > before


def test_status_and_metrics_count_per_server(saker_factory, ups):
    u = ups()
    dead = "http://127.0.0.1:1"
    inst = saker_factory(config(["{url: \"http://127.0.0.1:%d\"}" % u.port,
                                 "{url: \"%s\"}" % dead], "passive: {max_fails: 0}"))
    codes = collections.Counter(get(inst.port, "/status/404").status for _ in range(6))
    assert codes == {404: 6}  # the dead one's refusals were retried on the live one
    url = "http://127.0.0.1:%d" % u.port
    s = status_upstreams(inst)
    assert s[url]["responses_4xx"] == 6 and s[url]["state"] == "up"
    assert s[dead]["connect_errors"] == 3 and s[dead]["responses_4xx"] == 0
    assert s[url]["idle"] == 1 and s[url]["active"] == 0
    m = parse_metrics(inst.metrics_text())
    label = '{upstream="app",server="%s"' % url
    assert m['saker_upstream_responses_total%s,class="4xx"}' % label] == 6
    assert m['saker_upstream_response_seconds_count%s}' % label] == 6
    assert m['saker_upstream_response_seconds_bucket%s,le="+Inf"}' % label] == 6
    assert m['saker_upstream_errors_total{upstream="app",server="%s",reason="connect"}'
             % dead] == 3
    assert m['saker_upstream_idle_connections%s}' % label] == 1
    text = run_sakerctl("--shm", inst.shm, "status").stdout
    assert "upstreams:" in text and url in text


# ---- https:// upstreams -------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from certs import make_ca, make_leaf
    d = tmp_path_factory.mktemp("upstream-pki")
    make_ca(d, "ca", "saker-upstream-ca")
    make_leaf(d, "server", "DNS:app.internal,IP:127.0.0.1")
    make_leaf(d, "client", "DNS:saker-client")
    make_ca(d, "other", "some-other-ca")
    return d


def tls_upstream(ups, pki, client_ca=None):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(client_ca))
    return ups(tls=ctx)


@pytest.mark.parametrize("tls,status", [
    ("{ca_file: %(ca)s}", 200),                                   # verified, by IP
    ("{ca_file: %(ca)s, server_name: app.internal}", 200),        # SNI and name
    ("{ca_file: %(other)s}", 502),                                # not our CA
    ("{ca_file: %(ca)s, server_name: wrong.internal}", 502),      # not its name
    ("{ca_file: %(other)s, verify: false}", 200),
])
def test_https_upstream_is_verified(saker_factory, ups, pki, tls, status):
    u = tls_upstream(ups, pki)
    inst = saker_factory(config(["{url: \"https://127.0.0.1:%d\"}" % u.port,],
                                "passive: {max_fails: 0}\ntls: " +
                                tls % {"ca": pki / "ca.pem", "other": pki / "other.pem"}))
    for _ in range(3):  # and kept alive
        r = get(inst.port, "/echo")
        assert r.status == status
    if status == 200:
        assert len(u.connections) == 1


def test_https_upstream_with_a_client_certificate(saker_factory, ups, pki):
    u = tls_upstream(ups, pki, client_ca=pki / "ca.pem")
    base = "passive: {max_fails: 0}\ntls: {ca_file: %s" % (pki / "ca.pem")
    inst = saker_factory(config(["{url: \"https://127.0.0.1:%d\"}" % u.port], base + "}"))
    assert get(inst.port, "/echo").status == 502  # the upstream wants a certificate
    inst2 = saker_factory(config(["{url: \"https://127.0.0.1:%d\"}" % u.port],
                                 base + ", certificate: %s, key: %s}"
                                 % (pki / "client.pem", pki / "client.key")))
    assert get(inst2.port, "/echo").status == 200


def test_reload_changes_the_servers_and_lets_requests_in_flight_finish(saker_factory, ups):
    a, b = ups(), ups()
    inst = saker_factory(config(["{url: \"http://127.0.0.1:%d\"}" % a.port]))
    # A download in flight across the reload, read slowly: it finishes whole.
    sock = connect(inst.port, timeout=30)
    sock.sendall(b"GET /bytes/8000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    first = sock.recv(65536)
    assert b" 200 " in first
    inst.config_path.write_text(inst.config_path.read_text().replace(
        "127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port))
    inst.reload()
    # The old generation may still take a connection queued before it
    # stopped accepting; the new one sends every request to b.
    wait_for(lambda: get(inst.port).status == 200 and len(b.requests) >= 3, 20,
             message="requests reach the new server")
    got = first.partition(b"\r\n\r\n")[2]
    while len(got) < 8000000:
        piece = sock.recv(1 << 20)
        assert piece, "the old generation cut the download at %d" % len(got)
        got += piece
    sock.close()
    from upstreams import pattern
    assert got == pattern(8000000)
    urls = set(status_upstreams(inst))
    assert urls == {"http://127.0.0.1:%d" % b.port}


def open_descriptors(pid):
    return {int(fd) for fd in os.listdir("/proc/%d/fd" % pid)}


def test_out_of_descriptors_is_500_and_no_server_is_blamed(saker_factory, ups):
    """The worker's descriptor limit lowered (prlimit) to leave one free
    number: the client's connection takes it, socket() for the upstream
    fails with EMFILE. That shortage is saker's: a 500 (as nginx), not a
    connect error of the server, which stays up (max_fails 1 would eject
    it), and the next requests, the limit back, reach both servers."""
    a, b = ups(), ups()
    inst = saker_factory(config(["{url: \"http://127.0.0.1:%d\"}" % u.port for u in (a, b)],
                                "passive: {max_fails: 1, fail_timeout: 60s}"))
    pid = inst.worker_pids()[0]
    limit = subprocess.run(["prlimit", "--pid", str(pid), "--nofile", "--raw", "--noheadings",
                            "--output", "SOFT,HARD"], capture_output=True, text=True, check=True)
    soft, hard = limit.stdout.split()
    held = open_descriptors(pid)
    free = [n for n in range(max(held) + 3) if n not in held]
    subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:%s" % (free[1], hard)],
                   check=True)
    try:
        assert get(inst.port).status == 500
    finally:
        subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%s:%s" % (soft, hard)],
                       check=True)
    assert "no connection to" in inst.error_log()
    s = status_upstreams(inst)
    assert [s[u]["connect_errors"] for u in s] == [0, 0]
    assert all(s[u]["state"] == "up" for u in s), s
    assert [get(inst.port).status for _ in range(2)] == [200, 200]
    assert (served(a), served(b)) == (1, 1)
