"""Network namespaces for the fleet test: made, entered and removed.

Every namespace and veth pair is created inside namespaces this module
makes (`ip link add ... netns A type veth peer ... netns B`), so the
machine's own interfaces, routes and addresses are never touched; removing
the namespaces removes the links with them. A thread enters a namespace
with setns(2): the network namespace is a per-thread attribute, so sockets
that thread opens live there while the rest of the test stays outside.
"""

import ctypes
import os
import signal
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def enter(name):
    """Moves the calling thread into namespace `name`."""
    fd = os.open("/run/netns/%s" % name, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns(%s)" % name)
    finally:
        os.close(fd)


def call_in(name, fn, *args):
    """fn(*args) in a thread inside namespace `name`; its result or exception."""
    box = {}

    def run():
        try:
            enter(name)
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(120)
    if "error" in box:
        raise box["error"]
    return box.get("value")


class Namespaces:
    """A set of namespaces sharing a prefix, removed by remove() whatever
    state the test left them in: the processes still in them are killed
    by pid first (`ip netns pids`), then the namespaces deleted."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.names = []

    def name(self, short):
        return "%s-%s" % (self.prefix, short)

    def add(self, short):
        full = self.name(short)
        ip("netns", "add", full)
        self.names.append(full)
        ip("-n", full, "link", "set", "lo", "up")
        return full

    def link(self, a, a_addr, b, b_addr, a_dev, b_dev):
        """A veth pair between namespaces a and b, addressed /24 each side."""
        ip("link", "add", a_dev, "netns", self.name(a), "type", "veth",
           "peer", "name", b_dev, "netns", self.name(b))
        for ns, dev, addr in ((a, a_dev, a_addr), (b, b_dev, b_addr)):
            ip("-n", self.name(ns), "addr", "add", addr + "/24", "dev", dev)
            ip("-n", self.name(ns), "link", "set", dev, "up")

    def pids(self, full):
        r = subprocess.run(["ip", "netns", "pids", full], capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def remove(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for full in self.names:
                for pid in self.pids(full):
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(self.pids(n) for n in self.names):
                time.sleep(0.05)
        for full in self.names:
            subprocess.run(["ip", "netns", "del", full], capture_output=True)
        self.names = []
