"""Soak: does a loop's memory stay flat under connection churn? asyncio and uvcffi side by side.

``python -m bench.soak --seconds 300`` (``make soak``) runs, for each loop in its own subprocess
and one after the other, an echo server and its clients on that loop for the given time:

* **Churn.** ``--conns`` client tasks (default 16) each open connection after connection, to the
  server over TCP or a unix socket (chosen at random per connection), make 0-6 exchanges of a
  random size (1 B to 128 KiB, log-uniform) and end the connection at random: ``close()``,
  ``abort()``, ``write_eof()``, or ``close()`` with an echo still in flight; one server connection
  in ten aborts by itself after a random number of bytes. Both ends live in the measured process,
  so the server's accept path and the client's connect path are both soaked.
* **Sampling.** Every ``--sample`` seconds (default 5): a ``gc.collect()``, then the resident set
  (``/proc/self/statm``), the open descriptors, and for uvcffi the live libuv handles. A line per
  sample goes to stderr as it runs. (uvcffi's descriptors end one above their start: libuv's
  EMFILE reserve, ``/dev/null`` opened at the first accept and closed with the loop.)
* **The figure.** After a warm-up (the first fifth of the run, at least two samples), the slope
  of RSS against connections made, by least squares over the samples of the next three fifths,
  in **KiB per 100k connections**: a leak of one small object per connection shows as tens of
  KiB per 100k, a leaked buffer per connection as megabytes. Near zero is flat; the allocator's
  noise is a few hundred KiB either way on a run of a few minutes.
* **Where it grew.** ``tracemalloc`` (one frame) runs over the last fifth only, after the slope's
  samples: it slows Python's allocations (for every loop alike) and its own tables grow the RSS,
  which would bend the slope. At the end the lines whose allocations grew most over that fifth
  are printed. ``--no-tracemalloc`` skips it (the slope then takes the last fifth too).

Everything is bounded: each exchange and each close waits 10 s at most (a stall is counted and
the connection aborted), the run stops at ``--seconds``, and the parent kills a child that
overruns by a minute. Only 127.0.0.1 and unix sockets in a private temporary directory are used.
``--json FILE`` also writes the samples and results. Not a test: numbers to read, not to assert.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Dict, List, Optional

from .loops import BUILTIN, describe, load_factory

REPO_DIR = Path(__file__).resolve().parent.parent
RESULT_TAG = "SOAK-RESULT "
WAIT = 10.0  # the bound of one exchange or one close
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- what one connection does ---------------------------------------------------------------------


class EchoServer(asyncio.Protocol):
    """Writes back what it reads; one in ten aborts by itself after ``abort_after`` bytes."""

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.transport: Any = None
        self.seen = 0
        rng = soak.rng
        self.abort_after = rng.randint(1, 1 << 17) if rng.random() < 0.1 else None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.soak.server_conns.add(self)

    def data_received(self, data: bytes) -> None:
        self.seen += len(data)
        if self.abort_after is not None and self.seen >= self.abort_after:
            self.soak.server_aborts += 1
            self.transport.abort()
            return
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # close once the echo queued so far is sent

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        soak = self.soak
        soak.server_conns.discard(self)
        self.transport = None
        if not soak.server_conns and soak.drained is not None and not soak.drained.done():
            soak.drained.set_result(None)


class Client(asyncio.Protocol):
    """Counts the echo; ``wait(n)`` resolves True once ``n`` bytes came back, False if lost first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.got = 0
        self.want = 0
        self.waiter: Optional[asyncio.Future[bool]] = None
        self.lost: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.waiter is not None and self.got >= self.want and not self.waiter.done():
            self.waiter.set_result(True)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(False)
        if not self.lost.done():
            self.lost.set_result(None)

    def wait(self, n: int) -> asyncio.Future[bool]:
        self.want = n
        self.waiter = self.loop.create_future()
        if self.got >= n or self.lost.done():
            self.waiter.set_result(self.got >= n)
        return self.waiter


# -- one loop's run (the child process) -----------------------------------------------------------


class Soak:
    def __init__(self, loop: asyncio.AbstractEventLoop, args: argparse.Namespace) -> None:
        self.loop = loop
        self.args = args
        self.rng = random.Random(args.seed)
        self.block = random.Random(args.seed).randbytes(1 << 17)
        self.server_conns: set = set()
        self.drained: Optional[asyncio.Future[None]] = None  # set once the last server connection is lost
        self.connections = 0
        self.exchanges = 0
        self.bytes = 0
        self.ends: Dict[str, int] = {"close": 0, "abort": 0, "write_eof": 0, "close_in_flight": 0}
        self.server_aborts = 0
        self.connect_errors = 0
        self.stalls = 0
        self.samples: List[Dict[str, float]] = []
        self.deadline = 0.0

    async def client(self, tcp_port: int, unix_path: str) -> None:
        loop, rng = self.loop, self.rng
        while time.monotonic() < self.deadline:
            use_tcp = rng.random() < 0.5
            try:
                if use_tcp:
                    transport, proto = await asyncio.wait_for(
                        loop.create_connection(lambda: Client(loop), "127.0.0.1", tcp_port), WAIT)
                else:
                    transport, proto = await asyncio.wait_for(
                        loop.create_unix_connection(lambda: Client(loop), unix_path), WAIT)
            except (OSError, asyncio.TimeoutError):
                self.connect_errors += 1
                continue
            self.connections += 1
            sent = 0
            for _ in range(rng.randint(0, 6)):
                size = int(2 ** rng.uniform(0, 17))
                start = rng.randrange(0, len(self.block) - size + 1)
                transport.write(self.block[start:start + size])
                sent += size
                try:
                    ok = await asyncio.wait_for(proto.wait(sent), WAIT)
                except asyncio.TimeoutError:
                    self.stalls += 1
                    break
                if not ok:
                    break
                self.exchanges += 1
                self.bytes += size
            r = rng.random()
            if proto.lost.done():
                pass
            elif r < 0.35:
                self.ends["close"] += 1
                transport.close()
            elif r < 0.7:
                self.ends["abort"] += 1
                transport.abort()
            elif r < 0.9:
                self.ends["write_eof"] += 1
                transport.write_eof()  # the server echoes what is left, then closes
            else:
                self.ends["close_in_flight"] += 1
                transport.write(self.block[:rng.randint(1, 1 << 16)])
                transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(proto.lost), WAIT)
            except asyncio.TimeoutError:
                self.stalls += 1
                transport.abort()
                await asyncio.wait_for(asyncio.shield(proto.lost), WAIT)

    def sample(self, start: float) -> None:
        gc.collect()
        with open("/proc/self/statm") as f:
            rss_kib = int(f.read().split()[1]) * PAGE_KIB
        s = {
            "t": round(time.monotonic() - start, 2),
            "connections": self.connections,
            "rss_kib": rss_kib,
            "fds": len(os.listdir("/proc/self/fd")),
        }
        live = getattr(self.loop, "_debug_live_handles", None)
        if live is not None:
            s["handles"] = live()
        self.samples.append(s)
        print(f"soak {self.args.child:8} t={s['t']:6.0f}s connections={self.connections:8} "
              f"rss={rss_kib / 1024:7.1f} MiB fds={s['fds']}"
              + (f" handles={s['handles']}" if "handles" in s else ""), file=sys.stderr, flush=True)

    async def main(self) -> Dict[str, Any]:
        loop, args = self.loop, self.args
        tmp = tempfile.mkdtemp(prefix="uvcffi-soak-")
        unix_path = os.path.join(tmp, "echo.sock")
        try:
            tcp = await loop.create_server(lambda: EchoServer(self), "127.0.0.1", 0)
            unix = await loop.create_unix_server(lambda: EchoServer(self), unix_path)
            port = tcp.sockets[0].getsockname()[1]
            start = time.monotonic()
            self.deadline = start + args.seconds
            warmup = max(2 * args.sample, args.seconds / 5)
            trace_at = start + args.seconds * 0.8 if args.tracemalloc else math.inf
            clients = [loop.create_task(self.client(port, unix_path)) for _ in range(args.conns)]
            self.sample(start)
            snap0 = None
            warm_index = trace_index = None
            traced_from = 0
            next_sample = start + args.sample
            while not all(c.done() for c in clients):
                await asyncio.wait(clients, timeout=max(0.0, next_sample - time.monotonic()))
                now = time.monotonic()
                if now >= next_sample and now < self.deadline:
                    next_sample += args.sample
                    if warm_index is None and now - start >= warmup:
                        warm_index = len(self.samples)
                    self.sample(start)
                    if snap0 is None and now >= trace_at:
                        # the last phase is traced; its samples stay out of the slope (tracemalloc's
                        # own tables are in the RSS)
                        trace_index = len(self.samples)
                        traced_from = self.connections
                        gc.collect()
                        tracemalloc.start(1)
                        snap0 = tracemalloc.take_snapshot()
            for c in clients:
                c.result()  # a client that failed fails the run
            if self.server_conns:  # the server ends of the last connections are closing
                self.drained = loop.create_future()
                await asyncio.wait_for(self.drained, WAIT)
            top: List[str] = []
            if snap0 is not None:
                gc.collect()  # what is left is alive, not garbage waiting for the collector
                snap1 = tracemalloc.take_snapshot()
                filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
                diff = snap1.filter_traces(filters).compare_to(snap0.filter_traces(filters), "lineno")
                top = [str(d) for d in diff[: args.top] if d.size_diff > 0]
                tracemalloc.stop()
                del snap0, snap1, diff
            end = len(self.samples) if trace_index is None else trace_index
            self.sample(start)  # after the churn: not in the slope either
            for c in list(self.server_conns):
                if c.transport is not None:
                    c.transport.abort()
            tcp.close()
            unix.close()
            await asyncio.wait_for(tcp.wait_closed(), WAIT)
            await asyncio.wait_for(unix.wait_closed(), WAIT)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        measured = self.samples[warm_index:end] if warm_index is not None else []
        return {
            "loop": args.child,
            "seconds": round(self.samples[-1]["t"], 1),
            "connections": self.connections,
            "exchanges": self.exchanges,
            "echoed_bytes": self.bytes,
            "ends": self.ends,
            "server_aborts": self.server_aborts,
            "connect_errors": self.connect_errors,
            "stalls": self.stalls,
            "warmup_samples": warm_index,
            "slope_kib_per_100k": slope(measured),
            "rss_kib_after_warmup": measured[0]["rss_kib"] if measured else None,
            "rss_kib_end": self.samples[-1]["rss_kib"],
            "fds": [self.samples[0]["fds"], self.samples[-1]["fds"]],
            "handles": [self.samples[0].get("handles"), self.samples[-1].get("handles")],
            "tracemalloc_top": top,
            "traced_connections": self.connections - traced_from if trace_index is not None else 0,
            "slope_samples": len(measured),
            "samples": self.samples,
        }


def slope(samples: List[Dict[str, float]]) -> Optional[float]:
    """Least-squares slope of RSS (KiB) over connections, per 100k connections."""
    if len(samples) < 2:
        return None
    xs = [s["connections"] for s in samples]
    ys = [s["rss_kib"] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * 100_000


def run_child(args: argparse.Namespace) -> int:
    spec = BUILTIN.get(args.child, args.child)
    loop = load_factory(spec)()
    asyncio.set_event_loop(loop)
    try:
        result = loop.run_until_complete(Soak(loop, args).main())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    result["describe"] = describe(args.child, spec)
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# -- the side-by-side run (the parent) ------------------------------------------------------------


def run_parent(args: argparse.Namespace) -> int:
    results: List[Dict[str, Any]] = []
    failed = []
    for name in args.loops.split(","):
        argv = [sys.executable, "-m", "bench.soak", "--child", name, "--seconds", str(args.seconds),
                "--sample", str(args.sample), "--conns", str(args.conns), "--seed", str(args.seed),
                "--top", str(args.top)] + ([] if args.tracemalloc else ["--no-tracemalloc"])
        print(f"soak: {name} for {args.seconds:g} s", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(argv, cwd=REPO_DIR, stdout=subprocess.PIPE, text=True,
                                  timeout=args.seconds + 60)
        except subprocess.TimeoutExpired:
            failed.append(f"{name}: overran its time by a minute, killed")
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
        if proc.returncode != 0 or not lines:
            failed.append(f"{name}: exited {proc.returncode} without a result")
            continue
        results.append(json.loads(lines[-1][len(RESULT_TAG):]))
    print(report(results, args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    for f in failed:
        print("soak: " + f, file=sys.stderr)
    return 1 if failed else 0


def _mib(kib: Optional[float]) -> str:
    return "?" if kib is None else f"{kib / 1024:.1f}"


def report(results: List[Dict[str, Any]], args: argparse.Namespace) -> str:
    out = [f"### Soak — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
           f"`python -m bench.soak --seconds {args.seconds:g}` — {args.conns} client tasks, "
           f"samples every {args.sample:g} s, seed {args.seed}, "
           f"tracemalloc {'on for the last fifth' if args.tracemalloc else 'off'}; "
           f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores.", "",
           "| loop | version | connections | conn/s | exchanges | stalls | RSS after warm-up → end (MiB) "
           "| slope (KiB per 100k conn) | fds | libuv handles |",
           "|---|---|---:|---:|---:|---:|---|---:|---|---|"]
    for r in results:
        d = r["describe"]
        version = d.get("version", "?") + (f" (libuv {d['libuv']})" if "libuv" in d else "")
        s = r["slope_kib_per_100k"]
        rss = f"{_mib(r['rss_kib_after_warmup'])} → {_mib(r['rss_kib_end'])}"
        fds = f"{r['fds'][0]} → {r['fds'][1]}"
        handles = "–" if r["handles"][0] is None else f"{r['handles'][0]} → {r['handles'][1]}"
        out.append(
            f"| {r['loop']} | {version} | {r['connections']:,} | {r['connections'] / r['seconds']:,.0f} "
            f"| {r['exchanges']:,} | {r['stalls']} | {rss} "
            f"| {'?' if s is None or math.isnan(s) else f'{s:+,.0f}'} | {fds} | {handles} |")
    for r in results:
        ends = ", ".join(f"{k} {v:,}" for k, v in r["ends"].items())
        out += ["", f"**{r['loop']}**: ends {ends}; server aborts {r['server_aborts']:,}; "
                    f"connect errors {r['connect_errors']}. tracemalloc's top growth over the last fifth "
                    f"({r['traced_connections']:,} connections):", ""]
        out += [f"    {line}" for line in r["tracemalloc_top"]] or ["    (not traced)"]
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="run time per loop (default 60)")
    p.add_argument("--loops", default="asyncio,uvcffi", help="comma-separated names or module:factory specs")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    p.add_argument("--conns", type=int, default=16, help="concurrent client tasks (default 16)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--top", type=int, default=8, help="tracemalloc lines to print per loop")
    p.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    p.add_argument("--json", metavar="FILE", help="also write every sample and result as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return run_child(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
