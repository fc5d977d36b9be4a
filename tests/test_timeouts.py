"""uvcffi.timeout / timeout_at / Timeout: Python 3.13's semantics on every interpreter.

Every test runs on both loops (``loop``) and, through ``impl``, on uvcffi's classes and, from
Python 3.11, on asyncio's own (the oracle: a body that asyncio's classes pass states asyncio's
behaviour; ``oracle_since`` skips asyncio's where the installed one predates a 3.13 change).
``run`` runs the test's main coroutine in a task that counts cancellations: the loop's own Task,
except on asyncio's loop before 3.11 whose Task has no ``cancelling()``/``uncancel()``: there a
uvcffi Task through ``loop.set_task_factory(uvcffi.task_factory)`` (what the refusal, tested in
``test_task_without_counts_is_refused``, tells users to do). ``mixed`` pairs the TaskGroup of one
implementation with the timeout of the other (asyncio's inside uvcffi's and the reverse, 3.11+).
"""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

import uvcffi

if sys.version_info >= (3, 11):
    import builtins

    ExceptionGroup = builtins.ExceptionGroup
else:
    from exceptiongroup import ExceptionGroup

UVCFFI = types.SimpleNamespace(name="uvcffi", TaskGroup=uvcffi.TaskGroup, timeout=uvcffi.timeout,
                               timeout_at=uvcffi.timeout_at, Timeout=uvcffi.Timeout)
ASYNCIO = types.SimpleNamespace(name="asyncio", **{n: getattr(asyncio, n, None) for n in
                                                   ("TaskGroup", "timeout", "timeout_at", "Timeout")})
HAS_ASYNCIO_OWN = sys.version_info >= (3, 11)


def _skip_without_asyncio_own(ns) -> None:
    if ns.name == "asyncio" and not HAS_ASYNCIO_OWN:
        pytest.skip("asyncio has no TaskGroup/timeout before Python 3.11")


@pytest.fixture(params=["uvcffi", "asyncio"], ids=["uv_classes", "aio_classes"])
def impl(request):
    ns = UVCFFI if request.param == "uvcffi" else ASYNCIO
    _skip_without_asyncio_own(ns)
    return ns


def oracle_since(impl, version, what) -> None:
    """Skip asyncio's classes where the installed asyncio predates ``what`` (uvcffi has it everywhere)."""
    if impl.name == "asyncio" and sys.version_info < version:
        pytest.skip(f"asyncio's classes lack {what} before Python {'.'.join(map(str, version))}")


@pytest.fixture(params=["uv_group_aio_timeout", "aio_group_uv_timeout"])
def mixed(request):
    """(TaskGroup's implementation, timeout's implementation): one of each."""
    pair = (UVCFFI, ASYNCIO) if request.param.startswith("uv_group") else (ASYNCIO, UVCFFI)
    _skip_without_asyncio_own(ASYNCIO)
    return pair


def counts_cancellations(loop) -> bool:
    """Does the loop's default Task class have cancelling()/uncancel()?"""
    return not type(loop).__module__.startswith("asyncio") or hasattr(asyncio.Task, "uncancel")


@pytest.fixture
def run(loop):
    """``run(coro)``: run_until_complete in a task that counts cancellations (see the module doc)."""
    if not counts_cancellations(loop):
        loop.set_task_factory(uvcffi.task_factory)
    return loop.run_until_complete


async def without_task(coro):
    """Drive ``coro`` to its end from a plain loop callback (no current task); its outcome."""
    outcome = asyncio.get_running_loop().create_future()

    def drive():
        try:
            coro.send(None)
        except StopIteration as stop:
            outcome.set_result(stop.value)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.set_exception(exc)
        else:  # pragma: no cover - the coroutines given here never suspend
            coro.close()
            outcome.set_exception(AssertionError("suspended"))

    asyncio.get_running_loop().call_soon(drive)
    return await outcome


# -- expiry ----------------------------------------------------------------------------------------


def test_expiry_raises_timeout_error(impl, loop, run):
    async def main():
        task = asyncio.current_task()
        with pytest.raises(TimeoutError) as info:
            async with impl.timeout(0) as cm:
                assert repr(cm).startswith("<Timeout [active] when=")
                assert not cm.expired()
                await asyncio.sleep(10)
        assert cm.expired()
        assert repr(cm) == "<Timeout [expired]>"
        assert isinstance(info.value, asyncio.TimeoutError)  # both names, on every Python
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
        assert task.cancelling() == 0
        await asyncio.sleep(0)  # no cancellation left behind

    run(main())


def test_timeout_at_uses_loop_time(impl, loop, run):
    async def main():
        when = loop.time() + 1000
        async with impl.timeout_at(when) as cm:
            assert cm.when() == when
        cm2 = impl.timeout(1000)
        assert cm2.when() - loop.time() == pytest.approx(1000, abs=5)
        with pytest.raises(TimeoutError):
            async with impl.timeout_at(loop.time()):
                await asyncio.sleep(10)

    run(main())


def test_block_ending_first_cancels_the_timer(impl, loop, run):
    async def main():
        # The deadline is already due (its callback is queued), but the block ends first.
        async with impl.timeout_at(loop.time() - 1) as cm:
            pass
        assert not cm.expired()
        assert repr(cm) == "<Timeout [finished]>"
        for _ in range(3):
            await asyncio.sleep(0)  # the queued expiry was cancelled: no CancelledError here
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_past_deadline_fires_on_next_iteration(impl, loop, run):
    async def main():
        for cm in (impl.timeout(-5), impl.timeout_at(loop.time() - 5), impl.timeout(0)):
            steps = 0
            with pytest.raises(TimeoutError):
                async with cm:
                    steps += 1
                    await asyncio.sleep(0)
                    steps += 1  # pragma: no cover - never reached
            assert steps == 1 and cm.expired()

    run(main())


def test_none_never_fires(impl, loop, run):
    async def main():
        async with impl.timeout(None) as cm:
            assert cm.when() is None
            assert repr(cm) == "<Timeout [active] when=None>"
            for _ in range(3):
                await asyncio.sleep(0)
        assert not cm.expired()
        async with impl.timeout_at(None) as cm:
            await asyncio.sleep(0)
        assert cm.when() is None and not cm.expired()

    run(main())


# -- reschedule, when, states ----------------------------------------------------------------------


def test_reschedule(impl, loop, run):
    async def main():
        async with impl.timeout(1000) as cm:
            cm.reschedule(None)
            assert cm.when() is None
            await asyncio.sleep(0)
            far = loop.time() + 1000
            cm.reschedule(far)
            assert cm.when() == far
            await asyncio.sleep(0)
        assert not cm.expired()

        with pytest.raises(TimeoutError):
            async with impl.timeout(None) as cm:
                cm.reschedule(loop.time() - 1)  # past: fires on the next iteration
                await asyncio.sleep(10)
        assert cm.expired()

    run(main())


def test_reschedule_outside_active_state(impl, loop, run):
    async def main():
        cm = impl.timeout(10)
        with pytest.raises(RuntimeError, match="has not been entered"):
            cm.reschedule(1)
        async with cm:
            pass
        with pytest.raises(RuntimeError, match="Cannot change state of finished Timeout"):
            cm.reschedule(1)

        with pytest.raises(TimeoutError):
            async with impl.timeout(0) as cm:
                await asyncio.sleep(10)
        with pytest.raises(RuntimeError, match="Cannot change state of expired Timeout"):
            cm.reschedule(None)

        async with impl.timeout(0) as cm:
            with pytest.raises(asyncio.CancelledError):
                await asyncio.sleep(10)
            with pytest.raises(RuntimeError, match="Cannot change state of expiring Timeout"):
                cm.reschedule(None)
        # The block swallowed the cancellation: no TimeoutError, yet the deadline did pass.
        assert cm.expired()
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_single_use(impl, loop, run):
    async def main():
        async with impl.timeout(10) as cm:
            with pytest.raises(RuntimeError, match="has already been entered"):
                async with cm:
                    pass  # pragma: no cover
        with pytest.raises(RuntimeError, match="has already been entered"):
            async with cm:
                pass  # pragma: no cover

    run(main())


def test_outside_a_task(impl, loop, run):
    async def main():
        cm = impl.timeout(0)
        with pytest.raises(RuntimeError, match="inside a task"):
            await without_task(cm.__aenter__())
        with pytest.raises(RuntimeError, match="has not been entered"):
            cm.reschedule(1)

    run(main())


def test_exit_without_enter_or_twice(loop, run):
    # uvcffi's: RuntimeError (asyncio's Timeout asserts: AssertionError, or nothing under -O)
    async def main():
        cm = uvcffi.timeout(10)
        with pytest.raises(RuntimeError, match="'created'"):
            await cm.__aexit__(None, None, None)
        async with cm:
            pass
        with pytest.raises(RuntimeError, match="'finished'"):
            await cm.__aexit__(None, None, None)

    run(main())


def test_timeout_needs_a_running_loop(impl):
    with pytest.raises(RuntimeError):
        impl.timeout(1)
    assert impl.timeout_at(5).when() == 5  # timeout_at needs none until entered


# -- nesting and outside cancellation --------------------------------------------------------------


def test_nested_inner_expires(impl, loop, run):
    async def main():
        async with impl.timeout(1000) as outer:
            with pytest.raises(TimeoutError):
                async with impl.timeout(0) as inner:
                    await asyncio.sleep(10)
            await asyncio.sleep(0)
        assert inner.expired() and not outer.expired()
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_nested_outer_expires(impl, loop, run):
    async def main():
        with pytest.raises(TimeoutError):
            async with impl.timeout(0) as outer:
                async with impl.timeout(1000) as inner:
                    await asyncio.sleep(10)
        # The inner block saw a cancellation that was not its own: it let it through.
        assert outer.expired() and not inner.expired()
        assert repr(inner) == "<Timeout [finished]>"

    run(main())


def test_nested_both_expire_outer_converts(impl, loop, run):
    async def main():
        with pytest.raises(TimeoutError):
            async with impl.timeout(0) as outer:
                try:
                    async with impl.timeout(0) as inner:
                        await asyncio.sleep(10)
                except TimeoutError:  # pragma: no cover - the outer one's cancellation is pending
                    pytest.fail("the inner timeout converted a cancellation it shares with the outer")
        assert outer.expired() and inner.expired()
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_outside_cancel_wins_over_expiry(impl, loop, run):
    async def main():
        task = asyncio.current_task()
        with pytest.raises(asyncio.CancelledError):
            async with impl.timeout(0) as cm:
                task.cancel()  # from "outside", in the same iteration as the deadline
                await asyncio.sleep(10)
        assert cm.expired()
        assert task.uncancel() == 0  # the outer request was still counted

    run(main())


def test_cancel_inside_timeout_after_a_cancellation(impl, loop, run):
    async def main():
        task = asyncio.current_task()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(10)
        # The task is still "cancelling" (count 1); a timeout entered now counts from there.
        with pytest.raises(TimeoutError):
            async with impl.timeout(0):
                await asyncio.sleep(10)
        with pytest.raises(asyncio.CancelledError):
            async with impl.timeout(10):
                task.cancel()
                await asyncio.sleep(10)
        assert task.cancelling() == 2

    run(main())


def test_error_while_handling_expiry_gets_timeout_in_context(impl, loop, run):
    oracle_since(impl, (3, 13), "the TimeoutError put in the context chain")

    async def main():
        with pytest.raises(KeyError) as info:
            async with impl.timeout(0) as cm:
                try:
                    await asyncio.sleep(10)
                finally:
                    raise KeyError("cleanup failed")
        assert cm.expired()
        err = info.value
        assert isinstance(err.__context__, TimeoutError)
        assert isinstance(err.__context__.__cause__, asyncio.CancelledError)
        assert err.__context__.__context__ is err.__context__.__cause__

    run(main())


def test_error_unrelated_to_expiry_passes_through(impl, loop, run):
    async def main():
        with pytest.raises(KeyError) as info:
            async with impl.timeout(1000) as cm:
                await asyncio.sleep(0)
                raise KeyError("plain")
        assert not cm.expired() and info.value.__context__ is None

    run(main())


# -- timeouts around task groups, any implementation of either --------------------------------------


def test_group_inside_timeout_expiring(mixed, loop, run):
    group_impl, timeout_impl = mixed

    async def main():
        cancelled = []

        async def child():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        with pytest.raises(TimeoutError):
            async with timeout_impl.timeout(0) as cm:
                async with group_impl.TaskGroup() as tg:
                    tg.create_task(child())
                    tg.create_task(child())
        assert cm.expired() and cancelled == [True, True]
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_timeout_inside_group_child(mixed, loop, run):
    group_impl, timeout_impl = mixed

    async def child():
        with pytest.raises(TimeoutError):
            async with timeout_impl.timeout(0):
                await asyncio.sleep(10)
        return "child done"

    async def main():
        async with group_impl.TaskGroup() as tg:
            t = tg.create_task(child())
            async with timeout_impl.timeout(0):  # the parent's own timeout in the body, swallowed
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    pass
        assert t.result() == "child done"
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_group_error_inside_timeout_not_expired(mixed, loop, run):
    group_impl, timeout_impl = mixed

    async def fail():
        await asyncio.sleep(0)
        raise ZeroDivisionError

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with timeout_impl.timeout(1000) as cm:
                async with group_impl.TaskGroup() as tg:
                    tg.create_task(fail())
                    await asyncio.sleep(10)  # cancelled by the group, not by the timeout
        assert not cm.expired()
        assert [type(e) for e in info.value.exceptions] == [ZeroDivisionError]
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0)

    run(main())


@pytest.mark.parametrize("pair", ["uv", "aio", "mixed1", "mixed2"])
def test_group_inside_timeout_cleanup_fails(pair, loop, run):
    # CPython 3.13's test_timeout_taskgroup, with our own body: the child fails in its cleanup
    # after the deadline; the group's error carries TimeoutError in each context chain.
    group_impl, timeout_impl = {"uv": (UVCFFI, UVCFFI), "aio": (ASYNCIO, ASYNCIO),
                                "mixed1": (UVCFFI, ASYNCIO), "mixed2": (ASYNCIO, UVCFFI)}[pair]
    _skip_without_asyncio_own(group_impl)
    _skip_without_asyncio_own(timeout_impl)
    if timeout_impl is ASYNCIO:
        oracle_since(timeout_impl, (3, 13), "the TimeoutError put in the context chain")

    async def child():
        try:
            await asyncio.sleep(10)
        finally:
            raise ZeroDivisionError

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with timeout_impl.timeout(0):
                async with group_impl.TaskGroup() as tg:
                    tg.create_task(child())
                    await asyncio.sleep(10)
        group = info.value
        assert isinstance(group.__context__, TimeoutError)
        assert isinstance(group.__context__.__cause__, asyncio.CancelledError)
        (inner,) = group.exceptions
        assert isinstance(inner, ZeroDivisionError)
        assert isinstance(inner.__context__, TimeoutError)
        assert isinstance(inner.__context__.__cause__, asyncio.CancelledError)

    run(main())


def test_timeouts_of_both_kinds_nested(mixed, loop, run):
    _, other = mixed  # the timeout implementation of the pair, nested in the one of the other kind
    outer_impl = ASYNCIO if other is UVCFFI else UVCFFI

    async def main():
        with pytest.raises(TimeoutError):
            async with outer_impl.timeout(0) as outer:
                async with other.timeout(1000) as inner:
                    await asyncio.sleep(10)
        assert outer.expired() and not inner.expired()
        async with outer_impl.timeout(1000) as outer:
            with pytest.raises(TimeoutError):
                async with other.timeout(0) as inner:
                    await asyncio.sleep(10)
        assert inner.expired() and not outer.expired()
        assert asyncio.current_task().cancelling() == 0

    run(main())


# -- tasks that cannot count cancellations -----------------------------------------------------


class _NoCounts(asyncio.Task):
    """asyncio's Task with its counters hidden: what asyncio's Task is before 3.11."""

    @property
    def cancelling(self):
        raise AttributeError("cancelling")

    @property
    def uncancel(self):
        raise AttributeError("uncancel")

    def __repr__(self) -> str:
        return "<_NoCounts>"  # asyncio's repr calls cancelling()


@pytest.mark.parametrize("what", ["timeout", "TaskGroup"])
def test_task_without_counts_is_refused(what, loop):
    # Before 3.11 asyncio's Task itself (on either loop); from 3.11 one with its counters hidden.
    task_class = asyncio.Task if not hasattr(asyncio.Task, "uncancel") else _NoCounts

    async def main():
        task = asyncio.current_task()
        assert getattr(task, "uncancel", None) is None
        cm = uvcffi.timeout(0) if what == "timeout" else uvcffi.TaskGroup()
        with pytest.raises(RuntimeError, match=r"cancelling\(\) and uncancel\(\).*set_task_factory"):
            async with cm:
                pass  # pragma: no cover
        for _ in range(3):
            await asyncio.sleep(0)  # refused on entry: no timer was armed, nothing cancels us
        return "refused"

    assert loop.run_until_complete(task_class(main(), loop=loop)) == "refused"


def test_task_factory_is_the_remedy(loop):
    # On any loop, uvcffi's Tasks count cancellations: asyncio's loop before 3.11 included.
    loop.set_task_factory(uvcffi.task_factory)

    async def main():
        assert isinstance(asyncio.current_task(), uvcffi.Task)
        with pytest.raises(TimeoutError):
            async with uvcffi.timeout(0):
                await asyncio.sleep(10)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"
