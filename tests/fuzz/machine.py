"""The parent side of the fuzz (issue 17): the Hypothesis state machine that draws the steps and
the two worker processes (worker.py) that apply them, one on asyncio's loop, one on uvcffi's.

Every step goes to both workers at once; each applies it to its world, settles the world, checks
it against itself and answers with the step's outcome and the world's view (worlds.World.view);
the machine compares outcome and view. Every request is bounded in time (STEP_LIMIT): a worker
that dies (a segfault or an abort in libuv or the extension, a sanitizer report, an exit) or does
not answer in time (a hang no turn bound can stop) fails the step as an outcome of its own, named
with the step, and Hypothesis shrinks and prints the sequence as for any mismatch; the worker is
killed and a new one serves the next sequence. A worker that ends a sequence cleanly serves the
next one too (the interpreter and uvcffi are imported once per worker, not per sequence).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from . import worlds
from .worlds import (
    ACTIONS,
    AT_VALUES,
    BUFFER_KINDS,
    KINDS,
    LATER_VALUES,
    SENDS,
    SIDES,
    SIGNALS,
    SLOWDOWN,
    SP_ACTIONS,
    SSIZES,
    STEP_BOUND,
    STREAMS,
)

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
LOOPS = ("asyncio", "uvcffi")
# seconds a worker may take to answer one request before it counts as hung: a legitimate step
# turns its loop at most a few STEP_BOUNDs (run, settle, the child's wait and finish)
STEP_LIMIT = float(os.environ.get("FUZZ_STEP_LIMIT", "0") or 0) * SLOWDOWN or 6 * STEP_BOUND
# a new worker's first answer comes after the interpreter started and imported uvcffi: slow on
# a loaded machine or under AddressSanitizer, and not what the step limit is about
START_LIMIT = 60 * SLOWDOWN

STATS = {"sequences": 0, "steps": 0, "child steps": 0, "stream steps": 0, "workers": 0}


class WorkerFailed(AssertionError):
    """A worker died or hung: a failing outcome of the step (the message names how)."""


class Worker:
    """One worker process serving the worlds of one loop, over a socket pair."""

    def __init__(self, loop_name):
        self.loop_name = loop_name
        self.proc = None
        self.conn = None
        self.env = None  # the environment of new processes (None: this one's)
        self.limit = 0.0  # the bound of the request in flight, in seconds

    def start(self):
        import uvcffi

        here, there = socket.socketpair()
        src = os.path.dirname(os.path.dirname(os.path.abspath(uvcffi.__file__)))
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, self.loop_name, str(there.fileno()), src],
            pass_fds=[there.fileno()], stdin=subprocess.DEVNULL, env=self.env)
        there.close()
        self.conn = Connection(here.detach())
        STATS["workers"] += 1

    def send(self, request, limit):
        self.limit = limit
        if self.proc is None:
            self.start()
            self.limit = max(limit, START_LIMIT)
        try:
            self.conn.send(request)
        except OSError:
            pass  # it died: receive() says how

    def receive(self, deadline, what):
        """The answer to the last request, or WorkerFailed saying what became of the worker."""
        ready = False
        try:
            ready = self.conn.poll(max(0.0, deadline - time.monotonic()))
            if ready:
                status, value = self.conn.recv()
                if status == "ok":
                    return value
                self.kill()  # its world may be half-way: a new worker for the next sequence
                raise AssertionError(f"{self.loop_name}: {value}")
        except (EOFError, OSError):
            pass
        if self.proc.poll() is None and not ready:
            self.kill()
            raise WorkerFailed(f"{self.loop_name} worker hung: no answer in {self.limit:.0f} s to {what}")
        code = self.proc.wait()
        self.kill()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        raise WorkerFailed(f"{self.loop_name} worker died ({how}) during {what}")

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.conn.close()
        self.proc = self.conn = None


WORKERS = {name: Worker(name) for name in LOOPS}


def ask_both(request, what):
    """One request to both workers at once; both answers (or the first failure, after both
    answered or failed: neither is left with an unread answer)."""
    workers = [WORKERS[name] for name in LOOPS]
    for w in workers:
        w.send(request, STEP_LIMIT)
    start = time.monotonic()
    answers, failure = [], None
    for w in workers:
        try:
            answers.append(w.receive(start + w.limit, what))
        except AssertionError as exc:
            failure = failure or exc
    if failure is not None:
        raise failure
    return answers


def stop_workers():
    for w in WORKERS.values():
        w.kill()


class LoopMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        STATS["sequences"] += 1
        self.tmp = tempfile.TemporaryDirectory(prefix="uvcffi-fuzz-")
        self.counter = 0
        self.failed = False
        self.views = None
        self.call("begin", ("begin", self.tmp.name))

    def call(self, what, request):
        try:
            return ask_both(request, what)
        except AssertionError as exc:
            self.failed = True
            # shown even when Hypothesis cannot replay the failure (a timing-dependent one ends
            # in FlakyStrategyDefinition or Flaky, without this message)
            print(f"\nfuzz: {what} failed: {exc}", file=sys.stderr)
            raise

    # Every rule goes through here: the same step on each world, then compare.
    def both(self, name, **kwargs):
        STATS["steps"] += 1
        if name.startswith("child_"):
            STATS["child steps"] += 1
        if name.startswith("s_"):
            STATS["stream steps"] += 1
        self.counter += 1
        what = f"step {self.counter} ({name})"
        (a, av), (u, uv) = self.call(what, ("step", name, self.counter, kwargs))
        self.views = (av, uv)
        try:
            assert a == u, f"step outcome differs: asyncio {a!r}, uvcffi {u!r}"
            compare(av, uv)
        except AssertionError as exc:
            self.failed = True
            print(f"\nfuzz: {what} failed: {exc}", file=sys.stderr)
            raise

    def teardown(self):
        try:
            if self.failed:
                # the failure is reported; a worker that failed is gone already (a new one
                # serves the next sequence), the other ends its world as usual
                for w in WORKERS.values():
                    if w.proc is not None:
                        w.send(("end",), STEP_LIMIT)
                        try:
                            w.receive(time.monotonic() + STEP_LIMIT, "teardown")
                        except AssertionError:
                            pass
                return
            a, u = self.call("teardown", ("end",))
            # what closing everything reported is compared too
            assert a["events"] == u["events"], f"at the end: asyncio {a['events']!r}, uvcffi {u['events']!r}"
            assert a["child"] == u["child"], (
                f"the child at the end: asyncio {a['child']!r:.300}, uvcffi {u['child']!r:.300}")
            assert a["streams"] == u["streams"], (
                f"streams at the end: asyncio {a['streams']!r:.300}, uvcffi {u['streams']!r:.300}")
        finally:
            self.tmp.cleanup()

    # -- streams and datagrams -------------------------------------------------------------

    @rule(kind=st.sampled_from(KINDS))
    def open(self, kind):
        self.both("open", kind=kind)

    @rule(kind=st.sampled_from(KINDS), side=st.sampled_from(SIDES), buf=st.sampled_from(BUFFER_KINDS))
    def write(self, kind, side, buf):
        self.both("write", kind=kind, side=side, buf=buf)

    @rule(kind=st.sampled_from(STREAMS), side=st.sampled_from(SIDES),
          bufs=st.lists(st.sampled_from(BUFFER_KINDS), max_size=4), as_iter=st.booleans())
    def writelines(self, kind, side, bufs, as_iter):
        self.both("writelines", kind=kind, side=side, bufs=bufs, as_iter=as_iter)

    @rule(kind=st.sampled_from(KINDS), side=st.sampled_from(SIDES),
          method=st.sampled_from(("write_eof", "can_write_eof", "pause_reading", "resume_reading",
                                  "is_reading", "is_closing", "close", "abort")))
    def transport_call(self, kind, side, method):
        self.both("transport_call", kind=kind, side=side, method=method)

    @rule(kind=st.sampled_from(STREAMS), side=st.sampled_from(SIDES), action=st.sampled_from(ACTIONS),
          keep_open=st.booleans())
    def arm(self, kind, side, action, keep_open):
        """The next data_received/eof_received of that end takes ``action`` from inside the callback."""
        self.both("arm", kind=kind, side=side, action=action, keep_open=keep_open)

    @rule(kind=st.sampled_from(STREAMS), side=st.sampled_from(SIDES))
    def set_protocol(self, kind, side):
        self.both("set_protocol", kind=kind, side=side)

    # -- the echo child (a subprocess) -----------------------------------------------------

    @rule()
    def child_open(self):
        self.both("child_open")

    @rule(buf=st.sampled_from(BUFFER_KINDS), lines=st.booleans(), new=st.booleans())
    def child_write(self, buf, lines, new):
        self.both("child_write", buf=buf, lines=lines, new=new)

    @rule(how=st.sampled_from(("write_eof", "close", "can_write_eof", "is_closing",
                               "get_write_buffer_size")))
    def child_stdin(self, how):
        self.both("child_stdin", how=how)

    @rule(how=st.sampled_from(("pause_reading", "resume_reading", "is_reading", "is_closing")),
          fd=st.sampled_from((1, 2)))
    def child_stdout(self, how, fd):
        self.both("child_stdout", how=how, fd=fd)

    @rule(sig=st.sampled_from(SIGNALS), new=st.booleans())
    def child_signal(self, sig, new):
        self.both("child_signal", sig=sig, new=new)

    @rule(how=st.sampled_from(("close", "close_twice", "wait", "pid", "returncode", "is_closing",
                               "no_pipe")))
    def child_transport(self, how):
        self.both("child_transport", how=how)

    @rule(trigger=st.sampled_from(("data", "exited")), action=st.sampled_from(SP_ACTIONS),
          new=st.booleans())
    def child_arm(self, trigger, action, new):
        self.both("child_arm", trigger=trigger, action=action, new=new)

    # -- asyncio streams (worlds.SENDS) ---------------------------------------------------

    @rule(kind=st.sampled_from(("tcp", "unix")))
    def s_open(self, kind):
        self.both("s_open", kind=kind)

    @rule(end=st.sampled_from(SENDS), size=st.sampled_from(SSIZES), lines=st.booleans(),
          drain=st.booleans(), new=st.booleans())
    def s_write(self, end, size, lines, drain, new):
        self.both("s_write", end=end, size=size, lines=lines, drain=drain, new=new)

    @rule(end=st.sampled_from(SENDS),
          how=st.sampled_from(("read", "read_all", "readexactly", "readline", "readuntil")),
          size=st.sampled_from((0, 1, 50, 700, 5000)))
    def s_read(self, end, how, size):
        self.both("s_read", end=end, how=how, size=size)

    @rule(end=st.sampled_from(SENDS),
          how=st.sampled_from(("at_eof", "exception", "write_eof", "can_write_eof", "close",
                               "is_closing", "wait_closed", "peername")))
    def s_call(self, end, how):
        self.both("s_call", end=end, how=how)

    @rule(kind=st.sampled_from(("tcp", "unix")), side=st.sampled_from(("c", "s")))
    def s_bulk(self, kind, side):
        self.both("s_bulk", kind=kind, side=side)

    @rule(how=st.sampled_from(("kill", "terminate", "wait", "signal0", "pid", "returncode")),
          new=st.booleans())
    def s_child(self, how, new):
        self.both("s_child", how=how, new=new)

    # -- timers ----------------------------------------------------------------------------

    @rule(value=st.sampled_from(LATER_VALUES))
    def call_later(self, value):
        self.both("call_later", value=value)

    @rule(value=st.sampled_from(AT_VALUES))
    def call_at(self, value):
        self.both("call_at", value=value)

    @rule(index=st.integers(0, 30))
    def cancel_timer(self, index):
        self.both("cancel_timer", index=index)

    @rule(ms=st.sampled_from((0, 1, 5, 20)))
    def advance(self, ms):
        self.both("advance", ms=ms)

    # -- fd watches ------------------------------------------------------------------------

    @rule(how=st.sampled_from(("new", "reuse", "close", "close_peer", "poke", "add", "add_fd", "remove",
                               "remove_fd", "add_writer", "remove_writer")))
    def watch(self, how):
        self.both("watch", how=how)

    # -- loop calls, tasks -----------------------------------------------------------------

    @rule(what=st.sampled_from(("stop", "close", "stop_twice", "call_soon_close", "call_soon_stop")))
    def loop_call(self, what):
        self.both("loop_call", what=what)

    @rule(on=st.sampled_from(("sleep0", "sleep_long", "future", "inf")))
    def task(self, on):
        self.both("task", on=on)

    @rule(index=st.integers(0, 10), msg=st.sampled_from((None, "why")), twice=st.booleans())
    def cancel_task(self, index, msg, twice):
        self.both("cancel_task", index=index, msg=msg, twice=twice)


def compare(a, u):
    """The views of the two worlds after a step (worlds.World.view)."""
    assert a["child"] == u["child"], f"the child: asyncio {a['child']!r:.300}, uvcffi {u['child']!r:.300}"
    assert a["closed"] == u["closed"], f"loop closed: asyncio {a['closed']}, uvcffi {u['closed']}"
    assert a["events"] == u["events"], f"callbacks: asyncio {a['events']!r:.600}, uvcffi {u['events']!r:.600}"
    inexact = set(a["inexact"]) | set(u["inexact"])
    for key, got in a["received"].items():
        if key not in inexact:
            other = u["received"].get(key)
            assert got == other, (
                f"{key[0]}/{key[1]} received {got[0]} bytes on asyncio, {other and other[0]} on uvcffi"
                f"{' (different bytes)' if other and other[0] == got[0] else ''}")
    assert a["datagrams"] == u["datagrams"]
    # a timer due while a world settled may have run or not: compare those decided in both
    decided = set(a["decided"]) & set(u["decided"])
    fa = sorted(i for i in a["fired"] if i in decided)
    fu = sorted(i for i in u["fired"] if i in decided)
    assert fa == fu, f"timers fired: asyncio {fa!r}, uvcffi {fu!r}"
    assert a["watch_stale_at"] == u["watch_stale_at"]
    assert a["watch_events"] == u["watch_events"]
    assert a["task_events"] == u["task_events"]
    assert a["handler"] == u["handler"], (
        f"exception handler: asyncio {a['handler']!r}, uvcffi {u['handler']!r} "
        f"(uvcffi's messages: {u['handler_messages']!r:.400})")
    assert a["run_errors"] == u["run_errors"], (
        f"runs raised: asyncio {a['run_errors']!r}, uvcffi {u['run_errors']!r}")
    assert a["streams"] == u["streams"], (
        f"streams: asyncio {a['streams']!r:.600}, uvcffi {u['streams']!r:.600}")


# FUZZ_SEEDS="1 2 3": one run of FUZZ_EXAMPLES sequences per seed, each the same sequences on
# every run (a fixed seed set: what make test-asan runs); unset, one run, derandomized unless
# FUZZ_SEED asks for --hypothesis-seed's.
SEEDS = [int(x) for x in os.environ.get("FUZZ_SEEDS", "").replace(",", " ").split()] or [None]


def fuzz_settings(**overrides):
    values = dict(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
        stateful_step_count=int(os.environ.get("FUZZ_STEPS", "25")),
        # derandomized unless a seed is given (FUZZ_SEED with --hypothesis-seed, or FUZZ_SEEDS)
        derandomize=os.environ.get("FUZZ_SEED", "") == "" and SEEDS == [None],
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
        # FUZZ_SHRINK=0: report the first failing sequence as found (faster, longer)
        phases=[p for p in Phase if os.environ.get("FUZZ_SHRINK", "1") != "0" or p is not Phase.shrink],
    )
    values.update(overrides)
    return settings(**values)


__all__ = ["LoopMachine", "STATS", "WORKERS", "fuzz_settings", "stop_workers", "worlds", "SEEDS"]
