"""TCP echo (issue 4): an ``asyncio.Protocol`` server and an asyncio-streams server at 1, 10 and
100 KiB messages, 10 connections, loaded by the C echo_client pinned to the other core.

Each workload returns requests done, seconds and server CPU seconds, so the runner reports both
requests/s and requests per server CPU-second. The ``REFERENCE`` rows run the same load against
bench/c/epoll_echo, a minimal C server: the machine's limit for this client.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Dict

from . import _harness
from ._echo import CONNS, serve_echo

__all__ = ["WORKLOADS", "REFERENCE"]

SIZES = {"1k": 1024, "10k": 10 * 1024, "100k": 100 * 1024}


def _proto(size: int, loop: asyncio.AbstractEventLoop, n: int) -> Dict[str, Any]:
    return serve_echo(loop, n, kind="tcp", style="protocol", size=size)


def _streams(size: int, loop: asyncio.AbstractEventLoop, n: int) -> Dict[str, Any]:
    return serve_echo(loop, n, kind="tcp", style="streams", size=size)


def _reference(size: int, n: int) -> Dict[str, Any]:
    return _harness.run_reference_echo("tcp", size, CONNS, n)


WORKLOADS: Dict[str, Any] = {}
REFERENCE: Dict[str, Any] = {}
for _tag, _size in SIZES.items():
    # n is the count bound (requests); the time bound is _harness.duration()
    WORKLOADS[f"tcp_proto_{_tag}"] = (functools.partial(_proto, _size), 10_000_000, {"tasks": False})
    WORKLOADS[f"tcp_streams_{_tag}"] = (functools.partial(_streams, _size), 10_000_000)
    REFERENCE[f"tcp_proto_{_tag}"] = functools.partial(_reference, _size)
