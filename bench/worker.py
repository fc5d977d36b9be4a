"""The worker: one process per loop under test, driven by the runner over a pipe.

Each loop lives in its own process for the whole run, so loops never share an interpreter
(importing uvloop cannot change asyncio's numbers, and a crash takes down one column, not the
run), and the runner can interleave loops measurement by measurement at the cost of one
process start per loop.

Protocol: the runner writes one JSON object per line on the worker's stdin, the worker answers
one JSON object per line on the pipe that was its stdout (the worker's own ``sys.stdout`` is
pointed at stderr, so a workload that prints cannot corrupt the protocol).

* ``{"op": "hello"}`` → ``{"ok": true, "info": {...}}`` (the loop was created and closed once),
  or ``{"ok": false, "error": "..."}``.
* ``{"op": "run", "module": M, "name": W, "n": N, "duration": S}`` → on success
  ``{"ok": true, "ops": .., "seconds": .., "cpu": ..}``; ``{"ok": false, "skip": reason}`` when
  the workload raised ``_harness.Skip`` (or the loop raised NotImplementedError);
  ``{"ok": false, "error": "..."}`` for anything else.
* ``{"op": "quit"}`` or end of input: exit.

Each run gets a fresh loop from the factory, set as the current loop, and closed afterwards;
the garbage collector runs before the clock starts.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, Dict

from . import _harness
from .loops import describe, load_factory

__all__ = ["main"]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _run(factory: Any, msg: Dict[str, Any]) -> Dict[str, Any]:
    module = importlib.import_module(msg["module"])
    entry = module.WORKLOADS[msg["name"]]
    fn, n = entry[0], int(msg["n"])
    _harness.set_duration(msg.get("duration", 0.5))
    loop = factory()
    asyncio.set_event_loop(loop)
    try:
        gc.collect()
        cpu0 = _cpu()
        t0 = time.perf_counter()
        result = fn(loop, n)
        seconds = time.perf_counter() - t0
        cpu = _cpu() - cpu0
    finally:
        asyncio.set_event_loop(None)
        try:
            loop.close()
        except Exception:  # noqa: BLE001 - a failed close must not hide the workload's outcome
            traceback.print_exc()
    if isinstance(result, dict):
        # a server workload measured itself: ops, seconds and (server) cpu
        out = {"ok": True, "ops": result["ops"], "seconds": result["seconds"], "server": True}
        for key in ("cpu", "client_cpu"):
            if result.get(key) is not None:
                out[key] = result[key]
        return out
    return {"ok": True, "ops": n, "seconds": seconds, "cpu": cpu, "server": False}


def _task_class(factory: Any) -> str:
    """Creates a loop, runs one task on it, closes it; returns the task's class (what
    ``create_task`` makes on this loop, task factory included)."""

    async def nothing() -> None:
        pass

    loop = factory()
    try:
        try:
            task = loop.create_task(nothing())
            loop.run_until_complete(task)
        except Exception as e:  # noqa: BLE001 - the loop may still run the workloads without tasks
            return f"? (create_task failed: {type(e).__name__})"
        cls = type(task)
        module = sys.modules.get(cls.__module__)
        # asyncio.tasks._PyTask is named "Task": say which name its module knows it by
        names = [k for k, v in vars(module).items() if v is cls] if module else []
        name = cls.__qualname__ if not names or cls.__qualname__ in names else names[0]
        return f"{cls.__module__}.{name}"
    finally:
        loop.close()


def main(argv: Any = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    name, spec = argv[0], argv[1]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj: Dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    factory = None
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg.get("op")
        if op == "quit":
            break
        try:
            if op == "hello":
                factory = load_factory(spec)
                info = describe(name, spec)
                info["tasks"] = _task_class(factory)
                reply({"ok": True, "info": info})
            elif op == "run":
                if factory is None:
                    factory = load_factory(spec)
                reply(_run(factory, msg))
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except _harness.Skip as e:
            reply({"ok": False, "skip": str(e)})
        except NotImplementedError as e:
            reply({"ok": False, "skip": f"NotImplementedError: {e}".rstrip(": ")})
        except BaseException as e:  # noqa: BLE001 - report everything, the runner decides
            traceback.print_exc()
            reply({"ok": False, "error": f"{type(e).__name__}: {e}"[:500]})
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
