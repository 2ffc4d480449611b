"""WebSocket (and any Upgrade) through the proxy: a python3-websockets echo
server as the upstream, python3-websockets clients through saker. The
frames are not saker's business: after the 101 it moves bytes both ways,
so what a client sends must come back exactly, fragmented or not, and
pings, pongs and close codes must cross untouched.
"""

import asyncio
import os
import threading

import pytest

from rawhttp import connect, read_response
from saker_harness import sanitized

websockets = pytest.importorskip("websockets")

MB = 1024 * 1024


class EchoServer:
    """websockets.serve in a thread of its own: echoes every message; the
    text "close:CODE" closes with that code and reason "bye"."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def _echo(self, ws, path=None):
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("close:"):
                await ws.close(int(msg[6:]), "bye")
                return
            await ws.send(msg)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            websockets.serve(self._echo, "127.0.0.1", 0, max_size=None, compression=None))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def echo():
    s = EchoServer()
    yield s
    s.close()


def start(saker_factory, port, limits=""):
    return saker_factory(
        "workers: 1\n" + limits +
        "endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\n"
        "upstreams:\n  ws:\n    servers: [{url: \"http://127.0.0.1:%d\"}]\n"
        "    timeouts: {read: 1s}\n"
        "routes:\n  - path: /ws\n    proxy: {upstream: ws}\n" % port)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 300000, 4 * MB]


def test_messages_of_many_sizes_come_back_whole(saker_factory, echo):
    inst = start(saker_factory, echo.port)

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/x" % inst.port, max_size=None,
                                      compression=None) as ws:
            for n in SIZES:
                data = os.urandom(n)
                await ws.send(data)
                assert await ws.recv() == data
                text = "é" * (n // 2)
                await ws.send(text)
                assert await ws.recv() == text
    run(go())


def test_fragmented_messages_ping_pong_and_close_codes(saker_factory, echo):
    inst = start(saker_factory, echo.port)

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws" % inst.port, max_size=None,
                                      compression=None) as ws:
            parts = [os.urandom(n) for n in (1, 1000, 70000, 5)]
            await ws.send(iter(parts))               # one message in four frames
            assert await ws.recv() == b"".join(parts)
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 10)
            await ws.send("close:4001")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4001 and closed.value.rcvd.reason == "bye"
    run(go())


def test_many_tunnels_at_once(saker_factory, echo):
    inst = start(saker_factory, echo.port)

    async def one(i):
        async with websockets.connect("ws://127.0.0.1:%d/ws" % inst.port,
                                      compression=None) as ws:
            for j in range(20):
                await ws.send("%d-%d" % (i, j))
                assert await ws.recv() == "%d-%d" % (i, j)

    async def go():
        # Under ASan a handshake costs ten times as much: fewer at once, so
        # that none waits past websockets' own 10 s opening timeout.
        await asyncio.gather(*(one(i) for i in range(10 if sanitized() else 30)))
    run(go())


def test_upgraded_limit_is_kept(saker_factory, echo):
    inst = start(saker_factory, echo.port,
                 limits="limits: {max_concurrent_upgraded_connections: 1}\n")

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws" % inst.port) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            with pytest.raises(websockets.InvalidStatusCode) as refused:
                async with websockets.connect("ws://127.0.0.1:%d/ws" % inst.port):
                    pass
            assert refused.value.status_code == 503
        # The first one closed: its permit is back.
        async with websockets.connect("ws://127.0.0.1:%d/ws" % inst.port) as ws:
            await ws.send("again")
            assert await ws.recv() == "again"
    run(go())


def test_an_upgrade_the_upstream_refuses_is_its_answer(saker_factory, echo):
    inst = start(saker_factory, echo.port)
    sock = connect(inst.port)
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")  # no key: websockets says 400
    r = read_response(sock)
    sock.close()
    assert r.status in (400, 426)
