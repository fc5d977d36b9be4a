"""Mismatches the fuzzing of test_loop_fuzz.py found, each kept as a plain test on both loops
(asyncio's is the oracle)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from _support import wait


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, loop):
        self.got = []
        self.arrived = loop.create_future()

    def datagram_received(self, data, addr):
        self.got.append(data)
        if not self.arrived.done():
            self.arrived.set_result(None)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio 3.11+ datagram transports pause reading")
def test_datagram_pause_resume_reading(loop):
    # Found as: open a UDP pair, abort one end, is_reading() -> asyncio False, uvcffi raised
    # NotImplementedError (3.11 moved pause_reading/resume_reading/is_reading to every
    # selector transport).
    async def main():
        pa = Datagrams(loop)
        ta, _ = await loop.create_datagram_endpoint(lambda: pa, local_addr=("127.0.0.1", 0))
        tb, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=ta.get_extra_info("sockname"))
        assert ta.is_reading()
        ta.pause_reading()
        ta.pause_reading()  # twice: nothing more
        assert not ta.is_reading()
        tb.sendto(b"one")
        for _ in range(20):  # bounded turns: a paused transport delivers nothing
            await asyncio.sleep(0)
        assert pa.got == []
        ta.resume_reading()
        ta.resume_reading()
        assert ta.is_reading()
        await wait(pa.arrived)
        assert pa.got == [b"one"]
        ta.abort()
        assert not ta.is_reading()
        ta.resume_reading()  # closing: nothing
        assert not ta.is_reading()
        tb.close()
        await asyncio.sleep(0)

    loop.run_until_complete(main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio 3.11+ datagram transports pause reading")
def test_datagram_paused_before_it_starts_reading(loop):
    # pause_reading() before connection_made's turn: the transport never starts watching
    async def main():
        made = loop.create_future()

        class Pausing(Datagrams):
            def connection_made(self, transport):
                transport.pause_reading()
                made.set_result(None)

        pa = Pausing(loop)
        ta, _ = await loop.create_datagram_endpoint(lambda: pa, local_addr=("127.0.0.1", 0))
        await wait(made)
        tb, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=ta.get_extra_info("sockname"))
        tb.sendto(b"held")
        for _ in range(20):
            await asyncio.sleep(0)
        assert pa.got == []
        ta.resume_reading()
        await wait(pa.arrived)
        assert pa.got == [b"held"]
        ta.close()
        tb.close()
        await asyncio.sleep(0)

    loop.run_until_complete(main())


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="before 3.11 only")
def test_datagram_reading_control_is_not_implemented_before_311(loop):
    async def main():
        ta, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        for name in ("is_reading", "pause_reading", "resume_reading"):
            with pytest.raises(NotImplementedError):
                getattr(ta, name)()
        ta.close()
        await asyncio.sleep(0)

    loop.run_until_complete(main())
