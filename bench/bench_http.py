"""HTTP/1.1 keep-alive (issue 4): a minimal ``asyncio.Protocol`` HTTP server loaded by ``wrk``
(one thread, 10 connections) pinned to the other core.

The server is the least an HTTP server does: split the byte stream at the blank line that ends
each request head (pipelined requests included), answer each with a fixed 200 response. It has
no body parsing: that is the framework's cost, not the loop's. wrk is bounded by time only
(whole seconds, at least 1); install it with ``bash bench/setup.sh``.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any, Dict, Optional, Set

from . import _harness

__all__ = ["WORKLOADS", "HttpProtocol"]

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 13\r\n"
    b"\r\n"
    b"Hello, world!"
)


class HttpProtocol(asyncio.Protocol):
    transport: Optional[asyncio.Transport] = None

    def __init__(self, live: Set[HttpProtocol]) -> None:
        self.live = live
        self.buffer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.live.add(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        count = buf.count(b"\r\n\r\n")
        if count:
            self.transport.write(RESPONSE * count)  # type: ignore[union-attr]
            buf = buf[buf.rindex(b"\r\n\r\n") + 4:]
        self.buffer = buf

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.live.discard(self)


_REQUESTS = re.compile(r"(\d+) requests in")
_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")


def http_wrk(loop: asyncio.AbstractEventLoop, n: int) -> Dict[str, Any]:
    wrk = _harness.tool("wrk")
    live: Set[HttpProtocol] = set()
    try:
        server = loop.run_until_complete(loop.create_server(lambda: HttpProtocol(live), "127.0.0.1", 0))
    except NotImplementedError as e:
        raise _harness.lacks("create_server", e) from None
    try:
        port = server.sockets[0].getsockname()[1]
        seconds = max(1, math.ceil(_harness.duration() - 0.05))
        argv = [wrk, "-t1", "-c10", f"-d{seconds}s", "--timeout", "5s", f"http://127.0.0.1:{port}/"]
        load = _harness.run_load(loop, argv, seconds + _harness.HARD_TIMEOUT_SLACK)
        _harness.wait_until(loop, lambda: not live)
    finally:
        server.close()
        loop.run_until_complete(asyncio.wait_for(server.wait_closed(), 5))
    m, r = _REQUESTS.search(load.out), _RATE.search(load.out)
    if not m or not r or int(m.group(1)) == 0:
        raise RuntimeError(f"wrk did no requests: {load.out.strip()[-300:]}")
    ops = int(m.group(1))
    return load.result(ops, ops / float(r.group(1)))


# n is unused: wrk is bounded by time only
WORKLOADS = {"http_wrk": (http_wrk, 1, {"tasks": False})}
