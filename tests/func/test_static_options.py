"""The static handler's options: precompressed sidecars (chosen by
Accept-Encoding, never older than the original, with the original's type
and their own length and ETag), a list of index files, dotfiles on request,
Cache-Control, per-route MIME types and the default type; directory
listings (`browse: true`); conditional
requests against a sidecar as RFC 9110 prescribes."""

import gzip
import os
import subprocess
import urllib.parse

import brotli
import pytest

from rawhttp import connect, read_response, wait_for
from saker_harness import saker_binary

APP = b"function app() { return 'saker'; }\n" * 200


@pytest.fixture
def www(tmp_path):
    d = tmp_path / "www"
    (d / "docs").mkdir(parents=True)
    (d / "plain").mkdir()
    (d / "app.js").write_bytes(APP)
    (d / "app.js.br").write_bytes(brotli.compress(APP))
    (d / "app.js.gz").write_bytes(gzip.compress(APP))
    (d / "only-gz.css").write_bytes(b"body{}" * 100)
    (d / "only-gz.css.gz").write_bytes(gzip.compress(b"body{}" * 100))
    (d / "stale.txt").write_bytes(b"new text\n")
    (d / "stale.txt.gz").write_bytes(gzip.compress(b"old text\n"))
    os.utime(d / "stale.txt.gz", (1_000_000_000, 1_000_000_000))  # older than stale.txt
    (d / "docs" / "index.htm").write_bytes(b"<p>htm index</p>\n")
    (d / "plain" / "default.txt").write_bytes(b"second index\n")
    (d / ".hidden").write_bytes(b"dotfile\n")
    (d / "mod.wasm2").write_bytes(b"\0asm")
    (d / "notes.log").write_bytes(b"log line\n")
    (d / "blob.unknownext").write_bytes(b"?")
    (d / "letter.odt").write_bytes(b"PK")
    return d


def start(saker_factory, www, options):
    return saker_factory("workers: 1\nendpoints:\n  main: {url: \"http://127.0.0.1:0\"}\n"
                         "routes:\n  - path: /\n    static: {root: %s, %s}\n" % (www, options))


def get(inst, path, *headers, method="GET"):
    s = connect(inst.port)
    extra = "".join("%s\r\n" % h for h in headers)
    s.sendall(("%s %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (method, path, extra)).encode())
    r = read_response(s, timeout=10, head_only=method == "HEAD")
    s.close()
    return r


def test_precompressed_sidecars_by_accept_encoding(saker_factory, www):
    inst = start(saker_factory, www, "precompressed: [br, gzip]")
    r = get(inst, "/app.js", "Accept-Encoding: gzip, br")
    assert r.status == 200 and r.header("Content-Encoding") == "br"
    assert r.header("Content-Type") == "text/javascript; charset=utf-8"  # the original's
    assert r.header("Content-Length") == str(os.path.getsize(www / "app.js.br"))
    assert r.header("Vary") == "Accept-Encoding"
    assert brotli.decompress(r.body) == APP
    br_etag = r.header("ETag")
    r = get(inst, "/app.js", "Accept-Encoding: gzip;q=1, br;q=0.5")
    assert r.header("Content-Encoding") == "gzip" and gzip.decompress(r.body) == APP
    gz_etag = r.header("ETag")
    r = get(inst, "/app.js")
    assert r.header("Content-Encoding") is None and r.body == APP
    assert r.header("Vary") == "Accept-Encoding"
    assert len({br_etag, gz_etag, r.header("ETag")}) == 3  # each representation its own
    r = get(inst, "/only-gz.css", "Accept-Encoding: br")  # no .br sidecar: the file
    assert r.header("Content-Encoding") is None and r.body == b"body{}" * 100
    r = get(inst, "/only-gz.css", "Accept-Encoding: gzip")
    assert r.header("Content-Encoding") == "gzip"
    r = get(inst, "/stale.txt", "Accept-Encoding: gzip")  # older sidecar: never
    assert r.header("Content-Encoding") is None and r.body == b"new text\n"
    r = get(inst, "/app.js.gz")  # a sidecar is also a file of its own
    assert r.status == 200 and gzip.decompress(r.body) == APP


def test_sidecar_validators_and_ranges(saker_factory, www):
    inst = start(saker_factory, www, "precompressed: [br]")
    r = get(inst, "/app.js", "Accept-Encoding: br")
    etag, size = r.header("ETag"), len(r.body)
    r = get(inst, "/app.js", "Accept-Encoding: br", "If-None-Match: %s" % etag)
    assert r.status == 304 and r.header("Content-Encoding") == "br"
    assert r.header("Vary") == "Accept-Encoding"
    r = get(inst, "/app.js", "If-None-Match: %s" % etag)  # the identity is another tag
    assert r.status == 200 and r.body == APP
    r = get(inst, "/app.js", "Accept-Encoding: br", "Range: bytes=0-9")
    assert r.status == 206 and r.header("Content-Range") == "bytes 0-9/%d" % size
    assert r.body == (www / "app.js.br").read_bytes()[:10]
    r = get(inst, "/app.js", "Accept-Encoding: br", "If-Match: \"nope\"")
    assert r.status == 412


def test_index_list_dotfiles_cache_control_and_types(saker_factory, www):
    opts = ("index: [index.html, index.htm, default.txt], serve_dotfiles: true, "
            "cache_control: \"public, max-age=60\", default_type: text/plain, "
            "mime_types: {\".wasm2\": application/wasm, \".LOG\": text/x-log}")
    inst = start(saker_factory, www, opts)
    r = get(inst, "/docs/")
    assert r.status == 200 and r.body == b"<p>htm index</p>\n"
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    r = get(inst, "/plain/")
    assert r.status == 200 and r.body == b"second index\n"
    r = get(inst, "/.hidden")
    assert r.status == 200 and r.body == b"dotfile\n"
    assert r.header("Cache-Control") == "public, max-age=60"
    r = get(inst, "/.hidden", "If-None-Match: %s" % r.header("ETag"))
    assert r.status == 304 and r.header("Cache-Control") == "public, max-age=60"
    assert get(inst, "/mod.wasm2").header("Content-Type") == "application/wasm"
    assert get(inst, "/notes.log").header("Content-Type") == "text/x-log"
    assert get(inst, "/blob.unknownext").header("Content-Type") == "text/plain"
    assert get(inst, "/app.js").header("Content-Type") == "text/javascript; charset=utf-8"


def test_defaults_hide_dotfiles_and_know_one_index(saker_factory, www):
    inst = start(saker_factory, www, "index: index.html")
    assert get(inst, "/.hidden").status == 404
    assert get(inst, "/docs/").status == 404
    r = get(inst, "/blob.unknownext")
    assert r.header("Content-Type") == "application/octet-stream"
    assert r.header("Cache-Control") is None and r.header("Vary") is None
    if os.path.exists("/etc/mime.types"):  # the system's table behind the built-in one
        assert get(inst, "/letter.odt").header("Content-Type") == \
            "application/vnd.oasis.opendocument.text"


def listing(r):
    """[(href, text)] of a listing page's links, parsed as HTML."""
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.links, self.href = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "a":
                self.href = dict(attrs)["href"]

        def handle_data(self, data):
            if self.href is not None:
                self.links.append((self.href, data))
                self.href = None

    p = Links()
    p.feed(r.body.decode())
    return p.links


def test_browse_lists_directories_escaped_and_sorted(saker_factory, www):
    """browse: true lists a directory that has no index, sorted, names
    escaped in the text and encoded in the links so each one leads back to
    its file; dotfiles stay hidden; a directory with an index is served
    the index; without browse such a directory is a 404."""
    odd = ['<script>alert(1)<x>', 'a "quoted" & \'single\'', "sp ace?#.txt", "z:colon"]
    for name in odd:
        (www / "plain" / name).write_bytes(name.encode())
    (www / "plain" / "sub").mkdir()
    (www / "plain" / "sub" / "index.html").write_bytes(b"<p>sub index</p>")
    (www / "plain" / ".secret").write_bytes(b"x")
    inst = start(saker_factory, www, "index: index.html, browse: true")
    r = get(inst, "/plain/")
    assert r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8"
    assert b"<script>" not in r.body and b".secret" not in r.body
    links = listing(r)
    names = sorted(odd + ["default.txt", "sub"])
    assert links == [("../", "../")] + [
        (urllib.parse.quote(n, safe="") + ("/" if n == "sub" else ""),
         n + ("/" if n == "sub" else "")) for n in names]
    for href, text in links[1:]:
        if text in odd:  # each written with its own name as its contents
            got = get(inst, "/plain/" + href)
            assert got.status == 200 and got.body == text.encode(), href
    assert get(inst, "/plain/sub/").body == b"<p>sub index</p>"  # an index wins
    root = listing(get(inst, "/"))
    assert ("../", "../") not in root and ("plain/", "plain/") in root
    assert listing(get(inst, "/docs/")) == [("../", "../"), ("index.htm", "index.htm")]
    assert get(inst, "/plain/", method="HEAD").status == 200
    inst2 = start(saker_factory, www, "index: index.html")
    assert get(inst2, "/plain/").status == 404


@pytest.mark.parametrize("text,message", [
    ("precompressed: [zstd]", "expected br or gzip, got 'zstd'"),
    ("precompressed: [br, br]", "'br' is listed twice"),
    ("index: [a/b.html]", "index: expected a file name without '/', got 'a/b.html'"),
    ("index: []", "expected at least one name"),
    ("mime_types: {wasm: application/wasm}", "expected an extension such as"),
    ("serve_dotfiles: maybe", "expected true or false"),
    ("browse: sometimes", "expected true or false"),
])
def test_static_option_errors_name_the_place(tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\nroutes:\n  - path: /\n"
                   "    static: {root: %s, %s}\n" % (tmp_path, text))
    r = subprocess.run([saker_binary(), "-t", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert "%s:5:" % cfg in r.stderr and message in r.stderr, r.stderr


def test_file_cache_hits_and_misses_in_metrics(saker_factory, www):
    """Three pipelined requests for one file in one read: one open, two
    answered by the descriptor the loop turn keeps."""
    inst = start(saker_factory, www, "index: index.html")
    s = connect(inst.port)
    s.sendall(b"GET /notes.log HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
    for _ in range(3):
        assert read_response(s, timeout=10).body == b"log line\n"
    s.close()
    m = wait_for(lambda: (lambda m: m if m.get("saker_file_cache_hits_total", 0) >= 2 else None)(
        inst.metrics()), 5, message="file cache counters")
    assert m["saker_file_cache_misses_total"] >= 1
