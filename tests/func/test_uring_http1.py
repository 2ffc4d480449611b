"""test_http1.py's HTTP/1.1 behaviour (keep-alive, pipelining, bodies,
malformed input, limits, a large response read slowly) with
`transport: io_uring`."""

from test_http1 import *  # noqa: F401,F403
from uring_transport import io_uring_transport  # noqa: F401
