"""idle_common.py - what bench's idle-connection clients share.

fail() reports on stdout ("error: ..."), where the drivers read it, and
exits 1; raise_nofile() makes room for COUNT sockets; connect_nonblocking()
starts one TCP connection; handshake_step() drives a TLS handshake; hold() prints "ready N" and keeps the sockets
open until stdin reaches EOF or SIGTERM arrives.
"""

import errno
import os
import resource
import select
import signal
import socket
import ssl
import sys


def fail(msg):
    sys.stdout.write("error: %s\n" % msg)
    sys.stdout.flush()
    sys.exit(1)


def raise_nofile(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            fail("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def connect_nonblocking(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rc = s.connect_ex((host, port))
    if rc not in (0, errno.EINPROGRESS):
        fail("connect: %s" % os.strerror(rc))
    return s


def connect_error(s):
    """The outcome of a non-blocking connect, once the socket is writable."""
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        fail("connect: %s" % os.strerror(err))


def handshake_step(ep, fd, s):
    """One step of a non-blocking TLS handshake on s (registered in ep as
    fd): True once it is done; False while it waits, with ep set to wake
    for what it waits on."""
    try:
        s.do_handshake()
        return True
    except ssl.SSLWantReadError:
        ep.modify(fd, select.EPOLLIN)
    except ssl.SSLWantWriteError:
        ep.modify(fd, select.EPOLLOUT)
    except (ssl.SSLError, OSError) as e:
        fail("TLS handshake: %s" % e)
    return False


def hold(sockets):
    sys.stdout.write("ready %d\n" % len(sockets))
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        for s in sockets:
            s.close()
