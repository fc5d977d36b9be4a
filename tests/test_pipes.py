"""Pipe transports: connect_read_pipe / connect_write_pipe over os.pipe(), socketpair ends and
character devices (/dev/null, a pty): EOF, closing, flow control, a vanished reader, the
arguments asyncio refuses, and a loop closed under open pipe transports.

Every test runs on asyncio's loop (the oracle) and on uvcffi's (``loop`` fixture).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
import tty

import pytest
from _support import FlowRecorder, Recorder

T = 10  # bound on every wait


# the read end records every callback; the write end also records pause/resume (with futures)
Reader = Recorder
Writer = FlowRecorder


class Fds:
    """The descriptors and file objects a test made. What the test (or a transport) did not
    close is closed at teardown, so a failing test leaks nothing into the next one; a raw
    descriptor is closed only through ``close`` (never twice: its number may be reused)."""

    def __init__(self):
        self.raw = set()
        self.files = []

    def pipe(self):
        r, w = os.pipe()
        self.raw |= {r, w}
        return r, w

    def add(self, *fds):
        self.raw.update(fds)

    def close(self, fd):
        self.raw.remove(fd)
        os.close(fd)

    def file(self, fd, mode):
        """``fd`` as an unbuffered file object, which now owns it."""
        self.raw.remove(fd)
        f = open(fd, mode, buffering=0)
        self.files.append(f)
        return f

    def rfile(self, fd):
        return self.file(fd, "rb")

    def wfile(self, fd):
        return self.file(fd, "wb")

    def track(self, *objs):
        """File objects or sockets to close at teardown if still open; returns them."""
        self.files += objs
        return objs if len(objs) > 1 else objs[0]

    def close_all(self):
        for fd in self.raw:
            os.close(fd)
        self.raw.clear()
        for f in self.files:
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def fds():
    made = Fds()
    yield made
    made.close_all()


def fill(transport, chunk=b"x" * 65536, limit=1000):
    """Write until the transport has data queued (the kernel's pipe buffer is full);
    returns the bytes written."""
    sent = 0
    for _ in range(limit):
        transport.write(chunk)
        sent += len(chunk)
        if transport.get_write_buffer_size() > 0:
            return sent
    raise AssertionError("the pipe never filled up")


# ----------------------------------------------------------------------------- reading
def _needs_read_pipe_is_reading(loop) -> None:
    """asyncio's read pipe transport has is_reading() from Python 3.10 (NotImplementedError before)."""
    from asyncio import unix_events
    if isinstance(loop, unix_events.SelectorEventLoop) and \
            "is_reading" not in vars(unix_events._UnixReadPipeTransport):
        pytest.skip("asyncio's read pipe transport lacks is_reading() before Python 3.10; "
                    "the uvcffi side runs")


def test_read_until_eof(loop, fds):
    _needs_read_pipe_is_reading(loop)

    async def main():
        r, w = fds.pipe()
        pipe = fds.rfile(r)
        proto = Reader(loop, eof_keep_open=True)  # a pipe closes at EOF whatever it answers
        t, p = await loop.connect_read_pipe(lambda: proto, pipe)
        assert p is proto and proto.transport is t
        assert proto.events == ["made"]
        assert isinstance(t, asyncio.ReadTransport)
        assert not isinstance(t, asyncio.WriteTransport)
        assert t.get_extra_info("pipe") is pipe
        assert t.get_extra_info("nope", 7) == 7
        assert t.is_reading() and not t.is_closing()
        os.write(w, b"hello ")
        assert await proto.wait_data(6) == b"hello "
        os.write(w, b"world")
        assert await proto.wait_data(11) == b"hello world"
        fds.close(w)
        assert await asyncio.wait_for(proto.done, T) is None
        assert proto.events == ["made", "eof", ("lost", None)]
        assert t.is_closing() and not t.is_reading()
        assert pipe.closed  # the transport closes the file object it was given
        t.close()  # no-op once closed

    loop.run_until_complete(main())


def test_read_close_by_the_reader(loop, fds):
    _needs_read_pipe_is_reading(loop)

    async def main():
        r, w = fds.pipe()
        pipe = fds.rfile(r)
        proto = Reader(loop)
        t, _ = await loop.connect_read_pipe(lambda: proto, pipe)
        t.close()
        assert t.is_closing() and not t.is_reading()
        assert await asyncio.wait_for(proto.done, T) is None
        assert proto.events == ["made", ("lost", None)]  # no EOF: we hung up ourselves
        assert pipe.closed
        with pytest.raises(BrokenPipeError):
            os.write(w, b"anyone?")  # the read end is really gone

    loop.run_until_complete(main())


def test_pause_resume_reading(loop, fds):
    _needs_read_pipe_is_reading(loop)

    async def main():
        r, w = fds.pipe()
        proto = Reader(loop)
        t, _ = await loop.connect_read_pipe(lambda: proto, fds.rfile(r))
        t.pause_reading()
        assert not t.is_reading()
        t.pause_reading()  # idempotent
        os.write(w, b"held")
        for _ in range(20):  # bounded turns of the loop: nothing may arrive while paused
            await asyncio.sleep(0)
        assert proto.data == b""
        t.resume_reading()
        assert t.is_reading()
        t.resume_reading()  # idempotent
        assert await proto.wait_data(4) == b"held"
        # paused at EOF: EOF waits too
        t.pause_reading()
        fds.close(w)
        for _ in range(20):
            await asyncio.sleep(0)
        assert proto.events == ["made"]
        t.resume_reading()
        assert await asyncio.wait_for(proto.done, T) is None
        assert proto.events == ["made", "eof", ("lost", None)]
        t.pause_reading()  # no-ops once closed
        t.resume_reading()
        assert not t.is_reading()

    loop.run_until_complete(main())


def test_set_protocol(loop, fds):
    async def main():
        r, w = fds.pipe()
        first, second = Reader(loop), Reader(loop)
        t, _ = await loop.connect_read_pipe(lambda: first, fds.rfile(r))
        os.write(w, b"one")
        await first.wait_data(3)
        t.set_protocol(second)
        assert t.get_protocol() is second
        os.write(w, b"two")
        fds.close(w)
        assert await asyncio.wait_for(second.done, T) is None
        assert bytes(first.data) == b"one" and bytes(second.data) == b"two"
        assert second.events == ["eof", ("lost", None)]

    loop.run_until_complete(main())


def test_data_received_error_goes_to_the_handler_and_reading_goes_on(loop, fds, handler_calls):
    _needs_read_pipe_is_reading(loop)

    # asyncio's read pipe does not close on a failing data_received (its socket transports do)
    class Bad(Reader):
        def data_received(self, data):
            super().data_received(data)
            if data == b"boom":
                raise ZeroDivisionError

    async def main():
        r, w = fds.pipe()
        proto = Bad(loop)
        t, _ = await loop.connect_read_pipe(lambda: proto, fds.rfile(r))
        os.write(w, b"boom")
        for _ in range(100):  # bounded turns of the loop
            if handler_calls:
                break
            await asyncio.sleep(0)
        assert len(handler_calls) == 1
        assert isinstance(handler_calls[0]["exception"], ZeroDivisionError)
        assert handler_calls[0]["message"].startswith("Exception in callback")
        assert not t.is_closing() and t.is_reading()
        os.write(w, b"more")
        await proto.wait_data(8)
        assert bytes(proto.data) == b"boommore"
        fds.close(w)
        assert await asyncio.wait_for(proto.done, T) is None
        assert proto.events == ["made", "eof", ("lost", None)]
        assert len(handler_calls) == 1

    loop.run_until_complete(main())


def test_cancelled_connect_closes_the_transport(loop, fds):
    async def main():
        r, w = fds.pipe()
        rpipe, wpipe = fds.rfile(r), fds.wfile(w)
        reader, writer = Reader(loop), Writer(loop)
        tasks = [loop.create_task(loop.connect_read_pipe(lambda: reader, rpipe)),
                 loop.create_task(loop.connect_write_pipe(lambda: writer, wpipe))]
        await asyncio.sleep(0)  # both tasks now wait for connection_made
        for task in tasks:
            task.cancel()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, T)
        assert await asyncio.wait_for(reader.done, T) is None
        assert await asyncio.wait_for(writer.done, T) is None
        assert rpipe.closed and wpipe.closed

    loop.run_until_complete(main())


# ----------------------------------------------------------------------------- writing
def test_write_and_close(loop, fds):
    async def main():
        r, w = fds.pipe()
        reader = Reader(loop)
        await loop.connect_read_pipe(lambda: reader, fds.rfile(r))
        writer = Writer(loop)
        pipe = fds.wfile(w)
        t, p = await loop.connect_write_pipe(lambda: writer, pipe)
        assert p is writer and writer.events == ["made"]
        assert isinstance(t, asyncio.WriteTransport)
        assert t.get_extra_info("pipe") is pipe
        assert t.can_write_eof()
        assert t.get_write_buffer_size() == 0
        payload = bytes(range(256)) * 4096  # 1 MiB: more than the kernel's pipe buffer
        t.write(b"head:")
        t.writelines([b"[l1]", b"[l2]", b":"])
        t.write(b"")
        t.write(payload)
        t.close()
        assert t.is_closing()
        assert await asyncio.wait_for(writer.done, T) is None
        assert writer.events[0] == "made" and writer.events[-1] == ("lost", None)
        assert pipe.closed
        assert await asyncio.wait_for(reader.done, T) is None
        assert bytes(reader.data) == b"head:[l1][l2]:" + payload
        assert reader.events == ["made", "eof", ("lost", None)]

    loop.run_until_complete(main())


MIXED_WRITES = r"""
import asyncio, os, sys

loop = asyncio.new_event_loop() if sys.argv[1] == "asyncio" else __import__("uvcffi").new_event_loop()

class Reader(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.done = loop.create_future()
    def data_received(self, data):
        self.data += data
    def connection_lost(self, exc):
        self.done.set_result(exc)

async def main():
    r, w = os.pipe()
    reader, writer = Reader(), Reader()
    await loop.connect_read_pipe(lambda: reader, open(r, "rb", buffering=0))
    t, _ = await loop.connect_write_pipe(lambda: writer, open(w, "wb", buffering=0))
    payload = bytes(range(256)) * 4096
    t.write(bytearray(b"[ba]"))
    t.write(memoryview(b"[mv]"))
    t.writelines([memoryview(b"[m2]")])
    t.write(payload)
    t.write(b"[tail]")
    t.close()
    assert await asyncio.wait_for(writer.done, 10) is None
    assert await asyncio.wait_for(reader.done, 10) is None
    expected = b"[ba][mv][m2]" + payload + b"[tail]"
    assert bytes(reader.data) == expected, (len(reader.data), len(expected))

loop.run_until_complete(main())
loop.close()
"""


def test_mixed_buffer_writes_then_close(loop_name):
    """bytearray/memoryview writes, a write larger than the pipe, close(): the reader gets
    every byte, in order, then EOF. In a child process: the uvcffi bug this meets frees a
    write request libuv still holds (a crash, sometimes)."""
    out = subprocess.run([sys.executable, "-c", MIXED_WRITES, loop_name],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_write_eof(loop, fds):
    async def main():
        r, w = fds.pipe()
        reader = Reader(loop)
        await loop.connect_read_pipe(lambda: reader, fds.rfile(r))
        writer = Writer(loop)
        t, _ = await loop.connect_write_pipe(lambda: writer, fds.wfile(w))
        t.write(b"last words")
        t.write_eof()
        assert t.is_closing()
        t.write_eof()  # idempotent
        t.write(b"ignored")  # a closing pipe drops writes silently
        assert await asyncio.wait_for(writer.done, T) is None
        assert await asyncio.wait_for(reader.done, T) is None
        assert bytes(reader.data) == b"last words"
        assert reader.events == ["made", "eof", ("lost", None)]
        assert writer.events == ["made", ("lost", None)]

    loop.run_until_complete(main())


def test_abort_drops_queued_data(loop, fds):
    async def main():
        r, w = fds.pipe()
        writer = Writer(loop)
        t, _ = await loop.connect_write_pipe(lambda: writer, fds.wfile(w))
        sent = fill(t)
        t.abort()
        assert t.is_closing()
        assert await asyncio.wait_for(writer.done, T) is None
        # the reader gets what the kernel took, then EOF: far less than was written
        got = 0
        while True:
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            got += len(chunk)
        assert 0 < got < sent

    loop.run_until_complete(main())


def test_flow_control(loop, fds):
    async def main():
        r, w = fds.pipe()
        writer = Writer(loop)
        t, _ = await loop.connect_write_pipe(lambda: writer, fds.wfile(w))
        t.set_write_buffer_limits(high=32 * 1024, low=8 * 1024)
        assert t.get_write_buffer_limits() == (8 * 1024, 32 * 1024)
        chunk = bytes(range(256)) * 64  # 16 KiB
        sent = 0
        for _ in range(1000):  # the pipe holds 64 KiB; then the transport queues
            t.write(chunk)
            sent += len(chunk)
            if writer.paused.done():
                break
        assert writer.events == ["made", "pause"]
        assert t.get_write_buffer_size() > 32 * 1024
        # the reader drains the pipe: the transport writes the rest and resumes the protocol
        reader = Reader(loop)
        await loop.connect_read_pipe(lambda: reader, fds.rfile(r))
        await asyncio.wait_for(writer.resumed, T)
        assert t.get_write_buffer_size() <= 8 * 1024
        await reader.wait_data(sent)
        assert bytes(reader.data) == chunk * (sent // len(chunk))
        assert t.get_write_buffer_size() == 0
        assert writer.events == ["made", "pause", "resume"]
        t.close()
        assert await asyncio.wait_for(writer.done, T) is None
        assert await asyncio.wait_for(reader.done, T) is None

    loop.run_until_complete(main())


def test_reader_goes_away_with_nothing_queued(loop, fds):
    async def main():
        r, w = fds.pipe()
        writer = Writer(loop)
        t, _ = await loop.connect_write_pipe(lambda: writer, fds.wfile(w))
        t.write(b"read before the hang-up")
        fds.close(r)
        # asyncio: the hang-up with an empty buffer is a clean end
        assert await asyncio.wait_for(writer.done, T) is None
        assert writer.events == ["made", ("lost", None)]
        assert t.is_closing()
        t.write(b"dropped")  # no exception after the loss

    loop.run_until_complete(main())


def test_reader_goes_away_with_data_queued(loop, fds, handler_calls):

    async def main():
        r, w = fds.pipe()
        writer = Writer(loop)
        t, _ = await loop.connect_write_pipe(lambda: writer, fds.wfile(w))
        fill(t)
        fds.close(r)
        exc = await asyncio.wait_for(writer.done, T)
        assert isinstance(exc, BrokenPipeError)
        assert writer.events[-1] == ("lost", "BrokenPipeError")
        assert t.get_write_buffer_size() == 0  # queued data dropped

    loop.run_until_complete(main())
    assert handler_calls == []


def test_write_after_the_reader_went_away(loop, fds, handler_calls):
    """The write itself meets EPIPE (before the loop noticed the hang-up): connection_lost
    gets the BrokenPipeError, and it is not reported to the exception handler."""

    async def main():
        r, w = fds.pipe()
        writer = Writer(loop)
        t, _ = await loop.connect_write_pipe(lambda: writer, fds.wfile(w))
        fds.close(r)
        t.write(b"into the void")
        exc = await asyncio.wait_for(writer.done, T)
        assert isinstance(exc, BrokenPipeError)
        assert exc.errno == errno.EPIPE

    loop.run_until_complete(main())
    assert handler_calls == []


# ----------------------------------------------------------------------------- what is a pipe
@pytest.mark.parametrize("direction", ["read", "write"])
def test_regular_file_is_refused(loop, fds, tmp_path, direction):
    async def main():
        f = fds.track(open(tmp_path / "regular", "w+b", buffering=0))
        if direction == "read":
            connect, message = loop.connect_read_pipe, "Pipe transport is for pipes/sockets only."
        else:
            connect = loop.connect_write_pipe
            message = "Pipe transport is only for pipes, sockets and character devices"
        with pytest.raises(ValueError) as info:
            await connect(asyncio.Protocol, f)
        assert str(info.value) == message
        assert not f.closed  # left to the caller
        assert os.get_blocking(f.fileno())
        f.close()

    loop.run_until_complete(main())


def test_socketpair_ends_as_pipes(loop, fds):
    async def main():
        a, b = fds.track(*socket.socketpair())
        reader, writer = Reader(loop), Writer(loop)
        rt, _ = await loop.connect_read_pipe(lambda: reader, a)
        wt, _ = await loop.connect_write_pipe(lambda: writer, b)
        assert rt.get_extra_info("pipe") is a and wt.get_extra_info("pipe") is b
        payload = os.urandom(300_000)
        wt.write(payload)
        assert await reader.wait_data(len(payload)) == payload
        wt.close()
        assert await asyncio.wait_for(writer.done, T) is None
        assert await asyncio.wait_for(reader.done, T) is None
        assert reader.events == ["made", "eof", ("lost", None)]
        assert a.fileno() == -1 and b.fileno() == -1  # both sockets closed with their transports

    loop.run_until_complete(main())


def test_socketpair_write_end_sees_the_reader_go(loop, fds):
    async def main():
        a, b = fds.track(*socket.socketpair())
        writer = Writer(loop)
        wt, _ = await loop.connect_write_pipe(lambda: writer, b)
        wt.write(b"x")
        a.close()
        assert await asyncio.wait_for(writer.done, T) is None
        assert b.fileno() == -1

    loop.run_until_complete(main())


def test_dev_null_as_write_pipe(loop, fds):
    async def main():
        f = fds.track(open(os.devnull, "wb", buffering=0))
        writer = Writer(loop)
        t, _ = await loop.connect_write_pipe(lambda: writer, f)
        for _ in range(100):
            t.write(b"z" * 100_000)
        assert t.get_write_buffer_size() == 0  # /dev/null takes everything at once
        assert writer.events == ["made"]
        t.close()
        assert await asyncio.wait_for(writer.done, T) is None
        assert f.closed

    loop.run_until_complete(main())


DEV_NULL_READER = r"""
import asyncio, os, sys

if sys.argv[1] == "asyncio":
    loop = asyncio.new_event_loop()
else:
    import uvcffi
    loop = uvcffi.new_event_loop()
calls = []
loop.set_exception_handler(lambda loop, context: calls.append(context))

class P(asyncio.Protocol):
    def connection_lost(self, exc):
        lost.set_result(exc)

async def main():
    global lost
    lost = loop.create_future()
    f = open(os.devnull, "rb", buffering=0)
    t, _ = await loop.connect_read_pipe(P, f)
    for _ in range(100):
        if calls:
            break
        await asyncio.sleep(0)
    t.close()
    await asyncio.wait_for(lost, 10)
    assert f.closed
    print([type(c.get("exception")).__name__ for c in calls])

loop.run_until_complete(main())
loop.close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll refuses /dev/null on Linux")
def test_dev_null_as_read_pipe(loop_name):
    """/dev/null is a character device asyncio accepts, but epoll cannot watch it: asyncio
    reports the PermissionError to the exception handler, and close() still works. In a child
    process, because a loop that hands it to epoll unguarded may abort the process."""
    out = subprocess.run([sys.executable, "-c", DEV_NULL_READER, loop_name],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['PermissionError']"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty EIO semantics are Linux's")
def test_pty_as_read_pipe(loop, fds):
    """A pty master is a character device; when the slave closes, reading it fails with EIO,
    which asyncio takes as the end (connection_lost(OSError(EIO)), nothing reported)."""

    async def main():
        master, slave = os.openpty()
        fds.add(master, slave)
        tty.setraw(slave)
        reader = Reader(loop)
        t, _ = await loop.connect_read_pipe(lambda: reader, fds.rfile(master))
        os.write(slave, b"from the terminal")
        assert await reader.wait_data(17) == b"from the terminal"
        fds.close(slave)
        exc = await asyncio.wait_for(reader.done, T)
        assert isinstance(exc, OSError) and exc.errno == errno.EIO
        assert reader.events == ["made", ("lost", "OSError")]

    loop.run_until_complete(main())


# ----------------------------------------------------------------------------- loop close
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_loop_close_with_open_pipe_transports(loop_factory, fds):
    lp = loop_factory()
    r, w = fds.pipe()
    rpipe, wpipe = fds.rfile(r), fds.wfile(w)
    reader, writer = Reader(lp), Writer(lp)

    async def main():
        await lp.connect_read_pipe(lambda: reader, rpipe)
        await lp.connect_write_pipe(lambda: writer, wpipe)
        writer.transport.write(b"unread")

    lp.run_until_complete(main())
    lp.close()  # no error; the transports are not told (the loop can no longer call back)
    assert lp.is_closed()
    assert reader.events == ["made"] and writer.events == ["made"]
    assert not reader.done.done() and not writer.done.done()
    rpipe.close()
    wpipe.close()


# ----------------------------------------------------------------------------- repr
def _states(transport) -> list:
    """The repr's words after the class name, the fd left out."""
    words = repr(transport).strip("<>").split()[1:]
    return [w for w in words if not w.startswith("fd=")]


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_pipe_transport_repr_states(loop_factory, fds):
    """asyncio's pipe reprs: polling/idle (and bufsize on the write side) while the loop runs,
    "closed" twice once the transport is gone, "open" once the loop closed under an open pipe
    (CPython's test_unclosed_pipe_transport)."""
    lp = loop_factory()
    r, w = fds.pipe()
    r2, w2 = fds.pipe()
    rpipe, wpipe = fds.rfile(r), fds.wfile(w)
    reader, writer = Reader(lp), Writer(lp)

    async def main():
        rt, _ = await lp.connect_read_pipe(lambda: reader, rpipe)
        wt, _ = await lp.connect_write_pipe(lambda: writer, wpipe)
        assert _states(rt) == ["polling"]
        rt.pause_reading()
        assert _states(rt) == ["idle"]
        rt.resume_reading()
        assert _states(rt) == ["polling"]
        assert _states(wt) == ["idle", "bufsize=0"]
        fill(wt)
        assert _states(wt) == ["polling", f"bufsize={wt.get_write_buffer_size()}"]
        # another pair, closed by the test
        creader, cwriter = Reader(lp), Writer(lp)
        crt, _ = await lp.connect_read_pipe(lambda: creader, fds.rfile(r2))
        cwt, _ = await lp.connect_write_pipe(lambda: cwriter, fds.wfile(w2))
        crt.close()
        cwt.close()
        await asyncio.wait_for(creader.done, T)
        await asyncio.wait_for(cwriter.done, T)
        assert _states(crt) == ["closed", "closed"]
        assert _states(cwt) == ["closed", "closed"]
        return rt, wt

    rt, wt = lp.run_until_complete(main())
    lp.close()
    assert _states(rt) == ["open"]
    assert _states(wt) == ["open"]
    rpipe.close()
    wpipe.close()
