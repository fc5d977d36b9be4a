"""UDP echo (issue 5): a ``create_datagram_endpoint`` echo protocol on 127.0.0.1, loaded by the
C echo_client in UDP mode: 10 connected sockets, each with one 64-byte datagram in flight
(re-sent after 200 ms without an answer, counted as lost). Reports packets echoed per second."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional

from . import _harness

__all__ = ["WORKLOADS"]

SIZE = 64
SOCKETS = 10


class UdpEcho(asyncio.DatagramProtocol):
    transport: Optional[asyncio.DatagramTransport] = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)  # type: ignore[union-attr]


def udp_echo(loop: asyncio.AbstractEventLoop, n: int) -> Dict[str, Any]:
    try:
        transport, _ = loop.run_until_complete(
            loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", 0))
        )
    except NotImplementedError as e:
        raise _harness.lacks("create_datagram_endpoint", e) from None
    try:
        port = transport.get_extra_info("sockname")[1]
        argv = _harness.echo_client_argv(f"127.0.0.1:{port}", kind="udp", size=SIZE, conns=SOCKETS, count=n)
        load = _harness.run_load(loop, argv, _harness.duration() + _harness.HARD_TIMEOUT_SLACK)
    finally:
        transport.close()
        loop.run_until_complete(asyncio.sleep(0))
    return load.result(*_harness.parse_echo_client(load.out))


WORKLOADS = {"udp_echo": (udp_echo, 10_000_000, {"tasks": False})}
