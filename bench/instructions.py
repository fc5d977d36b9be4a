"""CPU instructions per request (or operation) of a workload, counted by valgrind: a figure no noise moves.

    .venv/bin/python -m bench.instructions                      # unix_proto_1k on uvcffi, uvloop, asyncio
    .venv/bin/python -m bench.instructions tcp_streams_1k --loops uvcffi,asyncio
    .venv/bin/python -m bench.instructions task_create_gather --small 2000 --large 8000

A server workload counts the requests it served; the framework rows (``http_uvicorn_starlette``,
``http_aiohttp``: the app on the loop under test, in the counted process) are loaded by
bench/c/http_client, which sends exactly the ``--small``/``--large`` requests (wrk, bounded by
time, cannot); their cost is some 350,000 instructions a request, so ``--small 1000 --large 3000``
is plenty and takes a few minutes a loop. A counted workload (``bench_loop``,
``bench_tasks``: ``fn(loop, n)`` runs ``n`` operations) counts ``n``.

On a shared or virtual machine, timings of one loop against another move by 10-20% from run to
run. An instruction count does not: this runs the server workload twice per loop under
``valgrind --tool=callgrind`` (user-space instructions of the server process, all its threads),
once for ``--small`` and once for ``--large`` requests of the C load client, and reports the
difference divided by the difference in requests -- the start-up and shutdown costs cancel out.
The kernel's share (the same system calls for every loop here) is not counted, and instructions
are not time (a cache miss costs more than an add): use it to tell whether a change made the
per-request work smaller, and ``python -m bench`` for how fast that is. Needs ``valgrind``
(Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional, Tuple

from . import _harness
from .loops import BUILTIN, load_factory
from .profile import _find

__all__ = ["main"]

# valgrind runs the server some 50 times slower: the count ends the load, never the clock
_SLOW_SECONDS = 3600.0


def _child(workload: str, loop_spec: str, count: int) -> None:
    """Inside valgrind: serve ``count`` requests of ``workload`` on a fresh loop."""
    fn = _find(workload)[0]
    _harness.set_duration(_SLOW_SECONDS)
    loop = load_factory(BUILTIN.get(loop_spec, loop_spec))()
    asyncio.set_event_loop(loop)
    try:
        result = fn(loop, count)
    finally:
        loop.close()
    if isinstance(result, dict):  # a server workload: it says how many requests it served
        if not result.get("ops"):
            raise SystemExit(f"{workload} served nothing: {result!r}")
        print(f"ops={result['ops']}")
    else:  # a counted workload (bench_loop, bench_tasks): it ran ``count`` operations
        print(f"ops={count}")


def _count(workload: str, loop_spec: str, count: int) -> Tuple[int, int]:
    """(instructions callgrind counted, requests served) for one run of ``count`` requests."""
    with tempfile.TemporaryDirectory(prefix="uvcffi-instr-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--trace-children=no",
               sys.executable, "-m", "bench.instructions", "--child", workload, loop_spec, str(count)]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if proc.returncode != 0:
            raise SystemExit(f"valgrind run failed ({loop_spec}, {count}):\n{proc.stderr[-2000:]}")
        ops = int(re.findall(r"^ops=(\d+)$", proc.stdout, re.M)[-1])
        with open(out) as f:
            for line in f:
                m = re.match(r"(?:totals|summary):\s+(\d+)", line)
                if m:
                    return int(m.group(1)), ops
    raise SystemExit(f"no instruction total in callgrind's output ({loop_spec}, {count})")


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[2], int(argv[3]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n")[0])
    p.add_argument("workload", nargs="?", default="unix_proto_1k",
                   help="a workload, e.g. unix_proto_1k, tcp_streams_1k, call_later_cancel, "
                        "task_create_gather, http_uvicorn_starlette, http_aiohttp")
    p.add_argument("--loops", default="uvcffi,uvloop,asyncio",
                   help="comma-separated built-in loops or MODULE:FACTORY (default uvcffi,uvloop,asyncio)")
    p.add_argument("--small", type=int, default=10_000, help="requests of the first run (default 10000)")
    p.add_argument("--large", type=int, default=40_000, help="requests of the second run (default 40000)")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.instructions needs valgrind (apt-get install valgrind)")
    if args.large <= args.small:
        raise SystemExit("--large must be more than --small")
    _find(args.workload)  # a clear error before minutes of valgrind
    _harness.build_tools()
    print(f"{args.workload}: user-space instructions per request, ({args.large} - {args.small}) requests")
    for spec in args.loops.split(","):
        ir_a, ops_a = _count(args.workload, spec, args.small)
        ir_b, ops_b = _count(args.workload, spec, args.large)
        print(f"  {spec:16s} {(ir_b - ir_a) / (ops_b - ops_a):9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
