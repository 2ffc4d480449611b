"""test_reload.py's reloads (nothing lost under load, workers replaced)
with `transport: io_uring`."""

from test_reload import *  # noqa: F401,F403
import pytest

from uring_transport import io_uring_transport  # noqa: F401

# A whole file re-run on the other transport: the plain build asserts it
# (scripts/test), the sanitized one runs test_uring.py's own tests.
pytestmark = pytest.mark.transport
