"""The static handler: index files, redirects, MIME types, validators,
ranges, traversal and symlink safety, route prefixes and host routes."""

import email.utils
import os
import subprocess
import time

import pytest

from rawhttp import parse_responses, send_raw

FILES = {
    "index.html": b"<h1>root index</h1>\n",
    "a.css": b"body { color: red }\n",
    "b.js": b"console.log('b');\n",
    "c.json": b'{"c": 1}\n',
    "d.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "e.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>\n',
    "noext": b"no extension here\n",
    "assetsx": b"served by the catch-all route\n",
    "sub/index.html": b"<h1>sub index</h1>\n",
    "sub2/file.txt": b"sub2 has no index\n",
    "range.txt": b"0123456789abcdefghijklmnopqrstuvwxyz",
    ".env": b"SECRET=1\n",
    ".git/config": b"[core]\n",
    "sub2/.htpasswd": b"admin:x\n",
    ".well-known/acme-challenge/t0k": b"t0k.thumbprint\n",
}
ASSET_CSS = b"/* the assets root's a.css */\n"


@pytest.fixture
def site(saker_factory, tmp_path):
    www = tmp_path / "www"
    for name, data in FILES.items():
        p = www / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    os.symlink("/etc/passwd", www / "passwd-link")
    os.symlink("/etc", www / "etc-link")
    os.symlink("a.css", www / "inside-link.css")
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "a.css").write_bytes(ASSET_CSS)
    (assets / "dir").mkdir()
    (assets / "dir" / "index.html").write_bytes(b"assets dir index\n")
    os.mkfifo(www / "fifo")
    os.symlink("loop", www / "loop")
    inst = saker_factory("""
workers: 1
endpoints:
  main: {url: "http://127.0.0.1:0"}
routes:
  - host: static.example.com
    path: /
    return: {status: 200, body: "host route"}
  - path: /assets
    static: {root: %s}
  - path: /
    static: {root: %s}
""" % (assets, www))
    inst.www = www
    return inst


def fetch(inst, target, headers=b"", method=b"GET", host=b"localhost"):
    """One request with a raw target over a fresh connection."""
    raw = send_raw(inst.port, method + b" " + (target if isinstance(target, bytes)
                                               else target.encode())
                   + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + headers
                   + b"Connection: close\r\n\r\n")
    rs = parse_responses(raw, head_methods=(method.decode(),))
    assert len(rs) == 1, raw[:300]
    return rs[0]


def test_index_served_at_root_and_subdir(site):
    r = fetch(site, "/")
    assert (r.status, r.body) == (200, FILES["index.html"])
    assert r.header("content-type").startswith("text/html")
    r = fetch(site, "/sub/")
    assert (r.status, r.body) == (200, FILES["sub/index.html"])
    r = fetch(site, "/index.html")
    assert (r.status, r.body) == (200, FILES["index.html"])


def test_directory_without_slash_redirects(site):
    r = fetch(site, "/sub")
    assert r.status == 301
    assert r.header("location") == "/sub/"


def test_directory_without_index_is_404_not_a_listing(site):
    r = fetch(site, "/sub2/")
    assert r.status == 404
    assert b"file.txt" not in r.body
    assert fetch(site, "/sub2/file.txt").body == FILES["sub2/file.txt"]


@pytest.mark.parametrize("name,mime", [
    ("index.html", "text/html"),
    ("a.css", "text/css"),
    ("b.js", "text/javascript"),
    ("c.json", "application/json"),
    ("d.png", "image/png"),
    ("e.svg", "image/svg+xml"),
    ("noext", "application/octet-stream"),
])
def test_mime_types(site, name, mime):
    r = fetch(site, "/" + name)
    assert r.status == 200
    assert r.body == FILES[name]
    assert r.header("content-type").split(";")[0].strip() == mime


def test_content_length_and_last_modified(site):
    mtime = time.time() - 3600
    os.utime(site.www / "c.json", (mtime, mtime))
    r = fetch(site, "/c.json")
    assert r.status == 200
    assert int(r.header("content-length")) == len(FILES["c.json"])
    lm = email.utils.parsedate_to_datetime(r.header("last-modified"))
    assert abs(lm.timestamp() - int(mtime)) <= 1
    assert r.header("last-modified").endswith(" GMT")


def test_head_on_static_file(site):
    r = fetch(site, "/a.css", method=b"HEAD")
    assert r.status == 200
    assert int(r.header("content-length")) == len(FILES["a.css"])
    assert r.body == b""


def test_if_modified_since_304(site):
    lm = fetch(site, "/a.css").header("last-modified")
    r = fetch(site, "/a.css", b"If-Modified-Since: " + lm.encode() + b"\r\n")
    assert r.status == 304
    assert r.body == b""
    old = email.utils.formatdate(time.time() - 10 * 86400, usegmt=True)
    r = fetch(site, "/a.css", b"If-Modified-Since: " + old.encode() + b"\r\n")
    assert (r.status, r.body) == (200, FILES["a.css"])


def test_range_206(site):
    data = FILES["range.txt"]
    r = fetch(site, "/range.txt", b"Range: bytes=2-5\r\n")
    assert r.status == 206
    assert r.body == data[2:6]
    assert r.header("content-range") == "bytes 2-5/%d" % len(data)
    assert int(r.header("content-length")) == 4
    r = fetch(site, "/range.txt", b"Range: bytes=-3\r\n")
    assert (r.status, r.body) == (206, data[-3:])
    r = fetch(site, "/range.txt", b"Range: bytes=1000-\r\n")
    assert r.status == 416


TRAVERSALS = [
    b"/../etc/passwd",
    b"/%2e%2e/etc/passwd",
    b"/%2E%2E%2Fetc%2Fpasswd",
    b"/sub/../../etc/passwd",
    b"/..%2f..%2fetc/passwd",
    b"/%252e%252e/etc/passwd",
    b"/a%00.html",
    b"/sub/%2e%2e/%2e%2e/etc/passwd",
    b"//etc/passwd",
    b"/\\..\\etc\\passwd",
    b"/../../../../../../../../etc/passwd",
    b"/passwd-link",
    b"/etc-link/passwd",
    b"/etc-link/",
    b"/assets/../../etc/passwd",
    b"/assets/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=[t.decode() for t in TRAVERSALS])
def test_traversal_refused(site, target):
    raw = send_raw(site.port, b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n"
                   b"Connection: close\r\n\r\n")
    assert b"root:" not in raw
    rs = parse_responses(raw)
    assert rs, "no response to %r" % target
    assert rs[0].status in (400, 403, 404), rs[0]


@pytest.mark.parametrize("target", ["/.env", "/.git/config", "/.git/", "/%2egit/config",
                                    "/sub2/.htpasswd", "/sub/../.env"])
def test_dotfiles_are_not_served(site, target):
    r = fetch(site, target)
    assert r.status == 404, r
    assert b"SECRET" not in r.body and b"[core]" not in r.body and b"admin" not in r.body


def test_well_known_is_served(site):
    r = fetch(site, "/.well-known/acme-challenge/t0k")
    assert (r.status, r.body) == (200, FILES[".well-known/acme-challenge/t0k"])


def test_symlink_inside_root_is_served(site):
    r = fetch(site, "/inside-link.css")
    assert (r.status, r.body) == (200, FILES["a.css"])


def test_route_prefix_maps_into_its_root(site):
    r = fetch(site, "/assets/a.css")
    assert (r.status, r.body) == (200, ASSET_CSS)
    # /assetsx is not under /assets: the catch-all route serves www/assetsx
    r = fetch(site, "/assetsx")
    assert (r.status, r.body) == (200, FILES["assetsx"])
    # and /a.css of the catch-all is the other file
    assert fetch(site, "/a.css").body == FILES["a.css"]


def test_redirect_under_a_route_prefix_keeps_the_prefix(site):
    r = fetch(site, "/assets/dir")
    assert r.status == 301
    assert r.header("location") == "/assets/dir/"
    r = fetch(site, "/assets/dir/")
    assert (r.status, r.body) == (200, b"assets dir index\n")


@pytest.mark.parametrize("target", ["/fifo", "/loop", "/a.css/", "/index.html/x"])
def test_special_files_refused_without_hanging(site, target):
    r = fetch(site, target)
    assert r.status in (403, 404), r
    # the worker is not stuck on the FIFO: it still answers
    assert fetch(site, "/a.css").body == FILES["a.css"]


def test_host_route_decides_by_host_header(site):
    r = fetch(site, "/a.css", host=b"static.example.com")
    assert (r.status, r.body) == (200, b"host route")
    r = fetch(site, "/a.css", host=b"Static.Example.COM:80")
    assert (r.status, r.body) == (200, b"host route")
    r = fetch(site, "/a.css", host=b"other.example.com")
    assert (r.status, r.body) == (200, FILES["a.css"])


def test_pipelined_requests_for_small_files_all_arrive_in_order(site):
    """Hundreds of pipelined requests in one write: the first answers carry
    the files' bytes copied from one read per loop turn, the rest (once the
    queue is long) file ranges; every answer is whole and in order, and a
    file replaced afterwards is served new."""
    small = os.urandom(12000)  # 600 of these make a queue far past the copy bound
    (site.www / "small.bin").write_bytes(small)
    files = dict(FILES, **{"small.bin": small})
    names = ["a.css", "small.bin", "d.png", "range.txt"]
    targets = [names[i % len(names)] for i in range(600)]
    request = b"".join(b"GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % t.encode()
                       for t in targets[:-1])
    request += b"GET /%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % (
        targets[-1].encode())
    rs = parse_responses(send_raw(site.port, request, timeout=20))
    assert len(rs) == len(targets)
    for target, r in zip(targets, rs):
        assert r.status == 200 and r.body == files[target], target
    new = b"body { color: blue }\n"
    tmp = site.www / "a.css.new"
    tmp.write_bytes(new)
    os.replace(tmp, site.www / "a.css")
    assert fetch(site, "/a.css").body == new


def test_route_headers_go_with_every_answer_of_the_route(saker_factory, tmp_path):
    """A route's `headers:` (security headers, say) are on its 200s, its
    304s, its 404s and its redirects, over HTTP/1.1 and HTTP/2 alike, and
    not on another route's answers."""
    www = tmp_path / "www"
    (www / "dir").mkdir(parents=True)
    (www / "page.html").write_bytes(b"<p>page</p>\n")
    inst = saker_factory("""
workers: 1
endpoints:
  main: {url: "http://127.0.0.1:0"}
routes:
  - path: /plain
    return: {status: 200, body: "plain"}
  - path: /
    headers:
      X-Frame-Options: DENY
      Content-Security-Policy: "default-src 'self'"
    static: {root: %s}
""" % www)
    def head_of(path, *extra):
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "10"]
                           + list(extra) + [inst.url(path)],
                           capture_output=True, timeout=20, text=True)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.lower().splitlines()
        return lines[0], [l for l in lines if l.startswith(("x-frame-options:",
                                                              "content-security-policy:"))]

    want = ["x-frame-options: deny", "content-security-policy: default-src 'self'"]
    for proto in ([], ["--http2-prior-knowledge"]):
        status, found = head_of("/page.html", *proto)
        assert " 200" in status and found == want, (proto, status, found)
        etag = fetch(inst, "/page.html").h["etag"]
        status, found = head_of("/page.html", "-H", "If-None-Match: " + etag, *proto)
        assert " 304" in status and found == want, (proto, status, found)
        status, found = head_of("/missing", *proto)
        assert " 404" in status and found == want, (proto, status, found)
        status, found = head_of("/dir", *proto)
        assert " 301" in status and found == want, (proto, status, found)
        status, found = head_of("/plain", *proto)
        assert " 200" in status and found == [], (proto, status, found)
