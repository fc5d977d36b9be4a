"""Helpers shared by the integration tests (bounded waits, free ports, payloads, server URLs)."""

from __future__ import annotations

import asyncio
import socket

import pytest

# Every wait in these tests is bounded: a hang is a failure with a traceback, not a stuck suite.
TIMEOUT = 30.0


def run(loop: asyncio.AbstractEventLoop, coro, timeout: float = TIMEOUT):
    """Run ``coro`` on ``loop`` to completion, failing after ``timeout`` seconds."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def bound_socket(family: int = socket.AF_INET) -> socket.socket:
    """A listening-ready TCP socket bound to a free loopback port (the test owns the port)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    """Wait for ``predicate()`` to turn true (a flag a library offers no event for), bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def payload(size: int, seed: int = 7) -> bytes:
    """``size`` bytes that are not a repeated pattern of a short period (catches reordering)."""
    import random

    return random.Random(seed).randbytes(size) if hasattr(random.Random, "randbytes") \
        else bytes(random.Random(seed).getrandbits(8) for _ in range(size))


def env_or_skip(name: str, what: str) -> str:
    import os

    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{what}: set {name} (.ci/integration.sh starts one and sets it; "
                    f"`make test-integration` runs it)")
    return value
