"""Stateful fuzzing of uvcffi's loop against asyncio's (issue 17).

Hypothesis draws a sequence of steps (machine.py); every step is applied to two *worlds*
(worlds.py) in lockstep, one on asyncio's stock loop (the oracle) and one on uvcffi's, each in a
worker process of its own (worker.py), and what each world observed is compared after the step:

* the outcome of the call itself: its return value where it is defined (``remove_reader``,
  ``cancel``, ``is_reading`` ...) or the type of the exception it raised;
* what the loop did afterwards, once both worlds are settled (every ready callback run, every
  byte that was in flight delivered): the callbacks of every protocol in order (``made``,
  ``data``, ``eof``, ``lost:<exception type>``, what an action armed inside a callback did), the
  bytes each end received, the datagrams, the timers that fired, the reader callbacks, the
  exception types that reached the exception handler, the exception a run raised.

Each world also checks itself: the bytes an end received are a prefix of the bytes its peer
wrote successfully (nothing lost, repeated or reordered), timers fire in deadline order, a run
never takes longer than its bound (a hang fails the step), and at the end of a sequence the loop
closes with no libuv handle left alive.

Settling: loopback sockets and pipes deliver in the sender's system call, so a world is settled
when a few zero-timeout turns and one short timed turn change nothing it can observe. Flow-control
callbacks (``pause_writing``/``resume_writing``) depend on how much the kernel took and are not
compared; when a write of more than one read's worth is cut short by ``abort()`` or a close from
inside a callback, only the prefix property is checked for that direction.

The subprocess is an echo child (``CHILD``: stdin to stdout until EOF, then exit 0) with its
three pipes. Only what asyncio guarantees is compared: the outcome of each call, the callbacks
(the order of the exit and of the pipes' ends sorted away: timing), the return code and all the
bytes that came back, never chunk boundaries. Between "surely running" (stdin open, nothing sent
to end it) and "finished" (waited for), the child is "exiting" and nothing of it is compared;
every child step first waits for the finish of an exiting child, and a write waits for its echo.

The streams layer (asyncio.streams on either loop's transports) has rules of its own (``s_*``):
a TCP and a unix connection made with ``open_connection``/``start_server`` (``limit`` 512: long
lines overrun, buffers pause their transport) and an echo child made with
``create_subprocess_exec`` (stdin and stdout pipes): write/writelines with or without drain,
read/read(-1)/readexactly/readline/readuntil, at_eof, write_eof, close, wait_closed, exception,
a 512 KiB write drained while the peer reads exactly that (flow control both ways), and the
child's kill/terminate/wait/returncode. An operation that has not finished once the world settled
is "blocked" (and cancelled): between steps nothing is in flight (at most 12 KiB are unread per
direction, so both loops read what the kernel holds at once; the child's echo is waited for, and
so is its end). Compared: each operation's result (bytes as length and digest, exception type and
its numbers), and per end the bytes its reader was fed and holds, EOF, at_eof(), exception() and
whether its transport is closing; the child's return code.

The suite runs a short derandomized budget (``FUZZ_EXAMPLES``, default 40 sequences of at most
``FUZZ_STEPS``, default 25, steps); ``make fuzz`` runs a longer one, with fresh seeds if asked;
``FUZZ_SEEDS="1 2 3"`` runs ``FUZZ_EXAMPLES`` sequences for each of a fixed seed set (what
``make test-asan`` runs), ``UVCFFI_TEST_SLOWDOWN`` scales every time bound for a slow build.
Each request to a worker is bounded in time (``FUZZ_STEP_LIMIT`` seconds, default six step
bounds): a worker that crashes (a segfault or abort in libuv, a sanitizer report) or hangs fails
the step like a mismatch, and a new worker serves the next sequence (test_fuzz_faults.py proves
it with injected faults).
A mismatch fails with the shrunk sequence of steps printed by Hypothesis (and the step's
message on stderr at once, which a timing-dependent failure would otherwise lose to Hypothesis's
Flaky errors).
"""

from __future__ import annotations

import os
import sys
import time

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (the [test] extra)")

from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from .machine import SEEDS, SLOWDOWN, STATS, LoopMachine, fuzz_settings, stop_workers  # noqa: E402


@pytest.mark.timeout(int(float(os.environ.get("FUZZ_TIMEOUT", "600")) * SLOWDOWN))
@pytest.mark.skipif(sys.platform == "win32", reason="unix sockets and pipes")
@pytest.mark.parametrize("seed", SEEDS, ids=lambda x: "derandomized" if x is None else f"seed{x}")
def test_loop_matches_asyncio(seed):
    for key in STATS:
        STATS[key] = 0
    machine = LoopMachine
    if seed is not None:
        machine = hypothesis.seed(seed)(type("LoopMachine", (LoopMachine,), {}))
    start = time.monotonic()
    try:
        run_state_machine_as_test(machine, settings=fuzz_settings())
    finally:
        stop_workers()
        took = time.monotonic() - start
        line = (f"fuzz: {STATS['sequences']} sequences, {STATS['steps']} steps "
                f"({STATS['child steps']} on the child, {STATS['stream steps']} on asyncio streams), "
                f"{took:.1f} s, {STATS['workers']} worker processes"
                f"{'' if seed is None else f', seed {seed}'}")
        print("\n" + line)
        if os.environ.get("FUZZ_STATS"):  # a file for a run that captures the output
            with open(os.environ["FUZZ_STATS"], "a") as f:
                print(line, file=f)
