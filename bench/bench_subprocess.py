"""Subprocess spawn-and-wait rate (issue 5): ``asyncio.create_subprocess_exec`` of a trivial
program, then ``await proc.wait()``, one after another; ops are completed spawns. The child
inherits no pipes (stdin/stdout/stderr are DEVNULL), so this measures the loop's process
handling (fork/exec, child watching, exit notification), not pipe transports."""

from __future__ import annotations

import asyncio
import shutil
import sys
from typing import List

from . import _harness

__all__ = ["WORKLOADS"]


def _program() -> List[str]:
    true = shutil.which("true")
    return [true] if true else [sys.executable, "-c", "pass"]


def subprocess_spawn(loop: asyncio.AbstractEventLoop, n: int) -> None:
    argv = _program()
    dn = asyncio.subprocess.DEVNULL

    async def main() -> None:
        for _ in range(n):
            proc = await asyncio.create_subprocess_exec(*argv, stdin=dn, stdout=dn, stderr=dn)
            if await proc.wait() != 0:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}")

    try:
        loop.run_until_complete(main())
    except NotImplementedError as e:
        raise _harness.lacks("subprocess_exec", e) from None


WORKLOADS = {"subprocess_spawn": (subprocess_spawn, 2_000)}
