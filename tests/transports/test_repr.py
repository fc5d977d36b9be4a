"""Transport reprs, word for word after the class name: the states asyncio's own transports
show (closed/closing, read=/write= while the loop is open, bufsize), which logs and debug
output rely on. Pipe transports are in tests/test_pipes.py.

Every test runs on asyncio's loop (the oracle) and on uvcffi's (``loop``/``loop_factory``).
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from _support import wait


def _states(transport) -> list:
    """The repr's words after the class name, the fd left out."""
    words = repr(transport)[1:-1].split()[1:]
    return [w for w in words if not w.startswith("fd=")]


class Lost(asyncio.Protocol):
    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_stream_socket_transport_repr(loop):
    async def main():
        peers = []

        def accepted():
            proto = Lost()
            peers.append(proto)
            return proto

        class Stalled(Lost):  # the server side never reads: the client's writes queue up
            def connection_made(self, transport):
                transport.pause_reading()
                peers.append(transport)

        server = await loop.create_server(Stalled, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t, p = await loop.create_connection(Lost, "127.0.0.1", port)
        assert _states(t) == ["read=polling", "write=<idle,", "bufsize=0>"]
        t.pause_reading()
        assert _states(t) == ["read=idle", "write=<idle,", "bufsize=0>"]
        t.resume_reading()
        for _ in range(10000):
            t.write(b"x" * 65536)
            if t.get_write_buffer_size():
                break
        size = t.get_write_buffer_size()
        assert size
        assert _states(t) == ["read=polling", "write=<polling,", f"bufsize={size}>"]
        t.abort()
        await wait(p.lost)
        assert _states(t) == ["closed"]
        for peer in peers:
            peer.close()
        server.close()
        await wait(server.wait_closed())

    loop.run_until_complete(main())


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_datagram_transport_repr_after_loop_close(loop_factory):
    lp = loop_factory()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    async def main():
        t, _ = await lp.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock)
        assert _states(t) == ["read=polling", "write=<idle,", "bufsize=0>"]
        return t

    try:
        t = lp.run_until_complete(main())
        lp.close()
        assert _states(t) == []  # the loop is closed: no watch state, as asyncio
    finally:
        lp.close()
        sock.close()
