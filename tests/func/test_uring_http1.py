"""test_http1.py's HTTP/1.1 behaviour (keep-alive, pipelining, bodies,
malformed input, limits, a large response read slowly) with
`transport: io_uring`."""

from test_http1 import *  # noqa: F401,F403
import pytest

from uring_transport import io_uring_transport  # noqa: F401

# A whole file re-run on the other transport: the plain build asserts it
# (scripts/test), the sanitized one runs test_uring.py's own tests.
pytestmark = pytest.mark.transport
