"""HTTP/2: over TLS (ALPN h2) and in clear text (prior knowledge), the same
handlers and limits as HTTP/1.1, multiplexing, Kestrel's Http2Limits,
floods and broken frames, timeouts and pings, GOAWAY on drain and reload,
and the HTTP/2 counters. Clients: curl, h2load, and h2client.py (frame by
frame) for what a well-behaved client never sends.
"""

import hashlib
import json
import os
import struct
import subprocess
import threading
import time

import pytest

from certs import make_ca, make_leaf
from h2client import (CANCEL, ENHANCE_YOUR_CALM, INTERNAL_ERROR, NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM,
                      STREAM_CLOSED, H2Client)
from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame, PingFrame, SettingsFrame,
                              WindowUpdateFrame)
from rawhttp import connect, send_raw, wait_for


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2certs")
    make_ca(d, "ca", "saker-h2-ca")
    make_leaf(d, "leaf", "DNS:localhost,IP:127.0.0.1")
    return d


@pytest.fixture(scope="module")
def docroot(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2root")
    (d / "index.html").write_text("<h1>index</h1>\n")
    (d / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 77))
    (d / "many").mkdir()
    for i in range(100):
        (d / "many" / ("f%d.bin" % i)).write_bytes(b"%d" % i * 50000)
    return d


def config(docroot, *, url="http://127.0.0.1:0", endpoint="", top="", certs=None,
           workers=1):
    tls = ""
    if certs is not None:
        tls = ("certificates:\n  default: { path: %s/leaf.pem, key: %s/leaf.key }\n"
               % (certs, certs))
    return ("workers: %d\n%s%s"
            "endpoints:\n  main:\n    url: \"%s\"\n%s"
            "routes:\n"
            "  - path: /plaintext\n"
            "    return: { status: 200, headers: { Content-Type: text/plain, X-Extra: yes }, "
            "body: \"Hello, World!\" }\n"
            "  - path: /healthz\n    status: { kind: readiness }\n"
            "  - path: /\n    static: { root: %s }\n"
            % (workers, tls, top, url, endpoint, docroot))


def curl(*args, timeout=20):
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args),
                          capture_output=True, timeout=timeout)


def counter(inst, name, labels=None):
    """A sample's value; labels as {"reason": "malformed"} (one label)."""
    if labels:
        (k, v), = labels.items()
        name = '%s{%s="%s"}' % (name, k, v)
    return inst.metric(name)


# ---- the protocol on each kind of endpoint ----------------------------------

def test_prior_knowledge_and_http1_share_a_clear_text_endpoint(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    r = curl("-i", "--http2-prior-knowledge", inst.url("/plaintext"))
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200"), head
    lines = head.decode().split("\r\n")[1:]
    assert "server: saker" in lines and "content-type: text/plain" in lines, lines
    assert "content-length: 13" in lines and any(l.startswith("date: ") for l in lines)
    assert all(l.split(":")[0] == l.split(":")[0].lower() for l in lines), lines
    assert body == b"Hello, World!"
    # The same port speaks HTTP/1.1 to an HTTP/1.1 client.
    r = curl("-sS", "-o", "/dev/null", "-w", "%{http_version}", inst.url("/plaintext"))
    assert r.stdout == b"1.1", r.stdout
    assert counter(inst, "saker_http2_connections_total") == 1
    assert counter(inst, "saker_http2_streams_total") == 1


def test_https_negotiates_h2_with_alpn(saker_factory, docroot, certs):
    inst = saker_factory(config(docroot, url="https://127.0.0.1:0", certs=certs))
    url = "https://localhost:%d/plaintext" % inst.port
    resolve = "localhost:%d:127.0.0.1" % inst.port
    r = curl("--cacert", str(certs / "ca.pem"), "--resolve", resolve,
             "-w", "\n%{http_version}", url)
    assert r.returncode == 0 and r.stdout == b"Hello, World!\n2", (r.stdout, r.stderr)
    with H2Client(inst.port, tls_ca=certs / "ca.pem") as c:
        assert c.alpn == "h2"
        s = c.get("/plaintext")
        assert s.status == 200 and s.body == b"Hello, World!"


def test_http2_only_endpoint(saker_factory, docroot):
    inst = saker_factory(config(docroot, endpoint="    protocols: http2\n"))
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200
    # An HTTP/1.1 request is no HTTP/2 preface: closed unanswered, counted.
    before = counter(inst, "saker_rejections_total", {"reason": "malformed"})
    assert send_raw(inst.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    wait_for(lambda: counter(inst, "saker_rejections_total", {"reason": "malformed"})
             == before + 1, 5, message="bad preface counted")


def test_http1_only_endpoint_refuses_the_preface(saker_factory, docroot):
    inst = saker_factory(config(docroot, endpoint="    protocols: http1\n"))
    reply = send_raw(inst.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 505 "), reply  # HTTP/2.0 is no HTTP/1 version


def test_http2_only_https_endpoint_refuses_http11_clients(saker_factory, docroot, certs):
    inst = saker_factory(config(docroot, url="https://127.0.0.1:0", certs=certs,
                                endpoint="    protocols: http2\n"))
    r = curl("--http1.1", "--cacert", str(certs / "ca.pem"), "--resolve",
             "localhost:%d:127.0.0.1" % inst.port, "https://localhost:%d/" % inst.port)
    assert r.returncode != 0, r.stdout
    with H2Client(inst.port, tls_ca=certs / "ca.pem") as c:
        assert c.get("/plaintext").status == 200


# ---- the same handlers ------------------------------------------------------

def test_static_files_over_h2(saker_factory, docroot, certs):
    for url in ("http://127.0.0.1:0", "https://127.0.0.1:0"):
        inst = saker_factory(config(docroot, url=url, certs=certs))
        tls = dict(tls_ca=certs / "ca.pem") if url.startswith("https") else {}
        with H2Client(inst.port, **tls) as c:
            big = c.get("/big.bin", timeout=20)
            want = (docroot / "big.bin").read_bytes()
            assert big.status == 200 and big.headers["content-length"] == str(len(want))
            assert hashlib.sha256(big.body).digest() == hashlib.sha256(want).digest()
            index = c.get("/")
            assert index.status == 200 and index.body == b"<h1>index</h1>\n"
            etag = index.headers["etag"]
            assert c.get("/", extra=[("if-none-match", etag)]).status == 304
            part = c.get("/big.bin", extra=[("range", "bytes=10-19")])
            assert part.status == 206 and part.body == want[10:20]
            head = c.get("/big.bin", method="HEAD")
            assert head.status == 200 and head.body == b"" and head.ended
            assert head.headers["content-length"] == str(len(want))
            assert c.get("/missing").status == 404
            assert c.get("/.git/config").status == 404


def header_block_len(c, sid):
    return sum(len(f.data) for f in c.frames if isinstance(f, HeadersFrame) and f.stream_id == sid)


def test_response_fields_are_indexed_in_a_table_of_1k(saker_factory, tmp_path):
    """Responses still index their fields (HPACK), in a dynamic table of at
    most 1 KiB whatever the client allows: files of distinct ages, whose
    last-modified values would otherwise fill the client's 4 KiB."""
    root = tmp_path / "aged"
    root.mkdir()
    for i in range(48):
        f = root / ("f%d.txt" % i)
        f.write_text("%d\n" % i)
        os.utime(f, (1700000000 + i * 3600, 1700000000 + i * 3600))
    inst = saker_factory(config(root))
    with H2Client(inst.port) as c:
        first, again = c.get("/plaintext"), c.get("/plaintext")
        assert first.status == again.status == 200
        assert header_block_len(c, again.id) < header_block_len(c, first.id) / 2
        table = c.decoder.header_table
        for i in range(48):
            s = c.get("/f%d.txt" % i)
            assert s.status == 200 and s.body == b"%d\n" % i
            assert s.headers["last-modified"]
            used = sum(32 + len(n) + len(v) for n, v in table.dynamic_entries)
            assert 0 < used <= 1024, (i, used)
        assert table.maxsize == 1024


def open_descriptors(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_one_file_for_many_streams_at_once(saker_factory, docroot, certs):
    """Requests for one file read at once share its descriptor (opened once
    per loop turn): every stream still gets the whole file, the descriptor
    is closed after the last one, and a file replaced on disk is served
    new on the next request."""
    path = docroot / "shared.bin"
    for url in ("http://127.0.0.1:0", "https://127.0.0.1:0"):
        first = os.urandom(256 * 1024 + 5)
        path.write_bytes(first)
        inst = saker_factory(config(docroot, url=url, certs=certs))
        worker = inst.worker_pids()[0]
        tls = dict(tls_ca=certs / "ca.pem") if url.startswith("https") else {}
        with H2Client(inst.port, **tls) as c:
            assert c.get("/plaintext").status == 200
            baseline = open_descriptors(worker)
            ids = c.request_all(["/shared.bin"] * 24 + ["/index.html"] * 8)
            for sid in ids[:24]:
                s = c.response(sid, timeout=20)
                assert s.status == 200 and len(s.body) == len(first)
                assert s.body == first
            etag = c.response(ids[0]).headers["etag"]
            for sid in ids[24:]:
                assert c.response(sid).body == b"<h1>index</h1>\n"
            wait_for(lambda: open_descriptors(worker) <= baseline, 5,
                     message="the shared descriptor closed after the last stream")
            second = os.urandom(1000)
            replacement = docroot / "shared.bin.new"
            replacement.write_bytes(second)
            os.replace(replacement, path)
            again = c.get("/shared.bin")
            assert again.status == 200 and again.body == second
            assert again.headers["etag"] != etag
        path.unlink()


def test_many_streams_on_one_connection(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        ids = [c.request("/plaintext" if i % 2 else "/") for i in range(80)]
        for i, sid in enumerate(ids):
            s = c.response(sid)
            assert s.status == 200
            assert s.body == (b"Hello, World!" if i % 2 else b"<h1>index</h1>\n")
    assert counter(inst, "saker_http2_streams_total") == 80


def test_h2load_clear_text_and_tls(saker_factory, docroot, certs):
    for url in ("http://127.0.0.1:0", "https://127.0.0.1:0"):
        inst = saker_factory(config(docroot, url=url, certs=certs, workers=2))
        scheme = url.split(":")[0]
        r = subprocess.run(["h2load", "-n", "3000", "-c", "6", "-m", "16",
                            "%s://127.0.0.1:%d/plaintext" % (scheme, inst.port)],
                           capture_output=True, text=True, timeout=60)
        assert "3000 succeeded, 0 failed, 0 errored" in r.stdout, r.stdout + r.stderr
        assert "status codes: 3000 2xx" in r.stdout, r.stdout
        wait_for(lambda: counter(inst, "saker_http2_streams_total") >= 3000, 5,
                 message="streams counted")


def test_access_log_says_http2(saker_factory, docroot, tmp_path):
    log = tmp_path / "access.log"
    inst = saker_factory(config(docroot, top="access_log: %s\naccess_log_format: json\n" % log))
    with H2Client(inst.port) as c:
        assert c.get("/plaintext?x=1").status == 200
    inst.send(__import__("signal").SIGUSR1)  # flush through a reopen
    line = wait_for(lambda: log.exists() and log.read_text().strip(), 5, message="a log line")
    entry = json.loads(line.splitlines()[0])
    assert entry["protocol"] == "HTTP/2.0" and entry["target"] == "/plaintext?x=1", entry
    assert entry["status"] == 200 and entry["bytes_sent"] == 13, entry


# ---- limits -------------------------------------------------------------------

LIMITS = """limits:
  max_request_header_count: 5
  max_request_line_size: 100
  max_request_body_size: 1000
  http2: { max_request_header_field_size: 200, max_streams_per_connection: 8 }
allowed_hosts: [127.0.0.1, localhost]
"""


def test_request_limits(saker_factory, docroot):
    inst = saker_factory(config(docroot, top=LIMITS))
    with H2Client(inst.port) as c:
        assert c.get("/plaintext", extra=[("x-%d" % i, "v") for i in range(5)]).status == 200
        assert c.get("/plaintext", extra=[("x-%d" % i, "v") for i in range(6)]).status == 431
        assert c.get("/plaintext", extra=[("x-big", "v" * 300)]).status == 431
        assert c.get("/" + "a" * 120).status == 414
        assert c.get("/", authority="evil.example").status == 400
        assert c.get("/", authority="127.0.0.1", extra=[("host", "other")]).status == 400
        big = c.get("/", method="POST", extra=[("content-length", "5000")], end_stream=False)
        assert big.status == 413
        # No Content-Length: refused once the body passes the limit, and the
        # rest is cut off with RST_STREAM NO_ERROR.
        sid = c.request("/", method="POST", end_stream=False)
        c.data(sid, b"x" * 800)
        c.data(sid, b"x" * 800)
        s = c.response(sid)
        assert s.status == 413
        c.wait(lambda: s.reset is not None, 5, "reset after the 413")
        assert s.reset == NO_ERROR
        # A body within the limit is answered when complete.
        sid = c.request("/plaintext", method="POST", end_stream=False)
        c.data(sid, b"y" * 500)
        c.data(sid, b"y" * 500, end_stream=True)
        assert c.response(sid).status == 200
    assert counter(inst, "saker_rejections_total", {"reason": "too_many_headers"}) == 1
    assert counter(inst, "saker_rejections_total", {"reason": "headers_too_large"}) == 1
    assert counter(inst, "saker_rejections_total", {"reason": "request_line_too_long"}) == 1
    assert counter(inst, "saker_rejections_total", {"reason": "host_not_allowed"}) == 1
    assert counter(inst, "saker_rejections_total", {"reason": "body_too_large"}) == 2


def test_settings_follow_http2_limits_and_streams_are_refused_past_them(saker_factory,
                                                                       docroot):
    inst = saker_factory(config(docroot, top=LIMITS))
    with H2Client(inst.port) as c:
        c.wait(lambda: c.server_settings, 5, "server SETTINGS")
        s = c.server_settings
        assert s[SettingsFrame.MAX_CONCURRENT_STREAMS] == 8
        assert s[SettingsFrame.INITIAL_WINDOW_SIZE] == 768 * 1024
        assert s[SettingsFrame.MAX_FRAME_SIZE] == 16384
        # Eight streams held open (no END_STREAM) are served; a ninth breaks
        # the limit the client acknowledged: nghttp2 ends the connection
        # (RFC 9113 section 5.1.2), naming the last stream it processed.
        ids = [c.request("/plaintext", method="POST", end_stream=False) for _ in range(8)]
        for sid in ids:
            c.data(sid, b"", end_stream=True)
        assert all(c.response(sid).status == 200 for sid in ids)
        ids = [c.request("/plaintext", method="POST", end_stream=False) for _ in range(9)]
        assert c.wait_closed(5)
        assert c.goaway == (ids[7], PROTOCOL_ERROR), c.goaways


def test_invalid_http2_limits_are_config_errors(tmp_path, docroot):
    from saker_harness import saker_binary
    bad = tmp_path / "bad.yaml"
    bad.write_text(config(docroot, top="limits:\n  http2:\n    max_frame_size: 1000\n"))
    r = subprocess.run([saker_binary(), "-t", "-c", str(bad)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert "%s:4:21: max_frame_size: must be between 16384 and 16777215" % bad in r.stderr, \
        r.stderr
    bad.write_text(config(docroot, top="limits:\n  http2:\n    max_stream: 10\n"))
    r = subprocess.run([saker_binary(), "-t", "-c", str(bad)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1 and "%s:4:5: " % bad in r.stderr, r.stderr


# ---- bad peers ------------------------------------------------------------------

def test_garbage_after_the_preface_gets_goaway(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        c.send(b"\x00\x00\x04\xff" + b"\x00" * 20)  # a frame far beyond its stream rules
        c.send(HeadersFrame(2, data=b"\x82", flags=["END_HEADERS"]).serialize())  # even id
        assert c.wait_closed(5)
        assert c.goaway is not None and c.goaway[1] == PROTOCOL_ERROR, c.goaways
    wait_for(lambda: counter(inst, "saker_http2_connection_errors_total") == 1, 5,
             message="connection error counted")
    with H2Client(inst.port) as c:  # others are served
        assert c.get("/plaintext").status == 200


def assert_flood_calmed(c, burst, timeout=10):
    """Sends burst (the peer may close before it is all written) and
    expects the connection to end with GOAWAY ENHANCE_YOUR_CALM."""
    try:
        c.send(burst)
    except OSError:
        pass
    assert c.wait_closed(timeout)
    assert c.goaway is not None and c.goaway[1] == ENHANCE_YOUR_CALM, c.goaways


def test_empty_data_flood_is_cut_off(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        sid = c.request("/", method="POST", end_stream=False)
        assert_flood_calmed(c, DataFrame(sid, data=b"").serialize() * 1100, 5)
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200


def test_rapid_reset_is_cut_off(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        burst = b""
        for _ in range(1500):
            sid = c.new_stream_id()
            burst += HeadersFrame(sid, data=c.header_block("/plaintext"),
                                  flags=["END_HEADERS", "END_STREAM"]).serialize()
            from hyperframe.frame import RstStreamFrame
            burst += RstStreamFrame(sid, error_code=CANCEL).serialize()
        # a rate limit on RST_STREAM (1000 at once, then 33 a second): a flood
        assert_flood_calmed(c, burst)
    assert counter(inst, "saker_http2_resets_total", {"by": "client"}) >= 1000
    assert counter(inst, "saker_http2_connection_errors_total") == 1
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200


def test_resets_the_client_provokes_are_cut_off_as_a_flood(saker_factory, docroot):
    """MadeYouReset (CVE-2025-8671): a client that makes saker reset its
    streams (here a WINDOW_UPDATE that overflows each stream's window, a
    stream error FLOW_CONTROL_ERROR) closes them as surely as its own
    RST_STREAM would, and opens the next at once. Those resets draw on the rapid-reset budget: a flood of them
    ends the connection with ENHANCE_YOUR_CALM."""
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        burst = b""
        for _ in range(1500):
            sid = c.new_stream_id()
            burst += HeadersFrame(sid, data=c.header_block("/plaintext", method="POST"),
                                  flags=["END_HEADERS"]).serialize()
            burst += struct.pack(">I", 4)[1:] + bytes([8, 0]) + struct.pack(">II", sid, 0x7fffffff)
        assert_flood_calmed(c, burst)
    assert counter(inst, "saker_http2_resets_total", {"by": "server"}) >= 1000
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200


def test_continuation_flood_is_cut_off(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        sid = c.new_stream_id()
        c.send(HeadersFrame(sid, data=c.header_block("/"), flags=[]).serialize())
        try:
            for i in range(200):
                c.send(ContinuationFrame(sid, data=c.encoder.encode([("x-%d" % i, "v")]))
                       .serialize())
        except OSError:
            pass
        assert c.wait_closed(5)
        assert c.goaway is not None and c.goaway[1] == ENHANCE_YOUR_CALM, c.goaways
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200


def block_frames(sid, block, end_stream=True):
    """A header block as HEADERS and as many CONTINUATION frames as it takes."""
    pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)] or [b""]
    data = b""
    for i, piece in enumerate(pieces):
        last = ["END_HEADERS"] if i == len(pieces) - 1 else []
        if i == 0:
            data += HeadersFrame(sid, data=piece,
                                 flags=last + (["END_STREAM"] if end_stream else [])).serialize()
        else:
            data += ContinuationFrame(sid, data=piece, flags=last).serialize()
    return data


def send_block(c, sid, block, end_stream=True):
    c.send(block_frames(sid, block, end_stream))


def test_hpack_amplification_ends_the_connection_in_its_first_block(saker_factory, docroot):
    """A 3.9 KB field inserted once and referenced 16,000 times in one
    block (1 byte each, 60 MB of fields), a plain GET behind it in the
    same write: saker ends the connection with ENHANCE_YOUR_CALM inside
    that block, decoding neither the rest of it nor the GET (a block only
    over the limits gets a 431 and the GET its answer)."""
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        c.wait(lambda: c.server_settings, 5, "SETTINGS")
        sid = c.new_stream_id()
        data = block_frames(sid, c.header_block("/plaintext", extra=[("x-big", "b" * 3900)] * 16000))
        after = c.new_stream_id()
        data += block_frames(after, c.header_block("/plaintext"))
        try:
            c.send(data)
        except OSError:
            pass
        assert c.wait_closed(10), "the connection stayed open"
        assert c.goaway is not None and c.goaway[1] == ENHANCE_YOUR_CALM, c.goaways
        assert c.goaway[0] < after, c.goaways
        assert after not in c.streams or c.streams[after].status is None
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200


def test_one_oversize_header_block_is_431_and_the_connection_stays(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        fields = [("x-%d" % i, "v" * 400) for i in range(90)]  # 36 KB: over 32 KB
        sid = c.new_stream_id()
        send_block(c, sid, c.header_block("/plaintext", extra=fields))
        assert c.response(sid).status == 431
        assert c.get("/plaintext").status == 200


def test_the_fourth_oversize_header_block_ends_the_connection(saker_factory, docroot):
    """Blocks over the header limits but not twice over: 431 three times,
    then GOAWAY ENHANCE_YOUR_CALM."""
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        fields = [("x-%d" % i, "v" * 400) for i in range(90)]  # 36 KB: over 32 KB
        for _ in range(3):
            sid = c.new_stream_id()
            send_block(c, sid, c.header_block("/plaintext", extra=fields))
            assert c.response(sid).status == 431
        send_block(c, c.new_stream_id(), c.header_block("/plaintext", extra=fields))
        assert c.wait_closed(10), "the connection stayed open"
        assert c.goaway is not None and c.goaway[1] == ENHANCE_YOUR_CALM, c.goaways


# ---- flow-control stalls and pings -------------------------------------------------

def test_streams_held_by_a_zero_window_are_reset_and_pings_keep_nothing_alive(
        saker_factory, docroot):
    """A client that opens streams for a large file with a window of 0 and
    pings every half second: the stalled streams count against
    min_response_data_rate and are reset (their files given back), and the
    pings do not keep the connection past keep_alive_timeout."""
    inst = saker_factory(config(docroot, top="limits:\n  keep_alive_timeout: 3s\n"
                                "  min_response_data_rate: {bytes_per_second: 240, "
                                "grace_period: 1s}\n"))
    with H2Client(inst.port, window=0) as c:
        sids = [c.request("/big.bin") for _ in range(10)]
        t0 = time.monotonic()
        deadline = t0 + 15
        while not c.closed and time.monotonic() < deadline:
            c.send_frame(PingFrame(0, opaque_data=b"12345678"))
            c._read(0.5)
        assert all(c.streams[sid].reset == CANCEL for sid in sids), \
            [c.streams[sid].reset for sid in sids]
        assert c.closed, "the pinging connection was kept past keep_alive_timeout"
        assert time.monotonic() - t0 < 12
    assert counter(inst, 'saker_rejections_total', {"reason": "response_rate"}) >= 10


def worker_fds(inst):
    return len(os.listdir("/proc/%d/fd" % inst.worker_pids()[0]))


def test_descriptors_held_by_one_connection_are_bounded(saker_factory, docroot):
    """100 streams for 100 different files behind a shut window: the
    connection holds at most 32 files (H2_FILE_STREAMS_MAX); the other
    requests wait for their handler, and are answered once windows open."""
    inst = saker_factory(config(docroot))
    fds0 = worker_fds(inst)
    with H2Client(inst.port, window=0) as c:
        sids = [c.request("/many/f%d.bin" % i) for i in range(100)]
        c.wait(lambda: sum(1 for sid in sids if c.streams[sid].status == 200) >= 32, 5,
               "32 answers")
        c._read(0.5)
        held = worker_fds(inst) - fds0
        answered = sum(1 for sid in sids if c.streams[sid].status is not None)
        assert answered == 32, answered
        assert held <= 32 + 2, held  # the files, the connection, slack
        for sid in sids:
            c.send_frame(WindowUpdateFrame(sid, window_increment=1 << 20))
        c.send_frame(WindowUpdateFrame(0, window_increment=1 << 30))
        c.wait(lambda: all(c.streams[sid].ended for sid in sids), 10, "every answer")
        assert all(len(c.streams[sid].body) == 50000 * len(b"%d" % i)
                   for i, sid in enumerate(sids))


def test_pings_do_not_keep_an_idle_connection(saker_factory, docroot):
    inst = saker_factory(config(docroot, top="limits: { keep_alive_timeout: 2s }\n"))
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200
        t0 = time.monotonic()
        while c.goaway is None and time.monotonic() - t0 < 10:
            c.send_frame(PingFrame(0, opaque_data=b"12345678"))
            c._read(0.5)
        assert c.goaway is not None and c.goaway[1] == NO_ERROR, c.goaways
        assert time.monotonic() - t0 < 6


# ---- closed streams (RFC 9113 sections 5.1, 5.1.1) ---------------------------------

def wait_reset(c, sid, code):
    c.wait(lambda: c.streams.get(sid) is not None and c.streams[sid].reset == code, 5,
           "RST_STREAM %d on stream %d" % (code, sid))


def test_frames_after_end_stream_are_a_connection_error(saker_factory, docroot):
    """RFC 9113 section 5.1 "closed": a connection error STREAM_CLOSED
    (h2spec checks it); counted once."""
    inst = saker_factory(config(docroot))
    for count, late in enumerate(("data", "headers"), 1):
        with H2Client(inst.port) as c:
            sid = c.request("/plaintext")
            assert c.response(sid).status == 200
            if late == "data":
                c.data(sid, b"late")
            else:
                c.send_frame(HeadersFrame(sid, data=c.encoder.encode([("x-trailer", "1")]),
                                          flags=["END_HEADERS", "END_STREAM"]))
            assert c.wait_closed(5)
            assert c.goaways == [(sid, STREAM_CLOSED)], c.goaways
            assert c.streams[sid].reset is None
        # After each connection: a second count of the first could not
        # pass for the second's.
        wait_for(lambda: counter(inst, "saker_http2_connection_errors_total") == count, 5,
                 message="%d connection errors counted" % count)


def test_data_after_the_clients_reset_gets_stream_closed(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        sid = c.request("/plaintext", method="POST", end_stream=False)
        c.rst(sid)
        c.data(sid, b"late", end_stream=True)
        wait_reset(c, sid, STREAM_CLOSED)
        assert c.get("/plaintext").status == 200


def test_frames_after_sakers_reset_are_ignored(saker_factory, docroot):
    """An answer that ends before the request is followed by RST_STREAM
    NO_ERROR; what the client sent before it saw that is ignored."""
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        sid = c.request("/plaintext", method="POST", end_stream=False,
                        extra=[("expect", "100-continue")])
        wait_reset(c, sid, NO_ERROR)
        c.data(sid, b"more")
        c.data(sid, b"end", end_stream=True)
        assert c.get("/plaintext").status == 200
        assert c.streams[sid].reset == NO_ERROR
        assert c.goaway is None


def test_a_reset_stream_is_remembered_past_the_first_eight(saker_factory, docroot):
    """A connection remembers its first 8 streams in its own state, then
    the last 64 in a block it makes then: the stream saker reset, 40
    streams ago, is still known as reset, and what the client sent on it
    is ignored (forgotten, it would be a stream that is not open: an
    error)."""
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        sid = c.request("/plaintext", method="POST", end_stream=False,
                        extra=[("expect", "100-continue")])
        wait_reset(c, sid, NO_ERROR)
        for _ in range(40):
            assert c.get("/plaintext").status == 200
        c.data(sid, b"late", end_stream=True)
        assert c.get("/plaintext").status == 200
        assert c.streams[sid].reset == NO_ERROR
        assert c.goaway is None


def test_headers_on_a_lower_stream_id_is_a_protocol_error(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        assert c.get("/plaintext", stream_id=5).status == 200
        c.request("/plaintext", stream_id=3)
        assert c.wait_closed(5)
        assert c.goaway is not None and c.goaway[1] == PROTOCOL_ERROR, c.goaways
    wait_for(lambda: counter(inst, "saker_http2_connection_errors_total") == 1, 5,
             message="one connection error counted")


# ---- time -------------------------------------------------------------------------

def test_preface_and_header_block_are_bounded_by_request_headers_timeout(saker_factory,
                                                                        docroot):
    inst = saker_factory(config(docroot, top="limits: { request_headers_timeout: 1s }\n"))
    s = connect(inst.port)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # and never the SETTINGS
    s.settimeout(5)
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    assert got, "the server's SETTINGS and GOAWAY before the close"
    with H2Client(inst.port, timeout=5) as c:
        # SETTINGS exchanged first: once the header block is open, only
        # CONTINUATION may follow it, not even our SETTINGS ACK.
        c.wait(lambda: c.server_settings, 5, "server SETTINGS")
        sid = c.new_stream_id()
        c.send(HeadersFrame(sid, data=c.header_block("/"), flags=[]).serialize())  # no END_HEADERS
        assert c.wait_closed(5)
        assert c.goaway is not None and c.goaway[1] == NO_ERROR
    wait_for(lambda: counter(inst, "saker_rejections_total", {"reason": "headers_timeout"}) == 2,
             5, message="both timeouts counted")


def test_idle_connection_gets_goaway_at_keep_alive_timeout(saker_factory, docroot):
    inst = saker_factory(config(docroot, top="limits: { keep_alive_timeout: 1s }\n"))
    with H2Client(inst.port) as c:
        s = c.get("/plaintext")
        assert s.status == 200
        assert c.wait_closed(5)
        assert c.goaway == (s.id, NO_ERROR), c.goaways


@pytest.mark.timing
def test_keep_alive_ping(saker_factory, docroot):
    top = ("limits:\n  keep_alive_timeout: 30s\n"
           "  http2: { keep_alive_ping_delay: 1s, keep_alive_ping_timeout: 1s }\n")
    inst = saker_factory(config(docroot, top=top))
    with H2Client(inst.port) as c:  # answers pings: stays open
        c.wait(lambda: c.pings >= 2, 8, "two pings")
        assert not c.closed
    with H2Client(inst.port, answer_pings=False) as c:  # silent: closed
        c.wait(lambda: c.pings >= 1, 5, "a ping")
        assert c.wait_closed(5)


def test_slow_request_body_gets_408(saker_factory, docroot):
    top = "limits:\n  min_request_body_data_rate: { bytes_per_second: 1000, grace_period: 1s }\n"
    inst = saker_factory(config(docroot, top=top))
    with H2Client(inst.port) as c:
        sid = c.request("/", method="POST", end_stream=False)
        c.data(sid, b"x")
        s = c.response(sid, timeout=6)
        assert s.status == 408
        fast = c.get("/plaintext")  # the connection still serves other streams
        assert fast.status == 200
    assert counter(inst, "saker_rejections_total", {"reason": "body_rate"}) == 1


# ---- drain and reload ---------------------------------------------------------------

def test_reload_sends_goaway_and_finishes_streams(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    with H2Client(inst.port) as c:
        assert c.get("/plaintext").status == 200
        sid = c.request("/plaintext", method="POST", end_stream=False)  # in flight
        inst.reload()  # the old generation drains
        c.wait(lambda: c.goaways, 5, "GOAWAY")
        assert c.goaways[0] == (2 ** 31 - 1, NO_ERROR), c.goaways  # the notice first
        c.data(sid, b"late body", end_stream=True)
        assert c.response(sid).status == 200  # the stream on its way is still served
        assert c.wait_closed(5)
        assert c.goaway[0] == sid and c.goaway[1] == NO_ERROR, c.goaways


def test_reload_under_h2_load_fails_no_request(saker_factory, docroot):
    inst = saker_factory(config(docroot, workers=2))
    failures, served = [], [0]
    stop = threading.Event()

    def client():
        # What browsers do: a GOAWAY ends the connection, the next request
        # goes on a new one; a stream refused by GOAWAY is retried.
        while not stop.is_set():
            with H2Client(inst.port) as c:
                while not stop.is_set():
                    if c.goaway is not None or c.closed:
                        break
                    sid = c.request("/plaintext")
                    try:
                        s = c.response(sid, timeout=5)
                    except AssertionError as e:
                        if c.goaway is not None and sid > c.goaway[0]:
                            continue  # refused by the GOAWAY: safe to retry
                        failures.append(repr(e))
                        return
                    if s.reset is not None:
                        if s.reset == REFUSED_STREAM or (c.goaway and sid > c.goaway[0]):
                            continue
                        failures.append("reset %d" % s.reset)
                        return
                    if s.status != 200 or s.body != b"Hello, World!":
                        failures.append(repr(s))
                        return
                    served[0] += 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            before = served[0]
            wait_for(lambda: served[0] >= before + 20 or failures, 10, message="load served")
            inst.reload()
            wait_for(lambda: inst.status()["instance"]["generation"] == i + 2, 10, message="reloaded")
        before = served[0]
        wait_for(lambda: served[0] >= before + 20 or failures, 10, message="served after")
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not failures, failures
    assert served[0] > 100


def test_requests_before_a_half_close_are_answered(saker_factory, docroot):
    inst = saker_factory(config(docroot))
    want = (docroot / "big.bin").read_bytes()
    with H2Client(inst.port) as c:
        c.wait(lambda: c.server_settings, 5, "server SETTINGS")
        small = c.request("/plaintext")
        big = c.request("/big.bin")  # far more than one flush's worth
        c.half_close()  # the client is done sending
        assert c.response(small).body == b"Hello, World!"
        s = c.response(big, timeout=20)
        assert s.status == 200 and len(s.body) == len(want) and s.body == want
        assert c.wait_closed(5)
