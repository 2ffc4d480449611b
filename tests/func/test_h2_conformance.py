"""HTTP/2 conformance, case by case: every case of h2spec's "http2"
(RFC 7540/9113 sections 3.5 to 8.2), "hpack" (RFC 7541) and "generic"
sections, sending the same frames byte for byte where h2spec writes raw
bytes, and accepting what h2spec accepts: where a stream error is asked
for, RST_STREAM with one of the codes, or GOAWAY with one of them, or a
close; where a connection error is asked for, GOAWAY with one of the codes,
or a close. A GOAWAY or RST_STREAM with another code fails here, where
h2spec would go on waiting. Each test is named after its section and what
it checks; the tests number the cases of a section in h2spec's order.

Where RFC 9113 (which obsoletes RFC 7540) reworded a rule that h2spec
checks as RFC 7540 wrote it, the test says which rule saker follows and
why (5.1: frames after END_STREAM). RFC 9113 section 5.4.1 lets any
stream error be a connection error, as h2spec accepts; nghttp2 takes that
liberty for some (a PRIORITY of the wrong length, a stream past the
concurrency limit, a stream depending on itself).

One saker serves the module: a clear-text endpoint (HTTP/1.1 and HTTP/2
with prior knowledge, as h2spec's -p) and a TLS one (ALPN h2, as h2spec's
-t); a handful of cases run on both. Every wait has a deadline; none
sleeps.
"""

import socket
import ssl
import struct
import tempfile

import pytest

from certs import make_ca, make_leaf
from h2client import (CANCEL, NO_ERROR, PREFACE, PROTOCOL_ERROR, REFUSED_STREAM, STREAM_CLOSED,
                      H2Client)
from hyperframe.frame import (DataFrame, GoAwayFrame, HeadersFrame, PingFrame, PriorityFrame,
                              PushPromiseFrame, RstStreamFrame, SettingsFrame)
from saker_harness import Harness, sanitizer_reports_in

FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR = 3, 6, 9
DEADLINE = 5  # h2spec waits 2 s; a loaded machine gets more

# Frame types and flags, for the frames h2spec writes as raw bytes.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = 0, 1, 2, 3, 4, 5, 6, 7
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 1, 2, 3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 4, 5, 6

DUMMY = "x" * 4000  # h2spec's DummyHeaders: values of its max-header-length, 4000
INDEX = b"<h1>conformance</h1>\n" * 4  # "/": a body of more than 5 bytes, as h2spec wants


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2conf")
    make_ca(d, "ca", "saker-h2conf-ca")
    make_leaf(d, "leaf", "DNS:localhost,IP:127.0.0.1")
    (d / "root").mkdir()
    (d / "root" / "index.html").write_bytes(INDEX)
    conf = ("certificates:\n  default: { path: %s/leaf.pem, key: %s/leaf.key }\n"
            "endpoints:\n"
            "  clear: { url: \"http://127.0.0.1:0\" }\n"
            "  tls: { url: \"https://127.0.0.1:0\" }\n"
            "routes:\n  - path: /\n    static: { root: %s/root }\n" % (d, d, d))
    with tempfile.TemporaryDirectory() as tmp:
        harness = Harness(tmp)
        inst = harness.start(conf)
        inst.ports_by_endpoint = {l["endpoint"]: l["port"] for l in inst.status()["listeners"]}
        inst.ca = d / "ca.pem"
        yield inst
        leftovers = harness.cleanup()
        assert not leftovers, leftovers
        found = sanitizer_reports_in(inst.messages())
        assert not found, "sanitizer report in saker's stderr or error log:\n%s" % found


# ---- h2spec's connection, handshake and verifiers ---------------------------------

def raw(ftype, flags, sid, payload, length=None):
    """A frame as bytes, its length field length (default: the payload's)."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings_payload(*pairs):
    return b"".join(struct.pack(">HI", k, v) for k, v in pairs)


def dial(server, tls=False, preface=True):
    """A connection as h2spec's Dial: clear text with prior knowledge, or
    TLS with ALPN h2; its window 65,535 as h2spec's (it never needs more)."""
    if tls:
        return H2Client(server.ports_by_endpoint["tls"], tls_ca=server.ca, window=65535,
                        preface=preface, timeout=DEADLINE)
    return H2Client(server.ports_by_endpoint["clear"], window=65535, preface=preface,
                    timeout=DEADLINE)


def handshake(server, tls=False):
    """h2spec's Handshake: the preface and SETTINGS(INITIAL_WINDOW_SIZE
    65,535), then the server's SETTINGS and its ACK of ours."""
    c = dial(server, tls, preface=False)
    c.send(PREFACE + raw(SETTINGS, 0, 0, settings_payload((SETTINGS_INITIAL_WINDOW_SIZE, 65535))))
    c.wait(lambda: c.server_settings_seen and c.settings_acks >= 1, DEADLINE, "handshake")
    return c


def common_headers(c, method="GET", path="/"):
    """h2spec's CommonHeaders, in its order."""
    return [(":method", method), (":scheme", c.scheme), (":path", path),
            (":authority", c.authority)]


def encode(c, fields):
    return c.encoder.encode(list(fields))


def headers(c, sid, fields, end_stream=True, end_headers=True, **kw):
    flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
    c.send_frame(HeadersFrame(sid, data=encode(c, fields), flags=flags, **kw))


def headers_block(c, sid, block, end_stream=True):
    c.send(raw(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block))


def continuation(c, sid, fields, end_headers=True):
    c.send(raw(CONTINUATION, END_HEADERS if end_headers else 0, sid, encode(c, fields)))


def data(c, sid, payload, end_stream=True):
    c.send(raw(DATA, END_STREAM if end_stream else 0, sid, payload))


def window_update(c, sid, increment):
    c.send(raw(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment)))


def priority(c, sid, depends_on=0, weight=255, exclusive=False):
    c.send_frame(PriorityFrame(sid, depends_on=depends_on, stream_weight=weight,
                               exclusive=exclusive))


def ping(c, payload=b"h2spec\0\0", flags=0):
    c.send(raw(PING, flags, 0, payload))


def get(c, sid=1, method="GET", end_stream=True):
    headers(c, sid, common_headers(c, method), end_stream=end_stream)


def frames_since(c, mark, cls):
    return [f for f in c.frames[mark:] if isinstance(f, cls)]


def verify_connection_close(c):
    assert c.wait_closed(DEADLINE), "connection still open; frames %s" % c.frames[-6:]


def verify_connection_error(c, *codes):
    """GOAWAY with one of codes (then the close), or a close without one."""
    c.wait(lambda: c.closed or c.goaways, DEADLINE, "GOAWAY or close")
    if c.goaways:
        assert c.goaways[0][1] in codes, "GOAWAY %s, expected one of %s" % (c.goaways, codes)
    verify_connection_close(c)


def verify_stream_error(c, sid, *codes):
    """RST_STREAM on sid with one of codes, or GOAWAY with one, or a close."""
    def reset():
        return c.streams.get(sid) is not None and c.streams[sid].reset is not None
    c.wait(lambda: c.closed or c.goaways or reset(), DEADLINE, "RST_STREAM, GOAWAY or close")
    if c.goaways:
        assert c.goaways[0][1] in codes, "GOAWAY %s, expected one of %s" % (c.goaways, codes)
    elif reset():
        assert c.streams[sid].reset in codes, "RST_STREAM %d on stream %d, expected one of %s" % (
            c.streams[sid].reset, sid, codes)


def verify_stream_close(c, sid):
    """The response on sid ends (END_STREAM), neither reset nor cut."""
    st = c._stream(sid)
    c.wait(lambda: st.ended or st.reset is not None or c.goaways, DEADLINE, "stream %d" % sid)
    assert st.ended and st.reset is None and not c.goaways, (st, c.goaways)


def verify_headers(c, sid):
    """A response HEADERS on sid (h2spec's VerifyHeadersFrame)."""
    st = c._stream(sid)
    c.wait(lambda: st.status is not None or st.reset is not None or c.goaways, DEADLINE,
           "HEADERS on stream %d" % sid)
    assert st.status is not None, (st, c.goaways)
    return st


def verify_ping_ack(c, payload=b"h2spec\0\0"):
    def acked():
        return any("ACK" in f.flags and f.opaque_data == payload
                   for f in c.frames if isinstance(f, PingFrame))
    c.wait(acked, DEADLINE, "PING ACK")
    assert not c.goaways, c.goaways


def verify_ping_ack_or_close(c, payload=b"h2spec\0\0"):
    def acked():
        return any("ACK" in f.flags and f.opaque_data == payload
                   for f in c.frames if isinstance(f, PingFrame))
    c.wait(lambda: acked() or c.closed, DEADLINE, "PING ACK or close")
    if not acked():
        assert all(code == NO_ERROR for _, code in c.goaways), c.goaways


def first_data_frame(c, mark, sid=1):
    c.wait(lambda: any(f.stream_id == sid for f in frames_since(c, mark, DataFrame))
           or c.closed or c.goaways, DEADLINE, "DATA on stream %d" % sid)
    found = [f for f in frames_since(c, mark, DataFrame) if f.stream_id == sid]
    assert found, (c.goaways, c.frames[-6:])
    return found[0]


def wait_settings_ack(c, count):
    c.wait(lambda: c.settings_acks >= count or c.goaways, DEADLINE, "SETTINGS ACK %d" % count)
    assert c.settings_acks >= count, c.goaways


@pytest.fixture
def conn(server):
    c = handshake(server)
    yield c
    c.close()


# ==== http2: 3.5 HTTP/2 Connection Preface ==========================================

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_3_5_1_the_first_frame_after_the_client_preface_is_the_servers_settings(server, tls):
    c = dial(server, tls, preface=False)
    c.send(PREFACE + raw(SETTINGS, 0, 0, settings_payload((SETTINGS_INITIAL_WINDOW_SIZE, 65535))))
    c.wait(lambda: c.frames, DEADLINE, "a frame")
    assert isinstance(c.frames[0], SettingsFrame) and "ACK" not in c.frames[0].flags, c.frames
    c.close()


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_3_5_2_an_invalid_connection_preface_closes_the_connection(server, tls):
    port = server.ports_by_endpoint["tls" if tls else "clear"]
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    if tls:
        ctx = ssl.create_default_context(cafile=str(server.ca))
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(b"INVALID CONNECTION PREFACE\r\n\r\n")
    got = b""
    try:  # the clear-text endpoint also speaks HTTP/1.1: a 400 may come first
        for _ in range(64):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        else:
            pytest.fail("still open after %r" % got[:200])
    except (ConnectionResetError, ssl.SSLError):
        pass
    finally:
        s.close()


# ==== http2: 4.1 Frame Format ========================================================

def test_4_1_1_a_frame_of_unknown_type_is_ignored(conn):
    conn.send(raw(0x16, 0, 0, b"\0" * 8))
    ping(conn)
    verify_ping_ack(conn)


def test_4_1_2_undefined_flags_are_ignored(conn):
    conn.send(raw(PING, 0x16, 0, b"h2spec\0\0"))
    verify_ping_ack(conn)


def test_4_1_3_the_reserved_bit_of_the_stream_id_is_ignored(conn):
    conn.send(raw(PING, 0x16, 0x80000000, b"h2spec\0\0"))
    verify_ping_ack(conn)


# ==== http2: 4.2 Frame Size ==========================================================

def max_frame_size(c):
    return c.server_settings.get(SETTINGS_MAX_FRAME_SIZE, 16384)


def test_4_2_1_a_data_frame_of_max_frame_size_is_received(conn):
    get(conn, method="POST", end_stream=False)
    data(conn, 1, b"x" * max_frame_size(conn))
    verify_headers(conn, 1)


def test_4_2_2_a_data_frame_over_max_frame_size_is_a_frame_size_error(conn):
    get(conn, method="POST", end_stream=False)
    data(conn, 1, b"x" * (max_frame_size(conn) + 1))
    verify_stream_error(conn, 1, FRAME_SIZE_ERROR)


def test_4_2_3_a_headers_frame_over_max_frame_size_is_a_connection_frame_size_error(conn):
    count = max_frame_size(conn) // len(DUMMY) + 1  # h2spec: 5 of them, past 16,384
    fields = common_headers(conn) + [("x-dummy%d" % i, DUMMY) for i in range(count)]
    headers(conn, 1, fields)
    verify_connection_error(conn, FRAME_SIZE_ERROR)


# ==== http2: 4.3 Header Compression and Decompression =================================

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_4_3_1_an_invalid_header_block_is_a_compression_error(server, tls):
    c = handshake(server, tls)
    c.send(raw(HEADERS, END_STREAM | END_HEADERS, 1, b"\x40"))
    verify_connection_error(c, COMPRESSION_ERROR)
    c.close()


def interrupted_header_block(c, interrupt):
    """HEADERS without END_HEADERS, another frame (interrupt), then the
    CONTINUATION: h2spec's 4.3 and 6.2 send the same."""
    headers(c, 1, common_headers(c), end_stream=False, end_headers=False)
    interrupt()
    continuation(c, 1, [("x-dummy0", DUMMY)])
    verify_connection_error(c, PROTOCOL_ERROR)


def test_4_3_2_a_priority_frame_inside_a_header_block_is_a_protocol_error(conn):
    interrupted_header_block(conn, lambda: priority(conn, 1))


def test_4_3_3_headers_on_another_stream_inside_a_header_block_is_a_protocol_error(conn):
    interrupted_header_block(conn, lambda: headers(conn, 3, common_headers(conn)))


# ==== http2: 5.1 Stream States =======================================================

def test_5_1_1_idle_data_is_a_protocol_error(conn):
    data(conn, 1, b"test")
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_5_1_2_idle_rst_stream_is_a_protocol_error(conn):
    conn.send_frame(RstStreamFrame(1, error_code=CANCEL))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_5_1_3_idle_window_update_is_a_protocol_error(conn):
    window_update(conn, 1, 100)
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_5_1_4_idle_continuation_is_a_protocol_error(conn):
    continuation(conn, 1, common_headers(conn))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_5_1_5_half_closed_remote_data_is_stream_closed(conn):
    get(conn)
    data(conn, 1, b"test")
    verify_stream_error(conn, 1, STREAM_CLOSED)


def test_5_1_6_half_closed_remote_headers_is_stream_closed(conn):
    get(conn)
    get(conn)
    verify_stream_error(conn, 1, STREAM_CLOSED)


def test_5_1_7_half_closed_remote_continuation_is_stream_closed_or_protocol_error(conn):
    block = encode(conn, common_headers(conn))
    headers_block(conn, 1, block)
    conn.send(raw(CONTINUATION, END_HEADERS, 1, block))
    verify_stream_error(conn, 1, STREAM_CLOSED, PROTOCOL_ERROR)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_5_1_8_closed_data_after_the_clients_rst_stream_is_stream_closed(server, tls):
    c = handshake(server, tls)
    get(c, end_stream=False)
    c.send_frame(RstStreamFrame(1, error_code=CANCEL))
    data(c, 1, b"test")
    verify_stream_error(c, 1, STREAM_CLOSED)
    c.close()


def test_5_1_9_closed_headers_after_the_clients_rst_stream_is_stream_closed(conn):
    get(conn, end_stream=False)
    conn.send_frame(RstStreamFrame(1, error_code=CANCEL))
    get(conn)
    verify_stream_error(conn, 1, STREAM_CLOSED)


def test_5_1_10_closed_continuation_after_the_clients_rst_stream_is_an_error(conn):
    get(conn, end_stream=False)
    conn.send_frame(RstStreamFrame(1, error_code=CANCEL))
    continuation(conn, 1, [("x-dummy0", DUMMY)])
    verify_stream_error(conn, 1, STREAM_CLOSED, PROTOCOL_ERROR)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_5_1_11_closed_data_after_end_stream_is_a_connection_stream_closed(server, tls):
    """RFC 9113 section 5.1 lets this be a connection error of type
    STREAM_CLOSED (RFC 7540 made it one; h2spec asks for it)."""
    c = handshake(server, tls)
    get(c)
    verify_stream_close(c, 1)
    data(c, 1, b"test")
    verify_connection_error(c, STREAM_CLOSED)
    c.close()


def test_5_1_12_closed_headers_after_end_stream_is_a_connection_stream_closed(conn):
    get(conn)
    verify_stream_close(conn, 1)
    get(conn)
    verify_connection_error(conn, STREAM_CLOSED)


def test_5_1_13_closed_continuation_after_end_stream_is_a_connection_error(conn):
    get(conn)
    verify_stream_close(conn, 1)
    continuation(conn, 1, [("x-dummy0", DUMMY)])
    verify_connection_error(conn, STREAM_CLOSED, PROTOCOL_ERROR)


# ==== http2: 5.1.1 Stream Identifiers ================================================

def test_5_1_1_1_an_even_stream_id_is_a_protocol_error(conn):
    get(conn, sid=2)
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_5_1_1_2_a_stream_id_below_a_previous_one_is_a_protocol_error(conn):
    get(conn, sid=5)
    get(conn, sid=3)
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_5_1_1_3_headers_again_on_a_half_closed_remote_stream_is_stream_closed(conn):
    get(conn, sid=5)
    get(conn, sid=5)
    verify_stream_error(conn, 5, STREAM_CLOSED)


# ==== http2: 5.1.2 Stream Concurrency ================================================

def test_5_1_2_1_streams_past_max_concurrent_streams_are_refused(conn):
    limit = conn.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
    assert limit is not None and limit < 1000, conn.server_settings  # h2spec skips when absent
    conn.send(raw(SETTINGS, 0, 0, settings_payload((SETTINGS_INITIAL_WINDOW_SIZE, 0))))
    block = encode(conn, common_headers(conn))
    conn.send(b"".join(raw(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, block)
                       for i in range(limit + 1)))
    # nghttp2 ends the connection with PROTOCOL_ERROR past the limit the
    # client acknowledged (REFUSED_STREAM while it has not): RFC 9113
    # section 5.4.1 lets any stream error be a connection error.
    verify_stream_error(conn, 2 * limit + 1, PROTOCOL_ERROR, REFUSED_STREAM)


# ==== http2: 5.3.1 Stream Dependencies ===============================================

def test_5_3_1_1_headers_that_depend_on_their_own_stream_are_a_protocol_error(conn):
    conn.send_frame(HeadersFrame(1, data=encode(conn, common_headers(conn)),
                                 flags=["END_STREAM", "END_HEADERS", "PRIORITY"],
                                 depends_on=1, stream_weight=255))
    verify_stream_error(conn, 1, PROTOCOL_ERROR)


def test_5_3_1_2_a_priority_frame_that_depends_on_its_own_stream_is_a_protocol_error(conn):
    priority(conn, 1, depends_on=1)
    verify_stream_error(conn, 1, PROTOCOL_ERROR)


# ==== http2: 5.4.1 Connection Error Handling =========================================

def test_5_4_1_1_a_connection_error_closes_the_connection(conn):
    conn.send(raw(PING, 0, 3, b"\0" * 8))
    verify_connection_close(conn)


def test_5_4_1_2_a_connection_error_sends_goaway_first(conn):
    conn.send(raw(PING, 0, 3, b"\0" * 8))
    conn.wait(lambda: conn.goaways or conn.closed, DEADLINE, "GOAWAY")
    assert conn.goaways and conn.goaways[0][1] == PROTOCOL_ERROR, conn.goaways


# ==== http2: 5.5 Extending HTTP/2 ====================================================

def test_5_5_1_an_unknown_extension_frame_is_ignored(conn):
    conn.send(raw(0x16, 0, 0, b"\0" * 8))
    ping(conn)
    verify_ping_ack(conn)


def test_5_5_2_an_extension_frame_inside_a_header_block_is_a_protocol_error(conn):
    headers(conn, 1, common_headers(conn), end_headers=False)
    conn.send(raw(0x16, 0, 0, b"\0" * 8))
    verify_connection_error(conn, PROTOCOL_ERROR)


# ==== http2: 6.1 DATA ================================================================

def test_6_1_1_data_on_stream_0_is_a_protocol_error(conn):
    data(conn, 0, b"test")
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_1_2_data_on_a_stream_not_open_is_stream_closed(conn):
    get(conn, method="POST")
    data(conn, 1, b"test")
    verify_stream_error(conn, 1, STREAM_CLOSED)


def test_6_1_3_data_padding_as_long_as_the_payload_is_a_protocol_error(conn):
    headers(conn, 1, common_headers(conn, "POST") + [("content-length", "4")], end_stream=False)
    conn.send(raw(DATA, END_STREAM | PADDED, 1, b"\x06Test"))
    verify_connection_error(conn, PROTOCOL_ERROR)


# ==== http2: 6.2 HEADERS =============================================================

def test_6_2_1_a_priority_frame_after_headers_without_end_headers_is_a_protocol_error(conn):
    interrupted_header_block(conn, lambda: priority(conn, 1))


def test_6_2_2_headers_on_another_stream_after_headers_without_end_headers_is_an_error(conn):
    interrupted_header_block(conn, lambda: headers(conn, 3, common_headers(conn)))


def test_6_2_3_headers_on_stream_0_is_a_protocol_error(conn):
    headers_block(conn, 0, encode(conn, common_headers(conn)))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_2_4_headers_padding_longer_than_the_block_is_a_protocol_error(conn):
    block = encode(conn, common_headers(conn))
    conn.send(raw(HEADERS, END_STREAM | END_HEADERS | PADDED, 1,
                  bytes([len(block) + 2]) + block))
    verify_stream_error(conn, 1, PROTOCOL_ERROR)


# ==== http2: 6.3 PRIORITY ============================================================

def test_6_3_1_priority_on_stream_0_is_a_protocol_error(conn):
    conn.send(raw(PRIORITY, 0, 0, b"\0\0\0\0\xff"))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_3_2_priority_of_a_length_other_than_5_is_a_frame_size_error(conn):
    get(conn)
    conn.send(raw(PRIORITY, 0, 1, b"\x80\0\0\x01"))
    verify_stream_error(conn, 1, FRAME_SIZE_ERROR)


def test_6_3_3_priority_on_an_idle_stream_then_headers_on_a_lower_one_is_answered(conn):
    priority(conn, 3)
    get(conn, sid=1)
    verify_headers(conn, 1)


# ==== http2: 6.4 RST_STREAM ==========================================================

def test_6_4_1_rst_stream_on_stream_0_is_a_protocol_error(conn):
    conn.send(raw(RST_STREAM, 0, 0, struct.pack(">I", CANCEL)))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_4_2_rst_stream_on_an_idle_stream_is_a_protocol_error(conn):
    conn.send(raw(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_4_3_rst_stream_of_a_length_other_than_4_is_a_frame_size_error(conn):
    get(conn)
    conn.send(raw(RST_STREAM, 0, 1, b"\0\0\0"))
    verify_stream_error(conn, 1, FRAME_SIZE_ERROR)


# ==== http2: 6.5 SETTINGS ============================================================

def test_6_5_1_settings_ack_with_a_payload_is_a_frame_size_error(conn):
    conn.send(raw(SETTINGS, ACK, 0, b"\0"))
    verify_connection_error(conn, FRAME_SIZE_ERROR)


def test_6_5_2_settings_on_a_stream_is_a_protocol_error(conn):
    conn.send(raw(SETTINGS, 0, 1, settings_payload((SETTINGS_MAX_CONCURRENT_STREAMS, 100))))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_5_3_settings_of_a_length_not_a_multiple_of_6_is_a_frame_size_error(conn):
    conn.send(raw(SETTINGS, 0, 0, b"\0\x03\0\0\0\x64\0\x02", length=9))
    verify_stream_error(conn, 0, PROTOCOL_ERROR, FRAME_SIZE_ERROR)


# ==== http2: 6.5.2 Defined SETTINGS Parameters =======================================

def send_settings(c, *pairs):
    c.send(raw(SETTINGS, 0, 0, settings_payload(*pairs)))


def test_6_5_2_1_enable_push_other_than_0_or_1_is_a_protocol_error(conn):
    send_settings(conn, (SETTINGS_ENABLE_PUSH, 2))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_5_2_2_initial_window_size_over_2_31_minus_1_is_a_flow_control_error(conn):
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 2 ** 31))
    verify_connection_error(conn, FLOW_CONTROL_ERROR)


def test_6_5_2_3_max_frame_size_below_16384_is_a_protocol_error(conn):
    send_settings(conn, (SETTINGS_MAX_FRAME_SIZE, 16383))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_5_2_4_max_frame_size_over_2_24_minus_1_is_a_protocol_error(conn):
    send_settings(conn, (SETTINGS_MAX_FRAME_SIZE, 2 ** 24))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_5_2_5_an_unknown_setting_is_ignored(conn):
    send_settings(conn, (0xff, 1))
    ping(conn)
    verify_ping_ack(conn)


# ==== http2: 6.5.3 Settings Synchronization ==========================================

def test_6_5_3_1_settings_values_apply_in_their_order(conn):
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 100), (SETTINGS_INITIAL_WINDOW_SIZE, 1))
    wait_settings_ack(conn, 2)
    mark = len(conn.frames)
    get(conn)
    assert len(first_data_frame(conn, mark).data) == 1


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_6_5_3_2_settings_are_acknowledged_at_once(server, tls):
    c = handshake(server, tls)
    send_settings(c, (SETTINGS_ENABLE_PUSH, 0))
    wait_settings_ack(c, 2)
    assert not c.goaways
    c.close()


# ==== http2: 6.7 PING ================================================================

def test_6_7_1_ping_is_answered_with_the_same_payload(conn):
    ping(conn)
    verify_ping_ack(conn)


def test_6_7_2_a_ping_ack_is_not_answered(conn):
    ping(conn, b"invalid\0", flags=ACK)
    ping(conn)
    verify_ping_ack(conn)
    assert not any(f.opaque_data == b"invalid\0" for f in conn.frames if isinstance(f, PingFrame))


def test_6_7_3_ping_on_a_stream_is_a_protocol_error(conn):
    conn.send(raw(PING, 0, 1, b"\0" * 8))
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_7_4_ping_of_a_length_other_than_8_is_a_frame_size_error(conn):
    conn.send(raw(PING, 0, 0, b"\0" * 6))
    verify_connection_error(conn, FRAME_SIZE_ERROR)


# ==== http2: 6.8 GOAWAY ==============================================================

def test_6_8_1_goaway_on_a_stream_is_a_protocol_error(conn):
    conn.send(raw(GOAWAY, 0, 1, b"\0" * 8))
    verify_connection_error(conn, PROTOCOL_ERROR)


# ==== http2: 6.9 WINDOW_UPDATE =======================================================

def test_6_9_1_a_connection_window_update_of_0_is_a_protocol_error(conn):
    window_update(conn, 0, 0)
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_9_2_a_stream_window_update_of_0_is_a_protocol_error(conn):
    get(conn, end_stream=False)
    window_update(conn, 1, 0)
    verify_stream_error(conn, 1, PROTOCOL_ERROR)


def test_6_9_3_window_update_of_a_length_other_than_4_is_a_frame_size_error(conn):
    conn.send(raw(WINDOW_UPDATE, 0, 0, b"\0\0\x01"))
    verify_connection_error(conn, FRAME_SIZE_ERROR)


# ==== http2: 6.9.1 The Flow-Control Window ===========================================

def test_6_9_1_1_data_stays_within_an_initial_window_of_1(conn):
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 1))
    wait_settings_ack(conn, 2)
    mark = len(conn.frames)
    get(conn)
    assert len(first_data_frame(conn, mark).data) == 1


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_6_9_1_2_window_update_that_overflows_the_connection_window_is_a_flow_control_error(
        server, tls):
    c = handshake(server, tls)
    window_update(c, 0, 2 ** 31 - 1)
    window_update(c, 0, 2 ** 31 - 1)
    c.wait(lambda: c.goaways or c.closed, DEADLINE, "GOAWAY")
    assert c.goaways and c.goaways[0][1] == FLOW_CONTROL_ERROR, c.goaways
    c.close()


def test_6_9_1_3_window_update_that_overflows_a_stream_window_is_a_flow_control_error(conn):
    get(conn, end_stream=False)
    window_update(conn, 1, 2 ** 31 - 1)
    window_update(conn, 1, 2 ** 31 - 1)
    st = conn._stream(1)
    conn.wait(lambda: st.reset is not None or conn.goaways or conn.closed, DEADLINE, "RST_STREAM")
    assert st.reset == FLOW_CONTROL_ERROR, (st, conn.goaways)


# ==== http2: 6.9.2 Initial Flow-Control Window Size ==================================

def test_6_9_2_1_a_new_initial_window_size_applies_to_open_streams(conn):
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 0))
    wait_settings_ack(conn, 2)
    mark = len(conn.frames)
    get(conn)
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 1))
    wait_settings_ack(conn, 3)
    assert len(first_data_frame(conn, mark).data) == 1


def test_6_9_2_2_a_window_made_negative_by_settings_is_tracked(conn):
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 3))
    wait_settings_ack(conn, 2)
    mark = len(conn.frames)
    get(conn)
    assert len(first_data_frame(conn, mark).data) == 3
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 2))
    wait_settings_ack(conn, 3)
    mark = len(conn.frames)
    window_update(conn, 1, 2)
    assert len(first_data_frame(conn, mark).data) == 1


def test_6_9_2_3_initial_window_size_over_the_maximum_is_a_flow_control_error(conn):
    conn.send(raw(SETTINGS, 0, 0, b"\0\x04\x80\0\0\0"))
    verify_connection_error(conn, FLOW_CONTROL_ERROR)


# ==== http2: 6.10 CONTINUATION =======================================================

def test_6_10_1_continuations_after_headers_are_received(conn):
    headers(conn, 1, common_headers(conn), end_headers=False)
    continuation(conn, 1, [("x-dummy0", DUMMY)], end_headers=False)
    continuation(conn, 1, [("x-dummy0", DUMMY)])
    verify_headers(conn, 1)


def test_6_10_2_a_continuation_followed_by_another_frame_is_a_protocol_error(conn):
    headers(conn, 1, common_headers(conn, "POST"), end_stream=False, end_headers=False)
    continuation(conn, 1, [("x-dummy0", DUMMY)], end_headers=False)
    data(conn, 1, b"test")
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_10_3_continuation_on_stream_0_is_a_protocol_error(conn):
    headers(conn, 1, common_headers(conn), end_headers=False)
    continuation(conn, 0, [("x-dummy0", DUMMY)])
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_10_4_continuation_after_headers_with_end_headers_is_a_protocol_error(conn):
    get(conn)
    continuation(conn, 1, [("x-dummy0", DUMMY)])
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_10_5_continuation_after_continuation_with_end_headers_is_a_protocol_error(conn):
    headers(conn, 1, common_headers(conn), end_headers=False)
    continuation(conn, 1, [("x-dummy0", DUMMY)])
    continuation(conn, 1, [("x-dummy0", DUMMY)])
    verify_connection_error(conn, PROTOCOL_ERROR)


def test_6_10_6_continuation_after_data_is_a_protocol_error(conn):
    headers(conn, 1, common_headers(conn, "POST"), end_stream=False, end_headers=False)
    data(conn, 1, b"test")
    continuation(conn, 1, [("x-dummy0", DUMMY)], end_headers=False)
    continuation(conn, 0, [("x-dummy0", DUMMY)])
    verify_connection_error(conn, PROTOCOL_ERROR)


# ==== http2: 7 Error Codes ===========================================================

def test_7_1_goaway_with_an_unknown_error_code_is_no_special_case(conn):
    conn.send_frame(GoAwayFrame(0, last_stream_id=0, error_code=0xff))
    ping(conn)
    verify_ping_ack_or_close(conn)


def test_7_2_rst_stream_with_an_unknown_error_code_is_no_special_case(conn):
    get(conn, method="POST", end_stream=False)
    conn.send_frame(RstStreamFrame(1, error_code=0xff))
    ping(conn)
    verify_ping_ack(conn)


# ==== http2: 8.1 HTTP Request/Response Exchange ======================================

def test_8_1_1_trailers_without_end_stream_are_a_protocol_error(conn):
    get(conn, method="POST", end_stream=False)
    data(conn, 1, b"test", end_stream=False)
    headers(conn, 1, [("x-test", "ok")], end_stream=False)
    verify_stream_error(conn, 1, PROTOCOL_ERROR)


# ==== http2: 8.1.2 HTTP Header Fields ================================================

def malformed(c, fields, sid=1):
    headers(c, sid, fields)
    verify_stream_error(c, sid, PROTOCOL_ERROR)


def test_8_1_2_1_an_uppercase_field_name_is_malformed(conn):
    malformed(conn, common_headers(conn) + [("X-TEST", "ok")])


def test_8_1_2_1_1_an_unknown_pseudo_header_is_malformed(conn):
    malformed(conn, common_headers(conn) + [(":test", "ok")])


def test_8_1_2_1_2_a_response_pseudo_header_in_a_request_is_malformed(conn):
    malformed(conn, common_headers(conn) + [(":status", "200")])


def test_8_1_2_1_3_a_pseudo_header_in_trailers_is_malformed(conn):
    get(conn, method="POST", end_stream=False)
    data(conn, 1, b"test", end_stream=False)
    headers(conn, 1, [(":method", "POST")])
    verify_stream_error(conn, 1, PROTOCOL_ERROR)


def test_8_1_2_1_4_a_pseudo_header_after_a_regular_field_is_malformed(conn):
    malformed(conn, [("x-test", "ok")] + common_headers(conn))


def test_8_1_2_2_1_a_connection_specific_field_is_malformed(conn):
    malformed(conn, common_headers(conn) + [("connection", "keep-alive")])


def test_8_1_2_2_2_te_other_than_trailers_is_malformed(conn):
    malformed(conn, common_headers(conn) + [("trailers", "test"), ("te", "trailers, deflate")])


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_8_1_2_3_1_an_empty_path_is_malformed(server, tls):
    c = handshake(server, tls)
    fields = common_headers(c)
    fields[2] = (":path", "")
    malformed(c, fields)
    c.close()


def test_8_1_2_3_2_a_request_without_method_is_malformed(conn):
    malformed(conn, common_headers(conn)[1:])


def test_8_1_2_3_3_a_request_without_scheme_is_malformed(conn):
    f = common_headers(conn)
    malformed(conn, [f[0], f[2], f[3]])


def test_8_1_2_3_4_a_request_without_path_is_malformed(conn):
    f = common_headers(conn)
    malformed(conn, [f[0], f[1], f[3]])


def test_8_1_2_3_5_a_duplicated_method_is_malformed(conn):
    malformed(conn, common_headers(conn) + [(":method", "GET")])


def test_8_1_2_3_6_a_duplicated_scheme_is_malformed(conn):
    malformed(conn, common_headers(conn) + [(":scheme", conn.scheme)])


def test_8_1_2_3_7_a_duplicated_path_is_malformed(conn):
    malformed(conn, common_headers(conn) + [(":path", "/")])


def content_length_mismatch(c, *chunks):
    headers(c, 1, common_headers(c, "POST") + [("content-length", "1")], end_stream=False)
    for i, chunk in enumerate(chunks):
        data(c, 1, chunk, end_stream=i == len(chunks) - 1)
    verify_stream_error(c, 1, PROTOCOL_ERROR)


def test_8_1_2_6_1_a_content_length_unlike_the_data_is_malformed(conn):
    content_length_mismatch(conn, b"test")


def test_8_1_2_6_2_a_content_length_unlike_the_sum_of_the_data_frames_is_malformed(conn):
    content_length_mismatch(conn, b"test", b"test")


# ==== http2: 8.2 Server Push =========================================================

def test_8_2_1_push_promise_from_a_client_is_a_protocol_error(conn):
    conn.send_frame(PushPromiseFrame(1, promised_stream_id=3, flags=["END_HEADERS"],
                                     data=encode(conn, common_headers(conn))))
    verify_connection_error(conn, PROTOCOL_ERROR)


# ==== hpack ==========================================================================

def hpack_block(c, rep, first=False):
    """The common request's block with rep after it (or before it)."""
    block = encode(c, common_headers(c))
    return rep + block if first else block + rep


def test_hpack_2_3_3_1_an_index_past_both_tables_is_a_compression_error(conn):
    headers_block(conn, 1, hpack_block(conn, b"\xfe"))
    verify_connection_error(conn, COMPRESSION_ERROR)


def test_hpack_4_2_1_a_table_size_update_at_the_end_of_a_block_is_a_compression_error(conn):
    headers_block(conn, 1, hpack_block(conn, b"\x21"))
    verify_connection_error(conn, COMPRESSION_ERROR)


def test_hpack_5_2_1_huffman_padding_longer_than_7_bits_is_a_compression_error(conn):
    headers_block(conn, 1, hpack_block(conn, b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff"))
    verify_connection_error(conn, COMPRESSION_ERROR)


def test_hpack_5_2_2_huffman_padding_of_zeros_is_a_compression_error(conn):
    headers_block(conn, 1, hpack_block(conn, b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90"))
    verify_connection_error(conn, COMPRESSION_ERROR)


def test_hpack_5_2_3_a_huffman_eos_symbol_is_a_compression_error(conn):
    headers_block(conn, 1, hpack_block(
        conn, b"\x00\x85\xf2\xb2\x4a\x87\xff\xff\xff\xfd\x25\x42\x7f"))
    verify_connection_error(conn, COMPRESSION_ERROR)


def test_hpack_6_1_1_an_indexed_field_of_index_0_is_a_compression_error(conn):
    headers_block(conn, 1, hpack_block(conn, b"\x80"))
    verify_connection_error(conn, COMPRESSION_ERROR)


def hpack_integer(value, prefix_bits, first):
    """RFC 7541 section 5.1."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append(0x80 | (value & 0x7f))
        value >>= 7
    return bytes(out + [value])


def test_hpack_6_3_1_a_table_size_update_over_the_settings_is_a_compression_error(conn):
    size = conn.server_settings.get(SETTINGS_HEADER_TABLE_SIZE, 4096) + 1
    headers_block(conn, 1, hpack_block(conn, hpack_integer(size, 5, 0x20), first=True))
    verify_connection_error(conn, COMPRESSION_ERROR)


# ==== generic: 1 Starting HTTP/2 =====================================================

def test_generic_1_1_the_server_preface_is_a_settings_frame(server):
    c = dial(server, preface=False)
    c.send(PREFACE + raw(SETTINGS, 0, 0, settings_payload((SETTINGS_INITIAL_WINDOW_SIZE, 65535))))
    c.wait(lambda: c.frames, DEADLINE, "a frame")
    assert isinstance(c.frames[0], SettingsFrame) and "ACK" not in c.frames[0].flags
    c.close()


# ==== generic: 2 Streams and Multiplexing ============================================

def test_generic_2_1_priority_on_an_idle_stream_is_accepted(conn):
    priority(conn, 1)
    ping(conn, b"\0" * 8)
    verify_ping_ack(conn, b"\0" * 8)


def test_generic_2_2_window_update_on_a_half_closed_remote_stream_is_accepted(conn):
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 0))
    mark = len(conn.frames)
    get(conn)
    window_update(conn, 1, 1)
    first_data_frame(conn, mark)


def test_generic_2_3_priority_on_a_half_closed_remote_stream_is_accepted(conn):
    send_settings(conn, (SETTINGS_INITIAL_WINDOW_SIZE, 0))
    mark = len(conn.frames)
    get(conn)
    priority(conn, 1)
    window_update(conn, 1, 1)
    first_data_frame(conn, mark)


def test_generic_2_4_rst_stream_on_a_half_closed_remote_stream_is_accepted(conn):
    get(conn)
    conn.send_frame(RstStreamFrame(1, error_code=CANCEL))
    ping(conn, b"\0" * 8)
    verify_ping_ack_or_close(conn, b"\0" * 8)


def test_generic_2_5_priority_on_a_closed_stream_is_accepted(conn):
    get(conn)
    verify_stream_close(conn, 1)
    priority(conn, 1)
    ping(conn, b"\0" * 8)
    verify_ping_ack(conn, b"\0" * 8)


# ==== generic: 3 Frame Definitions ===================================================

def test_generic_3_1_1_data_is_accepted(conn):
    get(conn, method="POST", end_stream=False)
    data(conn, 1, b"test")
    verify_headers(conn, 1)


def test_generic_3_1_2_multiple_data_frames_are_accepted(conn):
    get(conn, method="POST", end_stream=False)
    data(conn, 1, b"test", end_stream=False)
    data(conn, 1, b"test")
    verify_headers(conn, 1)


def test_generic_3_1_3_padded_data_is_accepted(conn):
    get(conn, method="POST", end_stream=False)
    conn.send(raw(DATA, END_STREAM | PADDED, 1, b"\x06test" + b"padded"))
    verify_headers(conn, 1)


def test_generic_3_2_1_headers_is_accepted(conn):
    get(conn)
    verify_headers(conn, 1)


def test_generic_3_2_2_padded_headers_is_accepted(conn):
    block = encode(conn, common_headers(conn))
    conn.send(raw(HEADERS, END_STREAM | END_HEADERS | PADDED, 1,
                  b"\x08" + block + b"\0" * 8))
    verify_headers(conn, 1)


def test_generic_3_2_3_headers_with_priority_is_accepted(conn):
    conn.send_frame(HeadersFrame(1, data=encode(conn, common_headers(conn)),
                                 flags=["END_STREAM", "END_HEADERS", "PRIORITY"],
                                 depends_on=0, stream_weight=255))
    verify_headers(conn, 1)


@pytest.mark.parametrize("sid,depends_on,weight,exclusive", [
    (1, 0, 0, False), (1, 0, 255, False), (3, 1, 0, False), (1, 0, 0, True), (3, 0, 255, False)],
    ids=["3_3_1_weight_1", "3_3_2_weight_256", "3_3_3_a_dependency", "3_3_4_exclusive",
         "3_3_5_an_idle_stream_above"])
def test_generic_3_3_priority_then_headers_is_answered(conn, sid, depends_on, weight, exclusive):
    priority(conn, sid, depends_on, weight, exclusive)
    get(conn)
    verify_headers(conn, 1)


def test_generic_3_4_1_rst_stream_is_accepted(conn):
    get(conn, end_stream=False)
    conn.send_frame(RstStreamFrame(1, error_code=CANCEL))
    ping(conn, b"\0" * 8)
    verify_ping_ack_or_close(conn, b"\0" * 8)


def test_generic_3_5_1_settings_is_accepted(conn):
    send_settings(conn, (SETTINGS_HEADER_TABLE_SIZE, 4096), (SETTINGS_ENABLE_PUSH, 1),
                  (SETTINGS_MAX_CONCURRENT_STREAMS, 100), (SETTINGS_INITIAL_WINDOW_SIZE, 65535),
                  (SETTINGS_MAX_FRAME_SIZE, 16384), (SETTINGS_MAX_HEADER_LIST_SIZE, 100))
    wait_settings_ack(conn, 2)


def test_generic_3_7_1_ping_is_accepted(conn):
    ping(conn)
    verify_ping_ack(conn)


def test_generic_3_8_1_goaway_is_accepted(conn):
    conn.send_frame(GoAwayFrame(0, last_stream_id=0, error_code=NO_ERROR,
                                additional_data=b"h2spec"))
    verify_connection_close(conn)
    assert all(code == NO_ERROR for _, code in conn.goaways), conn.goaways


def test_generic_3_9_1_window_update_on_stream_0_is_accepted(conn):
    window_update(conn, 0, 1)
    ping(conn, b"\0" * 8)
    verify_ping_ack(conn, b"\0" * 8)


def test_generic_3_9_2_window_update_on_stream_1_is_accepted(conn):
    get(conn)
    window_update(conn, 1, 1)
    verify_headers(conn, 1)
    assert not conn.goaways


def test_generic_3_10_1_a_continuation_is_accepted(conn):
    block = encode(conn, common_headers(conn))
    conn.send(raw(HEADERS, END_STREAM, 1, block[:5]) + raw(CONTINUATION, END_HEADERS, 1, block[5:]))
    verify_headers(conn, 1)


def test_generic_3_10_2_multiple_continuations_are_accepted(conn):
    block = encode(conn, common_headers(conn))
    conn.send(raw(HEADERS, END_STREAM, 1, block[:5]) + raw(CONTINUATION, 0, 1, block[5:10])
              + raw(CONTINUATION, END_HEADERS, 1, block[10:]))
    verify_headers(conn, 1)


# ==== generic: 4 HTTP Message Exchanges ==============================================

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_generic_4_1_a_get_request_is_answered(server, tls):
    c = handshake(server, tls)
    get(c)
    assert verify_headers(c, 1).status == 200
    verify_stream_close(c, 1)
    assert c.streams[1].body == INDEX
    c.close()


def test_generic_4_2_a_head_request_is_answered(conn):
    get(conn, method="HEAD")
    assert verify_headers(conn, 1).status == 200
    verify_stream_close(conn, 1)
    assert conn.streams[1].body == b""


def test_generic_4_3_a_post_request_is_answered(conn):
    get(conn, method="POST", end_stream=False)
    data(conn, 1, b"test")
    verify_headers(conn, 1)


def test_generic_4_4_a_post_request_with_trailers_is_answered(conn):
    headers(conn, 1, common_headers(conn, "POST") + [("trailer", "x-test")], end_stream=False)
    data(conn, 1, b"test", end_stream=False)
    headers(conn, 1, [("x-test", "ok")])
    verify_headers(conn, 1)


# ==== generic: 5 HPACK ===============================================================

@pytest.mark.parametrize("rep", [
    b"\xba",
    b"\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4",
    b"\x40\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63",
    b"\x40\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63",
    b"\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
    b"\x00\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63",
    b"\x00\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4",
    b"\x00\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63",
    b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
    b"\x10\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63",
    b"\x10\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4",
    b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
    b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
], ids=["5_1_indexed", "5_2_incremental_indexed_name", "5_3_incremental_indexed_name_huffman",
        "5_4_incremental_new_name", "5_5_incremental_new_name_huffman",
        "5_6_without_indexing_indexed_name", "5_7_without_indexing_indexed_name_huffman",
        "5_8_without_indexing_new_name", "5_9_without_indexing_new_name_huffman",
        "5_10_never_indexed_indexed_name", "5_11_never_indexed_indexed_name_huffman",
        "5_12_never_indexed_new_name", "5_13_never_indexed_new_name_huffman"])
def test_generic_5_a_header_field_representation_is_accepted(conn, rep):
    """h2spec's bytes, its labels and all (some say Huffman where the
    bytes are plain, and the reverse; 5.12 repeats 5.13's bytes)."""
    headers_block(conn, 1, hpack_block(conn, rep))
    assert verify_headers(conn, 1).status == 200


def test_generic_5_14_a_dynamic_table_size_update_is_accepted(conn):
    headers_block(conn, 1, hpack_block(conn, b"\x20", first=True))
    verify_headers(conn, 1)


def test_generic_5_15_two_dynamic_table_size_updates_are_accepted(conn):
    headers_block(conn, 1, hpack_block(conn, b"\x20\x3f\xe1\x1f", first=True))
    verify_headers(conn, 1)
