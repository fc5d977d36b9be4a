"""uvcffi.TaskGroup: Python 3.13's semantics on every interpreter.

The fixtures come from test_timeouts (its docstring says more): every test runs on both loops,
with uvcffi's TaskGroup and, from 3.11, asyncio's own as the oracle (``oracle_since`` where a
behaviour is 3.13's); ``run`` gives the main coroutine a task that counts cancellations.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import sys
import weakref

import pytest
import test_timeouts as _tt

import uvcffi

# the fixtures and helpers of test_timeouts (see its docstring)
impl, run = _tt.impl, _tt.run
ASYNCIO, UVCFFI, oracle_since, without_task = _tt.ASYNCIO, _tt.UVCFFI, _tt.oracle_since, _tt.without_task

if sys.version_info >= (3, 11):
    import builtins

    ExceptionGroup = builtins.ExceptionGroup
    BaseExceptionGroup = builtins.BaseExceptionGroup
else:
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


def types_of(group: BaseException) -> list:
    return sorted(type(e).__name__ for e in group.exceptions)


async def fail_soon(exc=ZeroDivisionError, steps=1):
    for _ in range(steps):
        await asyncio.sleep(0)
    raise exc


async def forever(log=None, name=None):
    try:
        await asyncio.sleep(1000)
    except asyncio.CancelledError:
        if log is not None:
            log.append(name)
        raise


# -- the normal path -------------------------------------------------------------------------------


def test_waits_for_every_child(impl, loop, run):
    async def child(n):
        for _ in range(n):
            await asyncio.sleep(0)
        return n

    async def main():
        tg = impl.TaskGroup()
        assert repr(tg) == "<TaskGroup>"
        async with tg as entered:
            assert entered is tg
            assert repr(tg) == "<TaskGroup entered>"
            tasks = [tg.create_task(child(n)) for n in (3, 1, 2)]
            assert repr(tg) == "<TaskGroup tasks=3 entered>"
        assert [t.result() for t in tasks] == [3, 1, 2]
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_empty_group(impl, loop, run):
    async def main():
        async with impl.TaskGroup():
            pass
        async with impl.TaskGroup():
            await asyncio.sleep(0)

    run(main())


def test_create_task_name_and_context(impl, loop, run):
    var = contextvars.ContextVar("var", default="unset")

    async def child():
        var.set("set by child")
        return asyncio.current_task().get_name()

    async def main():
        ctx = contextvars.copy_context()
        async with impl.TaskGroup() as tg:
            named = tg.create_task(child(), name="worker-1")
            in_ctx = tg.create_task(child(), context=ctx)
        assert named.result() == "worker-1"
        assert ctx[var] == "set by child"  # the child ran in ctx itself, not in a copy
        assert var.get() == "unset"
        if hasattr(in_ctx, "get_context"):  # 3.12+, and uvcffi's Task
            assert in_ctx.get_context() is ctx

    run(main())


def test_child_created_by_a_child(impl, loop, run):
    async def main():
        order = []

        async def grandchild():
            await asyncio.sleep(0)
            order.append("grandchild")

        async def child(tg):
            tg.create_task(grandchild())
            order.append("child")

        async with impl.TaskGroup() as tg:
            tg.create_task(child(tg))
        assert order == ["child", "grandchild"]

    run(main())


# -- failures --------------------------------------------------------------------------------------


def test_child_error_cancels_siblings_and_body(impl, loop, run):
    async def main():
        log = []
        after = []
        with pytest.raises(ExceptionGroup) as info:
            async with impl.TaskGroup() as tg:
                tg.create_task(forever(log, "a"))
                tg.create_task(fail_soon())
                tg.create_task(forever(log, "b"))
                try:
                    await asyncio.sleep(1000)
                except asyncio.CancelledError:
                    after.append("body cancelled")
                    assert "errors=1" in repr(tg) and repr(tg).endswith("cancelling>")
                    raise
        assert info.value.message == "unhandled errors in a TaskGroup"
        assert types_of(info.value) == ["ZeroDivisionError"]
        assert sorted(log) == ["a", "b"] and after == ["body cancelled"]
        # The group took back the cancellation it asked for: the task runs on.
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0)
        return "went on"

    assert run(main()) == "went on"


def test_every_error_is_collected_body_last(impl, loop, run):
    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with impl.TaskGroup() as tg:
                tg.create_task(fail_soon(ZeroDivisionError))
                tg.create_task(fail_soon(KeyError))  # fails in the same iteration
                try:
                    await asyncio.sleep(1000)
                finally:
                    raise ValueError("from the body")
        errors = info.value.exceptions
        assert sorted(type(e).__name__ for e in errors[:2]) == ["KeyError", "ZeroDivisionError"]
        assert type(errors[2]) is ValueError
        assert info.value.__cause__ is None and info.value.__suppress_context__

    run(main())


def test_body_error_cancels_children(impl, loop, run):
    async def main():
        log = []
        with pytest.raises(ExceptionGroup) as info:
            async with impl.TaskGroup() as tg:
                tg.create_task(forever(log, "a"))
                await asyncio.sleep(0)
                raise KeyError("body")
        assert types_of(info.value) == ["KeyError"]  # the children's CancelledError is not an error
        assert log == ["a"]

    run(main())


def test_error_in_a_cancelled_child_is_collected(impl, loop, run):
    async def stubborn():
        try:
            await asyncio.sleep(1000)
        finally:
            raise KeyError("cleanup")

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with impl.TaskGroup() as tg:
                tg.create_task(stubborn())
                tg.create_task(fail_soon())
        assert types_of(info.value) == ["KeyError", "ZeroDivisionError"]

    run(main())


def test_base_exception_subclass_is_grouped(impl, loop, run):
    class MyBase(BaseException):
        pass

    async def main():
        with pytest.raises(BaseExceptionGroup) as info:
            async with impl.TaskGroup() as tg:
                tg.create_task(fail_soon(MyBase))
                tg.create_task(fail_soon(KeyError))
        assert not isinstance(info.value, ExceptionGroup)
        assert types_of(info.value) == ["KeyError", "MyBase"]

    run(main())


@pytest.mark.parametrize("fatal", [KeyboardInterrupt, SystemExit])
def test_fatal_error_in_body_propagates_as_itself(impl, loop, run, fatal):
    async def main():
        log = []
        with pytest.raises(fatal):
            async with impl.TaskGroup() as tg:
                tg.create_task(forever(log, "a"))
                tg.create_task(fail_soon(KeyError, steps=3))
                await asyncio.sleep(0)
                raise fatal()
        assert log == ["a"]  # the children were cancelled and awaited first
        return "caught"

    assert run(main()) == "caught"


@pytest.mark.parametrize("fatal", [KeyboardInterrupt, SystemExit])
def test_fatal_error_in_child_propagates_as_itself(impl, loop, run, fatal):
    log = []

    async def main():
        async with impl.TaskGroup() as tg:
            tg.create_task(forever(log, "a"))
            tg.create_task(fail_soon(fatal))
            await asyncio.sleep(1000)

    main_task = loop.create_task(main())
    with pytest.raises(fatal):  # the child's step re-raises it out of the loop, as asyncio's Task
        run(main_task)
    assert not main_task.done()
    with pytest.raises(fatal):  # run on: the group ends with it too, not wrapped in a group
        run(main_task)
    assert main_task.done() and type(main_task.exception()) is fatal
    assert log == ["a"]


def test_external_cancel_propagates(impl, loop, run):
    async def main():
        log = []
        started = loop.create_future()

        async def host():
            async with impl.TaskGroup() as tg:
                tg.create_task(forever(log, "a"))
                started.set_result(None)
                await asyncio.sleep(1000)

        t = loop.create_task(host())
        await started
        t.cancel("stop")
        with pytest.raises(asyncio.CancelledError):
            await t
        assert t.cancelled() and log == ["a"]

    run(main())


def test_external_cancel_while_waiting_for_children(impl, loop, run):
    async def main():
        log = []
        waiting = loop.create_future()

        async def host():
            async with impl.TaskGroup() as tg:
                tg.create_task(forever(log, "a"))
                loop.call_soon(waiting.set_result, None)
            # the body ended: __aexit__ waits for the child when the cancellation arrives

        t = loop.create_task(host())
        await waiting
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert log == ["a"]
        assert t.cancelling() == 1

    run(main())


def test_external_cancel_meets_child_error(impl, loop, run):
    # 3.13: the errors win, and the outside cancellation stays requested (delivered at the next
    # await) with its count unchanged.
    oracle_since(impl, (3, 13), "re-cancelling the parent when an error meets a cancellation")
    if type(loop).__module__.startswith("asyncio") and sys.version_info < (3, 13):
        pytest.skip("asyncio's Task before 3.13 cannot take a re-cancellation back: not re-cancelled")

    async def main():
        task = asyncio.current_task()

        async def fail_and_cancel_parent():
            await asyncio.sleep(0)
            task.cancel()  # the outside request, in the same iteration as the error
            raise ZeroDivisionError

        with pytest.raises(ExceptionGroup) as info:
            async with impl.TaskGroup() as tg:
                tg.create_task(fail_and_cancel_parent())
                await asyncio.sleep(1000)
        assert types_of(info.value) == ["ZeroDivisionError"]
        assert task.cancelling() == 1
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(0)
        task.uncancel()

    run(main())


def test_nested_groups(impl, loop, run):
    oracle_since(impl, (3, 13), "the uncancel() of a group cancelled while waiting for its children")
    async def main():
        log = []
        with pytest.raises(ExceptionGroup) as info:
            async with impl.TaskGroup() as outer:
                outer.create_task(forever(log, "outer child"))
                async with impl.TaskGroup() as inner:
                    inner.create_task(forever(log, "inner child"))
                    inner.create_task(fail_soon())
        (inner_group,) = info.value.exceptions
        assert isinstance(inner_group, ExceptionGroup) and types_of(inner_group) == ["ZeroDivisionError"]
        assert sorted(log) == ["inner child", "outer child"]
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_inner_group_cancelled_by_outer_failure(impl, loop, run):
    async def main():
        log = []

        async def nested():
            async with impl.TaskGroup() as inner:
                inner.create_task(forever(log, "inner child"))
                await asyncio.sleep(1000)

        with pytest.raises(ExceptionGroup) as info:
            async with impl.TaskGroup() as outer:
                outer.create_task(nested())
                outer.create_task(fail_soon(steps=2))
        assert types_of(info.value) == ["ZeroDivisionError"]
        assert log == ["inner child"]

    run(main())


# -- create_task refused ---------------------------------------------------------------------------


def _closed(coro) -> bool:
    return inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def _never_run():  # pragma: no cover - refused, closed
    raise AssertionError("ran")


def test_create_task_before_entering(impl, loop, run):
    oracle_since(impl, (3, 13), "closing the refused coroutine")

    async def main():
        tg = impl.TaskGroup()
        coro = _never_run()
        with pytest.raises(RuntimeError, match="has not been entered"):
            tg.create_task(coro)
        assert _closed(coro)

    run(main())


def test_create_task_after_finishing(impl, loop, run):
    oracle_since(impl, (3, 13), "closing the refused coroutine")

    async def main():
        async with impl.TaskGroup() as tg:
            pass
        coro = _never_run()
        with pytest.raises(RuntimeError, match="is finished"):
            tg.create_task(coro)
        assert _closed(coro)

    run(main())


def test_create_task_while_shutting_down(impl, loop, run):
    oracle_since(impl, (3, 13), "closing the refused coroutine")

    async def main():
        refused = []

        async def sibling(tg):
            try:
                await asyncio.sleep(1000)
            except asyncio.CancelledError:
                coro = _never_run()
                with pytest.raises(RuntimeError, match="is shutting down"):
                    tg.create_task(coro)
                refused.append(_closed(coro))
                raise

        with pytest.raises(ExceptionGroup):
            async with impl.TaskGroup() as tg:
                tg.create_task(sibling(tg))
                tg.create_task(fail_soon())
        assert refused == [True]

    run(main())


def test_children_may_be_added_while_exiting(impl, loop, run):
    async def main():
        async def spawner(tg):
            await asyncio.sleep(0)
            tg.create_task(asyncio.sleep(0, "late"))

        async with impl.TaskGroup() as tg:
            tg.create_task(spawner(tg))
        # the late child was accepted while __aexit__ waited for the spawner, and awaited too

    run(main())


# -- entering --------------------------------------------------------------------------------------


def test_enter_twice(impl, loop, run):
    async def main():
        tg = impl.TaskGroup()
        async with tg:
            with pytest.raises(RuntimeError, match="has already been entered"):
                async with tg:
                    pass  # pragma: no cover
        with pytest.raises(RuntimeError, match="has already been entered"):
            async with tg:
                pass  # pragma: no cover

    run(main())


def test_enter_without_task(impl, loop, run):
    oracle_since(impl, (3, 13), "closing the refused coroutine")

    async def main():
        tg = impl.TaskGroup()
        with pytest.raises(RuntimeError, match="parent task"):
            await without_task(tg.__aenter__())
        coro = _never_run()
        with pytest.raises(RuntimeError, match="has not been entered"):
            tg.create_task(coro)
        assert _closed(coro)

    run(main())


# -- uncancel accounting, eager children, a parent that is gone ------------------------------------


def test_eager_child_failing_at_once(loop):
    # With an eager factory the child fails inside create_task(): the parent is cancelled while it
    # runs. The group's uncancel() on exit drops that still undelivered request (3.13).
    loop.set_task_factory(uvcffi.eager_task_factory)

    async def fail_now():
        raise ZeroDivisionError

    async def return_now():
        return "eager"

    async def main():
        async with uvcffi.TaskGroup() as tg:
            t = tg.create_task(return_now())
            assert t.done() and repr(tg) == "<TaskGroup entered>"  # never added to the group
        assert t.result() == "eager"
        with pytest.raises(ExceptionGroup) as info:
            async with uvcffi.TaskGroup() as tg:
                tg.create_task(fail_now())
        assert types_of(info.value) == ["ZeroDivisionError"]
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0)  # no stray cancellation
        return "went on"

    assert loop.run_until_complete(main()) == "went on"


def test_group_swallowing_its_own_cancellation_only(impl, loop, run):
    async def main():
        task = asyncio.current_task()
        for _ in range(2):
            with pytest.raises(ExceptionGroup):
                async with impl.TaskGroup() as tg:
                    tg.create_task(fail_soon())
                    await asyncio.sleep(1000)
            assert task.cancelling() == 0
        # an outside cancellation before the group stays counted through it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with impl.TaskGroup() as tg:
                tg.create_task(asyncio.sleep(0))
                await asyncio.sleep(1000)
        assert task.cancelling() == 1
        task.uncancel()

    run(main())


def test_child_error_after_parent_is_gone(impl, loop, run, handler_calls):
    # The group was entered but its parent returned without exiting it: a later child failure
    # has nobody to cancel and goes to the loop's exception handler.
    async def main():
        done = loop.create_future()

        async def host():
            tg = impl.TaskGroup()
            await tg.__aenter__()
            tg.create_task(fail_soon(KeyError))
            child = next(iter(tg._tasks))
            child.add_done_callback(lambda _: loop.call_soon(done.set_result, None))

        await loop.create_task(host())
        await done

    run(main())
    assert len(handler_calls) == 1
    assert "has errored out but its parent task" in handler_calls[0]["message"]
    assert isinstance(handler_calls[0]["exception"], KeyError)


needs_refcounting = pytest.mark.skipif(sys.implementation.name != "cpython",
                                       reason="frees by reference counting: CPython only")


class _Done(Exception):
    pass


@needs_refcounting
def test_raised_group_leaves_no_reference_cycle(loop, run):
    # uvcffi's group only: asyncio's 3.13.0 keeps references (fixed in later 3.13 releases).
    async def main():
        refs = []

        async def child():
            raise _Done

        gc.disable()
        try:
            try:
                async with uvcffi.TaskGroup() as tg:
                    t = tg.create_task(child())
                    del t
                    await asyncio.sleep(1000)
            except ExceptionGroup as e:
                refs.append(weakref.ref(e.exceptions[0]))
                refs.append(weakref.ref(tg))
            del tg
            assert refs[0]() is None, gc.get_referrers(refs[0]())
            assert refs[1]() is None
        finally:
            gc.enable()

    run(main())


def test_parent_is_forgotten_after_exit(loop, run):
    async def main():
        async with uvcffi.TaskGroup() as tg:
            tg.create_task(asyncio.sleep(0))
        assert tg._parent is None and tg._errors is None

    run(main())


@pytest.mark.parametrize("group", ["uvcffi", "asyncio"])
def test_groups_of_both_kinds_nested(group, loop, run):
    if not hasattr(asyncio, "TaskGroup"):
        pytest.skip("asyncio has no TaskGroup before Python 3.11")
    outer_cls = UVCFFI.TaskGroup if group == "uvcffi" else ASYNCIO.TaskGroup
    inner_cls = ASYNCIO.TaskGroup if group == "uvcffi" else UVCFFI.TaskGroup
    if inner_cls is ASYNCIO.TaskGroup and sys.version_info < (3, 13):
        pytest.skip("asyncio's TaskGroup before 3.13, cancelled while waiting for its children, "
                    "leaves its parent's cancel count raised (gh-116720): an outer 3.13 group "
                    "takes that for an outside cancellation")

    async def main():
        log = []
        with pytest.raises(ExceptionGroup) as info:
            async with outer_cls() as outer:
                outer.create_task(forever(log, "outer"))
                async with inner_cls() as inner:
                    inner.create_task(forever(log, "inner"))
                    inner.create_task(fail_soon())
        (inner_group,) = info.value.exceptions
        assert types_of(inner_group) == ["ZeroDivisionError"]
        assert sorted(log) == ["inner", "outer"]
        assert asyncio.current_task().cancelling() == 0

    run(main())


def test_half_built_objects_repr():
    # class defaults: an object whose __init__ never ran still reprs (for error reports)
    assert repr(uvcffi.TaskGroup.__new__(uvcffi.TaskGroup)) == "<TaskGroup>"
    assert repr(uvcffi.Timeout.__new__(uvcffi.Timeout)) == "<Timeout [created]>"


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="exception groups are builtin from 3.11")
def test_without_the_exceptiongroup_backport():
    # Before 3.11 the group's error class comes from the exceptiongroup package: without it,
    # uvcffi still imports, timeouts work, and TaskGroup() says what to install.
    import subprocess

    code = (
        "import sys; sys.modules['exceptiongroup'] = None\n"
        "import asyncio, uvcffi\n"
        "async def main():\n"
        "    async with uvcffi.timeout(None):\n"
        "        await asyncio.sleep(0)\n"
        "    try:\n"
        "        uvcffi.TaskGroup()\n"
        "    except RuntimeError as e:\n"
        "        print(e)\n"
        "uvcffi.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "needs the exceptiongroup package" in out.stdout
