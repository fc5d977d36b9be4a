"""Echo servers written against asyncio's public API, shared by bench_tcp and bench_unix.

Two servers, the two ways asyncio code is written: an ``asyncio.Protocol`` that writes back what
it receives, and an asyncio-streams handler (``reader.read`` / ``writer.write`` / ``drain``).
Both run on whatever loop they are given. ``serve_echo`` starts one, loads it with the C
echo_client until the count or time bound, shuts it down, and returns the server-workload
result dict of the runner protocol (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any, Dict, Optional, Set

from . import _harness

__all__ = ["EchoProtocol", "serve_echo", "CONNS"]

#: Connections the load client opens, as issues 4 and 5 specify.
CONNS = 10


class EchoProtocol(asyncio.Protocol):
    """Writes every chunk straight back. ``live`` tracks open connections for a clean shutdown."""

    transport: Optional[asyncio.Transport] = None

    def __init__(self, live: Set[EchoProtocol]) -> None:
        self.live = live

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.live.add(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.live.discard(self)


def _stream_handler(live: Set[Any]):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        live.add(writer)
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            live.discard(writer)

    return handle


def serve_echo(
    loop: asyncio.AbstractEventLoop, n: int, *, kind: str, style: str, size: int
) -> Dict[str, Any]:
    """Runs an echo server of ``style`` ("protocol" or "streams") over ``kind`` ("tcp" or "unix")
    on ``loop`` and loads it with ``CONNS`` connections of ``size``-byte request/response for at
    most ``n`` requests and ``_harness.duration()`` seconds."""
    live: Set[Any] = set()
    path = None
    if style == "protocol":
        factory = lambda: EchoProtocol(live)  # noqa: E731
        if kind == "tcp":
            coro = loop.create_server(factory, "127.0.0.1", 0)
        else:
            path = _harness.unix_socket_path("echo")
            coro = loop.create_unix_server(factory, path)
    else:
        handler = _stream_handler(live)
        if kind == "tcp":
            coro = asyncio.start_server(handler, "127.0.0.1", 0)
        else:
            path = _harness.unix_socket_path("echo")
            coro = asyncio.start_unix_server(handler, path)
    argv = None
    try:
        try:
            server = loop.run_until_complete(coro)
        except NotImplementedError as e:
            raise _harness.lacks("create_server" if kind == "tcp" else "create_unix_server", e) from None
        try:
            target = path if kind == "unix" else f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
            argv = _harness.echo_client_argv(target, kind=kind, size=size, conns=CONNS, count=n)
            load = _harness.run_load(loop, argv, _harness.duration() + _harness.HARD_TIMEOUT_SLACK)
            # the client has closed its sockets: let the server see every EOF before closing
            _harness.wait_until(loop, lambda: not live)
        finally:
            server.close()
            loop.run_until_complete(asyncio.wait_for(server.wait_closed(), 5))
    finally:
        if path:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    return load.result(*_harness.parse_echo_client(load.out))
