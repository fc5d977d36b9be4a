"""Transports under odd call orders and bad input, against asyncio's behaviour on this interpreter.

* a closed or aborted transport lets go of its protocol within a loop turn (reference counting
  alone: asyncpg's connection-GC tests);
* a write pipe whose reader is gone fails the write with ``BrokenPipeError``;
* after ``loop.close()``, what raises and what does not (and nothing reaches libuv);
* every kind of buffer on ``write``/``writelines``/``sendto``: the same exception type.
"""

from __future__ import annotations

import array
import asyncio
import gc
import os
import socket
import sys
import weakref

import pytest
from _support import wait


class Quiet(asyncio.Protocol, asyncio.DatagramProtocol):
    def __init__(self):
        self.lost = None
        self.done = asyncio.get_event_loop().create_future()

    def connection_lost(self, exc):
        self.lost = exc
        self.done.set_result(None)


async def _open(loop, kind, factory=Quiet):
    """``(transport, protocol, peer)``; ``peer`` is the other end, for the caller to close."""
    if kind in ("tcp", "unix"):
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
        if family == socket.AF_INET:
            lsock = socket.create_server(("127.0.0.1", 0))
            a = socket.create_connection(lsock.getsockname())
            b, _ = lsock.accept()
            lsock.close()
        else:
            a, b = socket.socketpair()
        t, p = await loop.create_connection(factory, sock=a)
        return t, p, b
    if kind == "read_pipe":
        r, w = os.pipe()
        t, p = await loop.connect_read_pipe(factory, os.fdopen(r, "rb", 0))
        return t, p, os.fdopen(w, "wb", 0)
    if kind == "write_pipe":
        r, w = os.pipe()
        t, p = await loop.connect_write_pipe(factory, os.fdopen(w, "wb", 0))
        return t, p, os.fdopen(r, "rb", 0)
    if kind == "udp":
        t, p = await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))
        return t, p, None
    raise AssertionError(kind)


_NO_REFCOUNT = sys.implementation.name == "pypy"


class Plain(asyncio.Protocol, asyncio.DatagramProtocol):
    """Does nothing, holds nothing (asyncio's own protocol classes take no weak references)."""


RELEASE_CASES = [(k, h) for k in ("tcp", "unix", "read_pipe", "write_pipe", "udp")
                 for h in ("close", "abort") if not (k == "read_pipe" and h == "abort")]


@pytest.mark.parametrize("kind,how", RELEASE_CASES)
def test_protocol_released_one_turn_after_close(loop, kind, how):
    """The transport stays referenced (as a user's object would keep it); its protocol is freed
    by reference counting one loop turn after close()/abort(), as on asyncio. (PyPy has no
    reference counting: there a collection frees it, if nothing holds it.)"""
    async def main():
        t, p, peer = await _open(loop, kind, Plain)
        ref = weakref.ref(p)
        del p
        getattr(t, how)()
        await asyncio.sleep(0)
        if _NO_REFCOUNT:
            gc.collect()
        alive = ref() is not None
        if peer is not None:
            peer.close()
        return t, alive

    gc.disable()
    try:
        transport, alive = loop.run_until_complete(main())
    finally:
        gc.enable()
    assert transport.is_closing()
    assert not alive


@pytest.mark.parametrize("reader_closed", ["before_connect", "after_connect", "a_turn_before"])
def test_write_to_pipe_without_reader_is_broken_pipe(loop, reader_closed):
    """The reader end is gone before the write pipe noticed: write() fails, and
    connection_lost gets BrokenPipeError (not None, the bytes silently dropped)."""
    async def main():
        r, w = os.pipe()
        if reader_closed == "before_connect":
            os.close(r)
        t, p = await loop.connect_write_pipe(Quiet, os.fdopen(w, "wb", 0))
        if reader_closed == "after_connect":
            os.close(r)
        elif reader_closed == "a_turn_before":
            os.close(r)
            await asyncio.sleep(0)
        t.write(b"x" * 100)
        await wait(p.done)
        return p.lost

    assert isinstance(loop.run_until_complete(main()), BrokenPipeError)


CLOSED_LOOP_CASES = {
    # kind: [(operation, what asyncio does: None or the exception type)]
    "tcp": [("write", None), ("writelines", None), ("write_eof", None), ("pause_reading", None),
            ("resume_reading", RuntimeError), ("close", RuntimeError), ("abort", RuntimeError)],
    "unix": [("write", None), ("writelines", None), ("write_eof", None), ("pause_reading", None),
             ("resume_reading", RuntimeError), ("close", RuntimeError), ("abort", RuntimeError)],
    "read_pipe": [("pause_reading", None), ("resume_reading", RuntimeError), ("close", RuntimeError)],
    "write_pipe": [("write", None), ("writelines", None), ("write_eof", RuntimeError),
                   ("close", RuntimeError), ("abort", RuntimeError)],
    "udp": [("sendto", None), ("close", RuntimeError), ("abort", RuntimeError)],
}


def _op(t, name):
    if name == "write":
        t.write(b"x")
    elif name == "writelines":
        t.writelines([b"x", b"y"])
    elif name == "sendto":
        t.sendto(b"x", t.get_extra_info("sockname"))
    elif name == "resume_reading":
        t.pause_reading()
        t.resume_reading()
    else:
        getattr(t, name)()


@pytest.mark.parametrize("kind,op,expected", [(k, o, e) for k, ops in CLOSED_LOOP_CASES.items()
                                              for o, e in ops])
def test_transport_after_loop_close(loop_factory, kind, op, expected):
    loop = loop_factory()
    t, p, peer = loop.run_until_complete(_open(loop, kind))
    loop.close()
    try:
        if expected is None:
            _op(t, op)
        else:
            with pytest.raises(expected, match="Event loop is closed"):
                _op(t, op)
    finally:
        if peer is not None:
            peer.close()
        # asyncio's transport keeps its socket open after its loop closed: close it here
        if isinstance(loop, asyncio.BaseEventLoop) and getattr(t, "_sock", None) is not None:
            t._sock.close()
        pipe = t.get_extra_info("pipe")
        if pipe is not None:
            pipe.close()


def test_subprocess_after_loop_close(loop_factory):
    loop = loop_factory()

    async def main():
        return await loop.subprocess_exec(asyncio.SubprocessProtocol, sys.executable, "-c",
                                          "import sys; sys.stdin.read()")

    t, _ = loop.run_until_complete(main())
    stdin = t.get_pipe_transport(0)
    loop.close()
    stdin.write(b"x")  # asyncio: no error
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        stdin.close()
    t.kill()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        t.close()
    if not isinstance(loop, asyncio.BaseEventLoop):
        return
    # asyncio leaves the child's pipes and Popen behind: reap them
    popen = t.get_extra_info("subprocess")
    for f in (popen.stdin, popen.stdout, popen.stderr):
        if f is not None:
            f.close()
    popen.wait()


def _released():
    m = memoryview(b"abc")
    m.release()
    return m


BUFFERS = {
    "bytes": lambda: b"abc",
    "empty": lambda: b"",
    "bytearray": lambda: bytearray(b"abc"),
    "memoryview_slice": lambda: memoryview(b"abcdef")[1:4],
    "memoryview_noncontiguous": lambda: memoryview(b"abcdef")[::2],
    "memoryview_released": _released,
    "memoryview_2d": lambda: memoryview(bytearray(6)).cast("B", (2, 3)),
    "memoryview_int": lambda: memoryview(bytearray(8)).cast("i"),
    "array": lambda: array.array("i", [1, 2]),
    "str": lambda: "abc",
    "None": lambda: None,
    "int": lambda: 3,
}

_NEW_WRITELINES = sys.version_info >= (3, 12)  # sockets: memoryview() of each, not b"".join
_SENDS_EMPTY = sys.version_info >= (3, 13)  # datagrams: sendto(b"") sends, sendto checks less



def _errors_of(fn):
    """{buffer: the exception type ``fn(buffer)`` raises on this interpreter}."""
    out = {}
    for name, make in BUFFERS.items():
        try:
            fn(make())
        except Exception as exc:
            out[name] = type(exc)
    return out


# (transport kind, method) -> {buffer: asyncio's exception type}; the rest raise nothing.
# asyncio's writelines takes its arguments with b"".join, or (sockets, 3.12+) with memoryview()
_JOIN_ERRORS = _errors_of(lambda d: b"".join([d]))
_MV_ERRORS = _errors_of(memoryview)
_PIPE_WRITE = {"array": AssertionError, "str": AssertionError, "None": AssertionError,
               "int": AssertionError, "memoryview_released": ValueError}
EXPECTED = {
    ("unix", "write"): {"array": TypeError, "str": TypeError, "None": TypeError, "int": TypeError,
                        "memoryview_released": ValueError},
    ("unix", "writelines1"): _MV_ERRORS if _NEW_WRITELINES else _JOIN_ERRORS,
    ("unix", "writelines2"): _MV_ERRORS if _NEW_WRITELINES else _JOIN_ERRORS,
    ("write_pipe", "write"): _PIPE_WRITE if __debug__ else None,
    ("write_pipe", "writelines1"): _JOIN_ERRORS,
    ("write_pipe", "writelines2"): _JOIN_ERRORS,
    ("udp", "sendto"): {"array": TypeError, "str": TypeError, "None": TypeError, "int": TypeError,
                        **({} if _SENDS_EMPTY else {"memoryview_released": ValueError})},
}


@pytest.mark.parametrize("buffer", list(BUFFERS))
@pytest.mark.parametrize("kind,method", list(EXPECTED))
def test_buffer_kinds(loop, handler_calls, kind, method, buffer):
    expected_map = EXPECTED[kind, method]
    if expected_map is None:
        pytest.skip("asyncio's pipe checks the type with assert: not under -O")
    expected = expected_map.get(buffer)

    async def main():
        t, p, peer = await _open(loop, kind)
        data = BUFFERS[buffer]()
        try:
            if method == "write":
                t.write(data)
            elif method == "writelines1":
                t.writelines([data])
            elif method == "writelines2":
                t.writelines([b"a", data])
            else:
                t.sendto(data, t.get_extra_info("sockname"))
            outcome = None
        except Exception as exc:
            outcome = type(exc)
        await asyncio.sleep(0)
        if not t.is_closing():
            t.abort()
        for _ in range(3):
            await asyncio.sleep(0)
        if peer is not None:
            peer.close()
        return outcome

    assert loop.run_until_complete(main()) is expected
