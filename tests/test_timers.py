"""Timer deadlines at the edges (issue 17, defects 1 and 2), on asyncio's loop and on uvcffi's.

What asyncio does with each odd delay or deadline is the specification:

* ``inf`` (``asyncio.sleep(math.inf)``, anyio's ``sleep_forever``): never due; the loop sleeps
  until something else wakes it. A huge finite deadline (``1e300``) likewise.
* ``nan``: compares false with everything, so it is never "later than now": the timer is due
  as soon as it reaches the head of the timer heap -- at the next turn when no other timer is
  waiting, right after the timers ahead of it otherwise. It never wedges the other timers.
* ``-inf``, negative delays, deadlines in the past: due at the next turn.
* ``bool``, ``int``, ``Fraction``: numbers like any other; ``Decimal`` cannot be added to
  ``loop.time()``, so ``call_later`` raises ``TypeError`` and a ``call_at`` deadline raises it
  from the loop when it computes how long to sleep; ``str``, ``complex``, ``None``: ``TypeError``.
"""

from __future__ import annotations

import asyncio
import decimal
import fractions
import math
import sys
import threading

import pytest

NAN = float("nan")


def _stop_soon(loop, delay=0.02):
    loop.call_later(delay, loop.stop)


def test_call_later_inf_sleeps_until_woken(loop):
    fired = []
    h = loop.call_later(math.inf, fired.append, "inf")
    assert h.when() == math.inf
    _stop_soon(loop)
    loop.run_forever()  # uvcffi raised OverflowError here (int(inf * 1e6))
    assert fired == []
    loop.call_soon(fired.append, "woken")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert fired == ["woken"]
    h.cancel()


def _wake_from_thread(loop, callback, *args):
    """Call ``callback(*args)`` in the loop from another thread a little later: the loop has
    nothing to do until then, so it sleeps on its timer heap's head."""
    waker = threading.Timer(0.02, loop.call_soon_threadsafe, (callback,) + args)
    waker.start()
    return waker


def test_loop_sleeps_on_an_infinite_deadline_until_woken(loop):
    fired = []
    h = loop.call_later(math.inf, fired.append, "inf")
    waker = _wake_from_thread(loop, loop.stop)
    try:
        loop.run_forever()  # the first turn sleeps on the infinite deadline
    finally:
        waker.join()
    assert fired == []
    h.cancel()


def test_sleep_inf_until_woken(loop):
    async def main():
        sleeper = asyncio.ensure_future(asyncio.sleep(math.inf))
        woken = loop.create_future()
        waker = _wake_from_thread(loop, woken.set_result, "woken")
        try:
            return await woken
        finally:
            waker.join()
            sleeper.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sleeper

    assert loop.run_until_complete(main()) == "woken"


def test_sleep_inf_is_cancellable(loop):
    async def main():
        task = asyncio.ensure_future(asyncio.sleep(math.inf))
        loop.call_later(0.01, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        # the same through a timeout: the infinite timer does not get in the way
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(math.inf), 0.01)
        return "woken"

    assert loop.run_until_complete(main()) == "woken"


@pytest.mark.parametrize("when", [math.inf, 1e300])
def test_call_at_never_due(loop, when):
    fired = []
    h = loop.call_at(when, fired.append, when)
    assert h.when() == when
    _stop_soon(loop)
    loop.run_forever()
    assert fired == []
    h.cancel()


def test_call_later_huge_finite(loop):
    fired = []
    h = loop.call_later(1e300, fired.append, "huge")
    _stop_soon(loop)
    loop.run_forever()
    assert fired == []
    h.cancel()


def test_nan_delay_alone_runs_next_turn(loop):
    order = []
    h = loop.call_later(NAN, order.append, "nan")
    assert math.isnan(h.when())
    loop.call_soon(order.append, "soon")
    loop.call_soon(loop.stop)
    loop.run_forever()
    # due at once: appended to the turn's ready callbacks after those already there
    assert order == ["soon", "nan"]


# asyncio 3.13's _run_once hands the selector a NaN timeout when a NaN deadline heads the heap
# and nothing is ready (3.12 and before clamped it to 0 with min/max): run_forever() raises
# ValueError from math.ceil in selectors.
NAN_HEAD_RAISES = sys.version_info >= (3, 13)


def _run_nan_head(loop, request) -> None:
    """run_forever() as the running asyncio does it with a NaN deadline at the heap's head."""
    if not NAN_HEAD_RAISES:
        loop.run_forever()
        return
    with pytest.raises(ValueError, match="cannot convert float NaN to integer"):
        loop.run_forever()


def test_nan_delay_does_not_wedge_later_timers(loop, request):
    # uvcffi kept the NaN entry at the head of its heap forever: no later timer fired and
    # the loop polled without blocking
    order = []
    loop.call_later(NAN, order.append, "nan")
    loop.call_later(0.01, order.append, "later")
    loop.call_later(0.02, loop.stop)
    _run_nan_head(loop, request)
    if not NAN_HEAD_RAISES:
        assert order == ["nan", "later"]


def test_nan_behind_an_earlier_timer_runs_with_it(loop):
    # the NaN entry never moves ahead of a timer already waiting: it surfaces when that one
    # is due, and runs in the same turn right after it
    order = []
    loop.call_later(0.01, order.append, "first")
    loop.call_later(NAN, order.append, "nan")
    loop.call_later(0.03, loop.stop)
    loop.run_forever()
    assert order == ["first", "nan"]


def test_sleep_nan_returns(loop):
    async def main():
        if sys.version_info >= (3, 13):  # asyncio.sleep refuses NaN from 3.13
            with pytest.raises(ValueError, match="Invalid delay: NaN"):
                await asyncio.sleep(NAN)
        else:
            await asyncio.sleep(NAN)
        return "slept"

    assert loop.run_until_complete(main()) == "slept"


def test_call_at_nan_runs(loop, request):
    order = []
    h = loop.call_at(NAN, order.append, "nan")
    assert math.isnan(h.when())
    loop.call_later(0.01, order.append, "later")
    loop.call_later(0.02, loop.stop)
    _run_nan_head(loop, request)
    if not NAN_HEAD_RAISES:
        assert order == ["nan", "later"]


@pytest.mark.parametrize("delay", [-math.inf, -5, -1e300, 0, 0.0, False])
def test_past_deadlines_run_next_turn_in_order(loop, delay):
    order = []
    loop.call_soon(order.append, "a")
    h = loop.call_later(delay, order.append, "timer")
    loop.call_soon(order.append, "b")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["a", "b", "timer"]
    assert h.when() <= loop.time()


@pytest.mark.parametrize("when", [-math.inf, -1.0, 0, True, fractions.Fraction(1, 3)])
def test_call_at_past_deadlines_run(loop, when):
    fired = []
    h = loop.call_at(when, fired.append, when)
    assert h.when() == when and type(h.when()) is type(when)  # kept as given, as asyncio does
    _stop_soon(loop)
    loop.run_forever()
    assert fired == [when]


@pytest.mark.parametrize("delay", [True, 1, fractions.Fraction(1, 1)])
def test_call_later_numbers_are_seconds(loop, delay):
    fired = []
    t0 = loop.time()
    h = loop.call_later(delay, fired.append, delay)
    assert isinstance(h.when(), float)
    assert t0 + 1 <= h.when() <= loop.time() + 1
    _stop_soon(loop)
    loop.run_forever()
    assert fired == []  # a second away
    h.cancel()


def test_call_later_fraction_runs(loop):
    fired = []
    loop.call_later(fractions.Fraction(1, 100), fired.append, "frac")
    loop.call_later(0.03, loop.stop)
    loop.run_forever()
    assert fired == ["frac"]


@pytest.mark.parametrize("delay, exc", [
    ("x", TypeError),
    (None, TypeError),
    (decimal.Decimal("0.01"), TypeError),
    (b"1", TypeError),
    (10**400, OverflowError),
])
def test_call_later_rejects(loop, delay, exc):
    with pytest.raises(exc):
        loop.call_later(delay, lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()  # nothing was scheduled


@pytest.mark.parametrize("when", ["x", b"1", 1j, [1.0]])
def test_call_at_rejects_unordered_deadlines(loop_factory, when):
    # asyncio pushes the deadline on its heap at once: with a timer already there, the
    # comparison raises TypeError in call_at (uvcffi accepted "x" and failed turns later)
    lp = loop_factory()
    waiting = lp.call_later(10, lambda: None)
    with pytest.raises(TypeError):
        lp.call_at(when, lambda: None)
    waiting.cancel()
    lp.close()  # asyncio's heap may keep the bad entry: closing drops it


def test_call_at_none(loop):
    # asyncio 3.11+ checks it; before, TimerHandle's ``assert when is not None`` did
    exc = TypeError if sys.version_info >= (3, 11) else AssertionError
    with pytest.raises(exc):
        loop.call_at(None, lambda: None)


def test_call_at_decimal_fails_when_the_loop_would_sleep(loop_factory):
    # Decimal orders with floats but cannot be subtracted from one: asyncio accepts it and
    # raises TypeError when it computes how long to sleep, on every run until it is cancelled
    lp = loop_factory()
    fired = []
    h = lp.call_at(decimal.Decimal(lp.time() + 100), fired.append, "dec")
    for _ in range(2):
        with pytest.raises(TypeError):
            lp.run_forever()
        assert not lp.is_running()
    h.cancel()
    lp.call_soon(lp.stop)
    lp.run_forever()
    assert fired == []


def test_call_at_decimal_in_the_past_runs_when_the_loop_does_not_sleep(loop):
    fired = []
    loop.call_at(decimal.Decimal(loop.time() - 1), fired.append, "dec")
    loop.call_soon(loop.stop)  # something ready: no sleep to compute
    loop.run_forever()
    assert fired == ["dec"]


@pytest.mark.parametrize("delay", [-math.inf, -1, 0, fractions.Fraction(1, 1000), False])
def test_sleep_short_or_past(loop, delay):
    async def main():
        return await asyncio.sleep(delay, "r")

    assert loop.run_until_complete(main()) == "r"


@pytest.mark.parametrize("delay", [math.inf, 1e300, True])
def test_sleep_long_waits(loop, delay):
    async def main():
        task = asyncio.ensure_future(asyncio.sleep(delay))
        loop.call_later(0.01, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(main())


@pytest.mark.parametrize("delay, exc", [
    ("x", TypeError),
    (None, TypeError),
    (decimal.Decimal("0.01"), TypeError),
    (10**400, OverflowError),
])
def test_sleep_rejects(loop, delay, exc):
    async def main():
        await asyncio.sleep(delay)

    with pytest.raises(exc):
        loop.run_until_complete(main())


def test_many_timers_with_edges_keep_deadline_order(loop):
    # a batch large enough to enter uvcffi's heap in one heapify, with infinite and huge
    # deadlines mixed in: the finite ones still fire in order
    fired = []
    handles = []
    base = loop.time()
    for i in range(40):
        handles.append(loop.call_later(math.inf if i % 3 == 0 else 1e300, fired.append, "never"))
        loop.call_at(base + 0.0005 * (40 - i), fired.append, 40 - i)
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert fired == sorted(fired) and len(fired) == 40
    for h in handles:
        h.cancel()


@pytest.mark.parametrize("batch", [5, 40])  # pushed one by one / entering in one heapify
def test_uvcffi_equal_deadlines_fire_in_scheduling_order(loop, batch):
    # asyncio's heap does not promise it; uvcffi's (when, seq) entries do, on every interpreter
    # (PyPy's heap entries order by their own __lt__)
    if not type(loop).__module__.startswith("uvcffi"):
        pytest.skip("asyncio's heap orders equal deadlines arbitrarily")
    fired = []
    when = loop.time() + 0.001
    loop.call_at(when + 0.0005, fired.append, "later")  # already in the heap
    loop.call_soon(lambda: [loop.call_at(when, fired.append, i) for i in range(batch)])
    loop.call_at(when + 0.003, loop.stop)
    loop.run_forever()
    assert fired == list(range(batch)) + ["later"]


def test_pypy_heap_entry_orders_as_the_tuple():
    from uvcffi.loop import _TimerEntry

    nan = float("nan")
    values = [0.5, 1.0, 1.0, -math.inf, math.inf, nan, nan, fractions.Fraction(1, 2), 2]
    entries = [(w, seq, None) for seq, w in enumerate(values)]
    for a in entries:
        for b in entries:
            assert (_TimerEntry(a) < _TimerEntry(b)) == (a < b), (a, b)


def _fire_order(entries, cancelled):
    # the order asyncio's heap and uvcffi's structures both promise: by deadline (equal
    # deadlines in any order on asyncio's heap, which this data does not have)
    return [label for when, label in sorted(entries) if label not in cancelled]


def test_a_batch_in_deadline_order_then_a_mixed_one(loop):
    # uvcffi keeps a batch that arrives in deadline order as a sorted list instead of a heap;
    # a later batch (earlier and later deadlines mixed) and cancellations keep the order
    fired = []
    base = loop.time() + 0.2
    entries = []
    handles = {}
    for i in range(40):
        entries.append((base + 0.001 * i, i))
        handles[i] = loop.call_at(base + 0.001 * i, fired.append, i)
    cancelled = {0, 10, 39}

    def second_turn():
        for i in cancelled:
            handles[i].cancel()
        for i in range(8):  # few: pushed one by one onto what the batch left (no heapify)
            when = base - 0.0005 + 0.006 * i
            entries.append((when, 100 + i))
            loop.call_at(when, fired.append, 100 + i)

    loop.call_soon(second_turn)
    loop.call_at(base + 0.1, loop.stop)
    loop.run_forever()
    assert fired == _fire_order(entries, cancelled)


def test_a_batch_in_deadline_order_mostly_cancelled_is_swept(loop):
    fired = []
    base = loop.time() + 0.05
    handles = [loop.call_at(base + 0.0001 * i, fired.append, i) for i in range(300)]

    def cancel_most():
        for h in handles[:250]:
            h.cancel()
        loop.call_soon(lambda: None)  # one more turn: the sweep

    loop.call_soon(cancel_most)
    loop.call_at(base + 0.1, loop.stop)
    loop.run_forever()
    assert fired == list(range(250, 300))
