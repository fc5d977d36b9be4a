"""Streams that keep receiving large messages, with other protocols acting on them in between.

uvcffi reads a stream whose last read was large (64 KiB or more) straight into a ``bytes``
of the waiting size instead of through the loop's read arena (src/uvcffi/_c/reads.c);
a small read hands it back to the arena. What a protocol sees must not depend on that: every
byte once and in order, nothing while paused, EOF and resets as asyncio reports them. Every
test runs on asyncio's loop (the oracle) and on uvcffi's (``loop`` fixture); TCP on 127.0.0.1
and unix sockets, real sockets only.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from _support import pattern, wait

KiB = 1024


class Rec(asyncio.Protocol):
    """Collects the bytes; counts any delivery while we hold it paused (``violations``)."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.transport = None
        self.data = bytearray()
        self.paused = False
        self.violations = 0
        self.on_data = None  # called after each data_received, with this protocol
        self.eof = False
        self.lost = loop.create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data) -> None:
        if self.paused or self.eof or self.lost.done():
            self.violations += 1
        if type(data) is not bytes or not data:
            self.violations += 1
        self.data += data
        if self.on_data is not None:
            self.on_data(self)

    def eof_received(self):
        self.eof = True
        return False

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause(self) -> None:
        self.paused = True
        self.transport.pause_reading()

    def resume(self) -> None:
        self.paused = False
        self.transport.resume_reading()


async def until(pred, what: str) -> None:
    for _ in range(2000):  # 10 s
        if pred():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def serve(loop, family, sockdir, count):
    """A server and ``count`` connected non-blocking client sockets; the server-side protocols
    in the clients' order."""
    protos = []

    def factory():
        p = Rec(loop)
        protos.append(p)
        return p

    if family == "unix":
        path = str(sockdir / "large.sock")
        server = await loop.create_unix_server(factory, path)
        addr, fam = path, socket.AF_UNIX
    else:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr, fam = server.sockets[0].getsockname(), socket.AF_INET
    clients = []
    for _ in range(count):
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        await wait(loop.sock_connect(c, addr))
        clients.append(c)
        await until(lambda: len(protos) == len(clients), "the server's protocol")
    return server, clients, protos


@pytest.fixture
def sockdir(tmp_path):
    return tmp_path


FAMILIES = ["tcp", "unix"]


@pytest.mark.parametrize("family", FAMILIES)
def test_pause_another_stream_between_its_large_reads(loop, sockdir, family):
    """Two streams keep receiving 300 KiB messages at the same moment. Whenever the first one
    gets bytes, it pauses the second (whose next read may already wait in the same turn) and
    resumes it 5 ms later: nothing reaches the second while paused, and every byte of both
    arrives once, in order."""
    rounds = 12

    async def main():
        server, clients, (a, b) = await serve(loop, family, sockdir, 2)
        held = []

        def pause_b(p):
            if not b.paused and not held:
                held.append(1)
                b.pause()

                def release():
                    held.clear()
                    b.resume()

                loop.call_later(0.005, release)

        a.on_data = pause_b
        sent = bytearray()
        try:
            for i in range(rounds):
                msg = pattern(300 * KiB + i)[i:]
                sent += msg
                await wait(asyncio.gather(loop.sock_sendall(clients[0], msg),
                                          loop.sock_sendall(clients[1], msg)))
                n = len(sent)
                await until(lambda n=n: len(a.data) == n and len(b.data) == n,
                            f"round {i}'s bytes")
            assert a.data == sent
            assert b.data == sent
            assert a.violations == 0 and b.violations == 0
        finally:
            for c in clients:
                c.close()
            await wait(asyncio.gather(a.lost, b.lost))
            server.close()
            await wait(server.wait_closed())

    loop.run_until_complete(main())


@pytest.mark.parametrize("family", FAMILIES)
def test_large_then_small_then_large_messages(loop, sockdir, family):
    """A request/response exchange whose messages go 200 KiB, 10 bytes, 100 KiB, 1 byte, ...:
    the server echoes each one whole when it has it, and the client gets every byte back."""
    sizes = [200 * KiB, 10, 100 * KiB, 1, 70 * KiB, 3 * KiB, 256 * KiB, 17, 64 * KiB, 5]

    async def main():
        server, (c,), (p,) = await serve(loop, family, sockdir, 1)
        echoed = [0]

        def echo(proto):
            proto.transport.write(bytes(proto.data[echoed[0]:]))
            echoed[0] = len(proto.data)

        p.on_data = echo
        try:
            for i, n in enumerate(sizes):
                msg = pattern(n + i)[i:]
                await wait(loop.sock_sendall(c, msg))
                got = bytearray()
                while len(got) < len(msg):
                    chunk = await wait(loop.sock_recv(c, 256 * KiB))
                    assert chunk, "the echo server closed"
                    got += chunk
                assert got == msg, f"message {i} ({n} bytes)"
            assert p.violations == 0
        finally:
            c.close()
            await wait(p.lost)
            server.close()
            await wait(server.wait_closed())

    loop.run_until_complete(main())


@pytest.mark.parametrize("how", ["eof", "reset"])
@pytest.mark.parametrize("family", FAMILIES)
def test_eof_or_reset_after_large_messages(loop, sockdir, family, how):
    """After several large messages the peer half-closes (eof_received, then connection_lost
    with None) or resets (connection_lost with ConnectionResetError; unix sockets have no
    reset: the test is TCP's): every byte sent before is delivered first."""
    if how == "reset" and family == "unix":
        pytest.skip("a unix socket cannot be reset")

    async def main():
        server, (c,), (p,) = await serve(loop, family, sockdir, 1)
        sent = bytearray()
        for i in range(4):
            msg = pattern(150 * KiB + i)
            sent += msg
            await wait(loop.sock_sendall(c, msg))
            n = len(sent)
            await until(lambda n=n: len(p.data) == n, f"message {i}")
        if how == "eof":
            tail = pattern(90 * KiB)
            sent += tail
            await wait(loop.sock_sendall(c, tail))
            c.shutdown(socket.SHUT_WR)
            exc = await wait(p.lost)
            assert exc is None
            assert p.eof
            assert p.data == sent
        else:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            c.close()
            exc = await wait(p.lost)
            assert isinstance(exc, ConnectionResetError), exc
            assert p.data == sent
        assert p.violations == 0
        c.close()
        server.close()
        await wait(server.wait_closed())

    loop.run_until_complete(main())


def test_pipe_large_writes_then_eof(loop):
    """A pipe written in 1 MiB bursts (the pipe holds 64 KiB: many full reads) and closed: the
    read pipe transport delivers every byte in order, then EOF and connection_lost(None)."""

    async def main():
        rfd, wfd = os.pipe()
        p = Rec(loop)
        rpipe = os.fdopen(rfd, "rb", buffering=0)
        await loop.connect_read_pipe(lambda: p, rpipe)
        data = pattern(4 * 1024 * KiB)

        def writer():
            with os.fdopen(wfd, "wb", buffering=0) as w:
                for i in range(0, len(data), 1024 * KiB):
                    w.write(data[i:i + 1024 * KiB])

        await wait(loop.run_in_executor(None, writer))
        exc = await wait(p.lost)
        assert exc is None
        assert p.eof
        assert p.data == data
        assert p.violations == 0

    loop.run_until_complete(main())

