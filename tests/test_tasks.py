"""Task and the spec's functions: one body, uvcffi's implementation and asyncio's (the oracle).

Tests taking ``uv_impl`` pin behaviour the installed asyncio does not have (3.12/3.13 semantics,
the spec's deprecated-but-accepted parts).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import io
import math
import re
import sys
import threading
import warnings

import pytest
from test_futures import ASYNCIO, UVCFFI, impl, oracle_since, uv_impl  # noqa: F401  (fixtures)

from uvcffi import tasks as ut

# -- creation, names, coroutine ------------------------------------------------------------------


def _renamed_none(impl, loop, task) -> bool:
    """CPython 3.13.0's loop.create_task calls ``set_name(None)`` on a task its factory made, and
    asyncio's Task takes that as the name 'None' (fixed in 3.13.1; uvcffi's Task keeps its name)."""
    return (sys.version_info[:3] == (3, 13, 0) and type(loop).__module__.startswith("asyncio")
            and impl.name == "asyncio" and task.get_name() == "None")


def test_create_task_basics(impl, loop):
    async def child():
        return 3

    async def main():
        t = impl.create_task(child(), name=42)
        assert isinstance(t, impl.Task)
        assert t.get_name() == "42" and t.get_loop() is loop
        t.set_name("renamed")
        assert t.get_name() == "renamed"
        assert t.get_coro().__qualname__.endswith("child")
        u = impl.create_task(child())
        assert u.get_name().startswith("Task-") or _renamed_none(impl, loop, u)
        assert await t == 3 and await u == 3
        assert t.done() and not t.cancelled() and t.exception() is None

    loop.run_until_complete(main())


def test_create_task_needs_running_loop(impl, loop):
    async def child():
        pass

    coro = child()
    with pytest.raises(RuntimeError):
        impl.create_task(coro)
    coro.close()


def test_task_rejects_non_coroutine(impl, loop):
    with pytest.raises(TypeError):
        impl.Task(42, loop=loop)


def test_set_result_not_supported(impl, loop):
    async def main():
        t = impl.create_task(asyncio.sleep(0))
        with pytest.raises(RuntimeError):
            t.set_result(1)
        with pytest.raises(RuntimeError):
            t.set_exception(ValueError())
        await t

    loop.run_until_complete(main())


def test_contextvars_copied_and_used_for_every_step(impl, loop):
    oracle_since(impl, (3, 11), 'create_task(context=)')
    var = contextvars.ContextVar("var", default="unset")
    seen = []

    async def child():
        seen.append(var.get())
        var.set("child")
        await impl.sleep(0)
        seen.append(var.get())
        await asyncio.sleep(0)
        seen.append(var.get())

    async def main():
        var.set("parent")
        t = impl.create_task(child())
        var.set("parent-later")
        await t
        seen.append(var.get())
        ctx = contextvars.Context()
        t2 = impl.create_task(child(), context=ctx)
        await t2
        assert ctx[var] == "child"
        if hasattr(t2, "get_context"):  # 3.12+ for asyncio's Task
            assert t2.get_context() is ctx

    loop.run_until_complete(main())
    assert seen == ["parent", "child", "child", "parent-later", "unset", "child", "child"]


# -- cancellation --------------------------------------------------------------------------------


def test_cancel_message_reaches_coroutine(impl, loop):
    got = []

    async def child():
        try:
            await impl.sleep(3600)
        except asyncio.CancelledError as e:
            got.append(e.args)
            raise

    async def main():
        t = impl.create_task(child())
        await impl.sleep(0)
        assert t.cancel("stop it")
        with pytest.raises(asyncio.CancelledError):
            await t
        assert t.cancelled() and t.done()
        assert not t.cancel()

    loop.run_until_complete(main())
    assert got == [("stop it",)]


def test_cancel_before_first_step(impl, loop):
    ran = []

    async def child():
        ran.append(1)

    async def main():
        t = impl.create_task(child())
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert t.cancelled()

    loop.run_until_complete(main())
    assert ran == []


def test_cancel_can_be_refused(impl, loop):
    oracle_since(impl, (3, 11), 'cancelling()')
    async def child():
        try:
            await impl.sleep(3600)
        except asyncio.CancelledError:
            return "refused"

    async def main():
        t = impl.create_task(child())
        await impl.sleep(0)
        t.cancel()
        assert await t == "refused"
        assert not t.cancelled()
        assert t.cancelling() == 1

    loop.run_until_complete(main())


def test_cancel_cancels_awaited_future(impl, loop):
    async def main():
        fut = loop.create_future()

        async def child():
            await fut

        t = impl.create_task(child())
        await impl.sleep(0)
        t.cancel("m")
        with pytest.raises(asyncio.CancelledError):
            await t
        assert fut.cancelled()

    loop.run_until_complete(main())


def test_cancelling_uncancel_counts(impl, loop):
    oracle_since(impl, (3, 11), 'cancelling()/uncancel()')
    async def child():
        try:
            await impl.sleep(3600)
        except asyncio.CancelledError:
            pass
        return "done"

    async def main():
        t = impl.create_task(child())
        await impl.sleep(0)
        assert t.cancelling() == 0
        t.cancel()
        t.cancel()
        assert t.cancelling() == 2
        assert t.uncancel() == 1
        assert t.uncancel() == 0
        assert t.uncancel() == 0
        assert await t == "done"
        assert not t.cancelled()

    loop.run_until_complete(main())


def test_uncancel_to_zero_drops_pending_cancel(uv_impl, loop):
    # CPython 3.13: uncancel() reaching 0 clears a cancellation not yet delivered.
    async def child():
        await uv_impl.sleep(0)
        return "ran"

    async def main():
        t = uv_impl.create_task(child())
        t.cancel()  # before the first step: nothing to cancel yet, _must_cancel is set
        assert t.uncancel() == 0
        assert await t == "ran"

    loop.run_until_complete(main())


def test_cancelled_result_reraises_original(impl, loop):
    # 3.11+: the coroutine's own CancelledError; 3.9/3.10: a new one with it as __context__.
    async def child():
        raise asyncio.CancelledError("inner")

    async def main():
        t = impl.create_task(child())
        with pytest.raises(asyncio.CancelledError) as ei:
            await t
        if sys.version_info >= (3, 11):
            assert ei.value.args == ("inner",)
        else:
            assert ei.value.args == () and ei.value.__context__.args == ("inner",)
        assert t.cancelled()

    loop.run_until_complete(main())


def test_cancel_while_returning_wins(impl, loop):
    async def main():
        async def child():
            return 1

        t = impl.create_task(child())
        await impl.sleep(0)  # child ran and finished
        assert t.done() and not t.cancel()

    loop.run_until_complete(main())


# -- bad yields ----------------------------------------------------------------------------------


def test_task_cannot_await_itself(impl, loop):
    async def main():
        t = None

        async def me():
            await asyncio.sleep(0)
            await t

        t = impl.create_task(me())
        with pytest.raises(RuntimeError, match="await on itself"):
            await t

    loop.run_until_complete(main())


def test_bad_yield(impl, loop):
    import types

    @types.coroutine
    def bad():
        yield 123

    async def main():
        t = impl.create_task(bad_wrapper())
        with pytest.raises(RuntimeError, match="bad yield"):
            await t

    async def bad_wrapper():
        await bad()

    loop.run_until_complete(main())


def test_future_of_other_loop(impl, loop):
    other = asyncio.new_event_loop()
    try:

        async def main():
            await impl.Future(loop=other)

        with pytest.raises(RuntimeError, match="different loop"):
            loop.run_until_complete(main())
    finally:
        other.close()


# -- sleep ---------------------------------------------------------------------------------------


def test_sleep_zero_yields_exactly_once(impl, loop):
    order = []

    async def worker(tag):
        for i in range(3):
            order.append((tag, i))
            await impl.sleep(0)

    async def main():
        await impl.gather(worker("a"), worker("b"))

    loop.run_until_complete(main())
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_sleep_result_and_delay(impl, loop):
    async def main():
        t0 = loop.time()
        assert await impl.sleep(0.02, result="r") == "r"
        assert loop.time() - t0 >= 0.015
        assert await impl.sleep(-1, "neg") == "neg"

    loop.run_until_complete(main())


def test_sleep_nan(uv_impl, loop):
    async def main():
        with pytest.raises(ValueError):
            await uv_impl.sleep(math.nan)

    loop.run_until_complete(main())


def test_sleep_cancel(impl, loop):
    async def main():
        t = impl.create_task(impl.sleep(3600))
        await impl.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    loop.run_until_complete(main())


# -- gather --------------------------------------------------------------------------------------


async def _value_after(impl, n, value):
    for _ in range(n):
        await impl.sleep(0)
    return value


async def _raise_after(impl, n, exc):
    for _ in range(n):
        await impl.sleep(0)
    raise exc


def test_gather_results_in_order(impl, loop):
    async def main():
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "f")
        res = await impl.gather(_value_after(impl, 3, "a"), _value_after(impl, 1, "b"), fut)
        assert res == ["a", "b", "f"]
        assert await impl.gather() == []

    loop.run_until_complete(main())


def test_gather_same_awaitable_twice(impl, loop):
    async def main():
        t = impl.create_task(_value_after(impl, 1, "x"))
        assert await impl.gather(t, t) == ["x", "x"]

    loop.run_until_complete(main())


def test_gather_first_exception_others_continue(impl, loop):
    async def main():
        slow = impl.create_task(_value_after(impl, 5, "slow"))
        with pytest.raises(KeyError):
            await impl.gather(_raise_after(impl, 1, KeyError("k")), slow)
        assert not slow.done()
        assert await slow == "slow"

    loop.run_until_complete(main())


def _context_chain(exc):
    """(type, args) of ``exc`` and of each exception in its ``__context__`` chain."""
    chain = []
    while exc is not None:
        chain.append((type(exc), exc.args))
        exc = exc.__context__
    return chain


def test_cancel_message_through_result(impl, loop):
    # 3.11+: result() of a Task its coroutine cancelled re-raises the coroutine's own error
    # (the message kept); 3.9/3.10: a new CancelledError (no message) with it as __context__.
    seen = {}

    async def child():
        await impl.sleep(3600)

    async def main():
        t = impl.create_task(child())
        await impl.sleep(0)
        t.cancel("my message")
        await impl.wait([t])
        try:
            t.result()
        except asyncio.CancelledError as e:
            seen["chain"] = _context_chain(e)

    loop.run_until_complete(main())
    C = asyncio.CancelledError
    if sys.version_info >= (3, 11):
        assert seen["chain"] == [(C, ("my message",))]
    else:
        assert seen["chain"] == [(C, ()), (C, ("my message",))]


def test_gather_cancel_message_reaches_the_awaiting_task(impl, loop):
    # The cancelled gather raises the child's CancelledError, message kept, even with
    # return_exceptions (whose result list would otherwise consume it).
    async def waiter():
        await impl.gather(impl.sleep(3600), return_exceptions=True)

    async def main():
        t = impl.create_task(waiter())
        await impl.sleep(0)
        await impl.sleep(0)
        t.cancel("my message")
        await t

    with pytest.raises(asyncio.CancelledError) as ei:
        loop.run_until_complete(main())
    if sys.version_info >= (3, 11):
        assert ei.value.args == ("my message",)
    assert _context_chain(ei.value)[-1] == (asyncio.CancelledError, ("my message",))


def test_gather_return_exceptions(impl, loop):
    async def main():
        cancelled = loop.create_future()
        cancelled.cancel()
        res = await impl.gather(
            _raise_after(impl, 1, KeyError("k")), _value_after(impl, 2, 2), cancelled, return_exceptions=True
        )
        assert isinstance(res[0], KeyError) and res[1] == 2
        assert isinstance(res[2], asyncio.CancelledError)

    loop.run_until_complete(main())


def test_gather_cancel_cancels_children(impl, loop):
    async def main():
        a = impl.create_task(impl.sleep(3600))
        b = impl.create_task(impl.sleep(3600))
        g = impl.gather(a, b, return_exceptions=True)
        await impl.sleep(0)
        assert g.cancel()
        with pytest.raises(asyncio.CancelledError):
            await g
        assert a.cancelled() and b.cancelled()

    loop.run_until_complete(main())


def test_gather_cancelled_child_is_an_exception(impl, loop):
    async def main():
        a = impl.create_task(impl.sleep(3600))
        b = impl.create_task(_value_after(impl, 3, "b"))
        g = impl.gather(a, b)
        await impl.sleep(0)
        a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await g
        assert not g.cancelled()  # gather itself was not cancelled
        assert await b == "b"

    loop.run_until_complete(main())


# -- shield --------------------------------------------------------------------------------------


def test_shield_protects_inner(impl, loop):
    async def main():
        inner = impl.create_task(_value_after(impl, 3, "inner"))

        async def caller():
            return await impl.shield(inner)

        outer = impl.create_task(caller())
        await impl.sleep(0)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert not inner.cancelled()
        assert await inner == "inner"

    loop.run_until_complete(main())


def test_shield_inner_cancel_propagates(impl, loop):
    async def main():
        inner = impl.create_task(impl.sleep(3600))
        s = impl.shield(inner)
        await impl.sleep(0)
        inner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await s
        assert s.cancelled()

    loop.run_until_complete(main())


def test_shield_result_and_exception(impl, loop):
    async def main():
        assert await impl.shield(_value_after(impl, 1, 5)) == 5
        with pytest.raises(KeyError):
            await impl.shield(_raise_after(impl, 1, KeyError()))
        done = loop.create_future()
        done.set_result(1)
        assert impl.shield(done) is done

    loop.run_until_complete(main())


# -- wait_for ------------------------------------------------------------------------------------


def test_wait_for_result(impl, loop):
    async def main():
        assert await impl.wait_for(_value_after(impl, 1, "v"), 10) == "v"
        assert await impl.wait_for(_value_after(impl, 1, "none"), None) == "none"

    loop.run_until_complete(main())


def test_wait_for_timeout_waits_for_cancellation(impl, loop):
    events = []

    async def slow():
        try:
            await impl.sleep(3600)
        finally:
            events.append("cleanup-start")
            await impl.sleep(0)
            events.append("cleanup-end")

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await impl.wait_for(slow(), 0.01)
        events.append("timeout")

    loop.run_until_complete(main())
    assert events == ["cleanup-start", "cleanup-end", "timeout"]


def test_wait_for_exception_during_cancellation(impl, loop):
    async def bad():
        try:
            await impl.sleep(3600)
        except asyncio.CancelledError:
            raise ValueError("during cancel") from None

    async def main():
        with pytest.raises(ValueError, match="during cancel"):
            await impl.wait_for(bad(), 0.01)

    loop.run_until_complete(main())


def test_wait_for_zero_timeout(impl, loop):
    async def main():
        done = loop.create_future()
        done.set_result("ready")
        assert await impl.wait_for(done, 0) == "ready"
        t = impl.create_task(impl.sleep(3600))
        with pytest.raises(asyncio.TimeoutError):
            await impl.wait_for(t, 0)
        assert t.cancelled()

    loop.run_until_complete(main())


def test_wait_for_cancel_waiter_cancels_aw(impl, loop):
    async def main():
        inner = impl.create_task(impl.sleep(3600))
        w = impl.create_task(impl.wait_for(inner, 3600))
        await impl.sleep(0)
        await impl.sleep(0)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        assert inner.cancelled()

    loop.run_until_complete(main())


def test_wait_for_none_waits_forever(impl, loop):
    async def main():
        fut = loop.create_future()
        t = impl.create_task(impl.wait_for(fut, None))
        for _ in range(5):
            await impl.sleep(0)
        assert not t.done()
        fut.set_result("late")
        assert await t == "late"

    loop.run_until_complete(main())


# -- wait ----------------------------------------------------------------------------------------


def test_wait_return_when(impl, loop):
    async def main():
        a = impl.create_task(_value_after(impl, 1, "a"))
        b = impl.create_task(_value_after(impl, 4, "b"))
        done, pending = await impl.wait({a, b}, return_when=impl.FIRST_COMPLETED)
        assert done == {a} and pending == {b}
        c = impl.create_task(_raise_after(impl, 1, KeyError()))
        d = impl.create_task(_value_after(impl, 8, "d"))
        done, pending = await impl.wait([c, d], return_when=impl.FIRST_EXCEPTION)
        assert done == {c} and d in pending
        done, pending = await impl.wait([b, c, d])
        assert done == {b, c, d} and pending == set()
        c.exception()

    loop.run_until_complete(main())


def test_wait_timeout_does_not_raise(impl, loop):
    async def main():
        t = impl.create_task(impl.sleep(3600))
        done, pending = await impl.wait({t}, timeout=0.01)
        assert done == set() and pending == {t}
        assert not t.cancelled()
        t.cancel()

    loop.run_until_complete(main())


def test_wait_rejects_empty_and_bad_args(impl, loop):
    async def main():
        with pytest.raises(ValueError):
            await impl.wait(set())
        t = impl.create_task(impl.sleep(0))
        with pytest.raises(ValueError):
            await impl.wait({t}, return_when="sometimes")
        with pytest.raises(TypeError):
            await impl.wait(t)
        await t

    loop.run_until_complete(main())


def test_wait_coroutines_deprecated(uv_impl, loop):
    async def foo():
        return 42

    async def main():
        coro = foo()
        with pytest.warns(DeprecationWarning):
            done, pending = await uv_impl.wait({coro})
        assert coro not in done  # the spec's note: wait() returns the implicit Tasks
        assert [t.result() for t in done] == [42]

    loop.run_until_complete(main())


# -- as_completed --------------------------------------------------------------------------------


def test_as_completed_order(impl, loop):
    async def main():
        aws = [_value_after(impl, 3, "slow"), _value_after(impl, 1, "fast"), _value_after(impl, 2, "mid")]
        return [await f for f in impl.as_completed(aws)]

    assert loop.run_until_complete(main()) == ["fast", "mid", "slow"]


def test_as_completed_exception(impl, loop):
    async def main():
        out = []
        for f in impl.as_completed([_raise_after(impl, 1, KeyError("k")), _value_after(impl, 2, 1)]):
            try:
                out.append(await f)
            except KeyError:
                out.append("KeyError")
        return out

    assert loop.run_until_complete(main()) == ["KeyError", 1]


def test_as_completed_timeout(impl, loop):
    async def main():
        fast = impl.create_task(_value_after(impl, 1, "fast"))
        slow = impl.create_task(impl.sleep(3600))
        it = iter(impl.as_completed([fast, slow], timeout=0.02))
        assert await next(it) == "fast"
        with pytest.raises(asyncio.TimeoutError):
            await next(it)
        slow.cancel()

    loop.run_until_complete(main())


def test_as_completed_async_iteration(uv_impl, loop):
    async def main():
        a = uv_impl.create_task(_value_after(uv_impl, 2, "a"))
        b = uv_impl.create_task(_value_after(uv_impl, 1, "b"))
        got = []
        async for f in uv_impl.as_completed([a, b]):
            got.append(f)
        assert got == [b, a]
        results = []
        async for f in uv_impl.as_completed([_value_after(uv_impl, 1, 1)]):
            assert isinstance(f, asyncio.Future) or asyncio.isfuture(f)
            results.append(f.result())
        assert results == [1]

    loop.run_until_complete(main())


def test_as_completed_is_lazy_before_313(impl, loop):
    # Before 3.13 asyncio's as_completed is a generator: no argument check and no loop lookup
    # until the first next(); 3.13 checks at the call.
    async def coro():
        return 1

    fut = loop.create_future()
    if sys.version_info >= (3, 13):
        with pytest.raises(TypeError):
            impl.as_completed(fut)
    else:
        it = impl.as_completed(fut)  # no error yet
        with pytest.raises(TypeError, match="expect an iterable of futures"):
            next(iter(it))
        c = coro()
        it = impl.as_completed([c])  # no loop needed yet
        asyncio.set_event_loop(None)
        try:
            with pytest.raises(RuntimeError, match="no current event loop"):
                list(it)
        finally:
            asyncio.set_event_loop(loop)
            c.close()


def test_wait_accepts_a_generator_since_312(impl, loop):
    # 3.12+: iscoroutine() is false for a generator, so wait() takes one as an iterable.
    async def main():
        tasks = (impl.create_task(impl.sleep(0, i)) for i in range(3))
        if sys.version_info >= (3, 12):
            done, pending = await impl.wait(tasks)
            assert len(done) == 3 and not pending
        else:
            with pytest.raises(TypeError):
                await impl.wait(tasks)

    loop.run_until_complete(main())


def test_as_completed_rejects_single_awaitable(impl, loop):
    async def main():
        t = impl.create_task(impl.sleep(0))
        with pytest.raises(TypeError):
            next(iter(impl.as_completed(t)))  # asyncio < 3.13 raises lazily
        await t

    loop.run_until_complete(main())


# -- run_coroutine_threadsafe --------------------------------------------------------------------


def _in_thread(loop, fn):
    """Run fn() in a thread while ``loop`` runs; the loop stops when fn returns. Returns fn()."""
    out = {}
    done = loop.create_future()

    def body():
        try:
            out["value"] = fn()
        except BaseException as e:  # pragma: no cover - reported below
            out["error"] = e
        finally:
            loop.call_soon_threadsafe(done.set_result, None)

    th = threading.Thread(target=body)
    th.start()
    loop.run_until_complete(done)
    th.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_run_coroutine_threadsafe_result(impl, loop):
    def fn():
        cf = impl.run_coroutine_threadsafe(impl.sleep(0.001, result=3), loop)
        return cf.result(10)

    assert _in_thread(loop, fn) == 3


def test_run_coroutine_threadsafe_exception(impl, loop):
    async def boom():
        raise ValueError("b")

    def fn():
        cf = impl.run_coroutine_threadsafe(boom(), loop)
        return cf.exception(10)

    assert isinstance(_in_thread(loop, fn), ValueError)


def test_run_coroutine_threadsafe_cancel(impl, loop):
    started = threading.Event()
    state = {}

    async def forever():
        state["task"] = asyncio.current_task()
        started.set()
        await asyncio.sleep(3600)

    def fn():
        cf = impl.run_coroutine_threadsafe(forever(), loop)
        assert started.wait(10)
        cf.cancel()
        return cf

    cf = _in_thread(loop, fn)
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(asyncio.sleep(0))
    assert cf.cancelled()
    assert state["task"].cancelled() or state["task"].cancelling()
    if not state["task"].done():  # pragma: no cover
        loop.run_until_complete(asyncio.gather(state["task"], return_exceptions=True))
    assert state["task"].cancelled()


def test_run_coroutine_threadsafe_requires_coroutine(impl, loop):
    with pytest.raises(TypeError):
        impl.run_coroutine_threadsafe(42, loop)


# -- introspection -------------------------------------------------------------------------------


def test_current_and_all_tasks(impl, loop):
    async def child():
        await impl.sleep(0)
        return impl.current_task()

    async def main():
        me = impl.current_task()
        assert me is asyncio.current_task() and isinstance(me, impl.Task)
        t = impl.create_task(child())
        assert {me, t} <= impl.all_tasks()
        assert await t is t
        assert t not in impl.all_tasks()

    loop.run_until_complete(main())
    assert impl.current_task(loop) is None


def test_ensure_future(impl, loop):
    class Awaitable:
        def __await__(self):
            return (yield from asyncio.sleep(0, "aw").__await__())

    async def coro():
        return "c"

    async def main():
        f = loop.create_future()
        assert impl.ensure_future(f) is f
        t = impl.ensure_future(coro())
        assert isinstance(t, impl.Task) and await t == "c"
        assert await impl.ensure_future(Awaitable()) == "aw"
        with pytest.raises(TypeError):
            impl.ensure_future(42)
        other = asyncio.new_event_loop()
        try:
            with pytest.raises(ValueError):
                impl.ensure_future(f, loop=other)
        finally:
            other.close()
        f.cancel()

    loop.run_until_complete(main())


def test_iscoroutine_and_function(impl):
    async def native():
        pass

    def gen():
        yield

    c = native()
    assert impl.iscoroutine(c) and impl.iscoroutinefunction(native)
    c.close()
    assert not impl.iscoroutine(42) and not impl.iscoroutinefunction(gen)


def test_iscoroutine_generator(impl):
    # A plain generator is a coroutine to asyncio before 3.12, not from 3.12 on.
    def gen():
        yield

    g = gen()
    assert impl.iscoroutine(g) is (sys.version_info < (3, 12))


def test_iscoroutine_generator_based(uv_impl):
    # The spec's deprecated @coroutine: its generators stay coroutines on every Python.
    with pytest.warns(DeprecationWarning):
        @ut.coroutine
        def gen():
            yield

    g = gen()
    assert uv_impl.iscoroutine(g)


def test_coroutine_decorator(uv_impl, loop):
    with pytest.warns(DeprecationWarning, match="async def"):

        @ut.coroutine
        def old_style():
            yield from asyncio.sleep(0)
            return "old"

    with pytest.warns(DeprecationWarning):

        @ut.coroutine
        def plain():
            return asyncio.sleep(0, "plain")

    assert ut.iscoroutinefunction(old_style) and ut.iscoroutinefunction(plain)

    async def main():
        assert await old_style() == "old"
        assert await plain() == "plain"
        return await uv_impl.create_task(old_style())

    assert loop.run_until_complete(main()) == "old"


def test_loop_param_deprecated(uv_impl, loop):
    async def main():
        with pytest.warns(DeprecationWarning, match="loop argument"):
            await uv_impl.sleep(0, loop=loop)
        with pytest.warns(DeprecationWarning):
            assert await uv_impl.gather(uv_impl.sleep(0, 1), loop=loop) == [1]
        with pytest.warns(DeprecationWarning):
            assert await uv_impl.shield(uv_impl.sleep(0, 2), loop=loop) == 2
        with pytest.warns(DeprecationWarning):
            assert await uv_impl.wait_for(uv_impl.sleep(0, 3), 1, loop=loop) == 3
        t = uv_impl.create_task(uv_impl.sleep(0))
        with pytest.warns(DeprecationWarning):
            await uv_impl.wait({t}, loop=loop)
        with pytest.warns(DeprecationWarning):
            for f in uv_impl.as_completed([t], loop=loop):
                await f

    loop.run_until_complete(main())


def test_task_classmethods_deprecated(uv_impl, loop):
    async def main():
        me = asyncio.current_task()
        with pytest.warns(DeprecationWarning):
            assert ut.Task.current_task() is me
        with pytest.warns(DeprecationWarning):
            assert me in ut.Task.all_tasks()

    loop.run_until_complete(main())


# -- stacks, reprs, diagnostics ------------------------------------------------------------------


def test_get_stack_and_print_stack(impl, loop):
    async def sleeper():
        await impl.sleep(3600)

    async def failing():
        raise ValueError("f")

    async def main():
        t = impl.create_task(sleeper())
        await impl.sleep(0)
        stack = t.get_stack()
        assert len(stack) == 1 and stack[0].f_code.co_name == "sleeper"
        buf = io.StringIO()
        t.print_stack(file=buf)
        assert buf.getvalue().startswith("Stack for <") and "in sleeper" in buf.getvalue()
        t.cancel()
        await asyncio.gather(t, return_exceptions=True)
        assert t.get_stack() == []
        buf = io.StringIO()
        t.print_stack(file=buf)
        assert buf.getvalue().startswith("No stack for")
        f = impl.create_task(failing())
        await asyncio.gather(f, return_exceptions=True)
        frames = f.get_stack()
        assert frames[-1].f_code.co_name == "failing"
        assert len(f.get_stack(limit=1)) == 1
        buf = io.StringIO()
        f.print_stack(file=buf)
        assert buf.getvalue().startswith("Traceback for") and buf.getvalue().endswith("ValueError: f\n")

    loop.run_until_complete(main())


def test_task_repr(impl, loop):
    oracle_since(impl, (3, 11), "the 'cancelling' repr state")
    async def sleeper():
        await impl.sleep(3600)

    async def main():
        t = impl.create_task(sleeper(), name="T1")
        r = repr(t)
        assert r.startswith("<Task pending name='T1' coro=<test_task_repr.<locals>.sleeper() running at ")
        assert __file__ in r
        await impl.sleep(0)
        assert "wait_for=<" in repr(t)
        t.cancel()
        assert repr(t).startswith("<Task cancelling name='T1'")
        await asyncio.gather(t, return_exceptions=True)
        assert repr(t).startswith("<Task cancelled name='T1' coro=<test_task_repr.<locals>.sleeper() done, ")
        u = impl.create_task(sleeper())
        assert repr(u).startswith("<Task pending name='Task-") or _renamed_none(impl, loop, u)
        u.cancel()
        await asyncio.gather(u, return_exceptions=True)

    loop.run_until_complete(main())


def test_task_exception_never_retrieved(impl, loop, handler_calls):
    async def boom():
        raise ZeroDivisionError()

    async def main():
        impl.create_task(boom())
        await impl.sleep(0)
        await impl.sleep(0)

    loop.run_until_complete(main())
    # The report comes when the collector frees the Task. PyPy finalizes a cycle of objects with
    # finalizers (uvcffi's Task and its exception logger) over successive collections.
    for _ in range(3):
        gc.collect()
    assert [c["message"] for c in handler_calls] == ["Task exception was never retrieved"]
    assert isinstance(handler_calls[0]["exception"], ZeroDivisionError)


@pytest.mark.skipif(sys.implementation.name == "pypy",
                    reason="no reference counting: reported by the collector")
def test_task_exception_reported_on_last_reference_in_its_context(impl, loop):
    # As asyncio: "never retrieved" comes when the last reference to the Task goes (not at a
    # later collection), and from 3.12 the handler runs in the Task's context.
    name = contextvars.ContextVar("name", default="outside")
    seen = []

    def handler(lp, ctx):
        seen.append((ctx["message"], type(ctx.get("exception")), name.get()))

    async def boom():
        name.set("inside")
        raise ZeroDivisionError

    async def main():
        loop.set_exception_handler(handler)
        impl.Task(boom(), loop=loop)
        await impl.sleep(0)
        await impl.sleep(0)
        return list(seen)

    got = loop.run_until_complete(main())
    where = "inside" if sys.version_info >= (3, 12) else "outside"
    assert got == [("Task exception was never retrieved", ZeroDivisionError, where)]


def test_task_destroyed_pending(impl, loop, handler_calls):
    async def forever():
        await loop.create_future()

    async def main():
        impl.create_task(forever())
        await impl.sleep(0)

    loop.set_debug(True)
    loop.run_until_complete(main())
    loop.set_debug(False)
    # The task waits on a future nobody references: both die together.
    gc.collect()
    msgs = [c["message"] for c in handler_calls]
    assert "Task was destroyed but it is pending!" in msgs
    ctx = next(c for c in handler_calls if c["message"].startswith("Task was destroyed"))
    assert any(fr.name == "main" for fr in ctx["source_traceback"])  # creation traceback in debug


# -- how a waiting Task is woken ------------------------------------------------------------------
# On uvcffi's loop a uvcffi Task reuses one Handle for all its steps (futures._StepHandle); these
# pin what that must not change.


def test_wakeup_keeps_callback_order(impl, loop):
    # A Task's wake-up is one of the Future's done callbacks, in registration order.
    order = []

    async def waiter(fut):
        await fut
        order.append("task")

    async def main():
        fut = loop.create_future()
        fut.add_done_callback(lambda f: order.append("before"))
        t = impl.create_task(waiter(fut))
        await impl.sleep(0)  # the task now waits on fut
        fut.add_done_callback(lambda f: order.append("after"))
        fut.set_result(None)
        await t

    loop.run_until_complete(main())
    assert order == ["before", "task", "after"]


def test_debug_mode_switched_while_tasks_wait(impl, loop, handler_calls):
    # Wake-ups registered with debug off, delivered with debug on (the loop checks every call
    # then), and the other way round; sleep(0) in both modes.
    async def waiter(fut):
        value = await fut
        await impl.sleep(0)
        return value

    async def main():
        futs = [loop.create_future() for _ in range(2)]
        tasks = [impl.create_task(waiter(f)) for f in futs]
        await impl.sleep(0)
        loop.set_debug(True)
        futs[0].set_result(1)
        assert await tasks[0] == 1
        loop.set_debug(False)
        futs[1].set_result(2)
        assert await tasks[1] == 2

    loop.run_until_complete(main())
    assert not handler_calls


def test_loop_subclass_call_soon_sees_wakeups(impl, loop_factory):
    # A loop class that overrides call_soon sees every step of a Task, as asyncio's Task makes it.
    base = type(loop_factory())
    calls = []

    class Counting(base):
        def call_soon(self, callback, *args, context=None):
            calls.append(callback)
            return super().call_soon(callback, *args, context=context)

    lp = Counting()
    try:
        async def waiter():
            for _ in range(3):
                fut = lp.create_future()
                lp.call_later(0.001, fut.set_result, None)
                await fut
            await impl.sleep(0)

        calls.clear()
        lp.run_until_complete(impl.Task(waiter(), loop=lp))
        # first step + 3 wake-ups + sleep(0), through call_soon (plus run_until_complete's own)
        assert len(calls) >= 5, calls
    finally:
        lp.close()


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="PyPy frees objects only in its collector")
def test_done_task_freed_without_collector(impl, loop):
    # A finished Task is freed by reference counting alone (no cycle through its wake-up).
    import weakref

    async def child(fut):
        await fut
        await impl.sleep(0)
        return 1

    async def main():
        fut = loop.create_future()
        t = impl.create_task(child(fut))
        await impl.sleep(0)
        fut.set_result(None)
        await t
        return weakref.ref(t)

    gc.collect()
    gc.disable()
    try:
        ref = loop.run_until_complete(main())
        assert ref() is None
    finally:
        gc.enable()


def test_future_repr_names_waiting_task(impl, loop):
    # The wake-up shows in the Future's callbacks as the Task's method (asyncio: task_wakeup).
    async def wait(fut):
        await fut

    async def main():
        fut = loop.create_future()
        t = impl.create_task(wait(fut))
        await impl.sleep(0)
        text = repr(fut)
        fut.set_result(None)
        await t
        return text

    text = loop.run_until_complete(main())
    wakeup = r"Task\.\w+\(\)"
    if impl.name == "asyncio" and asyncio.Task.__module__ == "_asyncio" and sys.version_info < (3, 10):
        wakeup = r"<TaskWakeupMethWrapper object at 0x\w+>\(\)"  # the C Task's wake-up before 3.10
    assert re.match(rf"<Future pending cb=\[{wakeup}\]>$", text), text


# -- eager tasks ---------------------------------------------------------------------------------


def test_eager_start(uv_impl, loop):
    order = []

    async def child(tag):
        order.append((tag, "start"))
        holder.setdefault("current", asyncio.current_task())
        await uv_impl.sleep(0)
        order.append((tag, "end"))
        return tag

    async def quick():
        return "quick"

    holder = {}

    async def main():
        me = asyncio.current_task()
        t = uv_impl.create_task(child("e"), name="eager", eager_start=True)
        assert holder["current"] is t and t.get_name() == "eager"
        order.append(("main", asyncio.current_task() is me))
        q = uv_impl.create_task(quick(), eager_start=True)
        assert q.done() and q.result() == "quick"
        assert q not in asyncio.all_tasks()
        assert t in asyncio.all_tasks()
        assert await t == "e"

    loop.run_until_complete(main())
    assert order == [("e", "start"), ("main", True), ("e", "end")]


def test_eager_task_factory(uv_impl, loop):
    seen = []

    async def child():
        seen.append("child")
        return 1

    async def main():
        loop.set_task_factory(ut.eager_task_factory)
        t = asyncio.create_task(child())
        seen.append("after create")
        assert isinstance(t, ut.Task) and t.done()
        assert await asyncio.gather(child(), child()) == [1, 1]
        loop.set_task_factory(ut.task_factory)

    loop.run_until_complete(main())
    assert seen[:2] == ["child", "after create"]


def test_eager_start_without_running_loop_is_lazy(uv_impl, loop):
    async def child():
        return 1

    t = ut.Task(child(), loop=loop, eager_start=True)
    assert not t.done()
    assert loop.run_until_complete(t) == 1


def test_eager_exception_in_first_step(uv_impl, loop):
    async def bad():
        raise KeyError("k")

    async def main():
        t = uv_impl.create_task(bad(), eager_start=True)
        assert t.done()
        with pytest.raises(KeyError):
            t.result()

    loop.run_until_complete(main())


def test_no_warnings_on_normal_use(impl, loop):
    async def main():
        await impl.gather(impl.sleep(0), impl.wait_for(impl.sleep(0), 1), impl.shield(impl.sleep(0)))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loop.run_until_complete(main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TaskGroup and timeout need 3.11")
def test_taskgroup_with_impl_tasks(impl, loop):
    async def main():
        async with asyncio.TaskGroup() as tg:
            a = tg.create_task(_value_after(impl, 1, "a"))
            b = tg.create_task(_value_after(impl, 2, "b"))
        assert isinstance(a, impl.Task)
        return a.result() + b.result()

    assert loop.run_until_complete(main()) == "ab"
