"""Modules: the samples of modules/ (built by `make check` against
include/saker/module.h) loaded into a real saker and driven with real
clients (curl, h2load, python3-websockets) over HTTP/1.1, HTTP/2 and TLS;
modules saker must refuse, at `saker -t` and at a reload that leaves the
old generation serving; a module rebuilt in place and picked up by a
reload; and the installed header and pkg-config file building hello.c
out of tree.

The samples are found in $SAKER's build directory (modules/*.so), their
sources under $SRCDIR (or the tree this file is in).
"""

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from certs import make_ca, make_leaf, sh
from rawhttp import wait_for
from saker_harness import curl, run_sakerctl, saker_binary, worker_rss_kb

BUILD = Path(saker_binary()).resolve().parent
SRC = Path(os.environ.get("SRCDIR") or Path(__file__).resolve().parents[2])
MB = 1024 * 1024


def so(name):
    path = BUILD / "modules" / ("%s.so" % name)
    if not path.exists():
        pytest.fail("%s is missing: `make check` builds the sample modules" % path,
                    pytrace=False)
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("modcerts")
    make_ca(d, "ca", "saker-module-ca")
    make_leaf(d, "leaf", "DNS:localhost,IP:127.0.0.1")
    return d


def modules_yaml(*entries):
    out = "modules:\n"
    for path, config in entries:
        out += "  - path: %s\n" % path
        if config:
            out += "    config: %s\n" % config
    return out


SAMPLES_ROUTES = """routes:
  - path: /hello
    module: { handler: hello, text: "Hello from a module\\n" }
  - path: /echo
    max_request_body_size: 2GiB
    module: { handler: echo }
  - path: /delay
    module: { handler: delay, ms: 50ms, max: 5s }
  - path: /counter
    module: { handler: json_counter }
  - path: /ws
    module: { handler: ws_echo, max_frame: 1MiB }
  - path: /
    return: { status: 200, body: "built-in" }
"""


def samples_config(certs=None, workers=1, start=None):
    url = "https://127.0.0.1:0" if certs else "http://127.0.0.1:0"
    tls = ""
    if certs is not None:
        tls = "certificates:\n  default: { path: %s/leaf.pem, key: %s/leaf.key }\n" % (
            certs, certs)
    mods = modules_yaml((so("hello"), None), (so("echo"), None), (so("delay"), None),
                        (so("json_counter"), "{ start: %d }" % start if start else None),
                        (so("ws_echo"), None))
    return ("workers: %d\n%sendpoints:\n  main: { url: \"%s\" }\n%s%s"
            % (workers, tls, url, mods, SAMPLES_ROUTES))


def proto_flags(proto, tls):
    if proto == "h1":
        return ["--http1.1"]
    return ["--http2"] if tls else ["--http2-prior-knowledge"]


# ---- the samples over h1, h2 and TLS -------------------------------------------

@pytest.mark.parametrize("proto", ["h1", "h2", "tls-h1", "tls-h2"])
def test_samples_answer_over_every_protocol(saker_factory, certs, proto):
    tls = certs if proto.startswith("tls") else None
    inst = saker_factory(samples_config(tls))
    flags = proto_flags(proto.replace("tls-", ""), tls)

    rc, body, head = curl(inst, "/hello", *flags, certs=tls)
    assert rc == 0, head
    assert body == b"Hello from a module\n"
    assert "content-type: text/plain" in head.lower()
    assert ("HTTP/2 200" if proto.endswith("h2") else "HTTP/1.1 200") in head

    payload = os.urandom(300000)
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "-o", "-"] + flags +
                       (["--cacert", "%s/ca.pem" % tls] if tls else []) +
                       ["--data-binary", "@-", "-H", "Content-Type: application/x-test",
                        "%s://127.0.0.1:%d/echo" % ("https" if tls else "http", inst.port)],
                       input=payload, capture_output=True, timeout=40)
    assert r.returncode == 0, r.stderr
    assert r.stdout == payload

    rc, body, head = curl(inst, "/delay?ms=120", *flags, certs=tls)
    assert rc == 0, head
    assert body == b"waited 120 ms\n"

    rc, body, head = curl(inst, "/counter", *flags, certs=tls)
    assert rc == 0, head
    assert b'"worker":0' in body and b'"count":0' in body
    assert "application/json" in head


def test_hello_under_h2load(saker_factory):
    inst = saker_factory(samples_config())
    r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10",
                        "http://127.0.0.1:%d/hello" % inst.port],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "2000 succeeded" in r.stdout, r.stdout
    assert "status codes: 2000 2xx" in r.stdout, r.stdout


# ---- echo: a large body at flat memory -----------------------------------------

@pytest.mark.memory
@pytest.mark.parametrize("proto", ["h1", "h2"])
def test_echo_streams_100_mib_at_flat_memory(saker_factory, tmp_path, proto):
    inst = saker_factory(samples_config())
    src = tmp_path / "big"
    block = os.urandom(MB)
    digest = hashlib.sha256()
    with open(src, "wb") as f:
        for i in range(100):
            chunk = block[i:] + block[:i]
            f.write(chunk)
            digest.update(chunk)
    before = worker_rss_kb(inst)
    # -T streams the file (curl does not load it), with Expect: 100-continue
    # over HTTP/1.1: the 100 comes when the module asks for the body.
    cmd = ["curl", "-sS", "--max-time", "120", "-X", "POST", "-T", str(src), "-o", "-"] + \
        proto_flags(proto, None) + ["http://127.0.0.1:%d/echo" % inst.port]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = hashlib.sha256()
    total = 0
    peak = before
    while True:
        chunk = proc.stdout.read(1 << 20)
        if not chunk:
            break
        got.update(chunk)
        total += len(chunk)
        peak = max(peak, worker_rss_kb(inst))
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert total == 100 * MB
    assert got.hexdigest() == digest.hexdigest()
    # One piece in flight and the body paused meanwhile: the worker grows
    # by its buffers, never by the body.
    assert peak - before < 24 * 1024, "worker RSS grew from %d to %d KiB" % (before, peak)


# ---- delay: the loop is never blocked ------------------------------------------

def test_delay_answers_later_without_blocking_the_worker(saker_factory):
    inst = saker_factory(samples_config())
    done = {}

    def slow():
        done["slow"] = curl(inst, "/delay?ms=1500")
        done["slow_at"] = time.monotonic()

    t = threading.Thread(target=slow)
    t.start()
    # The one worker serves other requests while the timer runs.
    wait_for(lambda: inst.status()["totals"]["connections_open"] >= 1, 5,
             message="the slow request is in")
    rc, body, head = curl(inst, "/hello")
    hello_at = time.monotonic()
    assert rc == 0 and body == b"Hello from a module\n"
    t.join(30)
    assert done["slow"][0] == 0, done["slow"][2]
    assert done["slow"][1] == b"waited 1500 ms\n"
    assert hello_at < done["slow_at"]


def test_delay_abandoned_by_its_client_stops_its_timer(saker_factory):
    inst = saker_factory(samples_config())
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
        s.sendall(b"GET /delay?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n")
        s.close()
    wait_for(lambda: inst.status()["totals"]["connections_open"] == 0, 5,
             message="the abandoned exchanges are gone")
    # Answered after every timer those requests started was due: had one
    # fired on its freed exchange, the worker would have died meanwhile.
    pid = inst.worker_pids()[0]
    rc, body, _ = curl(inst, "/delay?ms=400")
    assert rc == 0 and body == b"waited 400 ms\n"
    assert inst.worker_pids() == [pid]
    assert inst.status()["master"]["worker_deaths"] == 0


# ---- json_counter: per-worker state and a shm counter --------------------------

def counter_total(inst):
    for c in inst.status()["module_counters"]:
        if c["module"] == "json_counter" and c["name"] == "requests":
            return c["value"]
    return None


def test_json_counter_state_and_shm_counter_survive_reloads(saker_factory):
    inst = saker_factory(samples_config(start=100))
    rc, body, _ = curl(inst, "/counter")
    assert b'"count":100' in body
    for expected in (101, 102, 103):
        rc, body, _ = curl(inst, "/counter", "-X", "POST")
        assert rc == 0 and (b'"count":%d' % expected) in body
    rc, body, head = curl(inst, "/counter", "-X", "DELETE")
    assert "405" in head.split("\n")[0]
    assert counter_total(inst) == 4
    metrics = inst.metrics_text()
    assert 'saker_module_counter_total{module="json_counter",counter="requests"} 4' in metrics
    out = run_sakerctl("--shm", inst.shm, "status")
    assert "json_counter.requests 4" in out.stdout

    # A reload: the new workers count from the config's start again, the
    # shm counter goes on from 4.
    r = run_sakerctl("--shm", inst.shm, "reload", timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    rc, body, _ = curl(inst, "/counter", "-X", "POST")
    assert b'"count":101' in body and b'"generation":2' in body
    wait_for(lambda: counter_total(inst) == 5, 10, message="the counter went on")


# ---- ws_echo: a WebSocket endpoint on the tunnel -------------------------------

async def ws_session(uri, ssl_context=None):
    import websockets
    async with websockets.connect(uri, ssl=ssl_context, max_size=4 * MB) as ws:
        await ws.send("hello, tunnel")
        text = await ws.recv()
        big = os.urandom(600000)
        await ws.send(big)
        echoed = await ws.recv()
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)
        await ws.send([b"frag", b"mented"])  # a fragmented message
        joined = await ws.recv()
        return text, big == echoed, joined


@pytest.mark.parametrize("tls", [False, True])
def test_ws_echo_with_python_websockets(saker_factory, certs, tls):
    pytest.importorskip("websockets", reason="apt-get install python3-websockets")
    import ssl
    inst = saker_factory(samples_config(certs if tls else None))
    ctx = None
    if tls:
        ctx = ssl.create_default_context(cafile="%s/ca.pem" % certs)
    uri = "%s://127.0.0.1:%d/ws" % ("wss" if tls else "ws", inst.port)
    text, big_ok, joined = asyncio.run(asyncio.wait_for(ws_session(uri, ctx), 60))
    assert text == "hello, tunnel"
    assert big_ok
    assert joined == b"fragmented"
    wait_for(lambda: inst.status()["totals"]["connections_open"] == 0, 5,
             message="the closed tunnel is gone")
    # Not a WebSocket request: the module answers 426 itself.
    rc, body, head = curl(inst, "/ws", certs=certs if tls else None)
    assert "426" in head.split("\n")[0]


def test_ws_echo_refuses_an_unmasked_frame(saker_factory):
    inst = saker_factory(samples_config())
    s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455 1.3
    s.sendall(b"\x81\x02hi")  # a client frame without a mask
    s.settimeout(5)
    rest = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
    except ConnectionResetError:
        pass
    assert rest == b""  # dropped, nothing echoed
    s.close()


# ---- refused modules -----------------------------------------------------------

REFUSALS = [
    ("bad_abi", None, "4:11", "built for module ABI 1001, this saker has ABI 1"),
    ("no_symbol", None, "4:11", "no symbol 'saker_module'"),
    ("undefined", None, "4:11", "undefined symbol: saker_exchange_no_such_call"),
    ("json_counter", "{ start: 2000000000 }", "4:11", "load failed: start: 2000000000 is over"),
    ("json_counter", "{ strat: 1 }", "5:15", "unknown key 'strat'; did you mean 'start'?"),
    ("json_counter", "{ start: many }", "5:22", "start: expected a non-negative integer"),
]


@pytest.mark.parametrize("name,config,where,message", REFUSALS,
                         ids=["abi", "symbol", "undefined", "load", "key", "type"])
def test_a_bad_module_is_refused_by_t_and_by_reload(saker_factory, tmp_path, name, config,
                                                    where, message):
    bad = "endpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n%sroutes:\n" \
          "  - path: /\n    return: { status: 200, body: \"old\" }\n" % modules_yaml(
              (so(name), config))
    check = tmp_path / "check.yaml"
    check.write_text(bad)
    r = subprocess.run([saker_binary(), "-t", "-c", str(check)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1
    assert "check.yaml:%s: module '%s': " % (where, so(name)) in r.stderr, r.stderr
    assert message in r.stderr, r.stderr

    inst = saker_factory(samples_config())
    inst.config_path.write_text(bad)
    out = run_sakerctl("--shm", inst.shm, "reload", timeout=30)
    assert out.returncode != 0
    said = out.stdout + out.stderr
    assert str(so(name)) in said and message in said, said
    st = inst.status()
    assert st["instance"]["generation"] == 1 and st["instance"]["state"] == "running"
    rc, body, _ = curl(inst, "/hello")
    assert rc == 0 and body == b"Hello from a module\n"


# ---- out of tree: install, build hello.c, reload a rebuilt module --------------

def build_hello(out, cflags, text):
    r = subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"] + cflags +
                       ["-DHELLO_TEXT=\"%s\\n\"" % text, str(SRC / "modules" / "hello.c"),
                        "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_installed_header_builds_hello_out_of_tree_and_a_reload_picks_up_a_rebuild(
        saker_factory, tmp_path):
    dest = tmp_path / "dest"
    r = subprocess.run(["make", "-C", str(BUILD), "install", "DESTDIR=%s" % dest],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    pcs = list(dest.rglob("saker-module.pc"))
    headers = list(dest.rglob("saker/module.h"))
    assert len(pcs) == 1 and len(headers) == 1
    env = dict(os.environ, PKG_CONFIG_PATH=str(pcs[0].parent), PKG_CONFIG_SYSROOT_DIR=str(dest))
    r = subprocess.run(["pkg-config", "--cflags", "saker-module"], capture_output=True,
                       text=True, env=env, timeout=10)
    assert r.returncode == 0, r.stderr
    cflags = r.stdout.split()
    assert cflags == ["-I%s" % headers[0].parent.parent]

    # Only the installed header: the source tree is not on the include path.
    module = tmp_path / "hello.so"
    build_hello(module, cflags, "first build")
    inst = saker_factory("workers: 1\nendpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n"
                         "%sroutes:\n  - path: /\n    module: { handler: hello }\n"
                         % modules_yaml((module, None)))
    rc, body, _ = curl(inst, "/")
    assert body == b"first build\n"

    # Rebuilt and copied over in place: same path, same inode.
    inode = module.stat().st_ino
    build_hello(tmp_path / "hello2.so", cflags, "second build")
    shutil.copyfile(tmp_path / "hello2.so", module)
    assert module.stat().st_ino == inode
    r = run_sakerctl("--shm", inst.shm, "reload", timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    rc, body, _ = curl(inst, "/")
    assert body == b"second build\n"


# ---- backend: a descriptor watched on the loop, bounded by a timer ------------

class LineServer:
    """A TCP service on 127.0.0.1: reads a line, answers reply(line) and
    closes; with reply None it reads and never answers."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        with self.sock:  # closed here, by the only thread that uses it
            while self.accept_one():
                pass

    def accept_one(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return False  # shut down by close()
        conn.settimeout(10)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        if self.reply is None:
            self.held.append(conn)
            return True
        conn.sendall(self.reply(data))
        conn.close()
        return True

    def close(self):
        # Never close the socket under the thread blocked in its accept():
        # the descriptor's number goes to the next socket the process opens
        # (a later test's upstream), and an accept() the kernel restarts
        # (the process stopped and continued) takes that socket's
        # connections. The shutdown wakes the accept; the thread closes.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the thread ended (and closed it) already
        self.thread.join(30)
        assert not self.thread.is_alive(), "the line server's thread did not stop"
        for c in self.held:
            c.close()


def backend_config(port, timeout="2s"):
    return ("workers: 1\nendpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n%s"
            "routes:\n  - path: /hello\n    module: { handler: hello }\n"
            "  - path: /\n    module: { handler: backend, address: \"127.0.0.1:%d\", "
            "timeout: %s }\n" % (modules_yaml((so("hello"), None), (so("backend"), None)),
                                 port, timeout))


def test_backend_asks_a_service_without_blocking(saker_factory):
    server = LineServer(lambda line: b"value of " + line)
    try:
        inst = saker_factory(backend_config(server.port))
        for proto in ("h1", "h2"):
            rc, body, head = curl(inst, "/users/42", *proto_flags(proto, None))
            assert rc == 0, head
            assert body == b"value of /users/42\n"
        # Many at once on the one worker: every answer is its own.
        results = {}

        def ask(i):
            results[i] = curl(inst, "/k%d" % i)[1]

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == {i: b"value of /k%d\n" % i for i in range(20)}
    finally:
        server.close()


def test_backend_timeout_and_refusal(saker_factory):
    silent = LineServer(None)
    try:
        inst = saker_factory(backend_config(silent.port, "300ms"))
        rc, body, head = curl(inst, "/x")
        assert head.startswith("HTTP/1.1 504")
        rc, body, head = curl(inst, "/hello")  # the worker was never blocked
        assert body == b"Hello, world!\n"
    finally:
        silent.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    inst2 = saker_factory(backend_config(port))
    rc, body, head = curl(inst2, "/x")
    assert head.startswith("HTTP/1.1 502")


def test_backend_address_is_checked_in_the_master(tmp_path):
    check = tmp_path / "check.yaml"
    check.write_text(backend_config(1).replace("127.0.0.1:1", "nowhere:80"))
    r = subprocess.run([saker_binary(), "-t", "-c", str(check)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1
    assert ("check.yaml:11:13: module '%s': handler 'backend': address: expected IPv4:PORT, "
            "got 'nowhere:80'" % so("backend")) in r.stderr, r.stderr


# ---- a module that crashes or blocks: its worker only ----------------------------

def test_a_crashing_module_takes_down_only_its_worker(saker_factory):
    # A crash as in production: under ASan, no report of the fault asked for.
    no_report = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":handle_segv=0"}
    inst = saker_factory("workers: 1\nworker_watchdog_timeout: 1s\n"
                         "endpoints:\n  main: { url: \"http://127.0.0.1:0\" }\n%s"
                         "routes:\n  - path: /crash\n    module: { handler: crash }\n"
                         "  - path: /block\n    module: { handler: block }\n"
                         "  - path: /\n    module: { handler: hello }\n"
                         % modules_yaml((so("crash"), None), (so("hello"), None)),
                         env=no_report)
    first = inst.worker_pids()
    rc, _, _ = curl(inst, "/crash", timeout=10)
    assert rc != 0  # the connection died with its worker
    wait_for(lambda: inst.status()["master"]["worker_deaths"] == 1, 10,
             message="the death is counted")
    wait_for(lambda: [w["state"] for w in inst.workers()] == ["running"] and
             inst.worker_pids() != first, 10, message="a new worker serves")
    assert curl(inst, "/")[1] == b"Hello, world!\n"

    rc, _, _ = curl(inst, "/block", timeout=20)
    assert rc != 0
    wait_for(lambda: inst.status()["master"]["watchdog_kills"] == 1, 15,
             message="the watchdog killed the blocked worker")
    wait_for(lambda: curl(inst, "/", timeout=5)[1] == b"Hello, world!\n", 15,
             message="a new worker serves")
    assert inst.master_pid == inst.pid


# ---- the request as a module sees it ---------------------------------------------

@pytest.fixture(scope="module")
def client_certs(certs):
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
       "-keyout cca.key -out cca.pem -subj /CN=saker-client-ca -days 2", certs)
    (certs / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key "
       "-out client.csr -subj /CN=alice/O=Example", certs)
    sh("openssl x509 -req -in client.csr -CA cca.pem -CAkey cca.key -CAcreateserial -days 2 "
       "-out client.pem -extfile client.ext", certs)
    return certs


def open_files(pid):
    names = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            names.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass  # closed meanwhile
    return names


@pytest.mark.parametrize("proto", ["h1", "h2", "tls-h1", "tls-h2"])
def test_the_request_as_a_module_sees_it(saker_factory, client_certs, proto):
    tls = client_certs if proto.startswith("tls") else None
    url = "https://127.0.0.1:0" if tls else "http://127.0.0.1:0"
    extra = ("    client_certificate: { mode: allow, ca: %s/cca.pem }\n" % tls) if tls else ""
    head = ("certificates:\n  default: { path: %s/leaf.pem, key: %s/leaf.key }\n"
            % (tls, tls)) if tls else ""
    blob = client_certs / "blob.bin"
    if not blob.exists():
        blob.write_bytes(os.urandom(3 * MB + 17))
    inst = saker_factory("workers: 1\n%sendpoints:\n  main:\n    url: \"%s\"\n%s%s"
                         "routes:\n  - path: /file\n    module: { handler: file, path: %s }\n"
                         "  - path: /\n    module: { handler: inspect }\n"
                         % (head, url, extra, modules_yaml((so("inspect"), None)), blob))
    args = proto_flags(proto.replace("tls-", ""), tls) + [
        "--path-as-is", "-H", "X-Probe: one two", "-H", "Host: Example.COM:8080"]
    if tls:
        args += ["--cert", str(tls / "client.pem"), "--key", str(tls / "client.key")]
    rc, body, head_text = curl(inst, "/a/./b/%7Ex?q=1&r=%20", *args, certs=tls)
    assert rc == 0, head_text
    lines = body.decode().splitlines()
    assert "method: GET" in lines
    assert "target: /a/./b/%7Ex?q=1&r=%20" in lines
    assert "path: /a/b/~x" in lines  # normalised once, for routing and handlers
    assert "query: q=1&r=%20" in lines
    assert "host: example.com" in lines
    assert ("version: 20" if proto.endswith("h2") else "version: 11") in lines
    assert "x-probe: one two" in lines
    assert any(l.lower() == "header x-probe: one two" for l in lines), lines
    assert "peer: 127.0.0.1" in lines
    assert ("subject: O=Example,CN=alice" if tls else "subject: (none)") in lines
    # A file as the body, from a descriptor the module hands over.
    rc, body, head_text = curl(inst, "/file", *proto_flags(proto.replace("tls-", ""), tls),
                               certs=tls)
    assert rc == 0, head_text
    assert body == blob.read_bytes()
    pid = inst.worker_pids()[0]
    wait_for(lambda: str(blob) not in open_files(pid), 5,
             message="the file's descriptor is closed once sent")
