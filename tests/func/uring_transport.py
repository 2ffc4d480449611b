"""What the io_uring transport's test files share: the fixture that runs
a test's instances with `transport: io_uring` (through the harness's
SAKER_TEST_TRANSPORT), and how to tell that a worker serves through a
ring: its io_uring descriptor, seen in /proc like any other."""

import os

import pytest

# test_uring's fallback test turns io_uring off for the whole machine for
# a moment: every test that looks for a ring runs in its group, one after
# the other.
GROUP = pytest.mark.xdist_group("io_uring_disabled")


@pytest.fixture(autouse=True)
def io_uring_transport(monkeypatch):
    monkeypatch.setenv("SAKER_TEST_TRANSPORT", "io_uring")


def has_io_uring(pid):
    fds = "/proc/%d/fd" % pid
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == "anon_inode:[io_uring]":
                return True
        except OSError:
            continue
    return False
