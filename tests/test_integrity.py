"""Nothing lost: 100 MB through an echo server in random chunk sizes, the client pausing and
resuming reading as it goes, hashed both ways. (The TLS variant is in test_tls.py.)"""

from __future__ import annotations

import asyncio
import hashlib
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


class Client(asyncio.Protocol):
    """Sends ``total`` random-sized chunks while reading the echo; pauses its own reading at
    random points and resumes a few callbacks later."""

    def __init__(self, loop, total, seed):
        self.loop = loop
        self.rng = random.Random(seed)
        self.total = total
        self.sent = 0
        self.received = 0
        self.out_hash = hashlib.sha256()
        self.in_hash = hashlib.sha256()
        self.done = loop.create_future()
        self.can_write = True
        self.pauses = 0
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

    def data_received(self, data):
        self.in_hash.update(data)
        self.received += len(data)
        if self.rng.random() < 0.02:
            self.pauses += 1
            self.transport.pause_reading()
            self.loop.call_soon(self.transport.resume_reading)

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


def test_echo_100mb_integrity(loop):
    async def main():
        server = await loop.create_server(EchoServer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Client(loop, TOTAL, seed=1234)
        await loop.create_connection(lambda: client, "127.0.0.1", port)
        assert await asyncio.wait_for(client.done, 120) is None
        assert client.sent == TOTAL
        assert client.received == TOTAL
        assert client.in_hash.hexdigest() == client.out_hash.hexdigest()
        assert client.pauses > 0
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
