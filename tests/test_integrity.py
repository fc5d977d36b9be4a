"""Nothing lost: 100 MB through an echo server in random chunk sizes, the client pausing and
resuming reading as it goes, hashed both ways, over TCP and a unix socket; and 100 MB through a
pipe (write end and read end on the same loop), the reader pausing likewise. A SHA-256 over the
whole stream is equal only if every byte arrived, once, in order. (TLS is in test_tls.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random

TOTAL = 100 * 1024 * 1024


class EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return False  # close() sends what is queued first, then FIN

    def pause_writing(self):
        self.transport.pause_reading()  # back-pressure: stop reading while we cannot write

    def resume_writing(self):
        self.transport.resume_reading()


class Reader(asyncio.Protocol):
    """Hashes what it reads; pauses its reading at random points and resumes a few callbacks
    later. ``done`` resolves with connection_lost's exception."""

    def __init__(self, loop, seed):
        self.loop = loop
        self.rng = random.Random(seed)
        self.received = 0
        self.in_hash = hashlib.sha256()
        self.done = loop.create_future()
        self.pauses = 0

    def data_received(self, data):
        self.in_hash.update(data)
        self.received += len(data)
        if self.rng.random() < 0.02:
            self.pauses += 1
            self.transport.pause_reading()
            self.loop.call_soon(self.transport.resume_reading)

    def connection_made(self, transport):
        self.transport = transport

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


class Client(Reader):
    """Sends ``total`` random-sized chunks (then EOF) while reading the echo as a Reader."""

    def __init__(self, loop, total, seed):
        super().__init__(loop, seed)
        self.total = total
        self.sent = 0
        self.out_hash = hashlib.sha256()
        self.can_write = True
        self.block = bytes(self.rng.getrandbits(8) for _ in range(1 << 16)) * 4

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=1 << 20)
        self.loop.call_soon(self.pump)

    def pump(self):
        while self.can_write and self.sent < self.total:
            n = min(self.rng.randint(1, 200_000), self.total - self.sent)
            start = self.rng.randrange(0, len(self.block) - n) if n < len(self.block) else 0
            chunk = self.block[start:start + n]
            self.out_hash.update(chunk)
            self.sent += len(chunk)
            self.transport.write(chunk)
        if self.sent >= self.total and not self.transport.is_closing():
            self.transport.write_eof()

    def pause_writing(self):
        self.can_write = False

    def resume_writing(self):
        self.can_write = True
        self.loop.call_soon(self.pump)


async def _echo_integrity(loop, server, connect):
    client = Client(loop, TOTAL, seed=1234)
    await connect(lambda: client)
    assert await asyncio.wait_for(client.done, 120) is None
    assert client.sent == TOTAL
    assert client.received == TOTAL
    assert client.in_hash.hexdigest() == client.out_hash.hexdigest()
    assert client.pauses > 0
    server.close()
    await server.wait_closed()


def test_echo_100mb_integrity(loop):
    async def main():
        server = await loop.create_server(EchoServer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await _echo_integrity(loop, server, lambda f: loop.create_connection(f, "127.0.0.1", port))

    loop.run_until_complete(main())


def test_unix_echo_100mb_integrity(loop, tmp_path):
    path = str(tmp_path / "echo.sock")

    async def main():
        server = await loop.create_unix_server(EchoServer, path)
        await _echo_integrity(loop, server, lambda f: loop.create_unix_connection(f, path))

    loop.run_until_complete(main())


def test_pipe_100mb_integrity(loop):
    """One pipe, both ends on the loop: the writer's flow control against the reader's pauses."""

    async def main():
        rfd, wfd = os.pipe()
        reader = Reader(loop, seed=99)
        writer = Client(loop, TOTAL, seed=4321)  # only its sending half: nothing comes back
        await loop.connect_read_pipe(lambda: reader, os.fdopen(rfd, "rb", buffering=0))
        await loop.connect_write_pipe(lambda: writer, os.fdopen(wfd, "wb", buffering=0))
        assert await asyncio.wait_for(reader.done, 120) is None  # EOF after the last byte
        assert await asyncio.wait_for(writer.done, 120) is None
        assert writer.sent == TOTAL
        assert reader.received == TOTAL
        assert reader.in_hash.hexdigest() == writer.out_hash.hexdigest()
        assert reader.pauses > 0

    loop.run_until_complete(main())
