"""Several byte ranges of a static file: a 206 of multipart/byteranges (RFC
9110 section 14.6) that Python's email parser and a strict parser of our
own both read back byte for byte, over HTTP/1.1 and HTTP/2 (curl), for
small files (bytes in memory) and large ones (read in pieces), with parts
across every piece boundary; and the caps against range abuse: more than
16 ranges, or ranges asking for more bytes than the file has
(overlaps), are answered with the whole file (200), as nginx does.
"""

import email
import email.policy
import os
import random
import re
import subprocess

import pytest

from rawhttp import connect, read_response

MB = 1024 * 1024
SMALL = bytes(random.Random(3).randrange(256) for _ in range(10000))
LARGE = os.urandom(3 * MB + 5)


@pytest.fixture
def inst(saker_factory, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "small.bin").write_bytes(SMALL)
    (www / "large.bin").write_bytes(LARGE)
    (www / "page.txt").write_bytes(b"hello saker, " * 1000)
    return saker_factory("workers: 1\ncompression: {providers: [gzip]}\n"
                         "endpoints:\n  main: {url: \"http://127.0.0.1:0\"}\n"
                         "routes:\n  - path: /\n    static: {root: %s}\n" % www)


def get(inst, path, *headers):
    s = connect(inst.port)
    extra = "".join("%s\r\n" % h for h in headers)
    s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (path, extra)).encode())
    r = read_response(s, timeout=30)
    s.close()
    return r


def strict_parts(content_type, body):
    """[(fields, bytes)] of a multipart/byteranges body, delimiters exactly
    as RFC 2046 has them, nothing before the first but a CRLF and nothing
    after the last."""
    m = re.fullmatch(r"multipart/byteranges; boundary=(saker-[0-9a-f]{16})", content_type)
    assert m, content_type
    delim = b"\r\n--" + m.group(1).encode()
    assert body.startswith(delim + b"\r\n") and body.endswith(delim + b"--\r\n")
    parts = []
    for chunk in body[:-len(delim) - 4].split(delim)[1:]:
        head, data = chunk[2:].split(b"\r\n\r\n", 1)
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append((fields, data))
    return parts


def check_parts(content_type, body, data, ranges, part_type="application/octet-stream"):
    parts = strict_parts(content_type, body)
    assert len(parts) == len(ranges)
    for (fields, got), (first, last) in zip(parts, ranges):
        assert fields == {"Content-Type": part_type,
                          "Content-Range": "bytes %d-%d/%d" % (first, last, len(data))}
        assert got == data[first:last + 1], (first, last)
    msg = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body,
                                   policy=email.policy.HTTP)
    assert msg.is_multipart()
    assert [p["Content-Range"] for p in msg.iter_parts()] == [f["Content-Range"]
                                                              for f, _ in parts]


def spec(ranges, size):
    """A Range value; (first, last) with first < 0 is a suffix of -first."""
    out = []
    for first, last in ranges:
        out.append("-%d" % -first if first < 0 else "%d-%s" % (first, "" if last is None else last))
    return "bytes=" + ",".join(out)


def resolved(ranges, size):
    return [(size + f, size - 1) if f < 0 else (f, size - 1 if l is None or l >= size else l)
            for f, l in ranges]


CASES = {
    "small": ("small.bin", SMALL, [(0, 0), (100, 199), (-10, None)]),
    "small_unordered": ("small.bin", SMALL, [(9000, None), (0, 99), (5000, 5000)]),
    "large_across_pieces": ("large.bin", LARGE, [(0, 32766), (40000, 40000 + 32767),
                                                  (100000, 100000 + 32768), (MB, 2 * MB),
                                                  (-7, None)]),
    "large_past_the_end": ("large.bin", LARGE, [(10, 20), (3 * MB, 4 * MB)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_multipart_byteranges_http1(inst, case):
    name, data, ranges = CASES[case]
    r = get(inst, "/" + name, "Range: " + spec(ranges, len(data)))
    assert r.status == 206
    assert r.header("Content-Length") == str(len(r.body))
    assert r.header("Content-Range") is None and r.header("ETag") is not None
    check_parts(r.header("Content-Type"), r.body, data, resolved(ranges, len(data)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_multipart_byteranges_http2(inst, case):
    name, data, ranges = CASES[case]
    out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-D", "/dev/stderr",
                          "-H", "Range: " + spec(ranges, len(data)),
                          "http://127.0.0.1:%d/%s" % (inst.port, name)],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    head = out.stderr.decode()
    assert head.startswith("HTTP/2 206")
    ctype = re.search(r"(?im)^content-type: (.*?)\r?$", head).group(1)
    assert re.search(r"(?im)^content-length: %d\r?$" % len(out.stdout), head)
    check_parts(ctype, out.stdout, data, resolved(ranges, len(data)))


def test_sixteen_ranges_are_served_seventeen_are_not(inst):
    sixteen = [(i * 1000, i * 1000 + 9) for i in range(16)]
    r = get(inst, "/large.bin", "Range: " + spec(sixteen, len(LARGE)))
    assert r.status == 206
    check_parts(r.header("Content-Type"), r.body, LARGE, sixteen)
    seventeen = sixteen + [(20000, 20009)]
    r = get(inst, "/large.bin", "Range: " + spec(seventeen, len(LARGE)))
    assert r.status == 200 and r.body == LARGE


@pytest.mark.parametrize("value", [
    "bytes=0-,0-",                       # the whole file twice
    "bytes=0-9999," + ",".join(["0-9"] * 2),  # repeats beyond the length
    "bytes=-6000,0-5000",                # overlapping halves
])
def test_ranges_asking_more_than_the_file_are_served_whole(inst, value):
    r = get(inst, "/small.bin", "Range: " + value)
    assert r.status == 200 and r.body == SMALL


def test_if_range_and_unsatisfiable_with_several_ranges(inst):
    r = get(inst, "/small.bin", "Range: bytes=0-1,5-6", 'If-Range: "stale"')
    assert r.status == 200 and r.body == SMALL
    etag = get(inst, "/small.bin").header("ETag")
    r = get(inst, "/small.bin", "Range: bytes=0-1,5-6", "If-Range: " + etag)
    assert r.status == 206
    check_parts(r.header("Content-Type"), r.body, SMALL, [(0, 1), (5, 6)])
    r = get(inst, "/small.bin", "Range: bytes=20000-,30000-40000")
    assert r.status == 416 and r.header("Content-Range") == "bytes */%d" % len(SMALL)


def test_multipart_is_not_compressed_and_keeps_the_part_type(inst):
    data = b"hello saker, " * 1000
    r = get(inst, "/page.txt", "Range: bytes=0-99,500-599", "Accept-Encoding: gzip")
    assert r.status == 206 and r.header("Content-Encoding") is None
    check_parts(r.header("Content-Type"), r.body, data, [(0, 99), (500, 599)],
                part_type="text/plain; charset=utf-8")
