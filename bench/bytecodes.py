"""Python bytecodes executed per operation, by function (or by line): where a loop's Python goes.

    .venv/bin/python -m bench.bytecodes http_aiohttp --loop uvcffi -n 1000
    .venv/bin/python -m bench.bytecodes http_uvicorn_starlette -n 1000 --lines uvcffi/loop.py

Runs the workload once to warm up, then once under ``sys.settrace`` with opcode events (every
frame of the loop's thread) and prints, per operation, the bytecodes each function executed and
how often it was entered (a coroutine counts once per resumption). Counts are exact, as
``bench.instructions``' are, but they say which Python code runs, not what it costs: a bytecode is
some 20-40 CPU instructions on CPython 3.11, a C call inside one may be thousands. Tracing slows the
server some 20 times, which changes how many requests share a loop turn (as callgrind does); use it
beside ``bench.instructions``, not instead of it. Server workloads take ``-n`` as their request
count where they can be bounded by one (the framework rows do: bench/c/http_client).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import linecache
import sys
from typing import Any, Counter, List, Optional, Tuple

from . import _harness
from .loops import BUILTIN, load_factory
from .profile import _find

__all__ = ["main"]

_PACKAGES = ("uvcffi/", "asyncio/", "aiohttp/", "uvicorn/", "starlette/", "bench/")


def _where(code: Any) -> str:
    f = code.co_filename
    for k in _PACKAGES:
        if k in f:
            return k + f.split(k, 1)[1] + ":" + code.co_name
    return f.rsplit("/", 1)[-1] + ":" + code.co_name


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bytecodes", description=__doc__.split("\n")[0])
    p.add_argument("workload", help="a workload name, e.g. http_aiohttp or tcp_proto_1k")
    p.add_argument("--loop", default="uvcffi", help="a built-in loop name or MODULE:FACTORY (default uvcffi)")
    p.add_argument("-n", type=int, default=1000,
                   help="operations (requests) of the traced run (default 1000)")
    p.add_argument("--top", type=int, default=40, help="functions to print (default 40)")
    p.add_argument("--only", default="", help="print only functions whose file path contains this")
    p.add_argument("--lines", metavar="PATH_PART",
                   help="per source line instead, for files whose path contains PATH_PART")
    args = p.parse_args(argv)

    fn = _find(args.workload)[0]
    factory = load_factory(BUILTIN.get(args.loop, args.loop))
    _harness.build_tools()
    _harness.set_duration(600.0)  # the count ends the load; tracing is slow
    loop = factory()
    asyncio.set_event_loop(loop)
    try:
        fn(loop, max(2, args.n // 5))
    finally:
        loop.close()

    ops: Counter[Any] = collections.Counter()
    calls: Counter[Any] = collections.Counter()
    lines: Counter[Tuple[str, int]] = collections.Counter()
    part = args.lines

    def by_function(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            ops[frame.f_code] += 1
        return by_function

    def by_line(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            lines[(frame.f_code.co_filename, frame.f_lineno or 0)] += 1
        return by_line

    def enter(frame: Any, event: str, arg: Any) -> Any:
        if part is not None:
            if part not in frame.f_code.co_filename:
                return None
            frame.f_trace_opcodes = True
            return by_line
        frame.f_trace_opcodes = True
        calls[frame.f_code] += 1
        return by_function

    loop = factory()
    asyncio.set_event_loop(loop)
    sys.settrace(enter)
    try:
        result = fn(loop, args.n)
    finally:
        sys.settrace(None)
        asyncio.set_event_loop(None)
        loop.close()
    n = result["ops"] if isinstance(result, dict) else args.n

    if part is not None:
        print(f"{args.workload} on {args.loop}: bytecodes per op by line of files matching {part!r}")
        for (path, line), v in sorted(lines.items()):
            if v / n >= 0.1:
                text = linecache.getline(path, line).rstrip()[:90]
                print(f"{v / n:8.1f}  {path.rsplit('/', 1)[-1]}:{line}  {text}")
        return 0
    total = sum(ops.values())
    packages: Counter[str] = collections.Counter()
    for code, v in ops.items():
        w = _where(code)
        packages[w.split("/")[0] + "/" if "/" in w else "other"] += v
    print(f"{args.workload} on {args.loop}: {total / n:.0f} bytecodes per op ({n} ops traced)")
    print("  by package: " + ", ".join(f"{k} {v / n:.0f}" for k, v in packages.most_common()))
    print(f"{'bytecodes/op':>12} {'calls/op':>8}  function")
    shown = [(c, v) for c, v in ops.items() if args.only in c.co_filename]
    for code, v in sorted(shown, key=lambda kv: -kv[1])[: args.top]:
        print(f"{v / n:12.1f} {calls[code] / n:8.2f}  {_where(code)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
