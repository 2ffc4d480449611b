"""`saker -t`: configuration checks from the command line, their messages
(FILE:LINE:COLUMN), and the promise that -t never binds."""

import os
import socket
import subprocess

import pytest

from saker_harness import saker_binary

GOOD = """\
workers: 2
shutdown_timeout: 5s
limits:
  max_request_body_size: 1MB
  keep_alive_timeout: 500ms
endpoints:
  main:
    url: http://127.0.0.1:0
  local:
    url: unix:/tmp/never-bound-by-saker-t.sock
routes:
  - path: /healthz
    return:
      status: 200
      headers: { Content-Type: text/plain }
      body: "ok\\n"
  - path: /metrics
    status: { kind: metrics }
"""


def check(tmp_path, text, name="saker.yaml"):
    path = tmp_path / name
    path.write_text(text)
    r = subprocess.run([saker_binary(), "-t", "-c", str(path)], capture_output=True,
                       text=True, timeout=10, cwd=str(tmp_path))
    return path, r


def test_good_config_passes(tmp_path):
    path, r = check(tmp_path, GOOD)
    assert r.returncode == 0, r.stderr
    assert str(path) in r.stdout and "valid" in r.stdout
    assert not os.path.exists("/tmp/never-bound-by-saker-t.sock")


BAD = {
    # name: (yaml, line, column, words the message must hold)
    "unknown key": ("workers: 1\nworkerz: 2\n", 2, 1, ["unknown key", "workerz"]),
    "bad duration": ("workers: 1\nshutdown_timeout: 5 parsecs\n", 2, 19,
                     ["shutdown_timeout", "5 parsecs"]),
    "bad url": ('endpoints:\n  main:\n    url: "ftp://example.com:1"\n', 3, 10,
                ["ftp://example.com:1"]),
    "yaml syntax error": ("workers: 1\nroutes: [\n  - a\n", None, None, ["syntax error"]),
    "unknown nested key": ("limits:\n  max_request_bodysize: 1MB\n", 2, 3,
                           ["max_request_bodysize"]),
    "bad transport": ("workers: 1\ntransport: uring\n", 2, 12, ["transport", "uring"]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_config_fails_with_position(tmp_path, name):
    text, line, column, words = BAD[name]
    path, r = check(tmp_path, text, "bad config.yaml")
    assert r.returncode == 1, (r.stdout, r.stderr)
    if line is not None:
        assert "%s:%d:%d:" % (path, line, column) in r.stderr, r.stderr
    else:
        assert ("%s:" % path) in r.stderr, r.stderr
        assert any("%s:%d:" % (path, n) in r.stderr for n in (2, 3, 4)), r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    assert r.stdout == ""


def test_bad_config_fails_without_t_too(saker_factory):
    inst = saker_factory("workers: 1\nworkerz: 2\n", expect_ready=False)
    assert inst.wait_exit(10) == 1
    assert "%s:2:1:" % inst.config_path in inst.messages()


def test_t_never_binds(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        path, r = check(tmp_path, GOOD.replace("http://127.0.0.1:0",
                                               "http://127.0.0.1:%d" % port))
        assert r.returncode == 0, r.stderr
        # nobody took our connections either
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        conn, _ = busy.accept()
        conn.close()
        c.close()
    finally:
        busy.close()


def test_config_file_missing(tmp_path):
    missing = tmp_path / "absent.yaml"
    r = subprocess.run([saker_binary(), "-t", "-c", str(missing)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1
    assert str(missing) in r.stderr


def test_usage_errors(tmp_path):
    r = subprocess.run([saker_binary(), "--no-such-option"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2
    r = subprocess.run([saker_binary(), "-h"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "-c" in r.stdout and "--urls" in r.stdout
