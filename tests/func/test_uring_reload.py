"""test_reload.py's reloads (nothing lost under load, workers replaced)
with `transport: io_uring`."""

from test_reload import *  # noqa: F401,F403
from uring_transport import io_uring_transport  # noqa: F401
