"""The parts uvcffi's loop owns (``Loop.__init__``): each is built with the loop and emptied by
``Loop.close()``. uvcffi's structure, not asyncio behaviour, so these run on uvcffi alone; what
users see of each part runs on both loops in its feature tests (test_dns, test_tcp, test_fds,
test_sock, test_signals ...)."""

from __future__ import annotations

import asyncio
import signal
import socket

import pytest

import uvcffi
from uvcffi.dns import Resolver
from uvcffi.fds import FdWatches
from uvcffi.read_engine import ReadEngine
from uvcffi.signals import Signals


def test_the_loop_builds_its_components():
    loop = uvcffi.new_event_loop()
    try:
        assert isinstance(loop._reads, ReadEngine)
        assert isinstance(loop._resolver, Resolver)
        assert isinstance(loop._fds, FdWatches)
        assert isinstance(loop._signals, Signals)
    finally:
        loop.close()


def test_resolver_takes_ips_as_written_and_asks_loop_getaddrinfo_for_names(monkeypatch):
    loop = uvcffi.new_event_loop()
    asked = []

    async def getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
        asked.append((host, port, type))
        return [(socket.AF_INET, type, 0, "", ("127.0.0.2", 7))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)

    async def main():
        ip = await loop._resolver.ensure_resolved(("127.0.0.1", "80"))
        assert ip == [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 80))]
        udp = await loop._resolver.ensure_resolved(("127.0.0.1", 9), type=socket.SOCK_DGRAM)
        assert udp == [(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", ("127.0.0.1", 9))]
        assert asked == []
        named = await loop._resolver.ensure_resolved(("example.invalid", 7), type=socket.SOCK_DGRAM)
        assert named == [(socket.AF_INET, socket.SOCK_DGRAM, 0, "", ("127.0.0.2", 7))]
        assert asked == [("example.invalid", 7, socket.SOCK_DGRAM)]

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_close_ends_the_dns_requests_in_flight():
    loop = uvcffi.new_event_loop()

    async def main():
        task = loop.create_task(loop.getaddrinfo("localhost", 80))
        await asyncio.sleep(0)  # submitted: in libuv's threadpool, or answered already
        return task

    task = loop.run_until_complete(main())
    loop.close()
    assert loop._resolver._requests == set()
    assert loop._debug_live_handles() == 0
    task._log_destroy_pending = False  # left pending on purpose: the loop closed under it


def test_close_forgets_every_fd_watch():
    loop = uvcffi.new_event_loop()
    a, b = socket.socketpair()
    try:
        loop.add_reader(a, lambda: None)
        loop.add_writer(b, lambda: None)
        assert set(loop._fds.watches) == {a.fileno(), b.fileno()}
        loop.close()
        assert loop._fds.watches == {} and loop._fds.fresh == []
        assert loop._debug_live_handles() == 0
        assert loop.remove_reader(a) is False  # asyncio's answer on a closed loop
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
def test_signal_handlers_live_in_the_signals_component():
    loop = uvcffi.new_event_loop()
    try:
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        assert set(loop._signals.handlers) == {signal.SIGUSR1}
        assert loop._signal_handlers is loop._signals.handlers
    finally:
        loop.close()
    assert loop._signals.handlers == {}
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
