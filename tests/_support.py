"""Helpers shared by the test modules: bounded waits, recording protocols, test data.

Plain code, no fixtures (those live in conftest.py). The test modules import it as
``from _support import ...``: pytest puts ``tests/`` on ``sys.path`` (it has no ``__init__.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import socket

import pytest

TIMEOUT = 10  # a bound, never a synchronization


async def wait(aw):
    return await asyncio.wait_for(aw, TIMEOUT)


async def first_step():
    """Let a task created just before take its first step (an ordering yield, not a timing one)."""
    await asyncio.sleep(0)


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6()
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")


def pattern(n: int) -> bytes:
    """``n`` bytes that are not periodic in a small period, so a lost or repeated chunk shows."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(8, "little")).digest() * 64
        i += 1
    return bytes(out[:n])


class Recorder(asyncio.Protocol):
    """A stream protocol that records every callback in ``events``.

    Futures: ``made`` (connection_made), ``eof`` (eof_received), ``done`` (connection_lost, with
    its exception). ``data`` collects what arrived; ``wait_data(n)`` waits (bounded) until ``n``
    bytes are there and returns them. ``eof_received`` answers ``eof_keep_open``.
    """

    def __init__(self, loop, eof_keep_open=False):
        self.loop = loop
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.done = loop.create_future()
        self.eof_keep_open = eof_keep_open
        self._want = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data):
        assert type(data) is bytes
        self.data += data
        if self._want is not None and len(self.data) >= self._want[0] and not self._want[1].done():
            self._want[1].set_result(None)

    async def wait_data(self, n):
        if len(self.data) < n:
            self._want = (n, self.loop.create_future())
            await wait(self._want[1])
        return bytes(self.data)

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.eof_keep_open

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.done.set_result(exc)


class FlowRecorder(Recorder):
    """A ``Recorder`` that also records pause_writing/resume_writing (futures ``paused``/``resumed``
    resolve at the first of each)."""

    def __init__(self, loop, eof_keep_open=False):
        super().__init__(loop, eof_keep_open)
        self.paused = loop.create_future()
        self.resumed = loop.create_future()

    def pause_writing(self):
        self.events.append("pause")
        if not self.paused.done():
            self.paused.set_result(None)

    def resume_writing(self):
        self.events.append("resume")
        if not self.resumed.done():
            self.resumed.set_result(None)


async def abort_all(server, *protos):
    """Abort every transport, wait for every connection_lost, close the server (all bounded)."""
    for p in protos:
        if p.transport is not None:
            p.transport.abort()
    for p in protos:
        if p.transport is not None:
            await wait(p.done)
    server.close()
    await wait(server.wait_closed())


async def upper_echo(reader, writer):
    """A streams server handler: answers every line upper-cased until EOF, then closes."""
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def default_sigint() -> None:
    """``preexec_fn`` of a child that must turn SIGINT into KeyboardInterrupt: a shell starts
    background jobs with SIGINT ignored, and a Python started so installs no handler for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Source text for the scripts of the Ctrl-C tests (run with ``python -c``): defines
# ``ctrl_c_when_polling()``, which sends SIGINT to the main thread once it sleeps in its
# event loop's poll, as a terminal's Ctrl-C lands on an idle loop. Sent while the main thread
# runs Python, KeyboardInterrupt can land inside a pure-Python Task's step (PyPy's asyncio,
# uvcffi's) and leave the task with no waiter: a later run of it never wakes, on asyncio's loop
# as on uvcffi's. That race is not what these tests test, so the thread waits for the poll
# (Linux names the kernel function a thread sleeps in: /proc/self/task/TID/wchan).
CTRL_C_WHEN_POLLING = '''
import signal as _signal, threading as _threading, time as _time

def ctrl_c_when_polling():
    main_thread = _threading.main_thread()
    wchan = "/proc/self/task/%d/wchan" % main_thread.native_id

    def polling():
        try:
            with open(wchan) as f:
                return "epoll" in f.read()
        except OSError:  # no /proc: a fixed pause instead
            _time.sleep(0.2)
            return True

    def interrupt():
        deadline = _time.monotonic() + 10
        while not polling() and _time.monotonic() < deadline:
            _time.sleep(0.001)
        _signal.pthread_kill(main_thread.ident, _signal.SIGINT)

    _threading.Thread(target=interrupt, daemon=True).start()
'''
