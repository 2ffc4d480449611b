"""pytest wiring for the functional tests: the saker_factory fixture.

See saker_harness.py for the API. Binaries: $SAKER and $SAKERCTL.
"""
import os
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from saker_harness import Harness, saker_binary, sakerctl_binary  # noqa: E402


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
