"""h2ws - WebSockets over HTTP/2 (RFC 8441) for the functional tests: an
extended CONNECT with python3-h2 over a real socket, then RFC 6455 frames
carried in the stream's DATA frames, both ways under flow control.

    c = H2Connection(port)                     # clear text, prior knowledge
    c = H2Connection(port, tls_ca=ca_pem)      # TLS, ALPN h2
    c.server_settings[ENABLE_CONNECT_PROTOCOL] # what saker announced
    ws = c.websocket("/ws")                    # extended CONNECT, :protocol websocket
    ws.status, ws.headers                      # :status 200 when accepted
    ws.send(OP_BINARY, b"x")                   # one masked frame
    op, payload = ws.recv_message()            # fragments joined; pings answered by tests
    ws.reset()                                 # RST_STREAM CANCEL
    c.close()

Every wait is bounded: a deadline, then AssertionError. The client gives
window back only when reading (read_window=False keeps it shut), so a
test can stop reading and watch backpressure work.
"""

import os
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

ENABLE_CONNECT_PROTOCOL = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CANCEL = 8
CONNECT_ERROR = 10


def ws_frame(opcode, payload, fin=True):
    """A client frame: masked (RFC 6455 section 5.3) with a random key."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    if n == 0:
        return head + key
    mask = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + masked


def parse_frame(buf):
    """(fin, opcode, payload, used) of a server frame at the start of buf,
    or None when it is not all there. Server frames are never masked."""
    if len(buf) < 2:
        return None
    assert not buf[1] & 0x80, "a server frame must not be masked"
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = int.from_bytes(buf[2:10], "big"), 10
    if len(buf) < at + n:
        return None
    return bool(buf[0] & 0x80), buf[0] & 0x0F, bytes(buf[at:at + n]), at + n


class H2Connection:
    def __init__(self, port, *, tls_ca=None, timeout=10, window=None, validate=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.scheme = "http"
        if tls_ca is not None:
            ctx = ssl.create_default_context(cafile=str(tls_ca))
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
            assert self.sock.selected_alpn_protocol() == "h2"
            self.scheme = "https"
        self.authority = "127.0.0.1:%d" % port
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                      validate_outbound_headers=validate))
        self.h2.initiate_connection()
        if window is not None:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.streams = {}
        self.server_settings = {}
        self.goaway = None          # (last_stream_id, error_code) of the last GOAWAY
        self.closed = False
        self.wait(lambda: self.server_settings, 10, "saker's SETTINGS")

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def _event(self, ev):
        if isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.last_stream_id, ev.error_code)
            if ev.error_code == 0:
                # python3-h2 stops all sending at any GOAWAY; RFC 9113
                # section 6.8 lets the streams up to its last id go on.
                self.h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
            return
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            for code, change in ev.changed_settings.items():
                self.server_settings[code] = change.new_value
            return
        ws = self.streams.get(getattr(ev, "stream_id", None))
        if ws is not None:
            ws._event(ev)

    def pump(self, timeout):
        """Reads once (up to timeout) and handles what came."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return
        for ev in events:
            self._event(ev)
        self.flush()

    def wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            assert left > 0 and not self.closed, "timed out waiting for %s" % what
            self.pump(min(left, 0.5))

    def websocket(self, path, protocol="websocket", headers=(), version="13", wait=True):
        sid = self.h2.get_next_available_stream_id()
        ws = WebSocket(self, sid)
        self.streams[sid] = ws
        self.h2.send_headers(sid, [
            (":method", "CONNECT"), (":protocol", protocol), (":scheme", self.scheme),
            (":path", path), (":authority", self.authority),
            ("sec-websocket-version", version)] + list(headers))
        self.flush()
        if wait:
            self.wait(lambda: ws.status is not None or ws.reset_code is not None, 10,
                      "the answer to the extended CONNECT")
        return ws

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class WebSocket:
    """One extended CONNECT stream and the WebSocket frames it carries."""

    def __init__(self, conn, sid):
        self.conn = conn
        self.id = sid
        self.status = None
        self.headers = {}
        self.inbox = bytearray()   # DATA received, not yet parsed into frames
        self.body = bytearray()    # all DATA, for a refused CONNECT's answer
        self.ended = False         # END_STREAM from saker
        self.reset_code = None     # RST_STREAM from saker
        self.read_window = True
        self.answer_pings = False
        self.unacked = 0

    def _event(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            self.headers = dict(ev.headers)
            self.status = int(self.headers[":status"])
        elif isinstance(ev, h2.events.DataReceived):
            self.inbox += ev.data
            self.body += ev.data
            self.unacked += ev.flow_controlled_length
            if self.read_window:
                self.ack()
        elif isinstance(ev, h2.events.StreamEnded):
            self.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self.reset_code = ev.error_code

    def ack(self):
        """Gives back the window of what was read."""
        if self.unacked and not self.conn.closed:
            try:
                self.conn.h2.acknowledge_received_data(self.unacked, self.id)
            except h2.exceptions.StreamClosedError:
                pass
            self.unacked = 0

    def send_bytes(self, data, end_stream=False, timeout=30):
        """data as DATA frames, as fast as the windows allow."""
        c, view, deadline = self.conn, memoryview(data), time.monotonic() + timeout
        while len(view) > 0:
            room = min(c.h2.local_flow_control_window(self.id), c.h2.max_outbound_frame_size)
            if room <= 0:
                assert time.monotonic() < deadline, "saker's window stayed shut"
                c.pump(0.2)
                continue
            c.h2.send_data(self.id, bytes(view[:room]))
            view = view[room:]
            c.flush()
        if end_stream:
            self.end()

    def send(self, opcode, payload, fin=True, end_stream=False, timeout=30):
        self.send_bytes(ws_frame(opcode, payload, fin), end_stream, timeout)

    def end(self):
        self.conn.h2.end_stream(self.id)
        self.conn.flush()

    def reset(self, code=CANCEL):
        self.conn.h2.reset_stream(self.id, code)
        self.conn.flush()

    def recv_frame(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            f = parse_frame(self.inbox)
            if f is not None:
                del self.inbox[:f[3]]
                return f[:3]
            left = deadline - time.monotonic()
            assert left > 0, "timed out waiting for a frame"
            assert not (self.ended or self.reset_code is not None or self.conn.closed), \
                "the stream ended (reset %r) before a whole frame" % self.reset_code
            self.conn.pump(min(left, 0.5))

    def recv_message(self, timeout=30):
        """(opcode, payload) of the next message, fragments joined; control
        frames are returned as they come, except the upstream's own
        keep-alive pings (payload of 4 bytes), which get their pong."""
        fin, op, payload = self.recv_frame(timeout)
        while op == OP_PING and self.answer_pings:
            self.send(OP_PONG, payload)
            fin, op, payload = self.recv_frame(timeout)
        while not fin:
            fin, cont, more = self.recv_frame(timeout)
            assert cont == OP_CONT, "a data frame interleaved a fragmented message"
            payload += more
        return op, payload

    def wait_end(self, timeout=10):
        self.conn.wait(lambda: self.ended or self.reset_code is not None, timeout,
                       "the end of the stream")
