"""pytest wiring for the functional tests: the saker_factory fixture, and
sanitizer reports turned into test failures.

See saker_harness.py for the API. Binaries: $SAKER and $SAKERCTL.

Against an ASan/UBSan build (scripts/test runs the suite against one too),
every process a test starts (saker, its workers, sakerctl) writes its
sanitizer reports into a directory of that test's own (log_path, added to
whatever $ASAN_OPTIONS, $UBSAN_OPTIONS and $LSAN_OPTIONS say); a report
there, or one in an instance's stderr or error log, fails the test that
produced it. Against a normal build the variables are ignored.
"""
import os
import subprocess
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from saker_harness import (Harness, sanitized, saker_binary,  # noqa: E402
                           sakerctl_binary, sanitizer_reports_in)


def pytest_configure(config):
    # Tests that use what only one instance can have (the default segment,
    # port 5000) share a group: a parallel run (SAKER_FUNC_JOBS, xdist's
    # --dist loadgroup) runs them one after the other.
    config.addinivalue_line("markers", "xdist_group(name): run in one worker with the group")
    config.addinivalue_line("markers", "timing: wall-clock behaviour or sustained load, "
                            "asserted by the plain build only")
    config.addinivalue_line("markers", "memory: resident memory bounds, asserted by the "
                            "plain build only")


def pytest_collection_modifyitems(config, items):
    # The sanitizers make everything two to three times slower: a test
    # whose point is how long something takes, or how much passes under
    # load, says nothing more there and costs the suite's time budget; and
    # ASan's shadow memory and quarantine make a resident-memory bound say
    # nothing. The plain build (scripts/test's first pass) runs them.
    try:
        if not sanitized():
            return
    except (OSError, RuntimeError):
        return
    skip = pytest.mark.skip(reason="timing or memory test: asserted by the plain build")
    for item in items:
        if any(item.get_closest_marker(m) is not None for m in ("timing", "memory")):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def sanitizer_log(tmp_path_factory, monkeypatch):
    d = tmp_path_factory.mktemp("sanitizer")
    d.chmod(0o1777)  # sakerctl may run as another user (nobody)
    prefix = str(d / "report")
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        base = os.environ.get(var, "")
        monkeypatch.setenv(var, (base + ":" if base else "") + "log_path=" + prefix)
    yield
    reports = sorted(d.glob("report.*"))
    if reports:
        text = "\n".join("%s:\n%s" % (p.name, p.read_text(errors="replace")[-4000:])
                         for p in reports[:3])
        pytest.fail("%d sanitizer report(s):\n%s" % (len(reports), text), pytrace=False)


@pytest.fixture(scope="module")
def handlers_built(tmp_path_factory):
    """Skips, saying why, against a build without the test handler kinds
    (tests/handlers: configure --enable-test-handlers, as scripts/test)."""
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.yaml").write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\n"
                                  "routes:\n  - path: /\n    test_stream: {bytes: 1}\n")
    r = subprocess.run([saker_binary(), "-t", "-c", str(d / "probe.yaml")],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip("saker was built without --enable-test-handlers: %s" % r.stderr.strip())


@pytest.fixture
def saker_factory(tmp_path):
    """Yields start(config_yaml, *, args=(), env=None, expect_ready=True,
    timeout=10.0) -> Instance; stops every instance at teardown."""
    try:
        saker_binary()
        sakerctl_binary()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    harness = Harness(tmp_path)
    yield harness.start
    leftovers = harness.cleanup()
    assert not leftovers, "saker processes left running after teardown: %s" % leftovers
    for inst in harness.instances:
        found = sanitizer_reports_in(inst.messages())
        if found:
            pytest.fail("sanitizer report in saker's stderr or error log:\n%s" % found,
                        pytrace=False)
