"""Handle lifetimes: a libuv handle's memory lives until its close callback, never less."""

from __future__ import annotations

import gc
import os
import socket

import pytest

import uvcffi
from uvcffi.handles.poll import Poll
from uvcffi.handles.timer import LoopTimer


@pytest.fixture
def uvloop_():
    loop = uvcffi.new_event_loop()
    yield loop
    loop.close()
    assert loop._debug_live_handles() == 0


def test_loop_owns_its_internal_handles(uvloop_):
    # the loop's timer, thread wake-up and signal wake-up handles, made with the loop (the
    # signal socket's descriptor is taken before any of the user's: see sock.py)
    assert uvloop_._debug_live_handles() == 3
    uvloop_.run_until_complete(uvcffi_sleep0())
    assert uvloop_._debug_live_handles() == 3


def test_handle_close_is_deferred_until_callback(uvloop_):
    uvloop_.run_until_complete(uvcffi_sleep0())
    base = uvloop_._debug_live_handles()
    t = LoopTimer(uvloop_)
    assert t in uvloop_._live_handles
    t.close()
    t.close()  # idempotent
    assert t.is_closing() and not t._closed
    assert t in uvloop_._live_handles  # libuv still owns the memory
    del t
    gc.collect()
    uvloop_.run_until_complete(uvcffi_sleep0())
    assert uvloop_._debug_live_handles() == base


async def uvcffi_sleep0():
    import asyncio

    await asyncio.sleep(0)


def test_dropped_handle_stays_alive_until_loop_close(uvloop_):
    LoopTimer(uvloop_)  # no reference kept
    gc.collect()
    assert uvloop_._debug_live_handles() == 4
    uvloop_.close()
    assert uvloop_._debug_live_handles() == 0


def test_poll_reader_and_close_path(uvloop_):
    a, b = socket.socketpair()
    try:
        got = []
        p = Poll(uvloop_, a.fileno())
        fut = uvloop_.create_future()

        def on_ready(status, events):
            got.append((status, events))
            p.stop()
            fut.set_result(None)

        p.start(uvcffi._binding.lib.UV_READABLE, on_ready)
        b.send(b"x")
        uvloop_.run_until_complete(fut)
        assert got and got[0][0] == 0
        p.close()
        uvloop_.run_until_complete(uvcffi_sleep0())
        assert p._closed
    finally:
        a.close()
        b.close()


def test_handle_on_closed_loop_raises():
    loop = uvcffi.new_event_loop()
    loop.close()
    with pytest.raises(RuntimeError):
        LoopTimer(loop)


def test_poll_bad_fd_raises_oserror(uvloop_):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        Poll(uvloop_, r)
    assert uvloop_._debug_live_handles() == 3
