"""The websockets library (its asyncio implementation), server and client, on both loops:
fragmented and large messages, ping/pong and the keepalive timeout, close handshakes, compression.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib

import pytest

pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK  # noqa: E402

from ._helpers import payload, run  # noqa: E402

BIG = payload(4 * 1024 * 1024 + 1)


async def echo(ws):
    async for msg in ws:
        if msg == "close-4000":
            await ws.close(4000, "done")
            return
        await ws.send(msg)


@contextlib.asynccontextmanager
async def echo_server(**kw):
    async with serve(echo, "127.0.0.1", 0, max_size=None, **kw) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def test_large_messages_round_trip(loop):
    async def main():
        async with echo_server() as url, connect(url, max_size=None) as ws:
            await ws.send(BIG)
            binary = await ws.recv()
            text = "é" * (1024 * 1024)
            await ws.send(text)
            return binary == BIG, await ws.recv() == text

    assert run(loop, main()) == (True, True)


def test_fragmented_messages(loop):
    async def main():
        async with echo_server() as url, connect(url, max_size=None) as ws:
            parts = [BIG[i:i + 300_000] for i in range(0, len(BIG), 300_000)]
            await ws.send(parts)  # one message in len(parts) frames
            joined = await ws.recv()
            await ws.send(["frag", "mented", " text"])
            got = []
            async for piece in ws.recv_streaming():  # and received frame by frame
                got.append(piece)
            return joined == BIG, len(parts), "".join(got)

    assert run(loop, main()) == (True, 14, "fragmented text")


def test_ping_pong(loop):
    async def main():
        async with echo_server() as url, connect(url) as ws:
            waiter = await ws.ping(b"probe")
            latency = await waiter
            return latency >= 0

    assert run(loop, main()) is True


def test_keepalive_ping_timeout_closes_the_connection(loop):
    """A peer that completes the handshake and then never answers: the client's ping times out."""

    async def silent(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        await reader.read()  # never answers: reads until the client gives up and closes
        writer.close()

    async def main():
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with connect(f"ws://127.0.0.1:{port}", ping_interval=0.05, ping_timeout=0.2,
                               close_timeout=0.2, compression=None) as ws:
                try:
                    await ws.recv()
                except ConnectionClosedError as exc:
                    return exc.sent.code if exc.sent else None, exc.rcvd
        finally:
            server.close()
            await server.wait_closed()

    assert run(loop, main()) == (1011, None)


def test_close_handshakes(loop):
    async def main():
        out = []
        async with echo_server() as url:
            async with connect(url) as ws:  # the server closes with 4000
                await ws.send("close-4000")
                try:
                    await ws.recv()
                except (ConnectionClosedOK, ConnectionClosedError) as exc:
                    out.append((type(exc).__name__, exc.rcvd.code, exc.rcvd.reason))
            ws = await connect(url)  # the client closes normally
            await ws.close(1000, "bye")
            out.append((ws.close_code, ws.close_reason))
        return out

    assert run(loop, main()) == [("ConnectionClosedError", 4000, "done"), (1000, "bye")]


@pytest.mark.parametrize("compression", ["deflate", None])
def test_compression(loop, compression):
    async def main():
        async with echo_server(compression=compression) as url, \
                connect(url, compression=compression, max_size=None) as ws:
            text = "compressible " * 100_000
            await ws.send(text)
            echoed = await ws.recv()
            ext = ws.response.headers.get("Sec-WebSocket-Extensions")
            return echoed == text, ext is not None and "permessage-deflate" in ext

    assert run(loop, main()) == (True, compression == "deflate")


def test_tls_large_message(loop, contexts):
    server_ctx, client_ctx = contexts

    async def main():
        async with serve(echo, "127.0.0.1", 0, max_size=None, ssl=server_ctx) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with connect(f"wss://localhost:{port}", ssl=client_ctx, max_size=None) as ws:
                await ws.send(BIG)
                return await ws.recv() == BIG

    assert run(loop, main()) is True


def test_many_concurrent_clients(loop):
    async def main():
        async with echo_server() as url:
            async def one(i):
                async with connect(url) as ws:
                    for j in range(10):
                        await ws.send(f"{i}:{j}")
                        assert await ws.recv() == f"{i}:{j}"
                    return i
            return await asyncio.gather(*(one(i) for i in range(100)))

    assert run(loop, main()) == list(range(100))
