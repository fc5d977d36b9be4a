"""Where a loop's time goes per operation: one workload under cProfile, costs divided by ops.

    .venv/bin/python -m bench.profile tcp_proto_1k --loop uvcffi
    .venv/bin/python -m bench.profile call_soon --loop uvcffi -n 200000 --top 15

Runs the workload once in this process (server workloads still load it from the C client on the
other core, for ``--seconds``), under ``cProfile``, and prints the hottest functions with their
**calls per operation** and **microseconds per operation**. C functions called from Python are
profiled too, so a cffi ``lib.*`` call shows up as a built-in: calls per operation of those rows
are the FFI crossings per message, and the ``def_extern`` callbacks appear as Python functions
called from C. Times are the loop thread's CPU time by default (``--clock wall`` for elapsed);
a C function's own time includes its system calls. Profiling inflates Python-level costs
several times; compare rows with each other and loops with each other, not with the runner's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

from . import _harness
from .loops import BUILTIN, load_factory

__all__ = ["main"]


def _find(workload: str) -> Any:
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        try:
            module = importlib.import_module(f"bench.{path.stem}")
        except Exception:  # noqa: BLE001 - a broken module is not the one asked for
            continue
        if workload in module.WORKLOADS or f"{path.stem}.{workload.rpartition('.')[2]}" == workload:
            return module.WORKLOADS[workload.rpartition(".")[2]]
    raise SystemExit(f"no workload {workload!r}; see python -m bench --list")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    p.add_argument("workload", help="a workload name, e.g. tcp_proto_1k or bench_loop.call_soon")
    p.add_argument("--loop", default="uvcffi", help="a built-in loop name or MODULE:FACTORY (default uvcffi)")
    p.add_argument("-n", type=int, help="operations (counted workloads; default n_default/10)")
    p.add_argument("--seconds", type=float, default=2.0, help="load time of server workloads (default 2)")
    p.add_argument("--top", type=int, default=25, help="rows to print (default 25)")
    p.add_argument("--sort", default="tottime", choices=["tottime", "cumulative", "ncalls"])
    p.add_argument("--clock", default="cpu", choices=["cpu", "wall"],
                   help="cpu: this thread's CPU time (default; what the server spends), wall: elapsed")
    args = p.parse_args(argv)

    entry = _find(args.workload)
    fn, n_default = entry[0], int(entry[1])
    spec = BUILTIN.get(args.loop, args.loop)
    factory = load_factory(spec)
    _harness.build_tools()
    _harness.set_duration(args.seconds)
    n = args.n or max(1, n_default // 10)

    # warm-up (imports, first connection, allocator state), then the profiled run
    _harness.set_duration(min(0.2, args.seconds))
    loop = factory()
    asyncio.set_event_loop(loop)
    try:
        fn(loop, max(1, n // 20))
    finally:
        loop.close()
    _harness.set_duration(args.seconds)
    loop = factory()
    asyncio.set_event_loop(loop)
    prof = cProfile.Profile(time.thread_time if args.clock == "cpu" else time.perf_counter)
    t0 = time.perf_counter()
    try:
        prof.enable()
        result = fn(loop, n)
        prof.disable()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    wall = time.perf_counter() - t0
    ops = result["ops"] if isinstance(result, dict) else n

    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = func if filename == "~" else f"{Path(filename).name}:{line}({func})"
        rows.append((where, nc, tt, ct))
    key = {"tottime": 2, "cumulative": 3, "ncalls": 1}[args.sort]
    rows.sort(key=lambda r: r[key], reverse=True)
    total = sum(r[2] for r in rows)

    print(f"{args.workload} on {args.loop} ({spec}): {ops} ops in {wall:.2f} s under the profiler; "
          f"profiled {args.clock} time {total / ops * 1e6:.2f} µs/op")
    print(f"{'calls/op':>9} {'own µs/op':>10} {'cum µs/op':>10}  function")
    for where, nc, tt, ct in rows[: args.top]:
        print(f"{nc / ops:9.2f} {tt / ops * 1e6:10.3f} {ct / ops * 1e6:10.3f}  {where}")
    builtins = [r for r in rows if r[0].startswith("<built-in method") or r[0].startswith("<method")]
    ffi = sum(r[1] for r in builtins if "_uvcffi" in r[0] or "lib." in r[0])
    if ffi:
        print(f"cffi calls per op (rows naming _uvcffi/lib): {ffi / ops:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
