"""test_limits.py's limits (timeouts, minimum data rates, header limits,
backpressure, connection limits) with `transport: io_uring`."""

from test_limits import *  # noqa: F401,F403
import pytest

from uring_transport import io_uring_transport  # noqa: F401

# A whole file re-run on the other transport: the plain build asserts it
# (scripts/test), the sanitized one runs test_uring.py's own tests.
pytestmark = pytest.mark.transport
