"""Unix-socket echo (issue 5): the ``asyncio.Protocol`` echo server on ``create_unix_server``,
1 KiB messages, 10 connections, C load client on the other core; C epoll reference row."""

from __future__ import annotations

import asyncio
from typing import Any, Dict

from . import _harness
from ._echo import CONNS, serve_echo

__all__ = ["WORKLOADS", "REFERENCE"]


def unix_proto_1k(loop: asyncio.AbstractEventLoop, n: int) -> Dict[str, Any]:
    return serve_echo(loop, n, kind="unix", style="protocol", size=1024)


def _reference(n: int) -> Dict[str, Any]:
    return _harness.run_reference_echo("unix", 1024, CONNS, n)


WORKLOADS = {"unix_proto_1k": (unix_proto_1k, 10_000_000, {"tasks": False})}
REFERENCE = {"unix_proto_1k": _reference}
