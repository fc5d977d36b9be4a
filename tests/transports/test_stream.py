"""The stream transport over TCP: protocol callbacks, writes, flow control, closing, faults.

Every test runs on asyncio's loop (the oracle) and on uvcffi's (``loop`` fixture).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys

import pytest
from _support import FlowRecorder, abort_all, pattern, upper_echo, wait

# records every callback, pause_writing/resume_writing included
Recorder = FlowRecorder


async def pair(loop, server_proto=None, client_proto=None):
    """A server with one accepted connection and a connected client; both protocols."""
    sp = server_proto or Recorder(loop)
    cp = client_proto or Recorder(loop)
    server = await loop.create_server(lambda: sp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await loop.create_connection(lambda: cp, "127.0.0.1", port)
    await asyncio.wait_for(sp.made, 10)
    return server, sp, cp


def test_roundtrip_and_clean_close(loop):
    async def main():
        server, sp, cp = await pair(loop)
        assert isinstance(cp.transport, asyncio.Transport)
        cp.transport.write(b"hello")
        cp.transport.writelines([b" ", bytearray(b"wor"), memoryview(b"ld")])
        await sp.wait_data(11)
        assert bytes(sp.data) == b"hello world"
        cp.transport.close()
        assert cp.transport.is_closing()
        assert await asyncio.wait_for(cp.done, 10) is None
        assert await asyncio.wait_for(sp.done, 10) is None
        assert sp.events == ["made", "eof", ("lost", None)]
        assert cp.events == ["made", ("lost", None)]
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_extra_info(loop):
    async def main():
        server, sp, cp = await pair(loop)
        t = cp.transport
        sock = t.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert t.get_extra_info("peername") == server.sockets[0].getsockname()
        assert t.get_extra_info("sockname") == sp.transport.get_extra_info("peername")
        assert t.get_extra_info("nope", 42) == 42
        assert t.can_write_eof()
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


def test_write_eof_half_close_and_eof_received_keep_open(loop):
    async def main():
        sp = Recorder(loop, eof_keep_open=True)
        server, sp, cp = await pair(loop, server_proto=sp)
        cp.transport.write(b"ping")
        cp.transport.write_eof()
        with pytest.raises(RuntimeError):
            cp.transport.write(b"more")
        await sp.wait_data(4)
        await wait(sp.eof)
        assert "eof" in sp.events
        # the server kept its side open: it can still answer
        sp.transport.write(b"pong")
        await cp.wait_data(4)
        assert bytes(cp.data) == b"pong"
        sp.transport.close()
        await asyncio.wait_for(cp.done, 10)
        await asyncio.wait_for(sp.done, 10)
        assert cp.events == ["made", "eof", ("lost", None)]
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_bad_write_arguments(loop):
    async def main():
        server, sp, cp = await pair(loop)
        with pytest.raises(TypeError):
            cp.transport.write("text")
        with pytest.raises(TypeError):
            cp.transport.write(123)
        cp.transport.write(b"")  # allowed, nothing sent
        with pytest.raises(ValueError):
            cp.transport.set_write_buffer_limits(high=1, low=2)
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


def test_write_after_close_warns_after_repeats(loop, caplog):
    async def main():
        server, sp, cp = await pair(loop)
        cp.transport.close()
        await asyncio.wait_for(cp.done, 10)
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            cp.transport.write(b"x")  # no exception
            assert not [r for r in caplog.records if "socket.send() raised" in r.getMessage()]
            for _ in range(10):
                cp.transport.write(b"x")
        assert [r for r in caplog.records if "socket.send() raised" in r.getMessage()]
        await asyncio.wait_for(sp.done, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_flow_control_pause_resume_writing(loop):
    async def main():
        server, sp, cp = await pair(loop)
        sp.transport.pause_reading()
        assert not sp.transport.is_reading()
        t = cp.transport
        t.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert t.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        chunk = b"z" * 65536
        sent = 0
        for _ in range(2000):  # fill kernel buffers until the transport queues
            t.write(chunk)
            sent += len(chunk)
            if "pause" in cp.events:
                break
        assert "pause" in cp.events
        assert t.get_write_buffer_size() > 64 * 1024
        sp.transport.resume_reading()
        assert sp.transport.is_reading()
        await sp.wait_data(sent)
        await wait(cp.resumed)
        assert "resume" in cp.events
        assert t.get_write_buffer_size() <= 16 * 1024
        assert len(sp.data) == sent
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


def test_writelines_large_buffers_in_order(loop):
    """Large writelines (uvcffi: one vectored uv_write of the buffers) mixed with small ones and
    plain writes in the same turn: the peer gets every byte once, in call order, and a
    bytearray reused by the caller right after the call does not change what is sent."""
    async def main():
        server, sp, cp = await pair(loop)
        t = cp.transport
        src = pattern(600 * 1024)
        reused = bytearray(src[:200 * 1024])
        expected = bytearray()
        t.writelines([reused, memoryview(src[200 * 1024:350 * 1024]), b"", src[350 * 1024:450 * 1024]])
        expected += src[:450 * 1024]
        reused[:] = b"\0" * len(reused)  # the caller reuses its buffer at once
        t.write(b"<tail>")
        t.writelines([b"<a>", bytearray(b"<b>")])
        t.writelines([src[450 * 1024:], memoryview(b"<end>")])
        expected += b"<tail><a><b>" + src[450 * 1024:] + b"<end>"
        # what waits is counted once: never more than was handed over
        assert t.get_write_buffer_size() <= len(expected)
        await sp.wait_data(len(expected))
        assert bytes(sp.data) == bytes(expected)
        await wait(until_empty(t))
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


def test_writelines_large_buffers_flow_control(loop):
    """A large writelines to a peer that does not read: the transport keeps what the kernel does
    not take, counts it in get_write_buffer_size, pauses the protocol at the high-water mark and
    resumes it below the low one once the peer reads; nothing is lost or reordered."""
    if sys.version_info >= (3, 12) and isinstance(loop, asyncio.BaseEventLoop):
        # asyncio 3.12+ writelines queues memoryviews of the caller's buffers (sendmsg), so a
        # reused bytearray goes out changed; before gh-127655 (3.12.9, 3.13.2) it never pauses
        pytest.skip("asyncio 3.12+ writelines does not copy the caller's buffers")

    async def main():
        server, sp, cp = await pair(loop)
        sp.transport.pause_reading()
        t = cp.transport
        t.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        # 16 MiB in the first call: more than loopback's kernel buffers hold
        src = pattern(32 * 1024 * 1024)
        parts = [src[i:i + 4 * 1024 * 1024] for i in range(0, len(src), 4 * 1024 * 1024)]
        reused = bytearray(parts[1])
        t.writelines([parts[0], reused, memoryview(parts[2]), parts[3]])
        reused[:] = b"\0" * len(reused)  # the kernel has not taken it yet: still sent as given
        assert "pause" in cp.events
        assert t.get_write_buffer_size() > 64 * 1024
        t.write(parts[4])  # queued behind the rest
        t.writelines([parts[5], parts[6], parts[7]])
        sp.transport.resume_reading()
        await sp.wait_data(len(src))
        assert bytes(sp.data) == src
        await wait(cp.resumed)
        assert cp.events.count("pause") == 1 and cp.events.count("resume") == 1
        await wait(until_empty(t))
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


async def until_empty(transport):
    """Until the transport's write buffer is empty (polls; bounded by the caller's wait)."""
    while transport.get_write_buffer_size():
        await asyncio.sleep(0.005)


def test_close_flushes_queued_writes(loop):
    async def main():
        server, sp, cp = await pair(loop)
        sp.transport.pause_reading()
        payload = bytes(range(256)) * 16384  # 4 MiB: more than the kernel buffers
        cp.transport.write(payload)
        assert cp.transport.get_write_buffer_size() > 0
        cp.transport.close()
        sp.transport.resume_reading()
        await asyncio.wait_for(cp.done, 10)
        await asyncio.wait_for(sp.done, 10)
        assert bytes(sp.data) == payload
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_abort_drops_queued_writes(loop):
    async def main():
        server, sp, cp = await pair(loop)
        sp.transport.pause_reading()
        cp.transport.write(b"q" * (8 * 1024 * 1024))
        cp.transport.abort()
        assert cp.transport.is_closing()
        assert await asyncio.wait_for(cp.done, 10) is None
        sp.transport.resume_reading()
        exc = await asyncio.wait_for(sp.done, 10)
        assert exc is None or isinstance(exc, ConnectionResetError)
        assert len(sp.data) < 8 * 1024 * 1024
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_peer_reset_gives_connection_reset(loop):
    async def main():
        server, sp, cp = await pair(loop)
        # RST instead of FIN: SO_LINGER with a zero timeout
        sock = sp.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sp.transport.abort()
        await asyncio.wait_for(sp.done, 10)
        exc = await asyncio.wait_for(cp.done, 10)
        assert isinstance(exc, ConnectionResetError)
        assert exc.args == (errno.ECONNRESET, os.strerror(errno.ECONNRESET))  # the C library's text
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_pause_resume_reading(loop):
    async def main():
        server, sp, cp = await pair(loop)
        sp.transport.pause_reading()
        sp.transport.pause_reading()  # idempotent
        cp.transport.write(b"abc")
        # the client's write reached the server's kernel buffer; nothing delivered while paused
        for _ in range(20):
            await asyncio.sleep(0)
        assert sp.data == b""
        sp.transport.resume_reading()
        await sp.wait_data(3)
        assert sp.data == b"abc"
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


def test_data_received_error_goes_to_handler(loop, handler_calls):
    class Bad(Recorder):
        def data_received(self, data):
            raise ZeroDivisionError

    async def main():
        sp = Bad(loop)
        server, sp, cp = await pair(loop, server_proto=sp)
        cp.transport.write(b"boom")
        exc = await asyncio.wait_for(sp.done, 10)
        assert isinstance(exc, ZeroDivisionError)
        await asyncio.wait_for(cp.done, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    assert len(handler_calls) == 1
    assert isinstance(handler_calls[0]["exception"], ZeroDivisionError)
    assert "data_received" in handler_calls[0]["message"]


class BufProto(asyncio.BufferedProtocol):
    def __init__(self, loop, size=7):
        self.buf = bytearray(size)
        self.data = bytearray()
        self.sizes = []
        self.done = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.sizes.append(nbytes)
        self.data += self.buf[:nbytes]

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.done.set_result(exc)


def test_buffered_protocol_reads_into_its_buffer(loop):
    async def main():
        bp = BufProto(loop)
        server = await loop.create_server(lambda: bp, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cp = Recorder(loop)
        await loop.create_connection(lambda: cp, "127.0.0.1", port)
        payload = bytes(range(256)) * 40
        cp.transport.write(payload)
        cp.transport.close()
        assert await asyncio.wait_for(bp.done, 10) is None
        assert bytes(bp.data) == payload
        assert max(bp.sizes) <= 7
        await asyncio.wait_for(cp.done, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_set_protocol_switches_to_buffered(loop):
    async def main():
        server, sp, cp = await pair(loop)
        cp.transport.write(b"one")
        await sp.wait_data(3)
        bp = BufProto(loop, size=1024)
        sp.transport.set_protocol(bp)
        assert sp.transport.get_protocol() is bp
        cp.transport.write(b"two")
        cp.transport.close()
        assert await asyncio.wait_for(bp.done, 10) is None
        assert bytes(bp.data) == b"two"
        await asyncio.wait_for(cp.done, 10)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_streams_echo(loop):
    async def main():
        server = await asyncio.start_server(upper_echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(50):
            writer.write(b"line %d\n" % i)
            await writer.drain()
            assert await reader.readline() == b"LINE %d\n" % i
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


# Large reads, then small ones: uvcffi switches how it reads (large reads are recv()'d straight
# into bytes, small ones come through libuv's buffer); nothing about that may show.
BIG = 3 * 1024 * 1024


async def _turns(n):
    for _ in range(n):
        await asyncio.sleep(0)


def test_large_then_small_reads_pause_and_eof(loop):
    """Every byte once and in order across large and small reads; nothing while paused (the
    bytes are already in the server's socket buffer: loopback delivers on write); EOF last."""
    big = pattern(BIG)

    async def main():
        server, sp, cp = await pair(loop)
        cp.transport.write(big)
        assert await sp.wait_data(BIG) == big
        sp.transport.pause_reading()
        assert not sp.transport.is_reading()
        more = pattern(BIG + 100_000)[BIG:]
        cp.transport.write(more)
        await _turns(20)
        assert len(sp.data) == BIG, "data_received while paused"
        sp.transport.resume_reading()
        assert await sp.wait_data(BIG + len(more)) == big + more
        for small in (b"a", b"bc", b"def"):
            n = len(sp.data) + len(small)
            cp.transport.write(small)
            await sp.wait_data(n)
        cp.transport.write(big)  # large again after small ones
        await sp.wait_data(2 * BIG + len(more) + 6)
        cp.transport.write_eof()
        await wait(sp.eof)
        assert bytes(sp.data) == big + more + b"abcdef" + big
        assert sp.events[sp.events.index("eof"):] in (["eof"], ["eof", ("lost", None)])
        sp.transport.close()
        await wait(sp.done)
        await wait(cp.done)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_set_protocol_to_buffered_after_large_reads(loop):
    async def main():
        server, sp, cp = await pair(loop)
        big = pattern(BIG)
        cp.transport.write(big)
        assert await sp.wait_data(BIG) == big
        bp = BufProto(loop, size=64 * 1024)
        sp.transport.set_protocol(bp)
        cp.transport.write(big)
        cp.transport.close()
        assert await wait(bp.done) is None
        assert bytes(bp.data) == big
        assert all(0 < n <= 64 * 1024 for n in bp.sizes)
        await wait(cp.done)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_peer_reset_during_large_reads(loop):
    async def main():
        server, sp, cp = await pair(loop)
        big = pattern(BIG)
        cp.transport.write(big)
        await sp.wait_data(BIG)
        sock = cp.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        cp.transport.write(big[:200_000])
        cp.transport.abort()  # RST after the data
        exc = await wait(sp.done)
        assert exc is None or isinstance(exc, ConnectionResetError)
        assert bytes(sp.data) == big + big[:len(sp.data) - BIG]
        await wait(cp.done)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
