"""CPython's own ``test.test_asyncio``, run on stock asyncio and on uvcffi, compared test by test.

    python tests/cpython/run.py                      # the running interpreter
    python tests/cpython/run.py --python .venv-3.12/bin/python --python .venv-pypy/bin/python
    python tests/cpython/run.py --modules test_tasks,test_futures -j 1
    python tests/cpython/run.py --table              # the README table, from the saved results

The oracle is the asyncio of the interpreter under test, in the same job: each module of
``test.test_asyncio`` that applies runs twice, in its own process each time (``worker.py``), once
on stock asyncio and once with uvcffi plugged in (its loop through the default policy and as the
loop factory of the parametrized classes; its ``Task``/``Future`` in the classes that CPython
parametrizes by implementation; see ``variants.py``). A test counts against uvcffi only where it
passes on asyncio; a uvcffi variant ``X__uvcffi.test_y`` is compared with ``X.test_y``.

Modules are split in two groups, reported apart: the loop level (events, streams, sockets,
servers, TLS, subprocesses...) and the task layer (tasks, futures, locks, queues, timeouts...).
Modules that test only asyncio's own loop internals (``test_selector_events``,
``test_proactor_events``, the Windows ones) are not run. ``exclusions.txt`` lists the tests that
read a private detail of asyncio's selector loop or of its C accelerator, and, for older
interpreters only (``python<X.Y`` lines), those asserting an asyncio behaviour that Python X.Y
changed where uvcffi has X.Y's on every Python (``TaskGroup``), each with its reason.

A hang does not wedge the run: the parent watches each worker's events file, and a test that
runs longer than ``--test-timeout`` seconds is stopped (SIGABRT, so faulthandler prints where it
hung, then SIGKILL to the process group), recorded as a hang, and the module goes on in a new
process without it; a module gets ``--module-timeout`` seconds in all. ``-j`` workers run modules
side by side (default 2).

Per interpreter, the summary gives for each group: tests that pass on asyncio, of those the ones
that pass on uvcffi having created a uvcffi loop or run a uvcffi variant, the excluded ones, the
ones that fail on uvcffi only (listed with a one-line error each), and, apart, the tests that ran
without meeting uvcffi (a ``TestLoop`` with virtual time, a mocked ``BaseEventLoop``) and those
uvcffi's run skipped. Results are saved as JSON under ``build/cpython-suite/``; the exit status is
1 when a test that passes on asyncio, and is not excluded, fails on uvcffi.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PREFIX = "test.test_asyncio."
RESULTS_DIR = os.path.join(ROOT, "build", "cpython-suite")

LOOP_LEVEL = [
    "test_events", "test_streams", "test_sock_lowlevel", "test_sendfile", "test_server",
    "test_ssl", "test_sslproto", "test_subprocess", "test_unix_events", "test_buffered_proto",
    "test_context", "test_protocols", "test_transports", "test_base_events", "test_threads",
]
TASK_LAYER = [
    "test_tasks", "test_futures", "test_futures2", "test_taskgroups", "test_timeouts",
    "test_waitfor", "test_locks", "test_queues", "test_pep492", "test_runners",
    "test_eager_task_factory", "test_staggered",
]
GROUPS = {"loop-level": LOOP_LEVEL, "task-layer": TASK_LAYER}
# Longest first, so that two workers end together (measured on CPython 3.11).
_COST = {"test_events": 9, "test_tasks": 8, "test_subprocess": 8, "test_sendfile": 6,
         "test_ssl": 6, "test_streams": 5, "test_sslproto": 5, "test_base_events": 4,
         "test_locks": 3, "test_unix_events": 3, "test_sock_lowlevel": 3, "test_queues": 2}
FAILED = ("fail", "error", "hang", "crash", "notrun")

_PROBE = r"""
import json, os, platform, sys
info = {"implementation": platform.python_implementation(), "version": platform.python_version(),
        "executable": sys.executable, "modules": None, "uvcffi": None, "error": None}
try:
    import test.test_asyncio as t
    info["modules"] = sorted(n[:-3] for n in os.listdir(os.path.dirname(t.__file__))
                             if n.startswith("test_") and n.endswith(".py"))
except ImportError as exc:
    info["error"] = "no test.test_asyncio (%s)" % exc
try:
    import uvcffi
    info["uvcffi"] = "%s (%s)" % (uvcffi.__version__, os.path.dirname(uvcffi.__file__))
except Exception as exc:
    info["error"] = (info["error"] + "; " if info["error"] else "") + "uvcffi does not import: %r" % exc
print(json.dumps(info))
"""


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    src = os.path.join(ROOT, "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


def probe(python: str) -> Dict[str, Any]:
    proc = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, env=_env(), timeout=120)
    if proc.returncode != 0:
        return {"error": f"{python} did not start: {proc.stderr.strip()[-500:]}", "executable": python}
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if info["modules"] is None:
        hint = ("Debian's PyPy ships it in pypy3-lib-testsuite: apt-get install pypy3-lib-testsuite"
                if info.get("implementation") == "PyPy" else
                "this CPython was built without its test package (pyenv's builds have it)")
        info["error"] = f"{info['error']}: {hint}"
    return info


def tag_of(info: Dict[str, Any]) -> str:
    return f"{info['implementation'].lower()}-{info['version']}"


# --- one module in one mode, surviving hangs and crashes -----------------------------------

class ModuleRun:
    """Runs ``worker.py MODULE MODE`` until every test of the module has ended, restarting it
    after a hang or a crash without the tests that already ended."""

    def __init__(self, python: str, module: str, mode: str, workdir: str,
                 test_timeout: float, module_timeout: float) -> None:
        self.python, self.module, self.mode = python, module, mode
        self.events = os.path.join(workdir, f"{module}.{mode}.jsonl")
        self.log = os.path.join(workdir, f"{module}.{mode}.log")
        self.skipfile = os.path.join(workdir, f"{module}.{mode}.skip")
        self.test_timeout, self.module_timeout = test_timeout, module_timeout
        self.results: Dict[str, Dict[str, Any]] = {}
        self.module_status: Optional[Dict[str, Any]] = None
        self.selection: List[str] = []
        self.notes: List[str] = []
        self.elapsed = 0.0

    def _read_new(self, f: Any, running: List[Optional[Tuple[str, float]]]) -> bool:
        done = False
        while True:
            pos = f.tell()
            line = f.readline()
            if not line.endswith("\n"):  # nothing more yet, or a line still being written
                f.seek(pos)
                break
            rec = json.loads(line)
            ev = rec.get("ev")
            if ev == "start":
                running[0] = (rec["id"], time.monotonic())
            elif ev in ("result", "fixture"):
                self.results[rec["id"]] = rec
                if running[0] and running[0][0] == rec["id"]:
                    running[0] = None
            elif ev == "module":
                self.module_status = rec
            elif ev == "selection":
                self.selection = rec["lines"]
            elif ev == "done":
                done = True
        return done

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        for sig, wait in ((signal.SIGABRT, 3.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def run(self) -> ModuleRun:
        start = time.monotonic()
        deadline = start + self.module_timeout
        open(self.events, "w").close()
        with open(self.events) as f, open(self.log, "w") as log:
            for _attempt in range(200):
                with open(self.skipfile, "w") as sk:
                    sk.write("".join(i + "\n" for i in self.results))
                proc = subprocess.Popen(
                    [self.python, os.path.join(HERE, "worker.py"), self.module, self.mode,
                     self.events, self.skipfile],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=_env(), cwd=tempfile.gettempdir(), start_new_session=True)
                running: List[Optional[Tuple[str, float]]] = [None]
                reason = None
                while True:
                    done = self._read_new(f, running)
                    rc = proc.poll()
                    now = time.monotonic()
                    if rc is not None:
                        done = self._read_new(f, running) or done
                        break
                    if running[0] and now - running[0][1] > self.test_timeout:
                        reason = f"hang: no result after {self.test_timeout:g} s (--test-timeout)"
                    elif now > deadline:
                        reason = f"hang: module time limit of {self.module_timeout:g} s reached"
                    if reason:
                        self._kill(proc)
                        self._read_new(f, running)
                        break
                    time.sleep(0.2)
                if running[0] is not None:
                    tid = running[0][0]
                    if reason is None:
                        reason = f"crash: the interpreter exited with status {proc.returncode}"
                    self.results[tid] = {"ev": "result", "id": tid, "outcome": reason.split(":")[0],
                                         "msg": reason, "touched": True}
                    self.notes.append(f"{tid}: {reason}")
                elif reason is not None:
                    self.notes.append(f"{reason} (between tests)")
                if done or self.module_status is not None:
                    break
                if reason is None and running[0] is None:
                    if proc.returncode != 0:
                        self.notes.append(f"worker exited with status {proc.returncode} between tests")
                    break
                if time.monotonic() > deadline:
                    self.notes.append("module time limit reached: the tests not yet run count as not run")
                    break
        self.elapsed = time.monotonic() - start
        return self


# --- comparison -----------------------------------------------------------------------------

Exclusion = Tuple[str, str, Optional[Tuple[int, ...]]]  # pattern, reason, "older than" version


def load_exclusions(path: str) -> List[Exclusion]:
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            below = None
            if line.startswith("python<"):  # "python<3.13 test.id | reason": on older Pythons only
                gate, _, line = line.partition(" ")
                try:
                    below = tuple(int(p) for p in gate[len("python<"):].split("."))
                except ValueError:
                    raise SystemExit(f"{path}:{n}: expected 'python<X.Y test id | reason', "
                                     f"got {gate!r}") from None
            pattern, sep, reason = line.partition(" | ")
            if not sep or not reason.strip():
                raise SystemExit(f"{path}:{n}: expected 'test id or pattern | reason', got {line!r}")
            out.append((pattern.strip(), reason.strip(), below))
    return out


def exclusions_for(exclusions: List[Exclusion], version: str) -> List[Tuple[str, str]]:
    """The exclusions that apply to a Python of ``version`` (``platform.python_version()``)."""
    v = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
    return [(pattern, reason) for pattern, reason, below in exclusions if below is None or v < below]


def _excluded(test_id: str, exclusions: List[Tuple[str, str]]) -> Optional[str]:
    for pattern, reason in exclusions:
        if (test_id == pattern or test_id.startswith(pattern + ".")
                or fnmatch.fnmatchcase(test_id, pattern)):
            return reason
    return None


def _short(test_id: str) -> str:
    return test_id[len(PREFIX):] if test_id.startswith(PREFIX) else test_id


def compare(runs: Dict[Tuple[str, str], ModuleRun], present: List[str],
            exclusions: List[Tuple[str, str]]) -> Dict[str, Any]:
    groups: Dict[str, Any] = {}
    for group, members in GROUPS.items():
        g = {"asyncio_passes": 0, "uvcffi_passes": 0, "excluded": 0, "failing": [],
             "without_uvcffi": 0, "skipped_on_uvcffi": [], "excluded_but_passing": [],
             "modules": [], "absent": [], "module_errors": []}
        for module in members:
            if module not in present:
                g["absent"].append(module)
                continue
            if (module, "asyncio") not in runs or (module, "uvcffi") not in runs:
                continue  # not asked for (--modules)
            a_run, u_run = runs[(module, "asyncio")], runs[(module, "uvcffi")]
            g["modules"].append(module)
            for run in (a_run, u_run):
                if run.module_status and run.module_status["outcome"] != "skip":
                    g["module_errors"].append(f"{module} ({run.mode}): {run.module_status['msg']}")
            uv = {_short(tid).replace("__uvcffi", ""): rec for tid, rec in u_run.results.items()}
            for tid, rec in a_run.results.items():
                if rec["outcome"] != "pass":
                    continue
                sid = _short(tid)
                g["asyncio_passes"] += 1
                urec = uv.get(sid)
                reason = _excluded(sid, exclusions)
                if reason is not None:
                    g["excluded"] += 1
                    if urec is not None and urec["outcome"] == "pass" and urec.get("touched"):
                        g["excluded_but_passing"].append(sid)
                    continue
                if urec is None:
                    skipped = u_run.module_status and u_run.module_status["outcome"] == "skip"
                    outcome = "skip" if skipped else "notrun"
                    urec = {"outcome": outcome, "msg": "not run in uvcffi's run" if outcome == "notrun"
                            else u_run.module_status["msg"]}
                if urec["outcome"] == "pass":
                    if urec.get("touched"):
                        g["uvcffi_passes"] += 1
                    else:
                        g["without_uvcffi"] += 1
                elif urec["outcome"] in ("skip", "xfail"):
                    g["skipped_on_uvcffi"].append({"id": sid, "msg": urec.get("msg", "")})
                else:
                    g["failing"].append({"id": sid, "outcome": urec["outcome"], "msg": urec.get("msg", ""),
                                         "where": urec.get("where"), "uv_where": urec.get("uv_where"),
                                         "tb": urec.get("tb", "")})
        groups[group] = g
    return groups


# --- reporting ------------------------------------------------------------------------------

def print_summary(info: Dict[str, Any], groups: Dict[str, Any], times: Dict[str, float],
                  notes: List[str], verbose: bool) -> None:
    print(f"\n== CPython's test.test_asyncio on {info['implementation']} {info['version']} "
          f"({info['executable']}), uvcffi {info['uvcffi']}")
    print(f"   wall time: {times['wall']:.0f} s (module runs: asyncio {times['asyncio']:.0f} s, "
          f"uvcffi {times['uvcffi']:.0f} s)")
    head = f"   {'group':<11} {'asyncio passes':>14} {'uvcffi passes':>13} {'excluded':>8} " \
           f"{'failing on uvcffi only':>22} {'ran without uvcffi':>18} {'skipped on uvcffi':>17}"
    print(head)
    for group, g in groups.items():
        print(f"   {group:<11} {g['asyncio_passes']:>14} {g['uvcffi_passes']:>13} {g['excluded']:>8} "
              f"{len(g['failing']):>22} {g['without_uvcffi']:>18} {len(g['skipped_on_uvcffi']):>17}")
    for group, g in groups.items():
        if g["absent"]:
            print(f"   {group}: not in this Python's test.test_asyncio: {', '.join(g['absent'])}")
        for err in g["module_errors"]:
            print(f"   {group}: module error: {err}")
        if g["failing"]:
            print(f"   {group}: failing on uvcffi only ({len(g['failing'])}):")
            for f in sorted(g["failing"], key=lambda f: f["id"]):
                where = f" [{f['uv_where'] or f['where']}]" if (f.get("uv_where") or f.get("where")) else ""
                print(f"     {f['id']}: {f['outcome']}: {f['msg']}{where}")
        if g["skipped_on_uvcffi"] and verbose:
            print(f"   {group}: passing on asyncio, skipped on uvcffi:")
            for s in g["skipped_on_uvcffi"]:
                print(f"     {s['id']}: {s['msg']}")
        if g["excluded_but_passing"]:
            print(f"   {group}: excluded but passing on uvcffi (remove from exclusions.txt?): "
                  + ", ".join(g["excluded_but_passing"]))
    for note in notes:
        print(f"   note: {note}")


def print_table(results_dir: str) -> int:
    rows = []
    for name in sorted(os.listdir(results_dir)) if os.path.isdir(results_dir) else []:
        if name.endswith(".json"):
            with open(os.path.join(results_dir, name)) as f:
                rows.append(json.load(f))
    if not rows:
        print(f"no results under {results_dir}: run tests/cpython/run.py first", file=sys.stderr)
        return 1

    def key(r: Dict[str, Any]) -> Tuple[int, Tuple[int, ...]]:
        return (r["info"]["implementation"] != "CPython",
                tuple(int(p) for p in r["info"]["version"].split(".")[:3] if p.isdigit()))

    print("| interpreter | group | asyncio passes | uvcffi passes | excluded | failing on uvcffi only "
          "| ran without uvcffi |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in sorted(rows, key=key):
        interp = f"{r['info']['implementation']} {r['info']['version']}"
        for group, g in r["groups"].items():
            print(f"| {interp} | {group} | {g['asyncio_passes']} | {g['uvcffi_passes']} | "
                  f"{g['excluded']} | {len(g['failing'])} | {g['without_uvcffi']} |")
    return 0


# --- main -----------------------------------------------------------------------------------

def run_interpreter(python: str, args: argparse.Namespace, all_exclusions: List[Exclusion]) -> int:
    # Workers start in a scratch directory: a venv's python given as a relative path must still be
    # found, and keep its path (a venv's interpreter is a symlink; resolving it leaves the venv).
    python = os.path.abspath(python) if os.sep in python else (shutil.which(python) or python)
    info = probe(python)
    if info.get("error"):
        print(f"\n== {python}: cannot run CPython's asyncio tests: {info['error']}", file=sys.stderr)
        return 2
    exclusions = exclusions_for(all_exclusions, info["version"])
    wanted = [m for members in GROUPS.values() for m in members]
    if args.modules:
        wanted = [m for m in wanted if m in args.modules.split(",")]
    modules = [m for m in wanted if m in info["modules"]]
    workdir = tempfile.mkdtemp(prefix=f"uvcffi-cpython-{tag_of(info)}-")
    jobs = sorted(((m, mode) for m in modules for mode in ("asyncio", "uvcffi")),
                  key=lambda j: -_COST.get(j[0], 1))
    runs: Dict[Tuple[str, str], ModuleRun] = {}
    lock = threading.Lock()
    start = time.monotonic()

    def one(job: Tuple[str, str]) -> None:
        mr = ModuleRun(python, job[0], job[1], workdir, args.test_timeout, args.module_timeout).run()
        with lock:
            runs[job] = mr
            if args.progress:
                fails = sum(r["outcome"] in FAILED for r in mr.results.values())
                print(f"   {tag_of(info)} {job[0]:<24} {job[1]:<7} {len(mr.results):>5} tests "
                      f"{fails:>4} failed/hung {mr.elapsed:6.1f} s", flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, jobs))
    groups = compare(runs, info["modules"], exclusions)
    # A test that failed on uvcffi only gets one more chance, in a new run of its module on
    # uvcffi: CPython's suite has timing-bound tests that a loaded machine can fail once. One
    # that passes then counts as passing, and the notes name it; two failures count.
    failing = {f["id"] for g in groups.values() for f in g["failing"]}
    if failing:
        for module in sorted({tid.split(".")[0] for tid in failing}):
            again = ModuleRun(python, module, "uvcffi", tempfile.mkdtemp(dir=workdir, prefix="rerun-"),
                              args.test_timeout, args.module_timeout).run()
            first = runs[(module, "uvcffi")]
            for tid, rec in again.results.items():
                sid = _short(tid).replace("__uvcffi", "")
                old = first.results.get(tid)
                if sid in failing and rec["outcome"] == "pass" and old is not None \
                        and old["outcome"] != "pass":
                    first.results[tid] = rec
                    first.notes.append(f"{sid}: {old['outcome']} at first, passed when run again")
        groups = compare(runs, info["modules"], exclusions)
    times = {"wall": time.monotonic() - start,
             "asyncio": sum(r.elapsed for (m, mode), r in runs.items() if mode == "asyncio"),
             "uvcffi": sum(r.elapsed for (m, mode), r in runs.items() if mode == "uvcffi")}
    notes = [f"{m} ({mode}): {n}" for (m, mode), r in sorted(runs.items()) for n in r.notes]
    print_summary(info, groups, times, notes, args.verbose)
    print(f"   worker logs and events: {workdir}")
    os.makedirs(args.results, exist_ok=True)
    out = {"info": info, "times": times, "notes": notes, "groups": groups,
           "selection": {f"{m} ({mode})": r.selection for (m, mode), r in sorted(runs.items())}}
    with open(os.path.join(args.results, tag_of(info) + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    return 1 if any(g["failing"] for g in groups.values()) else 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", action="append", help="interpreter to test (repeatable; default: this one)")
    p.add_argument("--modules", help="comma-separated module names (default: all that apply)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="modules run side by side (default 2)")
    p.add_argument("--test-timeout", type=float, default=60.0, help="seconds one test may take (default 60)")
    p.add_argument("--module-timeout", type=float, default=900.0,
                   help="seconds one module may take in one mode, restarts included (default 900)")
    p.add_argument("--exclusions", default=os.path.join(HERE, "exclusions.txt"))
    p.add_argument("--results", default=RESULTS_DIR, help="where the JSON results go")
    p.add_argument("--table", action="store_true", help="print the README table from saved results")
    p.add_argument("--progress", action="store_true", help="a line per module run as it ends")
    p.add_argument("-v", "--verbose", action="store_true", help="list the tests skipped on uvcffi only")
    args = p.parse_args(argv)
    if args.table:
        return print_table(args.results)
    exclusions = load_exclusions(args.exclusions)
    status = 0
    for python in args.python or [sys.executable]:
        status = max(status, run_interpreter(python, args, exclusions))
    return status


if __name__ == "__main__":
    sys.exit(main())
