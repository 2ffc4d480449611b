"""Response compression: what curl, Python's gzip, zlib and brotli modules
decode from saker is byte for byte what was served, over HTTP/1.1 and
HTTP/2, for static files (read through the filter piece by piece), whole
bodies, streams cut at every size and proxied responses from a real
upstream; Accept-Encoding negotiation with
q-values; what must not be compressed; weak ETags that still revalidate;
the BREACH default over HTTPS; per-route settings; the counters; memory
that stays flat for a slow reader and is given back when the exchange ends.

The streamed cases use the test_stream handler kind (tests/handlers), which
only a build configured with --enable-test-handlers has; they are skipped,
saying why, against a release build.
"""

import base64
import gzip
import json
import os
import random
import socket
import subprocess
import time
import zlib

import brotli
import pytest

from certs import make_ca, make_leaf
from h2client import H2Client
from rawhttp import connect, read_response, wait_for
from saker_harness import curl as harness_curl
from saker_harness import run_sakerctl, saker_binary, worker_rss_kb
from upstreams import Upstream

MB = 1024 * 1024


def pattern(n, start=0):
    return bytes(((start + i) % 26) + 97 for i in range(n))


def json_doc(size):
    rnd = random.Random(16)
    items, text = [], ""
    while len(text) < size:
        items.append({"id": len(items), "name": "item-%d" % rnd.randrange(10 ** 6),
                      "tags": rnd.sample(["red", "green", "blue", "cyan", "black"], 2),
                      "score": round(rnd.random(), 6)})
        text = json.dumps(items)
    return text.encode()


def js_doc(size):
    rnd = random.Random(7)
    lines = []
    while sum(len(x) for x in lines) < size:
        n = rnd.randrange(10 ** 6)
        lines.append("function f%d(a, b) { return a * %d + b - %d; }\n" % (n, n % 97, n % 13))
    return "".join(lines).encode()


FILES = {
    "data.json": json_doc(100 * 1024),
    "app.js": js_doc(1024 * 1024),
    "tiny.txt": b"short text\n",
    "page.html": b"<p>" + b"hello saker " * 100 + b"</p>\n",
    "image.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
    "empty.css": b"",
}

DECODE = {
    "br": brotli.decompress,
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,  # RFC 9110's "deflate" is the zlib format
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("compresscerts")
    make_ca(d, "ca", "saker-compress-ca")
    make_leaf(d, "leaf", "DNS:localhost,IP:127.0.0.1")
    return d


@pytest.fixture
def www(tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    for name, data in FILES.items():
        (d / name).write_bytes(data)
    return d


def start(saker_factory, www, compression="{providers: [br, gzip, deflate]}", routes="",
          certs=None, top=""):
    url = "https://127.0.0.1:0" if certs else "http://127.0.0.1:0"
    tls = ""
    if certs is not None:
        tls = "certificates:\n  default: { path: %s/leaf.pem, key: %s/leaf.key }\n" % (
            certs, certs)
    comp = "compression: %s\n" % compression if compression else ""
    return saker_factory("workers: 1\n%s%s%sendpoints:\n  main: {url: \"%s\"}\n"
                         "routes:\n%s  - path: /\n    static: {root: %s}\n"
                         % (tls, top, comp, url, routes, www))


def curl(inst, path, *args, certs=None, timeout=60):
    """(status, body, headers as a lower-cased dict) of a GET; curl itself
    decodes nothing unless asked (--compressed)."""
    code, body, head = harness_curl(inst, path, *args, certs=certs, timeout=timeout)
    assert code == 0, head
    headers = {}
    for line in head.splitlines()[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), value.strip())
    return int(head.split()[1]), body, headers


PROTOS = {"http1": ["--http1.1"], "http2": ["--http2-prior-knowledge"]}


# ---- byte-exact decoding ---------------------------------------------------------

@pytest.mark.parametrize("proto", sorted(PROTOS))
@pytest.mark.parametrize("coding", sorted(DECODE))
def test_static_files_decode_byte_exact(saker_factory, www, proto, coding):
    inst = start(saker_factory, www)
    for name in ("data.json", "app.js", "page.html"):
        status, body, h = curl(inst, "/" + name, "-H", "Accept-Encoding: " + coding,
                               *PROTOS[proto])
        assert status == 200
        assert h["content-encoding"] == coding
        assert h["vary"] == "Accept-Encoding"
        assert "content-length" not in h and "accept-ranges" not in h
        if proto == "http1":
            assert h["transfer-encoding"] == "chunked"
        assert DECODE[coding](body) == FILES[name], name
        assert len(body) < len(FILES[name]) / 2, (name, len(body))


@pytest.mark.parametrize("proto", sorted(PROTOS))
def test_curl_compressed_gets_the_file(saker_factory, www, proto):
    inst = start(saker_factory, www)
    status, body, h = curl(inst, "/app.js", "--compressed", *PROTOS[proto])
    assert status == 200 and body == FILES["app.js"]
    assert h["content-encoding"] in ("br", "gzip")


@pytest.mark.parametrize("proto", sorted(PROTOS))
@pytest.mark.parametrize("size,piece", [(3000, 1), (50000, 7), (300000, 4095), (300000, 16384),
                                        (300000, 16385), (2 * MB, 65536), (0, 16384)])
def test_streamed_bodies_cut_at_any_size_decode(saker_factory, www, handlers_built, proto,
                                                size, piece):
    """A handler's stream of unknown length, in pieces of every size (one
    byte, odd, around the filter's 16 KiB buffer, larger than it)."""
    routes = ("  - path: /s\n    test_stream: {bytes: %d, piece: %d, content_type: "
              "\"text/plain; charset=utf-8\"}\n" % (size, piece))
    inst = start(saker_factory, www, routes=routes)
    for coding in ("br", "gzip"):
        status, body, h = curl(inst, "/s", "-H", "Accept-Encoding: " + coding, *PROTOS[proto])
        assert status == 200 and h["content-encoding"] == coding
        assert DECODE[coding](body) == pattern(size)


@pytest.mark.parametrize("proto", sorted(PROTOS))
def test_whole_bytes_body_and_declared_length_decode(saker_factory, www, handlers_built, proto):
    routes = ("  - path: /whole\n    test_stream: {bytes: 60000, whole: true, content_type: "
              "text/html}\n"
              "  - path: /length\n    test_stream: {bytes: 500000, length: true, "
              "content_type: application/json}\n")
    inst = start(saker_factory, www, routes=routes)
    for path, size in (("/whole", 60000), ("/length", 500000)):
        status, body, h = curl(inst, path, "-H", "Accept-Encoding: gzip", *PROTOS[proto])
        assert status == 200 and h["content-encoding"] == "gzip", path
        assert "content-length" not in h  # the declared length was the identity's
        assert gzip.decompress(body) == pattern(size)


def test_h2_frames_of_a_compressed_file(saker_factory, www):
    inst = start(saker_factory, www)
    with H2Client(inst.port) as h:
        st = h.get("/app.js", extra=[("accept-encoding", "br")], timeout=20)
        assert st.status == 200 and st.headers["content-encoding"] == "br"
        assert brotli.decompress(st.body) == FILES["app.js"]


# ---- proxied responses -----------------------------------------------------------

@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


def start_proxy(saker_factory, www, up, compression="{providers: [br, gzip, deflate]}"):
    routes = ("  - path: /up\n    proxy: {upstream: app, strip_prefix: true}\n")
    top = ("upstreams:\n  app:\n    servers:\n      - url: http://127.0.0.1:%d\n" % up.port)
    return start(saker_factory, www, compression=compression, routes=routes, top=top)


@pytest.mark.parametrize("proto", sorted(PROTOS))
@pytest.mark.parametrize("framing", ["bytes", "text"])
@pytest.mark.parametrize("size", [300, 70000, 3 * MB + 11])
def test_proxied_responses_decode_byte_exact(saker_factory, www, upstream, proto, framing,
                                             size):
    """An upstream's answer, with its Content-Length or chunked in pieces
    of every size, is compressed on its way down like any response."""
    inst = start_proxy(saker_factory, www, upstream)
    for coding in ("br", "gzip", "deflate"):
        status, body, h = curl(inst, "/up/%s/%d" % (framing, size), "-H",
                               "Accept-Encoding: " + coding, *PROTOS[proto])
        assert status == 200 and h["content-encoding"] == coding, h
        assert h["vary"] == "Accept-Encoding" and "content-length" not in h
        assert DECODE[coding](body) == pattern(size)
        assert len(body) < size / 4 + 100


def test_proxied_responses_counted_and_curl_compressed(saker_factory, www, upstream):
    inst = start_proxy(saker_factory, www, upstream)
    status, body, h = curl(inst, "/up/text/500000", "--compressed", "--http2-prior-knowledge")
    assert status == 200 and h["content-encoding"] == "br" and body == pattern(500000)
    m = wait_for(lambda: (lambda m: m if m.get(
        'saker_compressed_responses_total{coding="br"}') == 1 else None)(inst.metrics()),
        5, message="counters")
    assert m['saker_compression_input_bytes_total{coding="br"}'] == 500000
    assert m['saker_upstream_requests_total{upstream="app",server="http://127.0.0.1:%d"}'
             % upstream.port] == 1


def test_proxied_responses_left_alone(saker_factory, www, upstream):
    """What the upstream encoded itself passes as it came; a body under
    min_length, a HEAD and a client that accepts nothing stay identity."""
    inst = start_proxy(saker_factory, www, upstream)
    r = raw_get(inst, "/up/gzipped/100000", "Accept-Encoding: br, gzip")
    assert r.status == 200 and r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body) == pattern(100000)  # once, not twice
    r = raw_get(inst, "/up/bytes/100")
    assert r.header("Content-Encoding") is None and r.body == pattern(100)
    assert r.header("Content-Length") == "100"
    r = raw_get(inst, "/up/bytes/5000", method="HEAD")
    assert r.header("Content-Encoding") is None and r.header("Content-Length") == "5000"
    r = raw_get(inst, "/up/text/5000", "Accept-Encoding: identity")
    assert r.header("Content-Encoding") is None and r.body == pattern(5000)
    assert r.header("Vary") == "Accept-Encoding"
    inst2 = start_proxy(saker_factory, www, upstream, compression="{enable: false}")
    r = raw_get(inst2, "/up/text/5000")
    assert r.header("Content-Encoding") is None and r.body == pattern(5000)


# ---- negotiation -----------------------------------------------------------------

NEGOTIATION = [
    (None, None),
    ("", None),
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("br", "br"),
    ("deflate", "deflate"),
    ("gzip, br", "br"),                       # equal q: the server's order (br first)
    ("gzip;q=1.0, br;q=0.8", "gzip"),          # the higher q-value wins
    ("br;q=0, gzip;q=0.1", "gzip"),            # q=0: not acceptable
    ("*", "br"),
    ("*;q=0.5, gzip", "gzip"),
    ("br;q=0, *", "gzip"),                    # * stands for what is not named
    ("identity;q=0", None),                   # nothing else offered: sent as it is
    ("gzip;q=0.5, identity", None),           # identity preferred
    ("gzip;q=0.5, identity;q=0.1", "gzip"),
    ("compress, sdch", None),
    ("GZIP;Q=0.5", "gzip"),
    ("gzip;q=2", None),                       # malformed q-value: the member is dropped
    ("gzip;q=0.5;foo=bar, br;q=0.4", "gzip"),
    (" gzip ,  br ; q=0.001 ", "gzip"),
]


def test_accept_encoding_field_lines_are_one_list(saker_factory, www):
    """Two Accept-Encoding lines are one list (RFC 9110 section 5.3)."""
    inst = start(saker_factory, www)
    r = raw_get(inst, "/data.json", "Accept-Encoding: br;q=0", "Accept-Encoding: gzip")
    assert r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body) == FILES["data.json"]


@pytest.mark.parametrize("accept,expected", NEGOTIATION)
def test_accept_encoding_negotiation(saker_factory, www, accept, expected):
    inst = start(saker_factory, www)
    s = connect(inst.port)
    ae = "" if accept is None else "Accept-Encoding: %s\r\n" % accept
    s.sendall(("GET /data.json HTTP/1.1\r\nHost: a\r\n%s\r\n" % ae).encode())
    r = read_response(s, timeout=10)
    s.close()
    assert r.status == 200
    assert r.header("Vary") == "Accept-Encoding"  # compressed or not, it varies
    assert r.header("Content-Encoding") == expected
    body = r.body if expected is None else DECODE[expected](r.body)
    assert body == FILES["data.json"]
    if expected is None:
        assert r.header("Content-Length") == str(len(FILES["data.json"]))
        assert r.header("ETag").startswith('"')


# ---- what is left alone ----------------------------------------------------------

def raw_get(inst, path, *headers, method="GET"):
    """One request; Accept-Encoding: br, gzip unless headers name one."""
    s = connect(inst.port)
    if not any(h.lower().startswith("accept-encoding:") for h in headers):
        headers += ("Accept-Encoding: br, gzip",)
    extra = "".join("%s\r\n" % h for h in headers)
    s.sendall(("%s %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (method, path, extra)).encode())
    r = read_response(s, timeout=10, head_only=method == "HEAD")
    s.close()
    return r


def test_ranges_head_small_images_and_empty_bodies_stay_identity(saker_factory, www):
    inst = start(saker_factory, www)
    r = raw_get(inst, "/data.json", "Range: bytes=10-19")
    assert r.status == 206 and r.header("Content-Encoding") is None
    assert r.body == FILES["data.json"][10:20]
    r = raw_get(inst, "/data.json", method="HEAD")
    assert r.status == 200 and r.header("Content-Encoding") is None
    assert r.header("Content-Length") == str(len(FILES["data.json"]))
    r = raw_get(inst, "/tiny.txt")  # under min_length (256)
    assert r.header("Content-Encoding") is None and r.body == FILES["tiny.txt"]
    assert r.header("Vary") == "Accept-Encoding"
    r = raw_get(inst, "/image.png")  # not in mime_types
    assert r.header("Content-Encoding") is None and r.header("Vary") is None
    assert r.body == FILES["image.png"]
    r = raw_get(inst, "/empty.css")
    assert r.status == 200 and r.header("Content-Encoding") is None and r.body == b""
    r = raw_get(inst, "/missing.txt")  # 404's body is 14 bytes of text/plain
    assert r.status == 404 and r.header("Content-Encoding") is None


def test_no_transform_and_an_existing_content_encoding_are_respected(saker_factory, www):
    body = "x" * 2000
    routes = ("  - path: /nt\n    return: {status: 200, headers: {Content-Type: text/plain, "
              "Cache-Control: no-transform}, body: \"%s\"}\n"
              "  - path: /enc\n    return: {status: 200, headers: {Content-Type: text/plain, "
              "Content-Encoding: identity-ish}, body: \"%s\"}\n"
              "  - path: /plain\n    return: {status: 200, headers: {Content-Type: text/plain}"
              ", body: \"%s\"}\n" % (body, body, body))
    inst = start(saker_factory, www, routes=routes)
    r = raw_get(inst, "/nt")
    assert r.header("Content-Encoding") is None and r.body == body.encode()
    r = raw_get(inst, "/enc")
    assert r.header("Content-Encoding") == "identity-ish" and r.body == body.encode()
    r = raw_get(inst, "/plain")  # a config-owned body goes through the filter too
    assert r.header("Content-Encoding") == "br"
    assert brotli.decompress(r.body) == body.encode()


def test_weak_etag_revalidates_and_never_satisfies_if_match(saker_factory, www):
    inst = start(saker_factory, www)
    r = raw_get(inst, "/data.json")
    etag = r.header("ETag")
    assert r.header("Content-Encoding") == "br" and etag.startswith('W/"')
    plain = raw_get(inst, "/data.json", "Accept-Encoding: identity")
    r = raw_get(inst, "/data.json", "If-None-Match: %s" % etag)
    assert r.status == 304 and r.body == b""
    r = raw_get(inst, "/data.json", "If-Match: %s" % etag)
    assert r.status == 412  # If-Match compares strongly (RFC 9110 section 13.1.1)
    r = raw_get(inst, "/data.json", "Range: bytes=0-3", "If-Range: %s" % etag)
    assert r.status == 200 and r.header("Content-Encoding") == "br"  # a weak tag never matches
    assert plain.status == 200


# ---- configuration ---------------------------------------------------------------

def test_https_is_off_by_default_and_enable_for_https_turns_it_on(saker_factory, www, certs):
    inst = start(saker_factory, www, compression="{}", certs=certs)
    status, body, h = curl(inst, "/data.json", "-H", "Accept-Encoding: gzip", certs=certs)
    assert "content-encoding" not in h and body == FILES["data.json"]  # BREACH
    inst.stop()
    inst = start(saker_factory, www, compression="{enable_for_https: true}", certs=certs)
    status, body, h = curl(inst, "/data.json", "-H", "Accept-Encoding: gzip", "--http2",
                           certs=certs)
    assert h["content-encoding"] == "gzip" and gzip.decompress(body) == FILES["data.json"]


def test_defaults_and_route_overrides(saker_factory, www):
    routes = ("  - path: /off\n    compression: {enable: false}\n"
              "    static: {root: %s}\n"
              "  - path: /gz\n    compression: {providers: [gzip], level: smallest, "
              "mime_types: [\"text/*\"], min_length: 10}\n    static: {root: %s}\n"
              % (www, www))
    inst = start(saker_factory, www, compression=None, routes=routes)
    r = raw_get(inst, "/data.json")  # no compression: map at all: off, as nginx and ASP.NET
    assert r.header("Content-Encoding") is None and r.header("Vary") is None
    r = raw_get(inst, "/off/data.json")
    assert r.header("Content-Encoding") is None
    r = raw_get(inst, "/gz/tiny.txt")  # 11 bytes, over this route's min_length
    assert r.header("Content-Encoding") == "gzip" and gzip.decompress(r.body) == FILES["tiny.txt"]
    r = raw_get(inst, "/gz/data.json")  # application/json is not text/*
    assert r.header("Content-Encoding") is None
    inst.stop()
    inst = start(saker_factory, www, compression="{}")  # every default
    r = raw_get(inst, "/data.json", "Accept-Encoding: deflate, gzip;q=0.1")
    assert r.header("Content-Encoding") == "gzip"  # deflate is not a default provider


@pytest.mark.parametrize("text,message", [
    ("compression: {providers: [lzma]}", "expected br, gzip or deflate, got 'lzma'"),
    ("compression: {providers: [gzip, gzip]}", "'gzip' is listed twice"),
    ("compression: {providers: []}", "expected at least one"),
    ("compression: {level: {gzip: 10}}", "level.gzip: expected 1 to 9, got '10'"),
    ("compression: {level: {br: 12}}", "level.br: expected 0 to 11"),
    ("compression: {level: {zstd: 3}}", "unknown coding 'zstd'"),
    ("compression: {level: fast}", "expected fastest, optimal or smallest"),
    ("compression: {mime_types: [html]}", "mime_types: expected a type"),
    ("compression: {min_length: lots}", "min_length"),
    ("compression: {enable_for_http: true}", "did you mean 'enable_for_https'"),
    ("compression: [gzip]", "compression: expected a mapping"),
])
def test_config_errors_name_the_place(tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\n%s\n"
                   "routes:\n  - path: /\n    return: {status: 200}\n" % text)
    r = subprocess.run([saker_binary(), "-t", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert "%s:3:" % cfg in r.stderr and message in r.stderr, r.stderr


# ---- counters and memory ---------------------------------------------------------

def test_counters_per_coding(saker_factory, www):
    inst = start(saker_factory, www)
    sizes = {}
    for coding in ("br", "gzip", "deflate"):
        r = raw_get(inst, "/app.js", "Accept-Encoding: " + coding)
        sizes[coding] = len(r.body)
    m = wait_for(lambda: (lambda m: m if m.get(
        'saker_compressed_responses_total{coding="deflate"}') == 1 else None)(inst.metrics()),
        5, message="counters")
    for coding, size in sizes.items():
        assert m['saker_compressed_responses_total{coding="%s"}' % coding] == 1
        assert m['saker_compression_input_bytes_total{coding="%s"}' % coding] == len(
            FILES["app.js"])
        assert m['saker_compression_output_bytes_total{coding="%s"}' % coding] == size
    assert m["saker_compression_memory_bytes"] == 0
    st = inst.status()["compression"]
    assert st["memory_bytes"] == 0
    for coding, size in sizes.items():
        assert st["codings"][coding] == {"responses": 1, "input_bytes": len(FILES["app.js"]),
                                         "output_bytes": size}
    text = run_sakerctl("--shm", inst.shm, "status").stdout
    line = [x for x in text.splitlines() if x.startswith("compression")][0]
    for coding in ("br", "gzip", "deflate"):
        assert "%s 1 responses" % coding in line, line
    assert any(x.startswith("file cache") for x in text.splitlines()), text



@pytest.fixture(scope="module")
def big_text(tmp_path_factory):
    """100 MiB of text that compresses only to about three quarters (base64
    of random bytes): the compressor's output cannot all fit in the
    kernel's buffers, so a slow reader does hold the server back."""
    d = tmp_path_factory.mktemp("bigtext")
    with open(d / "big.txt", "wb") as f:
        for _ in range(100):
            f.write(base64.b64encode(os.urandom(768 * 1024)))
    return d


@pytest.mark.memory
@pytest.mark.parametrize("coding", ["br", "gzip"])
def test_slow_reader_of_100_mb_compressed_keeps_the_worker_flat(saker_factory, big_text,
                                                                 coding):
    """100 MiB of text compressed for a client that reads slowly: the file
    is read through the filter with backpressure, the worker's RSS stays
    flat, the compressor's memory is bounded while it runs and given back."""
    inst = start(saker_factory, big_text)
    s = connect(inst.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.sendall(("GET /big.txt HTTP/1.1\r\nHost: a\r\nAccept-Encoding: %s\r\n\r\n"
               % coding).encode())
    s.settimeout(10)
    d = brotli.Decompressor() if coding == "br" else zlib.decompressobj(16 + 15)
    want = open(big_text / "big.txt", "rb")
    rss0 = worker_rss_kb(inst)
    data, head, got, peak, mem_peak, t0 = b"", None, 0, rss0, 0, time.monotonic()
    while data != b"END":
        assert time.monotonic() - t0 < 240, "stalled at %d bytes" % got
        chunk = s.recv(65536)
        assert chunk, "closed early"
        data += chunk
        if head is None and b"\r\n\r\n" in data:
            head, data = data.split(b"\r\n\r\n", 1)
            assert b"Content-Encoding: " + coding.encode() in head
        if head is None:
            continue
        data, payload = dechunk(data)
        out = d.process(payload) if coding == "br" else d.decompress(payload)
        assert out == want.read(len(out)), "differs after %d bytes" % got
        got += len(out)
        if got // (8 * MB) != (got - len(out)) // (8 * MB):
            peak = max(peak, worker_rss_kb(inst))
            mem_peak = max(mem_peak, inst.metric("saker_compression_memory_bytes") or 0)
            time.sleep(0.05)  # slow: the server waits for this client
    assert got == 100 * MB and want.read(1) == b""
    print("\n%s: worker RSS %d kB before, %d kB at most; compressor %d B at most"
          % (coding, rss0, peak, mem_peak))
    # flat: the compressor's state and a queue near its high-water mark;
    # a queue that grows with the body (never emptied for a slow reader)
    # added 13 MB here.
    assert peak - rss0 < 4 * 1024, "RSS grew by %d kB" % (peak - rss0)
    assert 0 < mem_peak < 2 * MB
    wait_for(lambda: inst.metric("saker_compression_memory_bytes") == 0, 5,
             message="compressor memory given back")
    s.close()


def dechunk(data):
    """(rest, payload) of the whole chunks at the start of data; rest is
    b"END" after the last chunk."""
    out = b""
    while b"\r\n" in data:
        size_line, after = data.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return b"END", out
        if len(after) < size + 2:
            break
        out, data = out + after[:size], after[size + 2:]
    return data, out


def test_abandoned_compressed_exchanges_give_their_memory_back(saker_factory, big_text):
    inst = start(saker_factory, big_text, compression="{providers: [br, gzip, deflate]}")
    socks = []
    for coding in ("br", "gzip", "deflate"):
        s = connect(inst.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        s.sendall(("GET /big.txt HTTP/1.1\r\nHost: a\r\nAccept-Encoding: %s\r\n\r\n"
                   % coding).encode())
        assert len(s.recv(4096)) > 0
        socks.append(s)
    h = H2Client(inst.port, window=65535)  # an HTTP/2 stream that stalls at its window
    sid = h.request("/big.txt", extra=[("accept-encoding", "br")])
    h.wait(lambda: len(h.streams[sid].body) > 0, 10)
    wait_for(lambda: (inst.metric("saker_compression_memory_bytes") or 0) > 0, 5,
             message="compressors at work")
    for s in socks:
        s.close()
    h.rst(sid)
    wait_for(lambda: inst.metric("saker_compression_memory_bytes") == 0, 10,
             message="compressor memory given back")
    h.close()
    r = raw_get(inst, "/big.txt", "Range: bytes=0-99")  # and the worker serves on
    assert r.status == 206 and len(r.body) == 100
