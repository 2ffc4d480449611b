"""Per-route latency histograms and counts, read by sakerctl from shm.

What an operator is promised: every response is counted under its route
(its `name:`, else [endpoint:][host]path; `_unrouted` when no route
answered) in saker_request_duration_seconds (a Prometheus histogram, first
byte in to last byte out) and saker_route_responses_total by status class,
summed over workers, kept across reloads by label; `sakerctl top` shows
each route's p50 and p99 over its interval.
"""

import re
import socket
import threading
import time

from h2client import H2Client
from rawhttp import connect, read_response, wait_for
from saker_harness import parse_metrics, run_sakerctl


def config(routes, workers=2, extra=""):
    return ("workers: %d\n%sendpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n"
            "  admin: { url: \"http://127.0.0.1:0\" }\nroutes:\n%s" % (workers, extra, routes))


ROUTES = ("  - path: /api\n    name: 'api \"v1\"'\n    return: { status: 200, body: \"a\" }\n"
          "  - host: static.example.com\n    path: /\n    return: { status: 201 }\n"
          "  - endpoint: admin\n    path: /metrics\n    status: { kind: metrics }\n"
          "  - path: /fail\n    return: { status: 503 }\n")


def get(sock, path, host="a"):
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    return read_response(sock)


def histogram(metrics, route):
    """{le: cumulative count}, sum and count of one route's histogram."""
    label = route.replace("\\", "\\\\").replace('"', '\\"')
    buckets = {}
    for key, value in metrics.items():
        m = re.fullmatch(r'saker_request_duration_seconds_bucket\{route="(.*)",le="([^"]+)"\}',
                         key)
        if m and m.group(1) == label:
            buckets[m.group(2)] = value
    return (buckets, metrics.get('saker_request_duration_seconds_sum{route="%s"}' % label),
            metrics.get('saker_request_duration_seconds_count{route="%s"}' % label))


def responses(metrics, route, cls):
    label = route.replace("\\", "\\\\").replace('"', '\\"')
    return metrics.get('saker_route_responses_total{route="%s",class="%s"}' % (label, cls))


def test_every_response_counted_under_its_route(saker_factory):
    inst = saker_factory(config(ROUTES))
    s = connect(inst.port)
    for _ in range(5):
        assert get(s, "/api").status == 200
    assert get(s, "/", host="static.example.com").status == 201
    assert get(s, "/fail").status == 503
    assert get(s, "/nowhere").status == 404  # no route: _unrouted
    s.close()
    c = H2Client(inst.port)
    assert c.get("/api").status == 200
    admin = [p for a, p, k in inst.ports if k == "tcp4"][1]
    s = connect(admin)
    assert get(s, "/metrics").status == 200
    s.close()

    def settled():
        m = inst.metrics()
        return m if histogram(m, 'api "v1"')[2] == 6 and histogram(m, "admin:/metrics")[2] else None
    m = wait_for(settled, 5, message="the last responses counted")
    buckets, total, count = histogram(m, 'api "v1"')
    les = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
           "0.5", "1", "2.5", "5", "10", "+Inf"]
    assert list(buckets) == les
    values = [buckets[le] for le in les]
    assert values == sorted(values) and values[-1] == count == 6
    assert 0 < total < 6 * 0.25
    assert responses(m, 'api "v1"', "2xx") == 6
    assert histogram(m, "static.example.com/")[2] == 1
    assert responses(m, "static.example.com/", "2xx") == 1
    assert responses(m, "/fail", "5xx") == 1
    assert responses(m, "_unrouted", "4xx") == 1
    assert histogram(m, "admin:/metrics")[2] == 1
    # Every response is in exactly one route.
    per_route = sum(v for k, v in m.items() if k.startswith("saker_route_responses_total"))
    overall = sum(v for k, v in m.items() if k.startswith("saker_responses_total"))
    assert per_route == overall
    routes = {r["route"]: r for r in inst.status()["routes"]}
    assert routes['api "v1"']["requests"] == 6
    assert routes["_unrouted"]["responses"]["4xx"] == 1


def test_duration_runs_until_the_last_byte_is_written(saker_factory, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "big.bin").write_bytes(b"x" * (16 << 20))
    inst = saker_factory(config("  - path: /\n    name: files\n    static: { root: %s }\n"
                                % root))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(10)
    s.connect(("127.0.0.1", inst.port))
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    got, started = 0, time.monotonic()
    while True:  # a slow reader: 256 KiB every 20 ms
        chunk = s.recv(256 * 1024)
        if not chunk:
            break
        got += len(chunk)
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    s.close()
    assert got > 16 << 20 and elapsed > 0.5
    m = wait_for(lambda: (lambda h: h if h[2] == 1 else None)(histogram(inst.metrics(), "files")),
                 5, message="the response counted")
    buckets, total, count = m
    # Counted when its last byte left, long after the handler answered.
    assert buckets["0.25"] == 0 and buckets["+Inf"] == 1
    assert total > 0.25
    print("\n16 MiB to a slow reader: %.2fs at the client, %.2fs in the histogram"
          % (elapsed, total))


def test_top_shows_p50_and_p99_per_route(saker_factory):
    inst = saker_factory(config(ROUTES, workers=1))
    stop = threading.Event()

    def load():
        s = connect(inst.port)
        while not stop.is_set():
            get(s, "/api")
        s.close()
    t = threading.Thread(target=load)
    t.start()
    try:
        r = run_sakerctl("--shm", inst.shm, "top", "--once", "--interval", "1s")
    finally:
        stop.set()
        t.join(10)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = [l for l in lines if l.startswith("ROUTE")]
    assert head and head[0].split() == ["ROUTE", "REQ/S", "P50", "P99", "2XX/3XX/4XX/5XX%"]
    row = [l for l in lines if l.startswith('api "v1"')]
    assert row, r.stdout
    fields = row[0][len('api "v1"'):].split()
    assert float(fields[0]) > 0
    assert re.fullmatch(r"[0-9.]+(ms|s)", fields[1]) and re.fullmatch(r"[0-9.]+(ms|s)", fields[2])
    assert fields[3] == "100/0/0/0"
    assert not any(l.startswith("/fail") for l in lines)  # nothing in the interval


def test_labels_follow_reloads(saker_factory):
    inst = saker_factory(config(ROUTES))
    s = connect(inst.port)
    assert get(s, "/api").status == 200
    assert get(s, "/fail").status == 503
    s.close()
    tail = [l for l in inst.config_path.read_text().splitlines()
            if l.startswith(("shm_path:", "error_log:", "pid_file:"))]
    inst.config_path.write_text(config(ROUTES.replace("/fail", "/broken")) + "\n".join(tail)
                                + "\n")
    before = inst.status()["reload"]["count"]
    inst.reload()
    wait_for(lambda: inst.status()["reload"]["count"] > before, 15, message="reload")
    wait_for(lambda: len(inst.workers()) == 2, 15, message="old generation gone")
    s = connect(inst.port)
    assert get(s, "/api").status == 200
    assert get(s, "/broken").status == 503
    s.close()
    m = wait_for(lambda: (lambda m: m if responses(m, "/broken", "5xx") else None)(
        inst.metrics()), 5, message="/broken counted")
    # A label that stays keeps its counts; one no generation has is gone.
    assert responses(m, "/fail", "5xx") is None
    assert histogram(m, 'api "v1"')[2] == 2
    assert inst.stop() == 0
