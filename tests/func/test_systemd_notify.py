"""The master's side of systemd's Type=notify protocol.

systemd hands a service $NOTIFY_SOCKET, a Unix datagram socket, and reads
state changes from it: READY=1 once the workers serve, RELOADING=1 and then
READY=1 around a reload, STOPPING=1 at a stop. The test plays systemd's
part with a real datagram socket.
"""

import socket

from rawhttp import wait_for


CONFIG = """workers: 2
endpoints:
  main: { url: "http://127.0.0.1:0" }
routes:
  - path: /
    return: { status: 200, body: "ok" }
"""


class NotifySocket:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.received = []

    def drain(self):
        while True:
            try:
                self.received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.received

    def saw(self, message):
        return message in self.drain()


def test_ready_reloading_and_stopping_are_announced(saker_factory, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    inst = saker_factory(CONFIG, env={"NOTIFY_SOCKET": notify.path})
    wait_for(lambda: notify.saw("READY=1"), 5, message="READY=1 after the workers serve")
    assert inst.status()["instance"]["state"] == "running"
    assert all(w["state"] == "running" for w in inst.workers())

    notify.received.clear()
    before = inst.status()["reload"]["count"]
    inst.reload()
    wait_for(lambda: inst.status()["reload"]["count"] > before, 10, message="reload done")
    wait_for(lambda: "READY=1" in notify.drain(), 5, message="READY=1 after the reload")
    assert notify.received.index("RELOADING=1") < notify.received.index("READY=1")

    assert inst.stop(timeout=10) == 0
    assert notify.saw("STOPPING=1")


def test_abstract_notify_socket(saker_factory, tmp_path):
    """systemd may name an abstract socket: '@' stands for the leading NUL."""
    name = "saker-test-%d" % id(tmp_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    saker_factory(CONFIG, env={"NOTIFY_SOCKET": "@" + name})
    assert sock.recv(4096) == b"READY=1"
    sock.close()
