"""Large bodies through the proxy with the worker's memory flat: 100 MiB
down from nginx (the upstream for the keep-alive and large-body cases)
and 100 MiB up to a Python upstream that reads it slower than curl sends
it, so backpressure, not buffering, is what keeps saker's RSS flat.
(bench/proxy --transfer 1024 is the same at 1 GiB, outside the suite.)
"""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from rawhttp import connect, wait_for
from upstreams import Upstream

# Resident memory under a large transfer: the plain build asserts it.
pytestmark = pytest.mark.memory

MB = 1024 * 1024
RSS_GROWTH_MAX_KIB = 16 * 1024


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class RssWatch:
    """Samples a process's RSS in a thread until stopped; .peak in KiB."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop_ = pid, rss_kib(pid), threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))

    def stop(self):
        self.stop_.set()
        self.t.join(5)
        return self.peak


@pytest.fixture
def nginx(tmp_path):
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        pytest.skip("nginx is not installed")
    root = tmp_path / "www"
    root.mkdir()
    with open(root / "big", "wb") as f:
        f.write(os.urandom(MB) * 100)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        "%sworker_processes 1; daemon off; pid %s/nginx.pid; error_log %s/error.log;\n"
        "events {}\nhttp { access_log off; client_body_temp_path %s; proxy_temp_path %s;\n"
        "  server { listen 127.0.0.1:%d; root %s; } }\n"
        % (user, tmp_path, tmp_path, tmp_path, tmp_path, port, root))
    p = subprocess.Popen(["/usr/sbin/nginx", "-p", str(tmp_path), "-c",
                          str(tmp_path / "nginx.conf")], stderr=subprocess.DEVNULL)
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, 10,
             message="nginx listening")
    yield port, hashlib.sha256((root / "big").read_bytes()).hexdigest()
    p.send_signal(signal.SIGQUIT)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def start(saker_factory, port):
    return saker_factory(
        "workers: 1\nlimits: {max_request_body_size: 1GB}\n"
        "endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\n"
        "upstreams:\n  app:\n    servers: [{url: \"http://127.0.0.1:%d\"}]\n"
        "routes:\n  - path: /\n    proxy: {upstream: app}\n" % port)


def test_100_mib_down_from_nginx_with_rss_flat(saker_factory, nginx):
    port, digest = nginx
    inst = start(saker_factory, port)
    worker = inst.worker_pids()[0]
    before = rss_kib(worker)
    watch = RssWatch(worker)
    sock = connect(inst.port, timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    h = hashlib.sha256()
    head = b""
    total = 0
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    head, _, rest = head.partition(b"\r\n\r\n")
    assert b" 200 " in head and b"Content-Length: 104857600" in head
    h.update(rest)
    total = len(rest)
    while total < 100 * MB:
        piece = sock.recv(65536)  # a reader slower than loopback: Python
        assert piece, "closed after %d bytes" % total
        h.update(piece)
        total += len(piece)
    sock.close()
    peak = watch.stop()
    assert h.hexdigest() == digest
    assert peak - before < RSS_GROWTH_MAX_KIB, (before, peak)


def test_100_mib_up_with_rss_flat(saker_factory, tmp_path):
    up = Upstream()
    try:
        inst = start(saker_factory, up.port)
        worker = inst.worker_pids()[0]
        f = tmp_path / "up"
        with open(f, "wb") as out:
            out.write(os.urandom(MB) * 100)
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        before = rss_kib(worker)
        watch = RssWatch(worker)
        r = subprocess.run(["curl", "-sS", "-T", str(f), "-H", "Expect:",
                            "http://127.0.0.1:%d/sink" % inst.port], capture_output=True,
                           timeout=300)
        peak = watch.stop()
        assert r.stdout.decode() == "%d %s" % (100 * MB, digest), r.stderr
        assert peak - before < RSS_GROWTH_MAX_KIB, (before, peak)
    finally:
        up.close()
