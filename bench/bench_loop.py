"""Scheduling microbenchmarks (issue 2): the loop's own machinery, no I/O and no tasks.

* ``call_soon`` — schedule a callback and have the loop run it. A feeder callback schedules a
  batch of 1,000 counting callbacks and then itself, so the ready queue holds ~1,000 handles per
  iteration, as in a busy server; ops are callbacks run.
* ``call_later_fire`` — ``call_later(0, cb)`` in batches of 1,000; each batch is scheduled when the
  previous one has fired, so every timer goes through the timer structure and fires. Delay 0
  keeps the loop from sleeping, so the figure is CPU cost, not clock resolution.
* ``call_later_cancel`` — schedule a timer 10–100 s out and cancel it one loop turn later (the
  pattern of a timeout that did not expire: ``wait_for``, ``asyncio.timeout``, keep-alive timers
  are cancelled when the awaited I/O completes, in a later turn than the one that armed them),
  1,000 per turn; the loop drops cancelled timers its own way.
* ``call_later_cancel_now`` — the same, but cancelled in the very callback that scheduled it,
  before the loop turns: the best case of a loop that defers timer bookkeeping to the next turn.
  Shown beside ``call_later_cancel`` so neither flatters a design.
* ``call_soon_threadsafe`` — another thread calls ``call_soon_threadsafe`` n times as fast as it
  can; the loop runs until it has run all n callbacks. Wake-ups and GIL hand-offs included.

Each function takes a fresh loop and runs exactly n operations (the runner protocol, see
bench/README.md).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, List

__all__ = ["WORKLOADS"]

BATCH = 1000


def call_soon(loop: asyncio.AbstractEventLoop, n: int) -> None:
    count = 0
    scheduled = 0

    def cb() -> None:
        nonlocal count
        count += 1
        if count == n:
            loop.stop()

    def feed() -> None:
        nonlocal scheduled
        k = min(BATCH, n - scheduled)
        scheduled += k
        call_soon = loop.call_soon
        for _ in range(k):
            call_soon(cb)
        if scheduled < n:
            call_soon(feed)

    loop.call_soon(feed)
    loop.run_forever()
    assert count == n, (count, n)


def call_later_fire(loop: asyncio.AbstractEventLoop, n: int) -> None:
    count = 0
    pending = 0
    scheduled = 0

    def feed() -> None:
        nonlocal scheduled, pending
        k = min(BATCH, n - scheduled)
        scheduled += k
        pending = k
        call_later = loop.call_later
        for _ in range(k):
            call_later(0, cb)

    def cb() -> None:
        nonlocal count, pending
        count += 1
        pending -= 1
        if pending == 0:
            if scheduled < n:
                feed()
            else:
                loop.stop()

    loop.call_soon(feed)
    loop.run_forever()
    assert count == n, (count, n)


def call_later_cancel(loop: asyncio.AbstractEventLoop, n: int) -> None:
    done = 0
    pending: List[asyncio.TimerHandle] = []

    def turn() -> None:
        # cancel the timers of the previous turn, then schedule this turn's
        nonlocal done, pending
        for h in pending:
            h.cancel()
        k = min(BATCH, n - done)
        if k == 0:
            loop.stop()
            return
        call_later = loop.call_later
        pending = [call_later(10.0 + (i % 90), _never) for i in range(k)]
        done += k
        loop.call_soon(turn)

    loop.call_soon(turn)
    loop.run_forever()


def call_later_cancel_now(loop: asyncio.AbstractEventLoop, n: int) -> None:
    done = 0

    def turn() -> None:
        nonlocal done
        k = min(BATCH, n - done)
        call_later = loop.call_later
        handles = [call_later(10.0 + (i % 90), _never) for i in range(k)]
        for h in handles:
            h.cancel()
        done += k
        if done < n:
            loop.call_soon(turn)
        else:
            loop.stop()

    loop.call_soon(turn)
    loop.run_forever()


def _never() -> None:  # pragma: no cover - cancelled before it can run
    raise AssertionError("a cancelled timer fired")


def call_soon_threadsafe(loop: asyncio.AbstractEventLoop, n: int) -> None:
    count = 0

    def cb() -> None:
        nonlocal count
        count += 1
        if count == n:
            loop.stop()

    def produce() -> None:
        threadsafe = loop.call_soon_threadsafe
        for _ in range(n):
            threadsafe(cb)

    thread = threading.Thread(target=produce, name="bench-producer")
    loop.call_soon(thread.start)
    try:
        loop.run_forever()
    finally:
        thread.join()
    assert count == n, (count, n)


WORKLOADS: Dict[str, Any] = {
    "call_soon": (call_soon, 1_000_000, {"tasks": False}),
    "call_later_fire": (call_later_fire, 300_000, {"tasks": False}),
    "call_later_cancel": (call_later_cancel, 300_000, {"tasks": False}),
    "call_later_cancel_now": (call_later_cancel_now, 300_000, {"tasks": False}),
    "call_soon_threadsafe": (call_soon_threadsafe, 300_000, {"tasks": False}),
}
