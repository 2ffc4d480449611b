"""Routes for one endpoint (`endpoint:`) and `redirect_https`: a plain-HTTP
endpoint that sends every request to the same URL over https://, except
what a route before it keeps (an ACME challenge), while the HTTPS endpoint
serves; and /metrics served on an admin endpoint only."""
import subprocess

from rawhttp import parse_responses, send_raw
from saker_harness import saker_binary
from test_tls import certs, curl  # noqa: F401 (certs: fixture)


def site(certs, redirect="{ port: 8443 }"):
    return """\
workers: 1
shutdown_timeout: 5s
certificates:
  default: { path: %(d)s/localhost.pem, key: %(d)s/localhost.key }
endpoints:
  public: { url: "http://127.0.0.1:0" }
  secure: { url: "https://127.0.0.1:0" }
  admin: { url: "http://127.0.0.1:0" }
routes:
  - endpoint: public
    path: /.well-known/acme-challenge
    return: { status: 200, body: "token\\n" }
  - endpoint: public
    path: /
    redirect_https: %(r)s
  - endpoint: admin
    path: /metrics
    status: { kind: metrics }
  - path: /
    return: { status: 200, headers: { Content-Type: text/plain }, body: "hello tls\\n" }
""" % {"d": certs, "r": redirect}


def ports(inst):
    """public, secure, admin: listeners are published in config order."""
    return [p for _, p, kind in inst.ports if kind == "tcp4"]


def exchange(port, request):
    data = send_raw(port, request)
    return parse_responses(data, head_methods=("HEAD",) if request.startswith(b"HEAD") else ())


def test_plain_endpoint_redirects_to_https(saker_factory, certs):
    inst = saker_factory(site(certs))
    public, secure, admin = ports(inst)
    r = exchange(public, b"GET /a/b%20c?x=1&y=2 HTTP/1.1\r\nHost: Example.COM:8080\r\n"
                         b"Connection: close\r\n\r\n")
    assert len(r) == 1 and r[0].status == 308, r
    assert r[0].header("Location") == "https://example.com:8443/a/b%20c?x=1&y=2"
    assert r[0].header("Content-Length") == "0"
    # A POST keeps its method under 308; its body is read and the
    # connection stays usable for the next request.
    r = exchange(public, b"POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n"
                         b"a=b&cGET /next HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert [x.status for x in r] == [308, 308], r
    assert [x.header("Location") for x in r] == ["https://localhost:8443/form",
                                                 "https://localhost:8443/next"]
    # absolute-form: rebuilt from its path and query, for the Host it names.
    r = exchange(public, b"GET http://localhost/p?q=1 HTTP/1.1\r\nHost: localhost\r\n"
                         b"Connection: close\r\n\r\n")
    assert r[0].status == 308 and r[0].header("Location") == "https://localhost:8443/p?q=1"
    # IP literals keep their brackets; HEAD gets the same head.
    r = exchange(public, b"HEAD /z HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n")
    assert r[0].status == 308 and r[0].header("Location") == "https://[::1]:8443/z"
    # Nothing to build a Location from: 400, never a redirect to a mangled host.
    for head in (b"GET / HTTP/1.0\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\\b.example\r\nConnection: close\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a%2fb\r\nConnection: close\r\n\r\n"):
        r = exchange(public, head)
        assert r[0].status == 400 and r[0].header("Location") is None, (head, r)
    # What a route before the redirect keeps is served over plain HTTP.
    r = exchange(public, b"GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: localhost\r\n"
                         b"Connection: close\r\n\r\n")
    assert r[0].status == 200 and r[0].body == b"token\n"
    # The HTTPS endpoint serves, and follows no route meant for another endpoint.
    got = curl(certs, secure, path="/a/b?x=1")
    assert got.returncode == 0 and got.stdout == "hello tls\n", got.stderr
    assert curl(certs, secure, path="/.well-known/acme-challenge/abc").stdout == "hello tls\n"


def test_default_port_and_status(saker_factory, certs):
    inst = saker_factory(site(certs, "{ status: 301 }"))
    public = ports(inst)[0]
    r = exchange(public, b"GET /x HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
    assert r[0].status == 301 and r[0].reason == "Moved Permanently"
    assert r[0].header("Location") == "https://www.example.com/x"  # 443 is left out


def test_metrics_only_on_the_admin_endpoint(saker_factory, certs):
    inst = saker_factory(site(certs))
    public, secure, admin = ports(inst)
    r = exchange(admin, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert r[0].status == 200 and b"saker_requests_total" in r[0].body
    r = exchange(public, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert r[0].status == 308
    got = curl(certs, secure, path="/metrics")
    assert got.stdout == "hello tls\n", got.stdout


def test_redirect_that_would_loop_is_refused(tmp_path, certs):
    path = tmp_path / "saker.yaml"
    path.write_text(site(certs).replace("  - endpoint: public\n    path: /\n", "  - path: /\n"))
    r = subprocess.run([saker_binary(), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=20, cwd=str(tmp_path))
    assert r.returncode == 1
    assert ("%s:13:5: route '/': redirect_https would answer https:// endpoint 'secure'" % path
            in r.stderr), r.stderr
