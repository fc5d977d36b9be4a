"""The read engine (``uvcffi/read_engine.py``): a component of uvcffi's loop, so these tests are
uvcffi's alone; what protocols see of it runs on both loops in tests/transports/."""

from __future__ import annotations

import asyncio
import socket

import pytest

import uvcffi
from uvcffi._binding import ffi
from uvcffi.read_engine import KEY_GONE, KEY_STATUS, STATUS_BITS, ReadEngine, decode_status, status_event


@pytest.fixture
def uvloop_():
    """A uvcffi loop, closed with no libuv handle left (as tests/handles/test_base.py's)."""
    loop = uvcffi.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()
    assert not loop._debug_live_handles()


def test_the_loop_makes_its_engine_and_c_finds_it(uvloop_):
    # made with the loop, before any transport: C reads its arena from uv_loop_t.data
    assert isinstance(uvloop_._reads, ReadEngine)
    assert uvloop_._uv.data == ffi.cast("void*", uvloop_._reads._rb)


@pytest.mark.parametrize("key", [KEY_GONE, KEY_STATUS, 2, 3, 1000, 2**40])
@pytest.mark.parametrize("status", [-1, -4, -104, -4095])
def test_status_event_encoding_round_trips(key, status):
    x = status_event(key, status)
    assert x == (key << STATUS_BITS) | -status  # C writes the same (build_ffi.py)
    assert decode_status(x) == (key, status)


def test_keys_are_given_and_freed_with_the_handle(uvloop_):
    reads = uvloop_._reads
    a, b = socket.socketpair()
    c, d = socket.socketpair()

    async def main():
        t1, _ = await uvloop_.create_connection(asyncio.Protocol, sock=a)
        key = t1._handle.key
        assert key > max(KEY_GONE, KEY_STATUS) and reads.readers[key] is t1
        t1.close()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert reads.readers[key] is not t1 and reads.fast[key] is None and reads.ctxs[key] is None
        t2, _ = await uvloop_.create_connection(asyncio.Protocol, sock=c)
        assert t2._handle.key == key  # a closed stream's key is reused first
        t2.close()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    try:
        uvloop_.run_until_complete(main())
    finally:
        for s in (b, d):
            s.close()


def test_close_drops_every_registration_and_is_idempotent():
    loop = uvcffi.new_event_loop()
    reads = loop._reads
    a, b = socket.socketpair()

    async def main():
        await loop.create_connection(asyncio.Protocol, sock=a)  # left open: close() closes it

    try:
        loop.run_until_complete(main())
        b.send(b"x")
        loop.close()
        assert reads._rb.nev == 0 and reads._rb.used == 0
        assert all(ctx is None for ctx in reads.ctxs) and all(f is None for f in reads.fast)
        assert all(type(r).__name__ == "_Gone" for k, r in enumerate(reads.readers) if k != KEY_STATUS)
        reads.close()
    finally:
        b.close()
    assert loop._debug_live_handles() == 0
