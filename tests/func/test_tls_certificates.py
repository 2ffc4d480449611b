"""Which certificates saker serves and when they expire: `sakerctl status`
(text and JSON), saker_tls_certificate_not_after_seconds, the table after a
reload, and the warning for a certificate that has expired or is not valid
yet (which is served anyway: refusing to start would turn a warning into an
outage)."""
import calendar
import subprocess
import time

from rawhttp import wait_for
from saker_harness import run_sakerctl, saker_binary
from test_tls import ROUTES, SNI, certs, peer_cn, sh, tls_config  # noqa: F401 (certs: fixture)


def not_after(pem):
    out = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-enddate"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    # "notAfter=Nov 24 08:00:00 2026 GMT"
    return calendar.timegm(time.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"))


def dated_certificate(d, name, start, end):
    """A self-signed certificate for CN=name valid from start to end
    (YYYYMMDDHHMMSSZ), made with `openssl ca`, which takes explicit dates."""
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text("[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\n"
                              "new_certs_dir = .\nserial = serial\ndefault_md = sha256\n"
                              "policy = p\n[p]\ncommonName = supplied\n")
    sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
       "-keyout %s.key -subj /CN=%s -out %s.csr" % (name, name, name), d)
    sh("openssl ca -config ca.cnf -batch -selfsign -keyfile %s.key -in %s.csr -out %s.pem "
       "-startdate %s -enddate %s" % (name, name, name, start, end), d)
    return d / ("%s.pem" % name), d / ("%s.key" % name)


def test_certificates_listed_with_expiry(saker_factory, certs):
    inst = saker_factory(tls_config(certs, SNI % {"d": certs}))
    got = {(c["endpoint"], c["sni"]): c for c in inst.status()["certificates"]}
    assert set(got) == {("secure", None), ("secure", "example.com"),
                        ("secure", "*.example.org")}, got
    default = got[("secure", None)]
    assert default["path"] == "%s/localhost.pem" % certs
    assert default["subject"] == "CN=localhost"
    assert default["not_after"] == not_after(certs / "localhost.pem")
    assert default["not_before"] < time.time() < default["not_after"]
    assert got[("secure", "example.com")]["not_after"] == not_after(certs / "example.pem")
    assert inst.status()["certificates_unlisted"] == 0

    metrics = inst.metrics()
    sample = ('saker_tls_certificate_not_after_seconds{endpoint="secure",sni="example.com",'
              'path="%s/example.pem"}' % certs)
    assert metrics[sample] == not_after(certs / "example.pem"), sorted(metrics)
    assert len([k for k in metrics if k.startswith("saker_tls_certificate_not_after")]) == 3

    text = run_sakerctl("--shm", inst.shm, "status").stdout
    assert "certificates:" in text, text
    line = next(l for l in text.splitlines() if "example.com" in l)
    assert "%s/example.pem" % certs in line and "expires " in line, line
    assert time.strftime("%Y-%m-%d", time.gmtime(not_after(certs / "example.pem"))) in line


def test_plain_endpoints_list_no_certificates(saker_factory):
    inst = saker_factory("endpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n" + ROUTES)
    assert inst.status()["certificates"] == []
    assert "certificates:" not in run_sakerctl("--shm", inst.shm, "status").stdout


def test_reload_publishes_the_new_certificates(saker_factory, certs):
    inst = saker_factory(tls_config(certs))
    assert [c["path"] for c in inst.status()["certificates"]] == ["%s/localhost.pem" % certs]
    tail = [l for l in inst.config_path.read_text().splitlines()
            if l.startswith(("shm_path:", "error_log:", "pid_file:"))]
    own = "    certificate: { path: %s/other.pem, key: %s/other.key }\n" % (certs, certs)
    inst.config_path.write_text(tls_config(certs, own) + "\n".join(tail) + "\n")
    before = inst.status()["reload"]["count"]
    inst.reload()
    wait_for(lambda: inst.status()["reload"]["count"] > before, 15, message="reload outcome")
    assert inst.status()["reload"]["ok"], inst.status()["reload"]
    table = inst.status()["certificates"]
    assert [(c["sni"], c["path"], c["subject"]) for c in table] == \
        [(None, "%s/other.pem" % certs, "CN=other.test")], table
    wait_for(lambda: peer_cn(inst.port) == "other.test", 10, message="new certificate served")


def test_expired_and_future_certificates_warn_and_serve(saker_factory, certs, tmp_path):
    old_pem, old_key = dated_certificate(tmp_path, "old.test", "20200101000000Z",
                                         "20200201000000Z")
    late = tmp_path / "late"
    late.mkdir()
    late_pem, late_key = dated_certificate(late, "late.test", "20990101000000Z",
                                           "20991231000000Z")
    sni = ("    sni:\n      old.test: { path: %s, key: %s }\n"
           "      late.test: { path: %s, key: %s }\n" % (old_pem, old_key, late_pem, late_key))
    config = tls_config(certs, sni)
    path = tmp_path / "saker.yaml"
    path.write_text(config)
    r = subprocess.run([saker_binary(), "-t", "-c", str(path)], capture_output=True, text=True,
                       timeout=20, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "[warn]" in r.stderr, r.stderr
    assert ("certificate %s (old.test) expired on 2020-02-01 00:00:00 UTC" % old_pem
            in r.stderr), r.stderr
    assert ("certificate %s (late.test) is not valid before 2099-01-01 00:00:00 UTC" % late_pem
            in r.stderr), r.stderr
    assert "localhost.pem" not in r.stderr, r.stderr  # a valid one is not mentioned

    inst = saker_factory(config)
    assert peer_cn(inst.port, "old.test") == "old.test"  # served all the same
    text = run_sakerctl("--shm", inst.shm, "status").stdout
    line = next(l for l in text.splitlines() if "old.test" in l)
    assert "EXPIRED 2020-02-01" in line, line
    assert "(old.test) expired on 2020-02-01" in inst.messages(), inst.messages()
