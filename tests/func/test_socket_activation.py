"""systemd socket activation: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES.

systemd (here its own systemd-socket-activate, which does what a .socket
unit does) binds the sockets, starts saker at the first connection and
passes them as descriptors 3, 4, ... with names. An endpoint serves the
sockets named after it instead of binding its URL; the others bind as
usual. What an operator relies on: the connection that started saker is
served; reloads and binary upgrades keep serving the very same socket (it
is never closed, so nothing queued on it is reset), even a reload that
drops the endpoint and one that brings it back; a Unix socket file stays
systemd's; a socket that does not fit its endpoint is a clear start error.
"""

import os
import socket

from rawhttp import read_response, wait_for
from saker_harness import run_sakerctl
from test_reload import Load

# Never bound by saker: TEST-NET-1 is on no interface, so a saker that
# bound the URL instead of taking the passed socket would fail to start.
UNBINDABLE = "http://192.0.2.1:8080"


def config(body="ok", main=True, extra=""):
    text = "workers: 2\nshutdown_timeout: 5s\n%sendpoints:\n" % extra
    if main:
        text += '  main: { url: "%s" }\n' % UNBINDABLE
    text += ('  admin: { url: "http://127.0.0.1:0" }\n'
             'routes:\n  - path: /\n    return: { status: 200, body: "%s" }\n' % body)
    return text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port=None, unix=None, timeout=10):
    if unix:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(unix)
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return read_response(s, timeout=timeout)


def passed_socket(pid, fd=3):
    """What descriptor fd of process pid is: 'socket:[inode]'."""
    return os.readlink("/proc/%d/fd/%d" % (pid, fd))


def start_activated(saker_factory, text, sockets):
    """Starts saker the systemd way and makes the first connection, which
    starts it. Returns the instance and that connection's response."""
    inst = saker_factory(text, activate=sockets, expect_ready=False)
    address = sockets[0][0]
    port = None if address.startswith("/") else int(address.rsplit(":", 1)[1])
    wait_for(lambda: b"Listening on" in inst.stderr_path.read_bytes(), 10,
             message="systemd-socket-activate listening")
    first = get(port=port, unix=address if port is None else None)
    inst.wait_ready(10)
    return inst, first


def test_the_connection_that_starts_saker_is_served_on_the_named_socket(saker_factory):
    port = free_port()
    inst, first = start_activated(saker_factory, config(),
                                  [("127.0.0.1:%d" % port, "main")])
    assert first.status == 200 and first.body == b"ok"
    listeners = {l["endpoint"]: l for l in inst.status()["listeners"]}
    assert listeners["main"]["address"] == "127.0.0.1:%d" % port
    assert listeners["admin"]["port"] not in (0, port)  # bound by saker itself
    assert get(port=listeners["admin"]["port"]).status == 200
    assert "passed by systemd" in inst.error_log()
    assert inst.pid == inst.status()["instance"]["master_pid"]  # exec'd in place


def test_reload_and_upgrade_serve_the_same_socket_and_lose_nothing(saker_factory):
    port = free_port()
    inst, _ = start_activated(saker_factory, config("gen1"), [("127.0.0.1:%d" % port, "main")])
    original = passed_socket(inst.pid)
    with Load(port) as load:
        inst.config_path.write_text(config("gen2"))
        r = run_sakerctl("--shm", inst.shm, "reload", timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        served = load.ok
        wait_for(lambda: load.ok >= served + 20, 10, message="load after the reload")
        r = run_sakerctl("--shm", inst.shm, "upgrade", timeout=90)
        assert r.returncode == 0, r.stdout + r.stderr
        served = load.ok
        wait_for(lambda: load.ok >= served + 20, 10, message="load after the upgrade")
    assert load.failures == [], load.failures[:5]
    master = inst.status()["instance"]["master_pid"]
    assert master != inst.pid
    # The new master got the socket the systemd way, at the same number.
    assert passed_socket(master) == original
    assert get(port=port).body == b"gen2"


def test_a_reload_that_drops_the_endpoint_keeps_the_socket_for_the_next(saker_factory):
    port = free_port()
    inst, _ = start_activated(saker_factory, config(), [("127.0.0.1:%d" % port, "main")])
    original = passed_socket(inst.pid)
    inst.config_path.write_text(config("without", main=False))
    assert run_sakerctl("--shm", inst.shm, "reload", timeout=30).returncode == 0
    assert [l for l in inst.status()["listeners"] if l["endpoint"] == "main"] == []
    assert passed_socket(inst.pid) == original  # still open in the master
    # Still listening (systemd's queue), served again once the endpoint is back.
    waiting = socket.create_connection(("127.0.0.1", port), timeout=10)
    inst.config_path.write_text(config("back"))
    assert run_sakerctl("--shm", inst.shm, "reload", timeout=30).returncode == 0
    with waiting:
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert read_response(waiting, timeout=10).body == b"back"


def test_a_unix_socket_file_stays_systemds(saker_factory, tmp_path):
    path = str(tmp_path / "passed.sock")
    text = config().replace(UNBINDABLE, "unix:%s" % (tmp_path / "not-this.sock"))
    inst, first = start_activated(saker_factory, text, [(path, "main")])
    assert first.status == 200
    main = [l for l in inst.status()["listeners"] if l["endpoint"] == "main"][0]
    assert main["address"] == path
    assert not (tmp_path / "not-this.sock").exists()
    inst.config_path.write_text(config(main=False))
    assert run_sakerctl("--shm", inst.shm, "reload", timeout=30).returncode == 0
    assert inst.stop(timeout=10) == 0
    assert os.path.exists(path)  # systemd made it, systemd removes it


def test_a_socket_that_does_not_fit_its_endpoint_stops_the_start(saker_factory, tmp_path):
    path = str(tmp_path / "passed.sock")
    inst = saker_factory(config(), activate=[(path, "main")], expect_ready=False)
    wait_for(lambda: b"Listening on" in inst.stderr_path.read_bytes(), 10,
             message="systemd-socket-activate listening")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        assert inst.wait_exit(10) == 1
    assert ("endpoint 'main' (%s): the socket systemd passed as 'main' is a Unix socket"
            % UNBINDABLE) in inst.stderr()


def test_sockets_named_after_no_endpoint_are_reported(saker_factory):
    port, other = free_port(), free_port()
    inst, first = start_activated(
        saker_factory, config(),
        [("127.0.0.1:%d" % port, "main"), ("127.0.0.1:%d" % other, "web")])
    assert first.status == 200
    assert "descriptor 4 is named 'web', which no endpoint is: kept, unused" in inst.error_log()


def test_sockets_passed_to_another_process_are_not_taken(saker_factory):
    # A LISTEN_PID that is not saker's: the variables were meant for a
    # parent (a shell script started by systemd); saker binds its URLs.
    text = config().replace(UNBINDABLE, "http://127.0.0.1:0")
    inst = saker_factory(text, env={"LISTEN_PID": "1", "LISTEN_FDS": "1",
                                    "LISTEN_FDNAMES": "main"})
    main = [l for l in inst.status()["listeners"] if l["endpoint"] == "main"][0]
    assert get(port=main["port"]).status == 200
