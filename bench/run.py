"""The side-by-side runner: every workload of bench/ on every loop, interleaved, as a table and a chart.

Method, and why:

* **One worker process per loop** (bench/worker.py), started once and kept for the run: loops
  never share an interpreter, and a crashing loop loses its own column only.
* **Calibration.** A short warm-up run of every workload on every loop (it also warms caches and
  JITs) gives each loop's rate; the measured count ``n`` is what the *slowest* loop does in the
  mode's target time, capped by the workload's ``n_default``. Every loop then runs the same ``n``,
  and no measurement runs much longer than the target. Server workloads are bounded by the mode's
  duration and by their count instead.
* **Interleaving.** Round by round, workload by workload, the loops run one after the other
  (A B C A B C …), so a slow drift of the machine (thermal, a background job) hits every loop
  alike instead of one loop's whole series. Each round starts one loop later (A B C, B C A,
  C A B …), so no loop always runs right after the C reference or right after a pause. A
  server workload's round in ``--full`` is four slices of a quarter of the duration each,
  interleaved the same way (A B C, B C A, …), and each loop's sample for the round sums its
  slices: this VM's speed moves by up to 2× over a few seconds (the same server measured every
  0.4 s runs at 47k, 36k, 48k … then 58k, 63k requests/s), so whole 2-second measurements one
  after the other compared loops in different weather; quarters side by side share it.
* **Statistics.** Each cell is the median of the rounds; the ratio to asyncio is computed pair by
  pair *within* a round and then the median of those ratios is taken, with the min–max spread of
  the rounds shown beside it, so a noisy round is visible instead of hidden.
* **Other interpreters.** A loop named ``name@interp`` (``uvcffi@pypy``) runs in a worker started
  with that interpreter (bench/loops.py resolves it), interleaved with the others like any loop:
  uvcffi on PyPy and uvloop on CPython are compared in one run, in the same weather. A pair
  ratio column (``uvcffi@pypy ÷ uvloop`` by default, ``--ratio NUM/DEN`` for any other) takes
  the median of the per-round ratios of the two, by ops/s and, for server rows, by requests per
  server CPU-second (the comparison to read when the load client is the limit).
* **Bounds.** Each worker request has a hard timeout; a worker that exceeds it is killed and
  restarted and the cell reports the timeout. A workload that fails or is skipped on a loop is
  not retried on that loop.

Run ``python -m bench --help`` for the options; bench/README.md explains the workload protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import importlib
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _harness
from .loops import BASELINE, BUILTIN, INTERPRETER_VENVS, interpreter, split_name

__all__ = ["main", "MODES", "Workload", "discover"]

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

#: A loop whose measurements time out this many times is dropped for the rest of the run.
MAX_TIMEOUTS = 2

#: Name of the reference pseudo-loop (the C epoll server), run by the runner itself.
REFERENCE_NAME = "epoll (C)"

#: Pair ratio columns shown whenever both loops ran: (loop, its implementation) ÷ (loop, its
#: implementation), the implementation as the worker reports it (``platform.python_implementation``).
DEFAULT_PAIRS = [(("uvcffi", "PyPy"), ("uvloop", "CPython"))]

#: Loops added to the default ``--loops`` when a PyPy interpreter is found and the runner is not it.
PYPY_DEFAULT_LOOPS = ["asyncio@pypy", "uvcffi@pypy"]

#: A pair ratio is marked client-bound when either loop's load client used this share of its core.
CLIENT_BOUND = 0.9

#: Modules in the order their workloads are shown; any other bench_*.py follows alphabetically.
MODULE_ORDER = [
    "bench_loop", "bench_tasks", "bench_tcp", "bench_unix", "bench_http", "bench_udp", "bench_subprocess",
]


@dataclass(frozen=True)
class Mode:
    rounds: int
    target: float          # seconds one counted measurement should take on the slowest loop
    warm_fraction: float   # warm-up count as a fraction of n_default
    duration: float        # seconds one server measurement loads the server
    warm_duration: float   # the same for the warm-up run
    timeout: float         # hard limit of one counted measurement
    probe: float           # seconds of each half of the CPU-capacity probe (0: none)
    slices: int = 1        # a server measurement of a round is this many interleaved slices
    jit_warm: float = 0.0  # seconds of warm-up per workload on a loop whose interpreter has a JIT


MODES: Dict[str, Mode] = {
    "smoke": Mode(rounds=2, target=0.01, warm_fraction=0.0005, duration=0.1, warm_duration=0.05,
                  timeout=30, probe=0, jit_warm=0.05),
    "quick": Mode(rounds=3, target=0.2, warm_fraction=0.01, duration=0.5, warm_duration=0.1,
                  timeout=60, probe=1.0, jit_warm=0.6),
    "full": Mode(rounds=7, target=0.6, warm_fraction=0.02, duration=2.0, warm_duration=0.3,
                 timeout=180, probe=2.0, slices=4, jit_warm=2.0),
}

#: Most warm-up runs of one workload on a JIT's loop (``Mode.jit_warm`` usually stops it first).
JIT_WARM_RUNS = 12


@dataclass
class Workload:
    module: str            # "bench_loop"
    name: str              # "call_soon"
    n_default: int
    opts: Dict[str, Any]
    reference: Optional[Callable[[int], Dict[str, Any]]] = None
    server: Optional[bool] = None   # learned from the warm-up run
    n: int = 0                      # the calibrated count
    samples: Dict[str, List[Optional[Dict[str, Any]]]] = field(default_factory=dict)
    status: Dict[str, str] = field(default_factory=dict)   # loop -> "skip: ..." / "error: ..."

    @property
    def key(self) -> str:
        return f"{self.module}.{self.name}"

    def uses_tasks(self) -> bool:
        return bool(self.opts.get("tasks", True))


# -- workloads ------------------------------------------------------------------------------------


def discover(only: List[str], say: Callable[[str], None]) -> List[Workload]:
    """Imports every bench/bench_*.py and collects its WORKLOADS (and REFERENCE) entries."""
    names = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    names.sort(key=lambda m: (MODULE_ORDER.index(m) if m in MODULE_ORDER else len(MODULE_ORDER), m))
    out: List[Workload] = []
    for mod_name in names:
        try:
            module = importlib.import_module(f"bench.{mod_name}")
            table = dict(module.WORKLOADS)
        except Exception as e:  # noqa: BLE001 - a broken module must not stop the others
            say(f"skip module {mod_name}: cannot import it ({type(e).__name__}: {e})")
            continue
        refs = dict(getattr(module, "REFERENCE", {}) or {})
        for name, entry in table.items():
            key = f"{mod_name}.{name}"
            if only and not any(fnmatch.fnmatch(key, p) or fnmatch.fnmatch(name, p) for p in only):
                continue
            try:
                n_default = int(entry[1])
                opts = dict(entry[2]) if len(entry) > 2 else {}
                if not callable(entry[0]) or n_default < 1:
                    raise ValueError("not (fn, n_default[, opts])")
            except Exception as e:  # noqa: BLE001
                say(f"skip workload {key}: bad WORKLOADS entry ({e})")
                continue
            out.append(Workload(mod_name, name, n_default, opts, refs.get(name)))
    return out


# -- workers --------------------------------------------------------------------------------------


class Worker:
    """A bench.worker process for one loop; ``call`` sends a request and waits, bounded in time."""

    def __init__(self, name: str, spec: str, log_dir: Path, executable: str = sys.executable) -> None:
        self.name, self.spec, self.executable = name, spec, executable
        self.log_path = log_dir / f"worker-{name.replace('/', '_')}.log"
        self.proc: Optional[subprocess.Popen] = None
        self.buf = b""
        self.start()

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONHASHSEED", "0")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.executable, "-m", "bench.worker", self.name, self.spec],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=str(REPO_DIR), env=env,
        )
        log.close()
        self.buf = b""

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def call(self, msg: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        assert self.proc and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died()
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                self.start()
                return {"ok": False, "timeout": True,
                        "error": f"timed out after {timeout:.0f} s (worker restarted)"}
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return self._died()
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def _died(self) -> Dict[str, Any]:
        assert self.proc
        rc = self.proc.wait()
        tail = self.log_tail()
        self.start()
        return {"ok": False, "error": f"worker died (exit {rc}): {tail}"[:500]}

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "quit"}\n')  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
                self.proc.wait(5)
            except Exception:  # noqa: BLE001
                self.kill()


# -- formatting -----------------------------------------------------------------------------------


def human(x: Optional[float]) -> str:
    """1234567 -> '1.23M'; three significant digits."""
    if x is None:
        return "—"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


# -- statistics -----------------------------------------------------------------------------------


def _sum_replies(replies: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The slices of one round's server measurement as one reply: operations, seconds and CPU
    seconds add up (so the rate is over the time of every slice)."""
    if len(replies) == 1:
        return replies[0]
    out = dict(replies[-1])
    for key in ("ops", "seconds", "cpu", "client_cpu"):
        if all(rep.get(key) is not None for rep in replies):
            out[key] = sum(rep[key] for rep in replies)
    return out


def _ratio_stats(samples: List[Optional[Dict[str, Any]]], base: List[Optional[Dict[str, Any]]], key: str,
                 field_: str) -> Dict[str, float]:
    """The median of the per-round ratios ``samples[r][key] / base[r][key]`` (rounds where both
    have the value) and their min and max, as ``field_``, ``field__min``, ``field__max``."""
    ratios = [s[key] / b[key] for s, b in zip(samples, base) if s and b and s.get(key) and b.get(key)]
    if not ratios:
        return {}
    return {field_: statistics.median(ratios), field_ + "_min": min(ratios), field_ + "_max": max(ratios)}


def pair_ratios(wl: Workload, num: str, den: str, results: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """``num`` over ``den`` on one workload, round by round: ``ratio`` (ops/s) and, for a server
    workload, ``eff_ratio`` (requests per server CPU-second), each with its min and max;
    ``client_load`` is the larger of the two loops' median client loads (``CLIENT_BOUND`` or more:
    the client set the pace, read ``eff_ratio``)."""
    a, b = wl.samples.get(num, []), wl.samples.get(den, [])
    out: Dict[str, Any] = dict(_ratio_stats(a, b, "rate", "ratio"))
    if wl.server:
        out.update(_ratio_stats(a, b, "eff", "eff_ratio"))
        loads = [results.get(lp, {}).get("client_load") for lp in (num, den)]
        if all(x is not None for x in loads):
            out["client_load"] = max(loads)  # type: ignore[type-var]
    return out


def summarize(wl: Workload, loops: List[str], baseline: str) -> Dict[str, Dict[str, Any]]:
    """Per loop: median/min/max ops/s, the median of per-round ratios to the baseline and their
    spread, and the same for requests per server CPU-second when the workload reports it."""
    out: Dict[str, Dict[str, Any]] = {}
    base = wl.samples.get(baseline, [])
    for loop in loops:
        samples = wl.samples.get(loop, [])
        rates = [s["rate"] for s in samples if s]
        cell: Dict[str, Any] = {"status": wl.status.get(loop, "ok" if rates else "n/a"), "rounds": len(rates)}
        if rates:
            cell.update(ops_s=statistics.median(rates), ops_s_min=min(rates), ops_s_max=max(rates))
            effs = [s["eff"] for s in samples if s and s.get("eff")]
            if effs and wl.server:
                cell.update(eff=statistics.median(effs), eff_min=min(effs), eff_max=max(effs))
            loads = [s["client_load"] for s in samples if s and s.get("client_load") is not None]
            if loads and wl.server:
                cell["client_load"] = statistics.median(loads)
            for key, field_ in (("rate", "ratio"), ("eff", "eff_ratio")):
                cell.update(_ratio_stats(samples, base, key, field_))
        out[loop] = cell
    return out


# -- the run --------------------------------------------------------------------------------------


def machine(probe: float) -> Dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": len(_harness.cpus()),
        "os": f"{platform.system()} {platform.release()}",
        "server_cpu": _harness.server_cpu(),
        "client_cpu": _harness.client_cpu(),
        "capacity": _harness.cpu_capacity(probe) if probe else None,
        "capacity_probe_s": probe,
    }


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Compare event loops side by side on every workload of bench/.",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="short rounds, 3 of them (the default; a few minutes on 2 cores)")
    g.add_argument("--full", dest="mode", action="store_const", const="full", help="longer rounds, 7 of them")
    g.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                   help="tiny counts, to check that the runner works (tests use it)")
    p.set_defaults(mode="quick")
    p.add_argument("--loops",
                   help="comma-separated built-in loops to compare, each optionally NAME@INTERP to run it "
                        "under another interpreter (uvcffi@pypy, uvloop@cpython); default: "
                        f"{','.join(BUILTIN)}, and {','.join(PYPY_DEFAULT_LOOPS)} when a PyPy is found "
                        "(.venv-pypy) and the runner is not PyPy")
    p.add_argument("--loop", action="append", default=[], metavar="NAME=MODULE:FACTORY",
                   help="add a loop: a zero-argument factory returning a new event loop (repeatable; "
                        "NAME@INTERP runs it under that interpreter)")
    p.add_argument("--interp", action="append", default=[], metavar="NAME=PATH",
                   help="the interpreter of the loops named ...@NAME (repeatable; built in: "
                        + ", ".join(f"{k} = the running one if it is that, else {v}/bin/python"
                                    for k, v in INTERPRETER_VENVS.items()) + ")")
    p.add_argument("--ratio", action="append", default=[], metavar="NUM/DEN",
                   help="add a column: loop NUM over loop DEN, the median of per-round ratios "
                        "(repeatable; uvcffi on PyPy / uvloop on CPython is shown whenever both run)")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN",
                   help="run only workloads matching this glob, e.g. 'bench_loop.*' or 'tcp_*' (repeatable)")
    p.add_argument("--rounds", type=int, help="override the mode's number of rounds")
    p.add_argument("--slices", type=int,
                   help="override the mode's number of interleaved slices of a server measurement")
    p.add_argument("--no-reference", action="store_true", help="skip the C epoll reference rows")
    p.add_argument("--json", action="store_true", help="also write latest.json (machine-readable)")
    p.add_argument("--no-chart", action="store_true", help="do not draw latest.png")
    p.add_argument("--out", default=str(BENCH_DIR / "results"),
                   help="output directory (default: bench/results)")
    p.add_argument("--update-readme", nargs="?", const=str(BENCH_DIR / "README.md"), metavar="FILE",
                   help="replace the results between the bench:latest markers of FILE "
                        "(default bench/README.md) with this run's tables, and its chart copied "
                        "to bench/results/readme.png")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: render the table, chart and README section of a saved --json run")
    p.add_argument("--list", action="store_true", help="list the workloads and loops, run nothing")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    mode = MODES[args.mode]
    rounds = args.rounds or mode.rounds
    if args.slices:
        mode = dataclasses.replace(mode, slices=args.slices)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: List[str] = []

    def say(line: str) -> None:
        print(line, flush=True)

    if args.from_json:
        return publish(json.loads(Path(args.from_json).read_text()), args, out_dir, say)

    given_interps: Dict[str, str] = {}
    for item in args.interp:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            say(f"--interp {item!r}: expected NAME=PATH")
            return 2
        given_interps[label] = path
    if args.loops is None:
        names = list(BUILTIN)
        if platform.python_implementation() != "PyPy" and interpreter("pypy", given_interps):
            names += PYPY_DEFAULT_LOOPS
        args.loops = ",".join(names)
    loop_specs: Dict[str, str] = {}
    for name in filter(None, (s.strip() for s in args.loops.split(","))):
        base = split_name(name)[0]
        if base not in BUILTIN:
            say(f"unknown loop {name!r}: built in are {', '.join(BUILTIN)} (each also as NAME@INTERP); "
                "use --loop NAME=MODULE:FACTORY")
            return 2
        loop_specs[name] = BUILTIN[base]
    for item in args.loop:
        name, sep, spec = item.partition("=")
        if not sep or ":" not in spec:
            say(f"--loop {item!r}: expected NAME=MODULE:FACTORY")
            return 2
        loop_specs[name] = spec
    # the interpreter of each loop: the runner's, or the one its @INTERP names; a loop whose
    # @INTERP is the runner's own interpreter goes by its plain name (uvloop@cpython from CPython: uvloop)
    executables: Dict[str, str] = {}
    canonical: Dict[str, str] = {}
    same: Dict[Tuple[str, str], str] = {}
    given_specs, loop_specs = loop_specs, {}
    for given_name, spec in given_specs.items():
        base, interp = split_name(given_name)
        exe = sys.executable if interp is None else interpreter(interp, given_interps)
        runners = exe is not None and os.path.abspath(exe) == os.path.abspath(sys.executable)
        name = canonical[given_name] = base if runners else given_name
        why = None
        if exe is None:
            if interp not in INTERPRETER_VENVS:
                say(f"loop {given_name!r}: unknown interpreter {interp!r}: "
                    f"name it with --interp {interp}=PATH")
                return 2
            why = (f"no {interp} interpreter here: {INTERPRETER_VENVS[interp]}/bin/python is missing "
                   f"(make {INTERPRETER_VENVS[interp]}/.build-stamp"
                   f"{' builds uvcffi for PyPy there' if interp == 'pypy' else ''}), or name one with "
                   f"--interp {interp}=PATH")
        elif (spec, os.path.abspath(exe)) in same:
            why = f"the same loop on the same interpreter as {same[spec, os.path.abspath(exe)]}"
        if why:
            say(f"skip loop {given_name}: {why}")
            notes.append(f"loop {given_name} skipped: {why}")
            continue
        same[spec, os.path.abspath(exe)] = given_name
        loop_specs[name] = spec
        executables[name] = exe
    pairs_asked: List[Tuple[str, str]] = []
    for item in args.ratio:
        num, sep, den = item.rpartition("/")
        if not sep or not num or not den:
            say(f"--ratio {item!r}: expected NUM/DEN (two loop names)")
            return 2
        pairs_asked.append((canonical.get(num, num), canonical.get(den, den)))

    workloads = discover(args.only, say)
    if args.list:
        for wl in workloads:
            say(f"{wl.key:40} n_default={wl.n_default}{'' if wl.uses_tasks() else '  (no tasks)'}"
                f"{'  +reference' if wl.reference else ''}")
        say("loops: " + ", ".join(
            f"{k}={v}" + (f" ({executables[k]})" if executables[k] != sys.executable else "")
            for k, v in loop_specs.items()))
        return 0
    if not workloads:
        say("no workloads selected")
        return 2

    started = time.time()
    say(f"uvcffi bench: mode {args.mode}, {rounds} rounds, {len(workloads)} workloads, "
        f"interpreter {platform.python_implementation()} {platform.python_version()}")
    failures = _harness.build_tools()
    for tool_name, err in failures.items():
        say(f"cannot build {tool_name}: {err}")
        notes.append(f"{tool_name} not built: {err}")
    mach = machine(mode.probe)
    if mach["capacity"] is not None:
        say(f"server core {mach['server_cpu']} + client core {mach['client_cpu']} busy at once give "
            f"{mach['capacity']:.2f} cores' worth of CPU over {mode.probe:g} s (2.00 = dedicated cores)")
    if mach["server_cpu"] is None:
        say("one core only: server and load client share it (numbers are less meaningful)")
        notes.append("one core: server and load client were not pinned apart")

    log_dir = Path(tempfile.mkdtemp(prefix="uvcffi-bench-logs-"))
    workers: Dict[str, Worker] = {}
    infos: Dict[str, Dict[str, Any]] = {}
    for name, spec in loop_specs.items():
        w = Worker(name, spec, log_dir, executables[name])
        reply = w.call({"op": "hello"}, 60)
        if not reply.get("ok"):
            why = reply.get("error") or reply.get("skip")
            where = "" if executables[name] == sys.executable else f" on {executables[name]}"
            say(f"skip loop {name} ({spec}{where}): {why}")
            notes.append(f"loop {name} ({spec}{where}) skipped: {why}")
            w.kill()
            continue
        workers[name] = w
        infos[name] = reply["info"]
        extra = "".join(f", {k} {reply['info'][k]}" for k in ("libuv", "cffi") if k in reply["info"])
        on = f" on {reply['info'].get('python')}" if executables[name] != sys.executable else ""
        say(f"loop {name}: {spec} {reply['info']['version']}{extra}{on}")
    loops = list(workers)
    if not loops:
        say("no loop could be started")
        return 1
    baseline = BASELINE if BASELINE in loops else loops[0]
    ref_name = REFERENCE_NAME if not args.no_reference and any(wl.reference for wl in workloads) else None
    pairs = choose_pairs(loops, infos, pairs_asked, notes, say)

    def loops_for(wl: Workload) -> List[str]:
        return [lp for lp in loops if wl.uses_tasks() or split_name(lp)[0] != "asyncio-pytask"]

    timeouts: Dict[Tuple[str, bool], int] = {}

    def run_one(wl: Workload, loop: str, n: int, duration: float, timeout: float) -> Optional[Dict[str, Any]]:
        """One measurement; records a failure in wl.status and returns None on failure.
        A loop that timed out twice on server (or on counted) workloads runs no more of them:
        their cells say so, at no cost."""
        kind = (loop, wl.server is True)
        if timeouts.get(kind, 0) >= MAX_TIMEOUTS:
            what = "server" if wl.server else "counted"
            wl.status[loop] = f"error: not run, the loop timed out on {MAX_TIMEOUTS} {what} workloads"
            return None
        reply = workers[loop].call(
            {"op": "run", "module": f"bench.{wl.module}", "name": wl.name, "n": n, "duration": duration},
            timeout,
        )
        if not reply.get("ok"):
            if "skip" in reply:
                wl.status[loop] = "skip: " + reply["skip"]
            else:
                wl.status[loop] = "error: " + reply.get("error", "?")
                if reply.get("timeout"):
                    timeouts[kind] = timeouts.get(kind, 0) + 1
            say(f"  {wl.name} on {loop}: {wl.status[loop]}")
            return None
        return reply

    def record(wl: Workload, loop: str, reply: Dict[str, Any]) -> Dict[str, Any]:
        seconds = max(reply["seconds"], 1e-9)
        sample = {"ops": reply["ops"], "seconds": reply["seconds"], "rate": reply["ops"] / seconds}
        if reply.get("server") and reply.get("cpu"):
            sample["cpu"] = reply["cpu"]
            sample["eff"] = reply["ops"] / max(reply["cpu"], 1e-9)
        if reply.get("server") and reply.get("client_cpu") is not None:
            # the share of its core the load client used: near 1.0, the client was the limit
            sample["client_load"] = reply["client_cpu"] / seconds
        return sample

    # a server measurement: its load time, the client's own give-up time, and startup/teardown
    server_timeout = mode.duration + _harness.HARD_TIMEOUT_SLACK + 15

    def jit_warm_up(wl: Workload, loop: str, n_warm: int, reply: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """A JIT (PyPy's) compiles a workload's loops only after many iterations. With one short
        warm-up run, call_soon on PyPy measured 0.87M ops/s in round 1 and 5.2M in round 2 (and
        15M after this warm-up): the calibration's count came from a cold rate (measurements of
        0.01 s) and round 1 was more warm-up. So on a JIT the warm-up goes on, the count doubling,
        until ``mode.jit_warm`` seconds were spent on the workload; the calibration uses the last
        run's rate. A loop without a JIT gets the one warm-up run as before."""
        spent, n = reply["seconds"], n_warm
        for _ in range(JIT_WARM_RUNS - 1):
            if spent >= mode.jit_warm:
                break
            n = min(wl.n_default, 2 * n)
            nxt = run_one(wl, loop, n, mode.warm_duration, server_timeout)
            if nxt is None:
                return None
            reply = nxt
            spent += reply["seconds"]
        return reply

    # warm-up and calibration
    jits = [lp for lp in loops if infos[lp].get("jit")]
    jit_note = f"; {', '.join(jits)} on a JIT: {mode.jit_warm:g} s of warm-up per workload" if jits else ""
    say(f"warm-up and calibration ({mode.target:.2f} s per counted measurement on the slowest loop"
        f"{jit_note})")
    for wl in workloads:
        n_warm = max(1, int(wl.n_default * mode.warm_fraction))
        rates = []
        for loop in loops_for(wl):
            reply = run_one(wl, loop, n_warm, mode.warm_duration, server_timeout)
            if reply is not None and infos[loop].get("jit"):
                reply = jit_warm_up(wl, loop, n_warm, reply)
            if reply is None:
                continue
            wl.server = bool(reply.get("server"))
            rates.append(reply["ops"] / max(reply["seconds"], 1e-9))
        if wl.server:
            wl.n = wl.n_default
        elif rates:
            wl.n = max(1, min(wl.n_default, int(min(rates) * mode.target)))
        desc = "server workload" if wl.server else f"n={wl.n}"
        say(f"  {wl.key}: {desc}")

    def measure(wl: Workload, loop: str, duration: float) -> Optional[Dict[str, Any]]:
        """One measurement of ``wl`` on ``loop`` (or on the C reference): the reply, or None
        after recording why in ``wl.status``."""
        if loop != ref_name:
            timeout = server_timeout if wl.server else max(mode.timeout, 20 * mode.target)
            return run_one(wl, loop, wl.n, duration, timeout)
        try:
            _harness.set_duration(duration)
            return dict(wl.reference(wl.n), ok=True, server=True)  # type: ignore[misc]
        except _harness.Skip as e:
            wl.status[loop] = f"skip: {e}"
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            wl.status[loop] = f"error: {type(e).__name__}: {e}"
        say(f"  {wl.name} on {loop}: {wl.status[loop]}")
        return None

    # the measured rounds, interleaved; a server workload's round is mode.slices slices, each
    # loop loaded for duration/slices per slice, loop after loop, and its sample sums them
    progress_w = max(len(wl.name) for wl in workloads)
    loop_w = max([15] + [len(lp) for lp in loops])
    for r in range(rounds):
        for wl in workloads:
            if not wl.n:
                continue
            loops_here = loops_for(wl) + ([ref_name] if ref_name and wl.reference else [])
            slices = mode.slices if wl.server else 1
            replies: Dict[str, List[Dict[str, Any]]] = {loop: [] for loop in loops_here}
            for s in range(slices):
                # each round (and slice) starts one loop later: no loop always goes first
                shift = (r + s) % len(loops_here)
                for loop in loops_here[shift:] + loops_here[:shift]:
                    if loop in wl.status:
                        continue
                    reply = measure(wl, loop, mode.duration / slices)
                    if reply is not None:
                        replies[loop].append(reply)
            for loop in loops_here:
                samples = wl.samples.setdefault(loop, [])
                if loop in wl.status or not replies[loop]:
                    samples.append(None)
                    continue
                sample = record(wl, loop, _sum_replies(replies[loop]))
                if slices > 1:
                    sample["slices"] = len(replies[loop])
                samples.append(sample)
                eff = f"  {human(sample['eff']):>7}/server-cpu-s" if "eff" in sample else ""
                if "client_load" in sample:
                    eff += f"  client {sample['client_load']:4.0%}"
                rate = human(sample["rate"])
                say(f"[{r + 1}/{rounds}] {wl.name:<{progress_w}}  {loop:<{loop_w}} {rate:>7} ops/s"
                    f"{eff}  ({sample['seconds']:.2f} s)")

    for w in workers.values():
        w.close()
    if any(w.log_path.exists() and w.log_path.stat().st_size for w in workers.values()):
        say(f"worker logs (stderr of the workers): {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)

    columns = loops + ([ref_name] if ref_name and any(wl.reference for wl in workloads) else [])

    result: Dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "elapsed_s": round(time.time() - started, 1),
            "mode": args.mode,
            "rounds": rounds,
            "command": "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "executable": sys.executable,
            "interpreters": interpreters(infos, executables),
            "machine": mach,
            "baseline": baseline,
            "duration_s": mode.duration,
            "slices": mode.slices,
            "target_s": mode.target,
        },
        "loops": infos,
        "columns": columns,
        "pairs": [{"label": f"{num} ÷ {den}", "num": num, "den": den} for num, den in pairs],
        "workloads": [],
        "notes": notes,
    }
    for wl in workloads:
        results = summarize(wl, columns, baseline)
        result["workloads"].append({
            "key": wl.key,
            "module": wl.module,
            "name": wl.name,
            "server": bool(wl.server),
            "tasks": wl.uses_tasks(),
            "n": wl.n,
            "results": results,
            "pairs": {f"{num} ÷ {den}": pair_ratios(wl, num, den, results) for num, den in pairs},
            "samples": wl.samples,
            "status": wl.status,
        })
    return publish(result, args, out_dir, say)


def choose_pairs(
    loops: List[str], infos: Dict[str, Dict[str, Any]], asked: List[Tuple[str, str]], notes: List[str],
    say: Callable[[str], None],
) -> List[Tuple[str, str]]:
    """The pair ratio columns of the run: every ``DEFAULT_PAIRS`` match among the loops that
    started (by base name and the implementation their worker reported), then ``--ratio``'s."""
    out: List[Tuple[str, str]] = []
    for (num_base, num_impl), (den_base, den_impl) in DEFAULT_PAIRS:
        for num in loops:
            for den in loops:
                if (split_name(num)[0], infos[num].get("implementation")) == (num_base, num_impl) and (
                    split_name(den)[0], infos[den].get("implementation")) == (den_base, den_impl):
                    out.append((num, den))
    for num, den in asked:
        missing = [lp for lp in (num, den) if lp not in loops]
        if missing:
            say(f"no ratio {num}/{den}: {' and '.join(missing)} did not run")
            notes.append(f"ratio {num} ÷ {den} not shown: {' and '.join(missing)} did not run")
        elif (num, den) not in out:
            out.append((num, den))
    return out


def interpreters(infos: Dict[str, Dict[str, Any]], executables: Dict[str, str]) -> Dict[str, Dict[str, Any]]:
    """Each interpreter that ran a loop, by the path it was started as (relative to the
    repository when inside it): what it is (as its worker reported) and which loops it ran."""
    out: Dict[str, Dict[str, Any]] = {}
    for name, info in infos.items():
        exe = executables.get(name, sys.executable)
        try:
            shown = str(Path(os.path.abspath(exe)).relative_to(REPO_DIR))
        except ValueError:
            shown = exe
        entry = out.setdefault(shown, {
            key: info[key] for key in ("python", "implementation", "pypy", "sys_version") if key in info
        })
        entry["runner"] = os.path.abspath(exe) == os.path.abspath(sys.executable)
        entry.setdefault("loops", []).append(name)
    return out


def publish(
    result: Dict[str, Any], args: argparse.Namespace, out_dir: Path, say: Callable[[str], None]
) -> int:
    """Writes latest.md (and .json, .png, the README section) for a run's result dict."""
    from . import report  # matplotlib is imported only here, after the measurements

    md = report.markdown(result)
    (out_dir / "latest.md").write_text(md)
    written = [out_dir / "latest.md"]
    if args.json and not args.from_json:
        (out_dir / "latest.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        written.append(out_dir / "latest.json")
    if not args.no_chart:
        try:
            report.chart(result, out_dir / "latest.png")
            written.append(out_dir / "latest.png")
        except Exception as e:  # noqa: BLE001 - the table matters more than the picture
            say(f"no chart: {type(e).__name__}: {e}")
    if args.update_readme:
        try:
            # the README's copy of the chart: committed with it, unlike latest.* (rewritten by every run)
            published = BENCH_DIR / "results" / "readme.png"
            shutil.copyfile(out_dir / "latest.png", published)
            report.update_readme(Path(args.update_readme), md, published)
            written += [Path(args.update_readme), published]
        except (ValueError, OSError) as e:
            say(f"README not updated: {e}")
    say("")
    say(md)
    say("written: " + ", ".join(str(p) for p in written) + f"  ({result['meta']['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
