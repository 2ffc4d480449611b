"""test_limits.py's limits (timeouts, minimum data rates, header limits,
backpressure, connection limits) with `transport: io_uring`."""

from test_limits import *  # noqa: F401,F403
from uring_transport import io_uring_transport  # noqa: F401
