"""h2client - a small HTTP/2 client over real sockets for the functional
tests, frame by frame (hyperframe for frames, hpack for headers, both from
Debian's python3-h2), so a test can send what a well-behaved client never
would: floods, resets, broken header blocks, a silent peer.

    c = H2Client(port)                        # clear text, prior knowledge
    c = H2Client(port, tls_ca=certs / "ca.pem")   # TLS with ALPN h2
    s = c.get("/")                            # waits for the whole response
    s.status, s.headers["content-type"], s.body, s.reset
    sid = c.request("/", end_stream=False); c.data(sid, b"x", end_stream=True)
    c.wait(lambda: c.goaway is not None, 5)

By default the client announces a window of 2^31 - 1 for the connection
and every stream, so downloads never wait for WINDOW_UPDATE, and it answers
SETTINGS and PING as a client must (answer_pings=False keeps it silent).
Every wait is bounded: a deadline, then AssertionError.
"""

import socket
import ssl
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,
                              HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_WINDOW = 2 ** 31 - 1

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, STREAM_CLOSED, REFUSED_STREAM, CANCEL = 0, 1, 2, 5, 7, 8
ENHANCE_YOUR_CALM, INADEQUATE_SECURITY = 11, 12


class Stream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.status = None
        self.headers = {}
        self.header_list = []
        self.body = b""
        self.ended = False
        self.reset = None  # the RST_STREAM error code, if reset

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return "<stream %d status=%r ended=%r reset=%r %d bytes>" % (
            self.id, self.status, self.ended, self.reset, len(self.body))


class H2Client:
    def __init__(self, port, *, host="127.0.0.1", tls_ca=None, server_name="localhost",
                 preface=True, settings=None, window=MAX_WINDOW, answer_pings=True,
                 timeout=5, alpn=("h2",)):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.scheme = "http"
        self.alpn = None
        if tls_ca is not None:
            ctx = ssl.create_default_context(cafile=str(tls_ca))
            if alpn:
                ctx.set_alpn_protocols(list(alpn))
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)
            self.alpn = self.sock.selected_alpn_protocol()
            self.scheme = "https"
        self.authority = "%s:%d" % (host, port)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = bytearray()
        self.frames = []            # every frame received, in order
        self.streams = {}
        self.server_settings = {}
        self.server_settings_seen = False  # the server's SETTINGS (its preface) arrived
        self.settings_acks = 0             # SETTINGS ACKs received
        self.goaways = []           # every GOAWAY: (last_stream_id, error_code)
        self.closed = False
        self.write_closed = False
        self.answer_pings = answer_pings
        self.pings = 0
        self.next_id = 1
        self._header_block = None   # (stream id, bytes) while CONTINUATIONs come
        if preface:
            s = dict(settings or {})
            if window != 65535:
                s.setdefault(SettingsFrame.INITIAL_WINDOW_SIZE, window)
            self.send(PREFACE + self.frame(SettingsFrame(0, settings=s)))
            if window > 65535:
                self.send_frame(WindowUpdateFrame(0, window_increment=window - 65535))

    # ---- sending ---------------------------------------------------------

    @staticmethod
    def frame(f):
        return f.serialize()

    def send(self, data):
        if not self.write_closed:
            self.sock.sendall(data)

    def half_close(self):
        """Sends nothing more (no SETTINGS or PING ACK either): SHUT_WR."""
        self.write_closed = True
        self.sock.shutdown(socket.SHUT_WR)

    def send_frame(self, f):
        self.send(f.serialize())

    def header_block(self, path="/", method="GET", authority=None, extra=(), pseudo=None):
        fields = pseudo if pseudo is not None else [
            (":method", method), (":scheme", self.scheme),
            (":authority", authority if authority is not None else self.authority),
            (":path", path)]
        return self.encoder.encode(list(fields) + list(extra))

    def request(self, path="/", method="GET", *, authority=None, extra=(), end_stream=True,
                pseudo=None, stream_id=None):
        """Sends HEADERS (one frame, END_HEADERS) and returns the stream id."""
        sid = self.new_stream_id() if stream_id is None else stream_id
        self.streams.setdefault(sid, Stream(sid))
        flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
        block = self.header_block(path, method, authority, extra, pseudo)
        self.send_frame(HeadersFrame(sid, data=block, flags=flags))
        return sid

    def request_all(self, paths):
        """GETs every path, all HEADERS frames in one write (so the server
        reads them at once); returns the stream ids in order."""
        ids, data = [], b""
        for path in paths:
            sid = self.new_stream_id()
            self.streams.setdefault(sid, Stream(sid))
            data += self.frame(HeadersFrame(sid, data=self.header_block(path),
                                            flags=["END_HEADERS", "END_STREAM"]))
            ids.append(sid)
        self.send(data)
        return ids

    def new_stream_id(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def data(self, sid, payload, end_stream=False):
        self.send_frame(DataFrame(sid, data=payload, flags=["END_STREAM"] if end_stream else []))

    def rst(self, sid, code=CANCEL):
        self.send_frame(RstStreamFrame(sid, error_code=code))

    # ---- receiving -------------------------------------------------------

    def _read(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.closed = True
            return
        self.buf += chunk
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
            self.frames.append(f)
            self._on_frame(f)

    def _stream(self, sid):
        return self.streams.setdefault(sid, Stream(sid))

    def _on_headers(self, sid, block, end_stream):
        st = self._stream(sid)
        for name, value in self.decoder.decode(block, raw=True):
            name, value = name.decode(), value.decode("latin-1")
            st.header_list.append((name, value))
            if name == ":status":
                st.status = int(value)
            else:
                st.headers[name] = value
        if end_stream:
            st.ended = True

    def _on_frame(self, f):
        if isinstance(f, SettingsFrame):
            if "ACK" not in f.flags:
                self.server_settings.update(f.settings)
                self.server_settings_seen = True
                self.send_frame(SettingsFrame(0, flags=["ACK"]))
            else:
                self.settings_acks += 1
        elif isinstance(f, PingFrame):
            if "ACK" not in f.flags:
                self.pings += 1
                if self.answer_pings:
                    self.send_frame(PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]))
        elif isinstance(f, HeadersFrame):
            if "END_HEADERS" in f.flags:
                self._on_headers(f.stream_id, f.data, "END_STREAM" in f.flags)
            else:
                self._header_block = (f.stream_id, bytes(f.data), "END_STREAM" in f.flags)
        elif isinstance(f, ContinuationFrame):
            sid, block, end = self._header_block
            block += bytes(f.data)
            if "END_HEADERS" in f.flags:
                self._header_block = None
                self._on_headers(sid, block, end)
            else:
                self._header_block = (sid, block, end)
        elif isinstance(f, DataFrame):
            st = self._stream(f.stream_id)
            st.body += bytes(f.data)
            if "END_STREAM" in f.flags:
                st.ended = True
        elif isinstance(f, RstStreamFrame):
            self._stream(f.stream_id).reset = f.error_code
        elif isinstance(f, GoAwayFrame):
            self.goaways.append((f.last_stream_id, f.error_code))

    @property
    def goaway(self):
        return self.goaways[-1] if self.goaways else None

    def wait(self, predicate, timeout=5, message="condition"):
        """Reads until predicate() is true; AssertionError at the deadline
        or when the server closes first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError("%s: not after %.1fs (closed=%s, goaways=%s, frames=%s)"
                                     % (message, timeout, self.closed, self.goaways,
                                        [type(f).__name__ for f in self.frames[-8:]]))
            self._read(min(left, 0.5))
        return True

    def response(self, sid, timeout=5):
        st = self._stream(sid)
        self.wait(lambda: st.done, timeout, "stream %d done" % sid)
        return st

    def get(self, path="/", timeout=5, **kw):
        return self.response(self.request(path, **kw), timeout)

    def wait_closed(self, timeout=5):
        """True once the server has closed the connection (EOF or reset)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._read(min(deadline - time.monotonic(), 0.5))
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
