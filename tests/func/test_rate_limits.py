"""Rate limits (`rate_limits:`, a route's `rate_limit:`) with real clients
over several workers.

What an operator is promised: a policy admits exactly its limit across all
workers (the state is shared, not split per worker), refuses the rest with
429 and Retry-After, partitions by client network or header as configured,
keeps a heavy client limited while a flood of new keys fills its table,
keeps its state across a reload that leaves it unchanged, and counts what
it did in sakerctl status and metrics.

The accuracy tests print their figures (pytest -s shows them).
"""

import math
import socket
import threading
import time

from h2client import H2Client
from rawhttp import connect, read_response, wait_for
from saker_harness import run_sakerctl


def config(policies, routes, workers=4):
    text = "workers: %d\nendpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n" % workers
    text += "rate_limits:\n" + policies
    text += "routes:\n" + routes
    return text


def route(path, limits):
    return ("  - path: %s\n    rate_limit: %s\n    headers: { X-Route: \"yes\" }\n"
            "    status: { kind: liveness }\n" % (path, limits))


def get(sock, path, headers=()):
    extra = "".join("%s: %s\r\n" % h for h in headers)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (path, extra)).encode())
    return read_response(sock)


def statuses(port, path, count, headers=(), source="127.0.0.1"):
    """count requests on one keep-alive connection from source."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(source, 0))
    try:
        return [get(s, path, headers).status for _ in range(count)]
    finally:
        s.close()


def rate_counts(inst, policy):
    m = inst.metrics()
    return (m.get('saker_rate_limit_requests_total{policy="%s",result="admitted"}' % policy),
            m.get('saker_rate_limit_requests_total{policy="%s",result="limited"}' % policy),
            m.get('saker_rate_limit_overflow_total{policy="%s"}' % policy))


class Clients:
    """Keep-alive connections spread over the workers: opened until at
    least two workers hold some (the kernel hands a shared listener's
    connections to whichever worker wakes first)."""

    def __init__(self, inst, want=32, most=256):
        self.socks = []
        deadline = time.monotonic() + 20
        while True:
            while len(self.socks) < want:
                self.socks.append(connect(inst.port, timeout=10))
            busy = [w for w in inst.workers() if w["connections_open"] > 0]
            if len(busy) >= 2 and sum(w["connections_open"] for w in busy) >= len(self.socks):
                self.workers = len(busy)
                return
            if time.monotonic() > deadline or want >= most:
                raise AssertionError("connections did not reach two workers: %s"
                                     % inst.workers())
            want += 16

    def run(self, work):
        """work(sock, results) in one thread per connection; results merged."""
        results, lock = [], threading.Lock()

        def one(sock):
            mine = []
            work(sock, mine)
            with lock:
                results.extend(mine)
        threads = [threading.Thread(target=one, args=(s,)) for s in self.socks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return results

    def close(self):
        for s in self.socks:
            s.close()


def admitted_by_worker(inst):
    return sorted(w["responses"]["2xx"] for w in inst.workers())


def test_token_bucket_is_exact_across_workers(saker_factory):
    inst = saker_factory(config(
        "  bucket:\n    token_bucket: { token_limit: 300, tokens_per_period: 1, "
        "replenishment_period: 1h }\n    partition: global\n",
        route("/", "bucket")))
    clients = Clients(inst)
    per_connection = 2000 // len(clients.socks) + 1
    got = clients.run(lambda s, out: out.extend(get(s, "/").status
                                                for _ in range(per_connection)))
    clients.close()
    ok, limited = got.count(200), got.count(429)
    print("\ntoken bucket of 300: %d requests over %d connections on %d workers: "
          "%d admitted, %d limited; 2xx per worker %s"
          % (len(got), len(clients.socks), clients.workers, ok, limited,
             admitted_by_worker(inst)))
    assert ok == 300 and limited == len(got) - 300
    assert rate_counts(inst, "bucket")[:2] == (300, len(got) - 300)


def bucketed(results, length):
    """Admitted responses per window of `length` seconds on CLOCK_MONOTONIC
    (the server's clock too): `inside` counts those
    whose whole round trip fell in the window, `touching` those whose
    round trip overlaps it."""
    inside, touching = {}, {}
    for sent, received, status in results:
        if status != 200:
            continue
        a, b = math.floor(sent / length), math.floor(received / length)
        if a == b:
            inside[a] = inside.get(a, 0) + 1
        for w in range(a, b + 1):
            touching[w] = touching.get(w, 0) + 1
    return inside, touching


def timed_load(clients, path, seconds):
    def work(sock, out):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent = time.monotonic()
            status = get(sock, path).status
            out.append((sent, time.monotonic(), status))
    return clients.run(work)


def test_fixed_window_admits_its_limit_in_every_window(saker_factory):
    limit = 50
    inst = saker_factory(config(
        "  window:\n    fixed_window: { permit_limit: %d, window: 1s }\n"
        "    partition: global\n" % limit, route("/", "window")))
    clients = Clients(inst, want=16)
    results = timed_load(clients, "/", 4.5)
    clients.close()
    inside, touching = bucketed(results, 1.0)
    windows = sorted(touching)
    full = windows[1:-1]  # the first and the last are partly outside the run
    admitted = sum(1 for r in results if r[2] == 200)
    duration = max(r[1] for r in results) - min(r[0] for r in results)
    print("\nfixed window of %d per 1s: %d requests over %.1fs on %d workers: %d admitted "
          "in %d windows (%s in the whole ones)"
          % (limit, len(results), duration, clients.workers, admitted, len(windows),
             [touching[w] for w in full]))
    for w in windows:
        assert inside.get(w, 0) <= limit, (w, inside, touching)
    for w in full:
        assert touching[w] >= limit, (w, inside, touching)
    assert admitted <= limit * len(windows)
    assert rate_counts(inst, "window")[0] == admitted


def test_sliding_window_never_exceeds_its_limit_in_any_window(saker_factory):
    limit, window, segments = 40, 2.0, 4
    inst = saker_factory(config(
        "  sliding:\n    sliding_window: { permit_limit: %d, window: 2s, "
        "segments_per_window: %d }\n    partition: global\n" % (limit, segments),
        route("/", "sliding")))
    clients = Clients(inst, want=16)
    results = timed_load(clients, "/", 5.0)
    clients.close()
    segment = window / segments
    inside, touching = bucketed(results, segment)
    seg = sorted(touching)
    worst = 0
    for start in range(seg[0], seg[-1] + 1):
        span = range(start, start + segments)
        within = sum(inside.get(s, 0) for s in span)
        worst = max(worst, within)
        assert within <= limit, (start, inside)
    admitted = sum(1 for r in results if r[2] == 200)
    spanned = math.floor(max(r[1] for r in results) / segment) - math.floor(
        min(r[0] for r in results) / segment) + 1
    print("\nsliding window of %d per 2s in %d segments: %d requests over %d segments on "
          "%d workers, %d admitted; the most in any window: %d"
          % (limit, segments, len(results), spanned, clients.workers, admitted, worst))
    # Saturated, every window that the run covers whole admits the limit.
    for start in range(seg[0] + 1, seg[-1] - segments):
        assert sum(touching.get(s, 0) for s in range(start, start + segments)) >= limit


def test_partitions_by_client_network(saker_factory):
    inst = saker_factory(config(
        "  host:\n    fixed_window: { permit_limit: 3, window: 1h }\n"
        "  net:\n    fixed_window: { permit_limit: 3, window: 1h }\n    ipv4_prefix: 24\n",
        route("/host", "host") + route("/net", "net"), workers=2))
    assert statuses(inst.port, "/host", 4, source="127.0.0.1") == [200, 200, 200, 429]
    assert statuses(inst.port, "/host", 4, source="127.0.0.2") == [200, 200, 200, 429]
    # 127.0.0.1 and 127.0.0.2 are one /24.
    assert statuses(inst.port, "/net", 2, source="127.0.0.1") == [200, 200]
    assert statuses(inst.port, "/net", 2, source="127.0.0.2") == [200, 429]


def test_partitions_by_header(saker_factory):
    inst = saker_factory(config(
        "  key:\n    fixed_window: { permit_limit: 2, window: 1h }\n"
        "    partition: header\n    header: X-Api-Key\n", route("/", "key"), workers=2))
    assert statuses(inst.port, "/", 3, [("X-Api-Key", "alpha")]) == [200, 200, 429]
    assert statuses(inst.port, "/", 3, [("x-api-key", "beta")]) == [200, 200, 429]
    # Requests without the header share one partition.
    assert statuses(inst.port, "/", 1) == [200]
    assert statuses(inst.port, "/", 2, source="127.0.0.3") == [200, 429]


def test_refusal_is_429_with_retry_after(saker_factory):
    inst = saker_factory(config(
        "  few:\n    fixed_window: { permit_limit: 1, window: 1h }\n",
        route("/", "few"), workers=1))
    s = connect(inst.port)
    assert get(s, "/").status == 200
    r = get(s, "/")
    assert (r.status, r.reason, r.body) == (429, "Too Many Requests", b"429 Too Many Requests\n")
    retry = int(r.h["retry-after"])
    assert 1 <= retry <= 3600
    assert r.h["x-route"] == "yes"  # the route's headers go with its 429 too
    assert "close" not in r.h.get("connection", "")
    assert get(s, "/").status == 429  # the connection is kept
    s.close()
    # The same policy over HTTP/2.
    c = H2Client(inst.port)
    st = c.get("/")
    assert st.status == 429 and int(st.headers["retry-after"]) >= 1


def test_refusal_comes_before_the_body_and_keeps_the_connection(saker_factory):
    """The head pipeline refuses before any body: a body sent anyway is
    drained (not parsed as the next request) and the connection kept; a
    client waiting for 100 Continue gets none, and the connection closes;
    HTTP/2 answers the same way, with the route's headers."""
    inst = saker_factory(config(
        "  few:\n    fixed_window: { permit_limit: 1, window: 1h }\n",
        route("/", "few"), workers=1))
    s = connect(inst.port)
    assert get(s, "/").status == 200
    s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nGET /x HTTP")
    r = read_response(s)
    assert r.status == 429 and r.h["x-route"] == "yes"
    assert "close" not in r.h.get("connection", "")
    assert get(s, "/").status == 429  # the body was drained, not taken for a request
    # A client waiting for 100 Continue gets none, and may send the body
    # or not: the connection closes after the 429, whichever it does.
    s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    r = read_response(s)
    assert r.status == 429 and r.h["connection"] == "close"
    s.close()
    c = H2Client(inst.port)
    st = c.get("/", end_stream=False)  # a body would follow: refused at the head
    assert st.status == 429 and st.headers["x-route"] == "yes"
    assert c.get("/").status == 429  # the session goes on


def test_retry_after_is_the_seconds_left_rounded_up(saker_factory):
    inst = saker_factory(config(
        "  bucket:\n    token_bucket: { token_limit: 1, tokens_per_period: 1, "
        "replenishment_period: 2500ms }\n", route("/", "bucket"), workers=1))
    s = connect(inst.port)
    assert get(s, "/").status == 200
    r = get(s, "/")
    assert r.status == 429 and r.h["retry-after"] in ("1", "2", "3")
    wait_for(lambda: get(s, "/").status == 200, 5, message="a token after Retry-After")
    s.close()


def test_a_flood_of_new_keys_cannot_reset_a_heavy_client(saker_factory):
    inst = saker_factory(config(
        "  key:\n    fixed_window: { permit_limit: 5, window: 1h }\n"
        "    partition: header\n    header: X-Api-Key\n    max_partitions: 8\n",
        route("/", "key"), workers=2))
    heavy = [("X-Api-Key", "heavy")]
    assert statuses(inst.port, "/", 6, heavy) == [200] * 5 + [429]
    s = connect(inst.port)
    flood = [get(s, "/", [("X-Api-Key", "k%d" % i)]).status for i in range(300)]
    s.close()
    # Seven records were free; the other keys share one overflow partition.
    assert flood.count(200) == 7 + 5
    assert statuses(inst.port, "/", 1, heavy) == [429]
    admitted, limited, overflow = rate_counts(inst, "key")
    assert overflow == 300 - 7
    print("\nflood of 300 keys into 8 records: %d admitted, %d limited, %d overflow"
          % (admitted, limited, overflow))


def test_reload_keeps_an_unchanged_policys_state(saker_factory):
    policy = "  few:\n    fixed_window: { permit_limit: %d, window: 1h }\n"
    inst = saker_factory(config(policy % 3, route("/", "few"), workers=2))
    assert statuses(inst.port, "/", 4) == [200, 200, 200, 429]

    def reload(text):
        tail = [l for l in inst.config_path.read_text().splitlines()
                if l.startswith(("shm_path:", "error_log:", "pid_file:"))]
        inst.config_path.write_text(text + "\n".join(tail) + "\n")
        before = inst.status()["reload"]["count"]
        inst.reload()
        wait_for(lambda: inst.status()["reload"]["count"] > before, 15, message="reload")
        assert inst.status()["reload"]["ok"], inst.status()["reload"]
        wait_for(lambda: len(inst.workers()) == 2, 15, message="old generation gone")

    reload(config(policy % 3, route("/", "few") + route("/other", "few"), workers=2))
    assert statuses(inst.port, "/", 1) == [429]
    assert rate_counts(inst, "few")[:2] == (3, 2)
    # A changed definition starts afresh; the counters go on by name.
    reload(config(policy % 4, route("/", "few"), workers=2))
    assert statuses(inst.port, "/", 5) == [200] * 4 + [429]
    assert rate_counts(inst, "few")[:2] == (7, 3)


def test_status_shows_each_policy(saker_factory):
    inst = saker_factory(config(
        "  few:\n    sliding_window: { permit_limit: 1, window: 1h, segments_per_window: 4 }\n"
        "    partition: global\n", route("/", "few"), workers=1))
    statuses(inst.port, "/", 3)
    st = inst.status()
    assert st["rate_limits"] == [{"policy": "few", "definition":
                                  "sliding_window 1 per 1h in 4 segments, global",
                                  "admitted": 1, "limited": 2, "overflow": 0}]
    text = run_sakerctl("--shm", inst.shm, "status").stdout
    assert "rate limits  few: 1 admitted, 2 limited (sliding_window 1 per 1h in 4 segments, " \
           "global)" in text
