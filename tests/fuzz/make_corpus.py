#!/usr/bin/python3
"""Writes the fuzz drivers' seed corpora: tests/fuzz/corpus/DRIVER/NAME.

    /usr/bin/python3 tests/fuzz/make_corpus.py                # all but shm
    SAKER=build/saker /usr/bin/python3 tests/fuzz/make_corpus.py shm

Seeds are small, meaningful inputs the fuzzer mutates: real requests (the
raw corpus of tests/corpus and requests for every route of the fuzz
server, fuzz_env.c), HTTP/2 frames written by a real client (the h2
library), the shipped config and the README's, paths and conditional
headers, and segments written by a real saker (the shm seeds need $SAKER:
the script runs an instance, with the sample json_counter module built
beside it, an upstream and compressed static files, sends it requests
and reloads, and writes its segment as fuzz_shm.c's patches). The h1 and h2 seeds carry fuzz_env.h's control byte and cut
points. The corpus is what is committed; this script makes it reviewable
and regenerable (Debian's python3, which has the h2 package).
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")

# fuzz_env.h's control byte: flags in the high bits, then the cut points.
JSON_LOG, FLAG_A, FLAG_B, FLAG_C = 0x10, 0x20, 0x40, 0x80


def framed(stream, flags=0, cuts=()):
    cuts = list(cuts)[:15]
    return bytes([flags | len(cuts)]) + b"".join(struct.pack(">H", c) for c in cuts) + stream


def spread_cuts(length, n):
    return [length * (i + 1) // (n + 1) for i in range(n)] if length > n else []


def write(driver, name, data):
    d = os.path.join(CORPUS, driver)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- HTTP/1.1 ----------------------------------------------------------------

def request(method, target, headers=(), body=b"", host=b"a"):
    head = method + b" " + target + b" HTTP/1.1\r\n"
    if host is not None:
        head += b"Host: " + host + b"\r\n"
    for h in headers:
        head += h + b"\r\n"
    return head + b"\r\n" + body


H1_REQUESTS = {
    "plaintext": request(b"GET", b"/plaintext"),
    "empty_204": request(b"GET", b"/empty"),
    "head_index": request(b"HEAD", b"/"),
    "static_small": request(b"GET", b"/small.txt", [b"Accept-Encoding: gzip"]),
    "static_big_range": request(b"GET", b"/big.bin", [b"Range: bytes=100-20000"]),
    "static_suffix_range": request(b"GET", b"/big.bin", [b"Range: bytes=-500",
                                                         b"If-Range: \"x\""]),
    # a multipart body longer than one piece: its generator waits for the
    # next produce, and holds the file until then or until it is stopped
    "static_multipart_pieces": request(b"GET", b"/big.bin", [b"Range: bytes=100-,0-0"]),
    "static_conditional": request(b"GET", b"/index.html", [
        b"If-None-Match: W/\"a\", \"b\"", b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"]),
    "static_dir_redirect": request(b"GET", b"/dir"),
    "static_noindex": request(b"GET", b"/noindex/"),
    "static_hidden": request(b"GET", b"/.env"),
    "static_well_known": request(b"GET", b"/.well-known/security.txt"),
    "static_links": request(b"GET", b"/link-in") + request(b"GET", b"/link-out") +
                    request(b"GET", b"/dir-out/passwd"),
    "static_dotdot": request(b"GET", b"/dir/../%2e%2e/etc/passwd"),
    "metrics": request(b"GET", b"/metrics"),
    "ready_live": request(b"GET", b"/ready") + request(b"GET", b"/live"),
    "redirect": request(b"GET", b"/secure/x?y=1", host=b"localhost:8080"),
    "upload_too_large": request(b"POST", b"/upload/a.txt", [b"Content-Length: 150"],
                                b"x" * 150, host=b"x.example.com"),
    "upload_chunked": request(b"POST", b"/upload/a.txt",
                              [b"Transfer-Encoding: chunked", b"Expect: 100-continue"],
                              b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
                              host=b"x.example.com"),
    "absolute_form": b"GET http://a/plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    "options_star": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "http10_keep_alive": b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "upgrade_ignored": request(b"GET", b"/plaintext", [b"Connection: Upgrade",
                                                       b"Upgrade: websocket"]) +
                       request(b"GET", b"/empty"),
    "host_not_allowed": request(b"GET", b"/", host=b"evil.test"),
    "pipelined": b"".join(request(b"GET", p) for p in
                          (b"/plaintext", b"/small.txt", b"/missing", b"/big.bin", b"/metrics")),
    "body_then_get": request(b"POST", b"/plaintext", [b"Content-Length: 4"], b"abcd") +
                     request(b"GET", b"/plaintext"),
    "head_unfinished": b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Long: ",
    "body_unfinished": request(b"POST", b"/", [b"Content-Length: 1000"], b"only some"),
}


def h1_seeds():
    for name, data in H1_REQUESTS.items():
        write("h1", name, framed(data))
        write("h1", name + "_cut", framed(data, cuts=spread_cuts(len(data), 7)))
    write("h1", "plaintext_bytewise",
          framed(H1_REQUESTS["plaintext"], cuts=range(1, 16)))
    write("h1", "metrics_json_log", framed(H1_REQUESTS["metrics"], JSON_LOG))
    write("h1", "head_unfinished_timeout", framed(H1_REQUESTS["head_unfinished"], FLAG_B))
    write("h1", "body_unfinished_slow_eof",
          framed(H1_REQUESTS["body_unfinished"], FLAG_A | FLAG_C))
    raw = os.path.join(TOP, "tests", "corpus")
    for kind in ("valid", "invalid"):
        for f in sorted(os.listdir(os.path.join(raw, kind))):
            with open(os.path.join(raw, kind, f), "rb") as fh:
                data = fh.read().split(b"\n", 1)[1]  # after the "# expect:" line
            name = "corpus_%s_%s" % (kind, f[:-len(".http")])
            write("h1", name, framed(data))
            write("h1", name + "_cut", framed(data, cuts=spread_cuts(len(data), 5)))


# ---- HTTP/2 ------------------------------------------------------------------

def h2_conversation(steps):
    """The bytes a real client (the h2 package) sends for steps(conn)."""
    import h2.config
    import h2.connection
    # Unvalidated, so a seed may break the rules saker must enforce.
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False))
    conn.initiate_connection()
    preface = conn.data_to_send()
    steps(conn)
    return preface, conn.data_to_send()


def hdrs(path, method="GET", authority="a", extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", authority),
            (":path", path)] + list(extra)


def h2_steps():
    def get(path, **kw):
        return lambda c: c.send_headers(c.get_next_available_stream_id(), hdrs(path, **kw),
                                        end_stream=True)

    def big(c):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, hdrs("/big.bin"), end_stream=True)
        c.increment_flow_control_window(1 << 20)
        c.increment_flow_control_window(1 << 20, stream_id=sid)

    def post(c):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, hdrs("/upload/a.txt", "POST", "x.example.com",
                                 [("content-length", "10")]))
        c.send_data(sid, b"hello")
        c.send_data(sid, b"world", end_stream=True)

    def trailers(c):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, hdrs("/plaintext", "POST"))
        c.send_data(sid, b"abc")
        c.send_headers(sid, [("x-trailer", "1")], end_stream=True)

    def many(c):
        ids = []
        for p in ("/plaintext", "/small.txt", "/metrics", "/missing", "/ready", "/secure/x",
                  "/dir", "/.env"):
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, hdrs(p), end_stream=True)
            ids.append(sid)
        c.reset_stream(ids[1])
        c.reset_stream(ids[3])

    def control(c):
        c.ping(b"12345678")
        c.update_settings({1: 0, 4: 1 << 20, 5: 1 << 20})  # table size, window, frame size
        c.prioritize(1, weight=32, depends_on=0, exclusive=False)
        c.send_headers(1, hdrs("/plaintext"), end_stream=True)

    def big_header(c):
        c.send_headers(c.get_next_available_stream_id(),
                       hdrs("/plaintext", extra=[("cookie", "c" * 3000)]), end_stream=True)

    def continuation(c):
        c.send_headers(c.get_next_available_stream_id(),
                       hdrs("/plaintext", extra=[("x-h%d" % i, "v" * 1800) for i in range(10)]),
                       end_stream=True)

    def conditional(c):
        c.send_headers(c.get_next_available_stream_id(),
                       hdrs("/big.bin", extra=[("range", "bytes=0-99"),
                                               ("if-none-match", "\"nope\"")]), end_stream=True)

    def authority_mismatch(c):
        c.send_headers(c.get_next_available_stream_id(),
                       hdrs("/plaintext", extra=[("host", "b")]), end_stream=True)

    def goaway(c):
        c.send_headers(c.get_next_available_stream_id(), hdrs("/plaintext"), end_stream=True)
        c.close_connection()

    def head_open(c):
        c.send_headers(c.get_next_available_stream_id(), hdrs("/upload/a.txt", "POST"))
        c.send_data(c.get_next_available_stream_id() - 2, b"partial")

    return {"get": get("/plaintext"), "head": get("/", method="HEAD"), "big_window": big,
            "post": post, "trailers": trailers, "many_streams": many, "control": control,
            "big_header": big_header, "continuation": continuation,
            "conditional": conditional, "authority_mismatch": authority_mismatch,
            "goaway": goaway, "body_open": head_open}


def h2_seeds():
    for name, steps in h2_steps().items():
        preface, frames = h2_conversation(steps)
        # Flag A: the driver sends the preface and SETTINGS; the input is frames.
        write("h2", name, framed(frames, FLAG_A))
        write("h2", name + "_cut", framed(frames, FLAG_A, spread_cuts(len(frames), 6)))
        write("h2", name + "_with_preface", framed(preface + frames))
    preface, frames = h2_conversation(h2_steps()["body_open"])
    write("h2", "body_open_drain_tick", framed(frames, FLAG_A | FLAG_B | FLAG_C))
    write("h2", "not_http2", framed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))


# ---- config ------------------------------------------------------------------

CONFIGS = {
    "minimal": "endpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n"
               "routes:\n  - path: /\n    return: { status: 200, body: ok }\n",
    "everything": """workers: 2
cpu_affinity: [0, 1]
log_level: debug
shutdown_timeout: 10s
worker_watchdog_timeout: 5s
access_log: stderr
access_log_format: json
allowed_hosts: [a, "*.example.com"]
limits:
  max_concurrent_connections: 100
  max_request_body_size: 1MB
  max_request_line_size: 8KiB
  max_request_headers_total_size: 32KiB
  max_request_header_count: 100
  keep_alive_timeout: 2m
  request_headers_timeout: 30s
  min_request_body_data_rate: { bytes_per_second: 240, grace_period: 5s }
  min_response_data_rate: off
  http2:
    max_streams_per_connection: 100
    header_table_size: 4KiB
    max_frame_size: 16KiB
    initial_connection_window_size: 1MiB
    keep_alive_ping_delay: 30s
endpoints:
  public:
    url: http://127.0.0.1:0
    protocols: http1_and_http2
    limits: { max_concurrent_connections: 50 }
  admin: { url: "unix:/tmp/saker-fuzz.sock", access_log: false }
  secure:
    url: https://[::1]:0
    certificate: { path: /tmp/site.pem, key: /tmp/site.key }
    sni: { "*.example.org": { path: /tmp/w.pem, key: /tmp/w.key } }
    tls: { min_version: "1.3" }
    client_certificate: { mode: allow, ca: /tmp/ca.pem }
    hsts: { max_age: 365d, include_subdomains: true, preload: true }
ticket_key_rotation: 1h
routes:
  - endpoint: admin
    path: /metrics
    status: { kind: metrics }
  - host: "*.example.com"
    path: /api
    max_request_body_size: 1GB
    headers: { X-Frame-Options: DENY }
    static: { root: /tmp, index: index.html }
  - endpoint: public
    path: /
    redirect_https: { port: 443, status: 308 }
  - path: /
    return: { status: 404, headers: { Content-Type: text/plain }, body: "no\\n" }
""",
}
URLS = ["http://127.0.0.1:0;https://[::1]:8443;unix:/tmp/x.sock", "http://localhost:5000",
        "http://*:80"]


def config_seeds():
    for name, text in CONFIGS.items():
        write("config", name + ".yaml", text.encode())
    write("config", "minimal_urls", CONFIGS["minimal"].encode() + b"\0" + URLS[0].encode())
    write("config", "everything_urls",
          CONFIGS["everything"].encode() + b"\0" + URLS[1].encode())
    write("config", "empty_urls", b"\0" + URLS[2].encode())
    with open(os.path.join(TOP, "conf", "saker.yaml"), "rb") as f:
        write("config", "shipped.yaml", f.read())
    with open(os.path.join(TOP, "README.md")) as f:
        blocks = re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
    for i, block in enumerate(blocks):
        write("config", "readme_%d.yaml" % i, block.encode())


# ---- paths and conditional requests -------------------------------------------

PATHS = ["/", "/index.html", "/a/b/../c/./d//e/", "/%2e%2e/etc/passwd", "/a%2fb", "/a%5cb",
         "/%00", "/a\\b", "/%zz", "/%c3%a4/%E2%82%AC", "/.well-known/security.txt", "/.env",
         "/dir/", "/dir-out/passwd", "/link-in", "/link-out", "/big.bin",
         "/x/../../y", "/" + "a/" * 40, "/%2E%2e%2F"]


def conditional_seed(method, size, mtime, headers):
    return bytes([method]) + struct.pack("<Qq", size, mtime) + "\n".join(headers).encode()


CONDITIONALS = {
    "range": (0, 1000, 784111777, ["Range: bytes=0-99"]),
    "range_suffix": (0, 1000, 784111777, ["Range: bytes=-5"]),
    "range_open": (0, 1000, 784111777, ["Range: bytes=500-"]),
    "range_many": (0, 1000, 784111777, ["Range: bytes=0-1,5-9"]),
    "range_huge": (0, 2 ** 64 - 1, 0, ["Range: bytes=18446744073709551614-"]),
    "if_range_etag": (0, 1000, 784111777, ["Range: bytes=1-2", "If-Range: \"5f3a-1c\""]),
    "if_range_date": (0, 1000, 784111777,
                      ["Range: bytes=1-2", "If-Range: Sun, 06 Nov 1994 08:49:37 GMT"]),
    "if_none_match": (1, 10, 784111777, ["If-None-Match: W/\"a\", \"5f3a-1c\""]),
    "if_match_star": (2, 10, 784111777, ["If-Match: *"]),
    "imf": (0, 10, 784111777, ["If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"]),
    "rfc850": (0, 10, 784111777, ["If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT"]),
    "asctime": (0, 10, 784111777, ["If-Unmodified-Since: Sun Nov  6 08:49:37 1994"]),
    "negative_mtime": (0, 10, -1, ["If-Modified-Since: Wed, 31 Dec 1969 23:59:59 GMT"]),
}


def path_and_conditional_seeds():
    for i, p in enumerate(PATHS):
        write("path", "path_%02d" % i, p.encode())
    for name, args in CONDITIONALS.items():
        write("conditional", name, conditional_seed(*args))


# ---- shm: segments written by a real saker --------------------------------------

SHM_CONFIG = """workers: 2
shm_path: {d}/saker.shm
error_log: {d}/error.log
pid_file: {d}/saker.pid
connection_list: on
limits: {{ max_concurrent_connections: 500 }}
endpoints:
  public: {{ url: "http://127.0.0.1:0", limits: {{ max_concurrent_connections: 20 }} }}
  secure: {{ url: "https://127.0.0.1:0", certificate: {{ path: {d}/site.pem, key: {d}/site.key }} }}
rate_limits:
  few: {{ fixed_window: {{ permit_limit: 1, window: 1h }} }}
  bucket:
    token_bucket: {{ token_limit: 5, tokens_per_period: 1, replenishment_period: 1s }}
    partition: header
    header: X-Key
upstreams:
  app: {{ servers: [{{ url: "http://127.0.0.1:9" }}] }}
modules:
  - path: {modules}/json_counter.so
compression: {{ enable: true, providers: [gzip, br] }}
open_file_cache: {{ max: 100, valid: 1h }}
routes:
  - path: /files
    static: {{ root: {d}/www }}
  - path: /app
    proxy: {{ upstream: app }}
  - path: /counter
    module: {{ handler: json_counter }}
  - path: /few
    name: few
    rate_limit: [few, bucket]
    return: {{ status: 200, body: ok }}
  - path: /
    return: {{ status: 200, body: ok }}
"""
HEADER = struct.Struct("<QIIIIQ")  # magic, layout version, header, slot size, slots, total
# After the slots (shm/shm_layout.h): the retired routes' statistics and
# each slot's (SHM_MAX_ROUTES x struct shm_route_stats a set), then each
# slot's connection list (struct shm_conn_list).
ROUTE_SET = 64 * 192
CONN_LIST = 65600


def wait_for(cond, seconds):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit("make_corpus: saker did not come up")
        time.sleep(0.05)


def port_of(ctl, shm):
    out = subprocess.run([ctl, "--shm", shm, "status", "--json"], capture_output=True,
                         text=True).stdout
    m = re.search(r'"endpoint":"public"[^}]*"port":(\d+)', out)
    return int(m.group(1)) if m and '"state":"running"' in out else None


def with_slots(image, slots):
    """The segment cut to its first `slots` slots (their routes and
    connection lists too), its sizes saying so."""
    magic, version, header, slot, n, total = HEADER.unpack_from(image)
    if total != header + n * slot + (n + 1) * ROUTE_SET + n * CONN_LIST:
        raise SystemExit("make_corpus: the segment's layout changed: update ROUTE_SET, CONN_LIST")
    routes = header + n * slot
    conns = routes + (n + 1) * ROUTE_SET
    out = bytearray(image[:header + slots * slot])
    out += image[routes:routes + (slots + 1) * ROUTE_SET]
    out += image[conns:conns + slots * CONN_LIST]
    HEADER.pack_into(out, 0, magic, version, header, slot, slots, len(out))
    return bytes(out)


def shm_seeds():
    saker = os.environ.get("SAKER")
    if not saker:
        raise SystemExit("make_corpus: shm needs SAKER=path/to/saker (and sakerctl beside it)")
    ctl = os.environ.get("SAKERCTL", os.path.join(os.path.dirname(saker), "sakerctl"))
    d = tempfile.mkdtemp(prefix="saker-corpus.")
    try:
        subprocess.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                       "-keyout site.key -out site.pem -subj /CN=localhost -days 30",
                       shell=True, check=True, cwd=d, capture_output=True)
        os.mkdir(os.path.join(d, "www"))
        with open(os.path.join(d, "www", "a.txt"), "w") as f:
            f.write("saker compresses this text. " * 40)
        with open(os.path.join(d, "saker.yaml"), "w") as f:
            f.write(SHM_CONFIG.format(d=d, modules=os.path.join(
                os.path.dirname(os.path.abspath(saker)), "modules")))
        proc = subprocess.Popen([saker, "-c", os.path.join(d, "saker.yaml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            shm = os.path.join(d, "saker.shm")
            wait_for(lambda: os.path.exists(shm) and port_of(ctl, shm), 10)
            port = port_of(ctl, shm)
            for path, coding in (("/", ""), ("/a", ""), ("/b", ""), ("/few", ""), ("/few", ""),
                                 ("/app", ""), ("/counter", ""), ("/files/a.txt", "gzip"),
                                 ("/files/a.txt", "br")):  # refused: /few, /app (502)
                try:
                    urllib.request.urlopen(urllib.request.Request(
                        "http://127.0.0.1:%d%s" % (port, path),
                        headers={"Accept-Encoding": coding or "identity"})).read()
                except urllib.error.HTTPError:
                    pass
            # Connections open in the lists: one idle, one with half a head.
            idle = socket.create_connection(("127.0.0.1", port))
            idle.sendall(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
            idle.recv(4096)
            partial = socket.create_connection(("127.0.0.1", port))
            partial.sendall(b"GET /few HTTP/1.1\r\nHo")
            with open(os.path.join(d, "saker.yaml"), "a") as f:
                f.write("bogus: 1\n")  # a reload that fails, with its message
            subprocess.run([ctl, "--shm", shm, "reload"], capture_output=True)
            with open(shm, "rb") as f:
                image = f.read()
            idle.close()
            partial.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(d)
    # A whole segment has 64 slots (megabytes): the seeds keep the two
    # that ran, or one, as fuzz_shm.c's patches.
    running = with_slots(image, 2)
    write("shm", "running", shm_input(running, second=rotated_slots(running)))
    write("shm", "one_slot", shm_input(with_slots(image, 1)))
    write("shm", "one_slot_shrinks", shm_input(with_slots(image, 1), shrink=0x41))
    write("shm", "header_only", shm_input(image[:HEADER.unpack_from(image)[2]]))
    # A master stuck mid-write by the second look: its header sequence odd.
    stuck = bytearray(running)
    struct.pack_into("<Q", stuck, HEADER_SEQ, struct.unpack_from("<Q", stuck, HEADER_SEQ)[0] | 1)
    write("shm", "writer_stuck", shm_input(running, second=bytes(stuck), control=0x3e))


# fuzz_shm.c's input: three control bytes, then patches over a sparse file
# whose first fields are a writer's (PREFIX) for the slot count byte 0 gives.
HEADER_SEQ = 120  # offsetof(struct shm_header, header_seq)
PATCH = struct.Struct("<IH")
PATCH_SECOND = 0x8000
PATCH_GAP = 16  # zeros a patch spans rather than start another


def patches(image, base, second=False):
    """Records for every run of bytes where image differs from base (base
    zero past its end); runs less than PATCH_GAP apart are one record."""
    base = base[:len(image)] + bytes(max(0, len(image) - len(base)))
    differ = [i for i in range(len(image)) if image[i] != base[i]]
    out, k = bytearray(), 0
    while k < len(differ):
        start = end = differ[k]
        while k + 1 < len(differ) and differ[k + 1] - end <= PATCH_GAP and \
                differ[k + 1] - start < 0x7fff:
            k += 1
            end = differ[k]
        k += 1
        out += PATCH.pack(start, (end + 1 - start) | (PATCH_SECOND if second else 0))
        out += image[start:end + 1]
    return bytes(out)


def shm_input(image, second=None, shrink=None, control=0):
    """The segment image as fuzz_shm.c's input: the file is as long as the
    image, the second look rewrites it to `second` or shrinks it (control
    byte 2: shrink, else control)."""
    magic, version, header, slot, n, total = HEADER.unpack_from(image)
    slots = n if n <= 4 else 0
    base = HEADER.pack(magic, version, header, slot, slots, shm_size(header, slot, slots))
    declared = min(total, shm_size(header, slot, 4) + 4096)
    move = max(-128, min(127, (len(image) - declared) // 64))
    out = bytes([slots, move & 0xff, shrink or control]) + patches(image, base)
    if second is not None:
        out += patches(second, image, second=True)
    return out


def shm_size(header, slot, slots):
    return header + slots * slot + (slots + 1) * ROUTE_SET + slots * CONN_LIST


def rotated_slots(image):
    """The image with each slot's counters moved to its neighbour: what
    top computes rates from on the second look."""
    header, slot, n = HEADER.unpack_from(image)[2:5]
    slots = image[header:header + n * slot]
    return image[:header] + slots[slot:] + slots[:slot] + image[header + n * slot:]


def main():
    which = sys.argv[1:] or ["h1", "h2", "config", "path"]
    for w in which:
        {"h1": h1_seeds, "h2": h2_seeds, "config": config_seeds,
         "path": path_and_conditional_seeds, "shm": shm_seeds}[w]()


if __name__ == "__main__":
    main()
