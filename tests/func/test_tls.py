"""HTTPS: certificates (PEM, encrypted key, PKCS#12, ECDSA), SNI, protocol
versions, ALPN, client certificates, resumption across workers, bad input on
a TLS port, certificate errors at start and reload, TLS counters.

Every certificate and key is made at test time with the openssl command in
the test's temporary directory; no private key is kept in the tree.
"""

import re
import select
import socket
import ssl
import subprocess
import threading
import time

import pytest

from certs import make_ca, make_leaf, sh
from h2client import H2Client
from rawhttp import wait_for
from saker_harness import (saker_binary, wait_for_quiet_trim, wait_for_worker_rss_at_most,
                           worker_rss_kb)

ROUTES = """\
routes:
  - path: /
    return: { status: 200, headers: { Content-Type: text/plain }, body: "hello tls\\n" }
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    make_ca(d, "ca", "saker-test-ca", alg="rsa:2048")
    make_leaf(d, "localhost", "DNS:localhost,IP:127.0.0.1", alg="rsa:2048")
    make_leaf(d, "example", "DNS:example.com")
    make_leaf(d, "wild", "DNS:*.example.org", alg="rsa:2048")
    make_leaf(d, "other", "DNS:other.test")
    # An encrypted key, a PKCS#12 file, a chain file with the CA.
    sh("openssl pkey -in localhost.key -aes256 -passout pass:s3cret -out localhost.enc.key", d)
    sh("openssl pkcs12 -export -in localhost.pem -inkey localhost.key -certfile ca.pem "
       "-passout pass:pfxpass -out localhost.pfx", d)
    # Client certificates, from their own CA.
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
       "-keyout cca.key -out cca.pem -subj /CN=saker-client-ca -days 2", d)
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key "
       "-out client.csr -subj /CN=alice/O=Example", d)
    sh("openssl x509 -req -in client.csr -CA cca.pem -CAkey cca.key -CAcreateserial -days 2 "
       "-out client.pem -extfile client.ext", d)
    return d


def tls_config(certs, endpoint_extra="", top_extra="", workers=1):
    return ("workers: %d\nshutdown_timeout: 5s\n%s"
            "certificates:\n  default: { path: %s/localhost.pem, key: %s/localhost.key }\n"
            "endpoints:\n  secure:\n    url: \"https://127.0.0.1:0\"\n%s%s"
            % (workers, top_extra, certs, certs, endpoint_extra, ROUTES))


SNI = """\
    sni:
      example.com: { path: %(d)s/example.pem, key: %(d)s/example.key }
      "*.example.org": { path: %(d)s/wild.pem, key: %(d)s/wild.key }
"""


def s_client(port, *args, data=b"", timeout=10):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, *args]
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def peer_cn(port, servername=None):
    args = ["-servername", servername] if servername else ["-noservername"]
    rc, out = s_client(port, *args)
    m = re.search(r"subject=.*?CN\s*=\s*([^\s,/]+)", out)
    return m.group(1) if m else None


def curl(certs, port, host="localhost", path="/", extra=()):
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", str(certs / "ca.pem"),
           "--resolve", "%s:%d:127.0.0.1" % (host, port),
           "https://%s:%d%s" % (host, port, path), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


def handshakes(inst, result):
    return inst.metrics().get('saker_tls_handshakes_total{result="%s"}' % result, 0)


# ---- certificates and SNI ----------------------------------------------------

def test_https_serves_with_default_certificate(saker_factory, certs):
    inst = saker_factory(tls_config(certs))
    r = curl(certs, inst.port)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello tls\n"
    r = curl(certs, inst.port, host="127.0.0.1")  # IP SAN, no SNI sent
    assert r.returncode == 0, r.stderr
    wait_for(lambda: handshakes(inst, "ok") >= 2, 5, message="handshakes counted")


def test_hsts_header_on_every_response(saker_factory, certs):
    inst = saker_factory(tls_config(
        certs, endpoint_extra="    hsts: { max_age: 365d, include_subdomains: true }\n"))
    for path in ("/", "/%zz"):  # a response and a refusal alike
        for version in ("--http1.1", "--http2"):
            r = curl(certs, inst.port, path=path, extra=("-i", version))
            assert r.returncode == 0, r.stderr
            # text mode: curl's CRLFs read as "\n"; HTTP/2 names are lower case
            assert "\nstrict-transport-security: max-age=31536000; includesubdomains\n" \
                in r.stdout.lower(), (version, r.stdout)
    plain = saker_factory(tls_config(certs))
    r = curl(certs, plain.port, extra=("-i",))
    assert r.returncode == 0 and "Strict-Transport-Security" not in r.stdout, r.stdout


@pytest.mark.parametrize("case", ["http", "preload", "no max_age", "bad duration"])
def test_hsts_config_errors(tmp_path, certs, case):
    url, hsts, where, words = {
        "http": ("http://127.0.0.1:0", "{ max_age: 1d }", ":5:11:",
                 "'hsts' applies to https:// endpoints only"),
        "preload": ("https://127.0.0.1:0", "{ max_age: 30d, preload: true }", ":5:36:",
                    "preload needs include_subdomains: true"),
        "no max_age": ("https://127.0.0.1:0", "{ include_subdomains: true }", ":5:11:",
                       "max_age"),
        "bad duration": ("https://127.0.0.1:0", "{ max_age: soon }", ":5:22:", "max_age"),
    }[case]
    text = ("certificates:\n  default: { path: %s/localhost.pem, key: %s/localhost.key }\n"
            "endpoints:\n  secure:\n    hsts: %s\n    url: \"%s\"\n%s"
            % (certs, certs, hsts, url, ROUTES))
    path, r = check(tmp_path, text)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert str(path) + where in r.stderr and words in r.stderr, r.stderr


def test_sni_each_name_gets_its_certificate(saker_factory, certs):
    inst = saker_factory(tls_config(certs, SNI % {"d": certs}))
    for host in ("example.com", "a.example.org", "localhost"):
        r = curl(certs, inst.port, host=host)
        assert r.returncode == 0, (host, r.stderr)
        assert r.stdout == "hello tls\n"
    assert peer_cn(inst.port, "example.com") == "example.com"
    assert peer_cn(inst.port, "WWW.Example.Org") == "*.example.org"
    # Unknown name, no name, a wildcard's bare parent: the default.
    assert peer_cn(inst.port, "unknown.test") == "localhost"
    assert peer_cn(inst.port) == "localhost"
    assert peer_cn(inst.port, "example.org") == "localhost"


def test_sni_unknown_refused(saker_factory, certs):
    inst = saker_factory(tls_config(certs, SNI % {"d": certs} + "    sni_unknown: refuse\n"))
    rc, out = s_client(inst.port, "-servername", "unknown.test")
    assert "unrecognized name" in out, out
    assert "CN = localhost" not in out and "CN=localhost" not in out
    # Known names, the default certificate's own name, and no name still work.
    assert peer_cn(inst.port, "example.com") == "example.com"
    assert curl(certs, inst.port, host="localhost").returncode == 0
    assert peer_cn(inst.port) == "localhost"
    wait_for(lambda: handshakes(inst, "unknown_name") >= 1, 5, message="unknown_name counted")


@pytest.mark.parametrize("cert", ["encrypted", "pfx", "ecdsa"])
def test_certificate_kinds(saker_factory, certs, cert):
    spec = {
        "encrypted": "{ path: %s/localhost.pem, key: %s/localhost.enc.key, password: s3cret }"
                     % (certs, certs),
        "pfx": "{ path: %s/localhost.pfx, password: pfxpass }" % certs,
        "ecdsa": "{ path: %s/other.pem, key: %s/other.key }" % (certs, certs),
    }[cert]
    inst = saker_factory(tls_config(certs, "    certificate: %s\n" % spec))
    host = "other.test" if cert == "ecdsa" else "localhost"
    r = curl(certs, inst.port, host=host)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello tls\n"


# ---- protocol policy --------------------------------------------------------

def test_protocol_versions(saker_factory, certs):
    inst = saker_factory(tls_config(certs))
    # The client's own security level would refuse TLS 1.0/1.1 before
    # sending anything; lower it so the server is what refuses.
    for flag in ("-tls1", "-tls1_1"):
        rc, out = s_client(inst.port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
        assert rc != 0, out
        assert "Cipher is (NONE)" in out, out  # no session was made
    for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        rc, out = s_client(inst.port, flag, "-servername", "localhost")
        assert rc == 0, out
        assert re.search(r"Protocol\s*:\s*%s" % re.escape(name), out) or \
            ("New, %s" % name) in out, out
    wait_for(lambda: handshakes(inst, "protocol_version") >= 2, 5,
             message="protocol_version counted")
    m = inst.metrics()
    assert m.get('saker_tls_protocol_total{version="1.2"}', 0) >= 1
    assert m.get('saker_tls_protocol_total{version="1.3"}', 0) >= 1


def test_cipher_mix_is_counted(saker_factory, certs):
    inst = saker_factory(tls_config(certs))
    for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                  "TLS_CHACHA20_POLY1305_SHA256"):
        rc, out = s_client(inst.port, "-tls1_3", "-ciphersuites", suite,
                           "-servername", "localhost")
        assert rc == 0 and suite in out, out
    rc, out = s_client(inst.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:"
                       "ECDHE-RSA-CHACHA20-POLY1305", "-servername", "localhost")
    assert rc == 0, out

    def mix():
        m = inst.metrics()
        return [m.get('saker_tls_ciphers_total{cipher="%s"}' % c, 0)
                for c in ("aes128-gcm", "aes256-gcm", "chacha20-poly1305", "other")]
    wait_for(lambda: mix() == [1, 1, 2, 0], 5, message="cipher mix 1/1/2/0, got %s" % mix())


def test_min_version_1_3(saker_factory, certs):
    inst = saker_factory(tls_config(certs, "    tls: { min_version: \"1.3\" }\n"))
    rc, out = s_client(inst.port, "-tls1_2")
    assert rc != 0, out
    rc, out = s_client(inst.port, "-tls1_3")
    assert rc == 0, out


def test_no_weak_ciphers(saker_factory, certs):
    inst = saker_factory(tls_config(certs))
    for cipher in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256"):
        rc, out = s_client(inst.port, "-tls1_2", "-cipher", cipher)
        assert rc != 0, (cipher, out)
    wait_for(lambda: handshakes(inst, "no_shared_cipher") >= 3, 5,
             message="no_shared_cipher counted")


@pytest.mark.parametrize("protocols, offers", [
    ("http1_and_http2", {"h2,http/1.1": "h2", "http/1.1": "http/1.1", "h2": "h2"}),
    ("http1", {"h2,http/1.1": "http/1.1", "h2": None}),
    ("http2", {"h2,http/1.1": "h2", "http/1.1": "refused"}),
])
def test_alpn_follows_protocols(saker_factory, certs, protocols, offers):
    inst = saker_factory(tls_config(certs, "    protocols: %s\n" % protocols))
    for offer, chosen in offers.items():
        rc, out = s_client(inst.port, "-alpn", offer)
        if chosen == "refused":  # an HTTP/2-only endpoint cannot serve it
            assert rc != 0 and "no application protocol" in out, out
        elif chosen is None:     # nothing in common: carry on without ALPN
            assert rc == 0 and "No ALPN negotiated" in out, out
        else:
            assert rc == 0 and "ALPN protocol: %s\n" % chosen in out, (offer, out)
    want = {"http1_and_http2": "2", "http1": "1.1", "http2": "2"}[protocols]
    r = curl(certs, inst.port, extra=("-o", "/dev/null", "-w", "%{http_version}"))
    assert r.returncode == 0 and r.stdout == want, (r.stdout, r.stderr)


# ---- client certificates ----------------------------------------------------

def client_args(certs):
    return ("--cert", str(certs / "client.pem"), "--key", str(certs / "client.key"))


@pytest.mark.parametrize("mode", ["none", "allow", "require"])
def test_client_certificate_modes(saker_factory, certs, mode):
    extra = "    client_certificate: { mode: %s, ca: %s/cca.pem }\n" % (mode, certs)
    if mode == "none":
        extra = "    client_certificate: { mode: none }\n"
    inst = saker_factory(tls_config(certs, extra))
    without = curl(certs, inst.port)
    with_cert = curl(certs, inst.port, extra=client_args(certs))
    assert with_cert.returncode == 0, with_cert.stderr
    if mode == "require":
        assert without.returncode != 0, without.stdout
        wait_for(lambda: handshakes(inst, "bad_certificate") >= 1, 5,
                 message="bad_certificate counted")
    else:
        assert without.returncode == 0, without.stderr
    rc, out = s_client(inst.port, "-servername", "localhost")
    asked = "Acceptable client certificate CA names" in out and "saker-client-ca" in out
    assert asked == (mode != "none"), out


def test_failed_handshake_logged_at_debug(saker_factory, certs):
    """With log_level: debug, which client failed, where and why, in
    OpenSSL's words: what an operator needs to chase one client."""
    inst = saker_factory(tls_config(certs, top_extra="log_level: debug\n"))
    rc, out = s_client(inst.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0, out
    line = wait_for(lambda: next((l for l in inst.messages().splitlines()
                                  if "TLS handshake from" in l), None), 5,
                    message="the failure logged")
    assert "[debug]" in line and "from 127.0.0.1 on endpoint 'secure'" in line, line
    assert "(protocol_version): unsupported protocol" in line, line


# ---- resumption across workers ----------------------------------------------

@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_resumption_across_workers(saker_factory, certs, tmp_path, version):
    inst = saker_factory(tls_config(certs, workers=2))
    sess = tmp_path / "sess.pem"
    # -ign_eof: wait for the response (TLS 1.3 tickets come after the
    # handshake, so s_client must not quit at the end of its input).
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    rc, out = s_client(inst.port, version, "-ign_eof", "-sess_out", str(sess), data=request)
    assert rc == 0 and sess.exists(), out
    assert "hello tls" in out, out
    reused = 0
    for i in range(12):
        rc, out = s_client(inst.port, version, "-ign_eof", "-sess_in", str(sess), data=request)
        assert rc == 0, out
        assert "Reused, TLSv1." in out, out
        assert "hello tls" in out, out
        reused += 1
    wait_for(lambda: all(w["connections_accepted"] > 0 for w in inst.workers()), 10,
             interval=0.2, message="both workers accepted")
    # Connections spread by the kernel: keep connecting until both took one.
    deadline = time.monotonic() + 20
    while not all(w["connections_accepted"] > 0 for w in inst.workers()):
        assert time.monotonic() < deadline, inst.workers()
        rc, out = s_client(inst.port, version, "-ign_eof", "-sess_in", str(sess), data=request)
        assert "Reused" in out, out
    wait_for(lambda: inst.metric("saker_tls_resumptions_total") >= reused, 5,
             message="resumptions counted")


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_resumed_connection_gets_a_fresh_ticket(saker_factory, certs, tmp_path, version):
    """TLS 1.3 clients use a ticket once (RFC 8446 C.4): a resumed TLS 1.3
    connection must carry a new ticket, or every other connection of a
    client is a full handshake. TLS 1.2 keeps its ticket while the key is
    current (a renewal there costs a message for nothing)."""
    inst = saker_factory(tls_config(certs))
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    sessions = [tmp_path / ("sess%d.pem" % i) for i in range(4)]
    rc, out = s_client(inst.port, version, "-ign_eof", "-sess_out", str(sessions[0]),
                       data=request)
    assert rc == 0 and "New, TLSv1." in out, out
    tls13 = version == "-tls1_3"
    for previous, following in zip(sessions, sessions[1:]):
        # Each TLS 1.3 connection resumes with the ticket the one before got.
        chain = ["-sess_in", str(previous), "-sess_out", str(following)] if tls13 else \
            ["-sess_in", str(sessions[0])]
        rc, out = s_client(inst.port, version, "-ign_eof", *chain, data=request)
        assert rc == 0 and "Reused, TLSv1." in out and "hello tls" in out, out
        fresh = out.count("Post-Handshake New Session Ticket arrived")
        assert fresh == (1 if tls13 else 0), out


# ---- bad input on the TLS port ------------------------------------------------

def raw(port, data, wait=2.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if data:
            s.sendall(data)
        s.settimeout(wait)
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return got, True
            got += chunk
    except socket.timeout:
        return got, False
    finally:
        s.close()


def test_garbage_plain_http_and_half_handshake(saker_factory, certs):
    inst = saker_factory(tls_config(certs, top_extra="limits: { request_headers_timeout: 2s }\n"))
    stop = threading.Event()
    failures = []

    def client():
        while not stop.is_set():
            r = curl(certs, inst.port)
            if r.returncode != 0 or r.stdout != "hello tls\n":
                failures.append(r.stderr)

    t = threading.Thread(target=client)
    t.start()
    try:
        got, closed = raw(inst.port, b"\x00\xff garbage garbage garbage\r\n\r\n" * 10)
        assert closed
        got, closed = raw(inst.port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert closed and got.startswith(b"HTTP/1.1 400 "), got
        assert b"HTTPS port" in got and b"hello tls" not in got, got
        # A ClientHello's first bytes, then silence: closed at the deadline.
        got, closed = raw(inst.port, bytes.fromhex("160301020001"), wait=6.0)
        assert closed
    finally:
        stop.set()
        t.join()
    assert not failures, failures[:3]
    wait_for(lambda: handshakes(inst, "other") >= 2, 5, message="failures counted")
    assert handshakes(inst, "plain_http") == 1
    assert handshakes(inst, "ok") >= 1
    # At the default log level scanners and garbage leave counters, not lines.
    assert "TLS handshake from" not in inst.messages()


def test_handshake_then_silence_is_closed_at_request_headers_timeout(saker_factory, certs):
    inst = saker_factory(tls_config(certs, top_extra="limits: { request_headers_timeout: 1s, "
                                                     "keep_alive_timeout: 60s }\n"))
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", inst.port), timeout=5) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as s:
            t0 = time.monotonic()
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
            assert time.monotonic() - t0 < 4, "a silent TLS connection was kept"


def test_plain_http_request_is_told_to_use_https(saker_factory, certs):
    """curl http:// against an https endpoint gets a readable 400, even with
    a body still unread (the close must not reset the answer away)."""
    inst = saker_factory(tls_config(certs))
    url = "http://127.0.0.1:%d/" % inst.port
    for extra, body in (((), None), (("--data-binary", "@-"), "x" * 200000)):
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "-i", url, *extra],
                           input=body, capture_output=True, text=True, timeout=20)
        assert r.stdout.startswith("HTTP/1.1 400 "), (r.stdout, r.stderr)
        assert "Connection: close" in r.stdout and "use https://" in r.stdout.lower(), r.stdout
    assert handshakes(inst, "plain_http") == 2
    assert curl(certs, inst.port).stdout == "hello tls\n"


# ---- certificate errors ---------------------------------------------------------

def check(tmp_path, text):
    path = tmp_path / "saker.yaml"
    path.write_text(text)
    r = subprocess.run([saker_binary(), "-t", "-c", str(path)], capture_output=True,
                       text=True, timeout=20, cwd=str(tmp_path))
    return path, r


def bad_cert_config(certs, spec):
    return ("certificates:\n  default: %s\nendpoints:\n  secure: { url: \"https://127.0.0.1:0\" }\n"
            % spec + ROUTES)


@pytest.mark.parametrize("case", ["missing", "mismatch", "wrong password", "pfx password",
                                  "not a certificate"])
def test_bad_certificate_fails_check(tmp_path, certs, case):
    spec, culprit, words = {
        "missing": ("{ path: %s/nope.pem, key: %s/localhost.key }", "nope.pem", "cannot open"),
        "mismatch": ("{ path: %s/localhost.pem, key: %s/example.key }", "example.key",
                     "does not match"),
        "wrong password": ("{ path: %s/localhost.pem, key: %s/localhost.enc.key, "
                           "password: nope }", "localhost.enc.key", "wrong password"),
        "pfx password": ("{ path: %s/localhost.pfx, password: nope }", "localhost.pfx",
                         "wrong password"),
        "not a certificate": ("{ path: %s/localhost.key, key: %s/localhost.key }",
                              "localhost.key", "no PEM certificate"),
    }[case]
    spec = spec.replace("%s", str(certs))
    path, r = check(tmp_path, bad_cert_config(certs, spec))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "%s:2:12: certificate 'default':" % path in r.stderr, r.stderr
    assert culprit in r.stderr and words in r.stderr, r.stderr


def test_https_without_certificate_fails_check(tmp_path):
    path, r = check(tmp_path, "endpoints:\n  secure: { url: \"https://127.0.0.1:0\" }\n" + ROUTES)
    assert r.returncode == 1
    assert "%s:2:11:" % path in r.stderr and "needs a certificate" in r.stderr, r.stderr


def test_reload_with_bad_certificate_keeps_serving(saker_factory, certs):
    inst = saker_factory(tls_config(certs))
    assert curl(certs, inst.port).returncode == 0
    tail = [l for l in inst.config_path.read_text().splitlines()
            if l.startswith(("shm_path:", "error_log:", "pid_file:"))]
    bad = tls_config(certs).replace("localhost.key", "example.key")
    inst.config_path.write_text(bad + "\n".join(tail) + "\n")
    before = inst.status()["reload"]["count"]
    inst.reload()
    wait_for(lambda: inst.status()["reload"]["count"] > before, 15, message="reload outcome")
    st = inst.status()["reload"]
    assert not st["ok"], st
    assert "example.key" in st["message"] and "does not match" in st["message"], st
    r = curl(certs, inst.port)
    assert r.returncode == 0 and r.stdout == "hello tls\n", r.stderr
    # And a good reload to new certificates takes effect.
    good = tls_config(certs, SNI % {"d": certs})
    inst.config_path.write_text(good + "\n".join(tail) + "\n")
    before = inst.status()["reload"]["count"]
    inst.reload()
    wait_for(lambda: inst.status()["reload"]["count"] > before, 15, message="reload outcome")
    assert inst.status()["reload"]["ok"]
    wait_for(lambda: peer_cn(inst.port, "example.com") == "example.com", 10,
             message="new SNI certificate served")


# ---- idle memory ----------------------------------------------------------------------

def https_get_kept_open(port, ctx):
    """A connection over TLS that has been answered one request, left open."""
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="localhost")
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"hello tls" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    return s


@pytest.mark.memory
def test_idle_tls_connection_memory_report(saker_factory, certs):
    inst = saker_factory(tls_config(certs))
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    port = inst.port
    conns = [https_get_kept_open(port, ctx)]
    before = worker_rss_kb(inst)
    n = 300
    conns += [https_get_kept_open(port, ctx) for _ in range(n)]
    after = worker_rss_kb(inst)
    per = (after - before) * 1024 / n
    print("\nidle TLS connection: %.0f bytes of worker RSS each (%d connections)" % (per, n))
    # About 14 KB with OpenSSL 3.0 (its SSL object alone is 7.6 KB; see
    # bench/README.md); without SSL_MODE_RELEASE_BUFFERS an idle connection
    # keeps ~48 KB of buffers.
    assert per < 24 * 1024, "%.0f bytes per idle TLS connection" % per
    for s in conns:
        s.close()


@pytest.mark.memory
def test_worker_at_rest_after_tls_connections_close_is_back_to_its_rss(saker_factory, certs):
    """What connections over TLS keep while open (OpenSSL's state, and an
    HTTP/2 session on half of them: about 20 KB each, most of it in the
    worker's slab of small blocks) goes back to the kernel once they have
    closed and the worker is quiet."""
    inst = saker_factory(tls_config(certs))
    port = inst.port
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    # What the first connections make for good (OpenSSL's caches) is made now.
    https_get_kept_open(port, ctx).close()
    with H2Client(port, tls_ca=certs / "ca.pem") as c:
        assert c.get("/").status == 200
    wait_for_quiet_trim(inst)
    before = worker_rss_kb(inst)
    conns = [https_get_kept_open(port, ctx) for _ in range(150)]
    for _ in range(150):
        c = H2Client(port, tls_ca=certs / "ca.pem")
        conns.append(c)
        assert c.alpn == "h2" and c.get("/").status == 200
    peak = worker_rss_kb(inst)
    assert peak >= before + 2048, (before, peak)  # else the connections prove nothing
    for c in conns:
        c.close()
    bound = before + 256
    at_rest = wait_for_worker_rss_at_most(
        inst, bound, "the worker's Rss stayed above %d kB after its connections closed "
        "(%d kB before, %d with them open)" % (bound, before, peak))
    print("worker Rss: %d kB before 300 TLS connections, %d with them open, %d at rest"
          % (before, peak, at_rest))


# ---- files over TLS -------------------------------------------------------------

def test_static_file_over_tls(saker_factory, certs, tmp_path):
    import hashlib
    import os
    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 123)
    (root / "big.bin").write_bytes(data)
    (root / "small.txt").write_text("small\n")
    config = tls_config(certs).replace(ROUTES, "routes:\n  - path: /\n    static: { root: %s }\n"
                                       % root)
    inst = saker_factory(config)
    want = hashlib.sha256(data).hexdigest()
    out = tmp_path / "got.bin"
    # A slow reader makes the server's writes block and resume mid-file.
    for extra in ((), ("--limit-rate", "4M")):
        r = curl(certs, inst.port, path="/big.bin", extra=("-o", str(out), *extra))
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(out.read_bytes()).hexdigest() == want
    r = curl(certs, inst.port, path="/big.bin", extra=("-r", "1000-1999", "-o", str(out)))
    assert r.returncode == 0 and out.read_bytes() == data[1000:2000]
    # Several files on one keep-alive connection.
    r = curl(certs, inst.port, path="/small.txt",
             extra=("https://localhost:%d/small.txt" % inst.port,))
    assert r.returncode == 0 and r.stdout == "small\nsmall\n", r.stderr


def test_large_body_and_pipelining_over_tls(saker_factory, certs, tmp_path):
    import ssl
    inst = saker_factory(tls_config(certs, top_extra="limits: { max_request_body_size: 8MB }\n"))
    body = tmp_path / "body.bin"
    body.write_bytes(b"x" * (3 * 1024 * 1024))
    r = curl(certs, inst.port, extra=("--data-binary", "@%s" % body, "-H",
                                      "Content-Type: application/octet-stream"))
    assert r.returncode == 0 and r.stdout == "hello tls\n", r.stderr
    # Pipelined requests, more than one wakeup's worth of reads (1 MiB):
    # the rest waits inside OpenSSL, where no socket event announces it.
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", inst.port), timeout=20),
                        server_hostname="localhost")
    n = 40000
    out = memoryview(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * n)
    s.setblocking(False)
    got, tail, sent = 0, b"", 0
    deadline = time.monotonic() + 30
    # One thread, non-blocking both ways (an SSL object must not be used
    # from two threads at once).
    while got < n:
        assert time.monotonic() < deadline, "stalled after %d responses" % got
        r, w, _ = select.select([s], [s] if sent < len(out) else [], [], 1.0)
        if w:
            try:
                sent += s.send(out[sent:sent + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        if r or s.pending():
            try:
                chunk = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            assert chunk, "closed after %d responses" % got
            data = tail + chunk
            got += data.count(b"hello tls\n") - tail.count(b"hello tls\n")
            tail = data[-16:]
    s.close()


def test_client_subject_in_access_log(saker_factory, certs, tmp_path):
    import json
    log = tmp_path / "access.json"
    inst = saker_factory(tls_config(
        certs, "    client_certificate: { mode: allow, ca: %s/cca.pem }\n" % certs,
        top_extra="access_log: %s\naccess_log_format: json\n" % log))
    assert curl(certs, inst.port, path="/with", extra=client_args(certs)).returncode == 0
    assert curl(certs, inst.port, path="/without").returncode == 0

    def lines():
        text = log.read_text() if log.exists() else ""
        return [json.loads(l) for l in text.splitlines() if l.strip()]

    entries = wait_for(lambda: len(lines()) >= 2 and lines(), 5, message="access log lines")
    by_target = {e["target"]: e for e in entries}
    assert by_target["/with"]["client_subject"] == "O=Example,CN=alice", by_target["/with"]
    assert "client_subject" not in by_target["/without"]


def test_client_subject_is_the_user_of_the_combined_format(saker_factory, certs, tmp_path):
    log = tmp_path / "access.log"
    inst = saker_factory(tls_config(
        certs, "    client_certificate: { mode: allow, ca: %s/cca.pem }\n" % certs,
        top_extra="access_log: %s\n" % log))
    for version in ("--http1.1", "--http2"):
        assert curl(certs, inst.port, path="/with", extra=client_args(certs) + (version,)) \
            .returncode == 0
    assert curl(certs, inst.port, path="/without").returncode == 0
    lines = wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 3
                     and log.read_text().splitlines(), 5, message="access log lines")
    assert lines[0].startswith('127.0.0.1 - O=Example,CN=alice [') and \
        '"GET /with HTTP/1.1" 200' in lines[0], lines
    assert lines[1].startswith('127.0.0.1 - O=Example,CN=alice [') and \
        '"GET /with HTTP/2.0" 200' in lines[1], lines
    assert lines[2].startswith("127.0.0.1 - - ["), lines


def test_ticket_keys_rotate(saker_factory, certs, tmp_path):
    inst = saker_factory(tls_config(certs, top_extra="ticket_key_rotation: 1s\n", workers=2))
    sess = tmp_path / "sess.pem"
    rc, out = s_client(inst.port, "-tls1_2", "-sess_out", str(sess))
    assert rc == 0 and sess.exists(), out
    rc, out = s_client(inst.port, "-tls1_2", "-sess_in", str(sess))
    assert "Reused" in out, out
    # Two rotations later the key that sealed the ticket is gone: a full
    # handshake, and a new ticket that resumes again.
    wait_for(lambda: "New, TLSv1.2" in s_client(inst.port, "-tls1_2", "-sess_in", str(sess))[1],
             6, interval=0.2, message="the ticket refused after two rotations")
    rc, out = s_client(inst.port, "-tls1_2", "-sess_in", str(sess), "-sess_out", str(sess))
    assert rc == 0 and "New, TLSv1.2" in out, out
    rc, out = s_client(inst.port, "-tls1_2", "-sess_in", str(sess))
    assert "Reused" in out, out


def ticket_key_name(sess):
    """The first 16 bytes of a TLS 1.2 ticket: the name of the key that
    sealed it, sent in the clear (RFC 5077 section 4)."""
    out = subprocess.run(["openssl", "sess_id", "-in", str(sess), "-noout", "-text"],
                         capture_output=True, text=True, timeout=10).stdout
    at = out.index("TLS session ticket:")
    rows = re.findall(r"^\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})", out[at:], re.M)
    ticket = bytes.fromhex("".join(rows).replace("-", " ").replace(" ", ""))
    assert len(ticket) > 16, out
    return ticket[:16]


def test_ticket_keys_are_not_in_the_shm_file(saker_factory, certs, tmp_path):
    """The segment is what sakerctl and monitoring read; a ticket key
    there would let them decrypt recorded TLS 1.2 sessions."""
    inst = saker_factory(tls_config(certs, workers=2))
    sess = tmp_path / "sess.pem"
    rc, out = s_client(inst.port, "-tls1_2", "-sess_out", str(sess))
    assert rc == 0 and sess.exists(), out
    name = ticket_key_name(sess)
    segment = open(inst.shm, "rb").read()
    assert name not in segment
    rc, out = s_client(inst.port, "-tls1_2", "-sess_in", str(sess))
    assert "Reused" in out, out  # the keys are still shared by the workers


def test_bad_ticket_key_rotation(tmp_path):
    path, r = check(tmp_path, "ticket_key_rotation: 100ms\nendpoints:\n"
                              "  main: { url: \"http://127.0.0.1:0\" }\n" + ROUTES)
    assert r.returncode == 1
    assert "%s:1:22:" % path in r.stderr and "at least 1s" in r.stderr, r.stderr
