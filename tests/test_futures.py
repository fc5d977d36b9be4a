"""Future: one body, two Future/Task implementations (uvcffi's and asyncio's oracle), two loops.

The ``impl`` fixture (shared by the task-layer test modules) is a namespace with the spec's API
from either uvcffi.tasks/uvcffi.futures or asyncio, and installs the matching task factory on
the test's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import subprocess
import sys
import types
import weakref

import pytest

from uvcffi import futures as uf
from uvcffi import tasks as ut


def _asyncio_factory(loop, coro, **kwargs):
    return asyncio.Task(coro, loop=loop, **kwargs)


def _ns(mod, **extra):
    names = (
        "Task create_task sleep gather shield wait_for wait as_completed run_coroutine_threadsafe "
        "current_task all_tasks ensure_future iscoroutine iscoroutinefunction wrap_future "
        "FIRST_COMPLETED FIRST_EXCEPTION ALL_COMPLETED"
    ).split()
    ns = types.SimpleNamespace(**{n: getattr(mod, n) for n in names}, **extra)
    return ns


ASYNCIO = _ns(asyncio, name="asyncio", Future=asyncio.Future, factory=_asyncio_factory)
UVCFFI = _ns(
    types.SimpleNamespace(**vars(ut), wrap_future=uf.wrap_future),
    name="uvcffi",
    Future=uf.Future,
    factory=ut.task_factory,
)


@pytest.fixture(params=["asyncio", "uvcffi"], ids=["aio_tasks", "uv_tasks"])
def impl(request, loop):
    ns = ASYNCIO if request.param == "asyncio" else UVCFFI
    loop.set_task_factory(ns.factory)
    return ns


def oracle_since(impl, version, what):
    """Skip the asyncio-tasks variant where the running asyncio predates ``what``."""
    if impl.name == "asyncio" and sys.version_info < version:
        pytest.skip(f"asyncio's tasks lack {what} before Python {'.'.join(map(str, version))}")


@pytest.fixture
def uv_impl(loop):
    """uvcffi only: for behaviour asyncio's installed version lacks (3.12+/3.13 semantics)."""
    loop.set_task_factory(UVCFFI.factory)
    return UVCFFI


# -- state machine ------------------------------------------------------------------------------


def test_pending_state(impl, loop):
    f = impl.Future(loop=loop)
    assert not f.done() and not f.cancelled()
    assert f.get_loop() is loop
    with pytest.raises(asyncio.InvalidStateError):
        f.result()
    with pytest.raises(asyncio.InvalidStateError):
        f.exception()
    assert asyncio.isfuture(f)


def test_set_result(impl, loop):
    f = impl.Future(loop=loop)
    f.set_result(42)
    assert f.done() and not f.cancelled()
    assert f.result() == 42 and f.exception() is None
    with pytest.raises(asyncio.InvalidStateError):
        f.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        f.set_exception(ValueError())
    assert not f.cancel()


def test_set_exception(impl, loop):
    f = impl.Future(loop=loop)
    f.set_exception(ValueError)  # a class is instantiated
    assert isinstance(f.exception(), ValueError)
    with pytest.raises(ValueError):
        f.result()
    with pytest.raises(asyncio.InvalidStateError):
        f.set_result(1)


def test_set_exception_stopiteration(impl, loop):
    # The interpreter's asyncio: 3.13 stores a RuntimeError caused by it, before TypeError.
    f = impl.Future(loop=loop)
    if sys.version_info >= (3, 13):
        f.set_exception(StopIteration(1))
        exc = f.exception()
        assert isinstance(exc, RuntimeError) and isinstance(exc.__cause__, StopIteration)
    else:
        with pytest.raises(TypeError, match="StopIteration"):
            f.set_exception(StopIteration)
        assert not f.done()
        class MyStop(StopIteration):
            pass
        f.set_exception(MyStop())  # only StopIteration itself is refused
        assert isinstance(f.exception(), MyStop)


def test_uninitialized_future(impl, loop):
    # A Future whose __init__ never ran answers as asyncio's: pending, not initialized.
    def bare():
        return impl.Future.__new__(impl.Future)
    for query in ("result", "exception"):
        with pytest.raises(asyncio.InvalidStateError):
            getattr(bare(), query)()
    f = bare()
    assert not f.done() and not f.cancelled()
    with pytest.raises((RuntimeError, AttributeError)):
        bare().set_result(None)
    with pytest.raises((RuntimeError, AttributeError)):
        bare().cancel()
    with pytest.raises((RuntimeError, AttributeError)):
        bare().add_done_callback(lambda f: None)

    class MyFut(impl.Future):
        def __init__(self, *args, **kwargs):
            pass  # no super().__init__()

    with pytest.raises(RuntimeError, match="Future object is not initialized."):
        MyFut(loop=loop).get_loop()


def test_cancel_with_message(impl, loop):
    f = impl.Future(loop=loop)
    assert f.cancel(msg="why")
    assert f.cancelled() and f.done()
    with pytest.raises(asyncio.CancelledError) as ei:
        f.result()
    assert ei.value.args == ("why",)
    with pytest.raises(asyncio.CancelledError):
        f.exception()
    assert not f.cancel()
    with pytest.raises(asyncio.InvalidStateError):
        f.set_result(1)


def test_cancel_error_is_asyncio_class(impl, loop):
    f = impl.Future(loop=loop)
    f.cancel()
    try:
        f.result()
    except asyncio.CancelledError:
        pass
    else:  # pragma: no cover
        pytest.fail("no CancelledError")


# -- callbacks -----------------------------------------------------------------------------------


def test_callbacks_run_through_loop_in_order(impl, loop):
    f = impl.Future(loop=loop)
    seen = []
    f.add_done_callback(lambda fut: seen.append(("a", fut)))
    f.add_done_callback(lambda fut: seen.append(("b", fut)))
    f.set_result(1)
    assert seen == []  # scheduled, not called
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == [("a", f), ("b", f)]
    f.add_done_callback(lambda fut: seen.append(("late", fut)))
    assert len(seen) == 2
    loop.run_until_complete(asyncio.sleep(0))
    assert seen[-1] == ("late", f)


def test_remove_done_callback(impl, loop):
    f = impl.Future(loop=loop)
    seen = []

    def cb(fut):
        seen.append(1)

    f.add_done_callback(cb)
    f.add_done_callback(cb)
    f.add_done_callback(seen.append)
    assert f.remove_done_callback(cb) == 2
    assert f.remove_done_callback(cb) == 0
    f.set_result(None)
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == [f]


def test_callback_context(impl, loop):
    var = contextvars.ContextVar("var", default="default")
    f = impl.Future(loop=loop)
    seen = []
    ctx = contextvars.copy_context()
    ctx.run(var.set, "explicit")
    var.set("current")
    f.add_done_callback(lambda fut: seen.append(var.get()), context=ctx)
    f.add_done_callback(lambda fut: seen.append(var.get()))
    var.set("changed")
    f.set_result(None)
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["explicit", "current"]


# -- awaiting ------------------------------------------------------------------------------------


def test_await_future(impl, loop):
    async def main():
        f = impl.Future(loop=loop)
        loop.call_soon(f.set_result, "x")
        assert await f == "x"
        g = impl.Future(loop=loop)
        loop.call_soon(g.set_exception, KeyError("k"))
        with pytest.raises(KeyError):
            await g
        h = impl.Future(loop=loop)
        h.set_result("done")
        return await h

    assert loop.run_until_complete(main()) == "done"


def test_yield_from_future(impl, loop):
    f = impl.Future(loop=loop)

    @types.coroutine
    def old():
        return (yield from f)

    async def main():
        loop.call_soon(f.set_result, 7)
        return await old()

    assert loop.run_until_complete(main()) == 7


def test_await_outside_task_raises(impl, loop):
    f = impl.Future(loop=loop)
    it = f.__await__()
    assert next(it) is f
    with pytest.raises(RuntimeError, match="await wasn't used with future"):
        next(it)


def test_generic_alias(impl):
    alias = impl.Future[int]
    assert alias.__origin__ is impl.Future


# -- reprs and diagnostics -----------------------------------------------------------------------


def test_repr(impl, loop):
    name = impl.Future.__name__
    f = impl.Future(loop=loop)
    assert repr(f) == f"<{name} pending>"
    f.set_result([1, 2])
    assert repr(f) == f"<{name} finished result=[1, 2]>"
    g = impl.Future(loop=loop)
    g.set_exception(ValueError("v"))
    assert repr(g) == f"<{name} finished exception=ValueError('v')>"
    g.exception()
    c = impl.Future(loop=loop)
    c.cancel()
    assert repr(c) == f"<{name} cancelled>"
    d = impl.Future(loop=loop)

    def my_callback(fut):
        pass

    d.add_done_callback(my_callback)
    assert repr(d).startswith(f"<{name} pending cb=[test_repr.<locals>.my_callback() at ")
    d.remove_done_callback(my_callback)


def test_exception_never_retrieved(impl, loop, handler_calls):
    f = impl.Future(loop=loop)
    f.set_exception(ZeroDivisionError("z"))
    del f
    gc.collect()
    assert len(handler_calls) == 1
    ctx = handler_calls[0]
    assert ctx["message"] == "Future exception was never retrieved"
    assert isinstance(ctx["exception"], ZeroDivisionError)


class _RetrievesOnDel:
    """Owns a Future and retrieves its exception in ``__del__``, in a reference cycle with
    itself: the shape of asyncio's StreamReaderProtocol and its ``_closed`` Future."""

    def __init__(self, impl, loop):
        self.fut = impl.Future(loop=loop)
        self.cycle = self

    def __del__(self):
        if self.fut.done():
            self.fut.exception()


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's generational collector")
def test_exception_retrieved_by_a_finalizer_of_the_same_garbage(impl, loop, handler_calls):
    # The owner and its Future survive a young collection (they move to the middle generation),
    # then the exception is set; when the whole cycle is collected, the collector may run the
    # finalizers in any order, and the owner's __del__ retrieves the exception: nothing to report.
    # (A stream server whose client reset the connection ends exactly so.)
    owner = _RetrievesOnDel(impl, loop)
    gc.collect(0)
    owner.fut.set_exception(ConnectionResetError("reset"))
    del owner
    gc.collect()
    assert handler_calls == []


_AT_EXIT_SCRIPT = """
import asyncio, gc, sys
import uvcffi
loop = uvcffi.new_event_loop() if sys.argv[1] == "uvcffi" else asyncio.new_event_loop()
RETRIEVE = sys.argv[2] == "1"
class Owner:
    def __init__(self):
        self.fut = loop.create_future()
        self.cycle = self
    def __del__(self):
        if RETRIEVE:
            self.fut.exception()
owner = Owner()
gc.collect(0)
owner.fut.set_exception(ConnectionResetError("reset"))
del owner
loop.close()
"""


@pytest.mark.skipif(
    sys.implementation.name != "cpython",
    reason="PyPy runs no finalizer of garbage left at exit (nothing is reported on asyncio's loop either)",
)
@pytest.mark.parametrize("retrieve", [False, True], ids=["unretrieved", "retrieved_in_del"])
def test_exception_of_garbage_left_at_exit(loop_name, retrieve):
    # The cycle is still uncollected when the interpreter exits: reported once if nobody
    # retrieves the exception, not at all if its owner's __del__ does.
    proc = subprocess.run(
        [sys.executable, "-c", _AT_EXIT_SCRIPT, loop_name, "1" if retrieve else "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("Future exception was never retrieved") == (0 if retrieve else 1), proc.stderr


def test_exception_retrieved_not_logged(impl, loop, handler_calls):
    f = impl.Future(loop=loop)
    f.set_exception(ZeroDivisionError("z"))
    f.exception()
    g = impl.Future(loop=loop)
    g.set_exception(ZeroDivisionError("z"))
    with pytest.raises(ZeroDivisionError):
        g.result()
    del f, g
    gc.collect()
    assert handler_calls == []


def test_source_traceback_in_debug(impl, loop):
    loop.set_debug(True)
    f = impl.Future(loop=loop)
    frame = f._source_traceback[-1]
    assert frame[0] == __file__ and frame[2] == "test_source_traceback_in_debug"
    assert f"created at {__file__}:" in repr(f)
    loop.set_debug(False)


# -- wrap_future ---------------------------------------------------------------------------------


def test_wrap_future_result(impl, loop):
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        cf = ex.submit(lambda: 5)

        async def main():
            return await impl.wrap_future(cf)

        assert loop.run_until_complete(main()) == 5


def test_wrap_future_exception_and_passthrough(impl, loop):
    cf: concurrent.futures.Future = concurrent.futures.Future()

    async def main():
        f = impl.wrap_future(cf)
        assert impl.wrap_future(f) is f
        loop.call_soon(cf.set_exception, OSError("o"))
        with pytest.raises(OSError):
            await f

    loop.run_until_complete(main())


def test_wrap_future_cancel_propagates(impl, loop):
    cf: concurrent.futures.Future = concurrent.futures.Future()

    async def main():
        f = impl.wrap_future(cf)
        f.cancel()
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert cf.cancelled()


def test_wrap_future_rejects_other(impl, loop):
    with pytest.raises((TypeError, AssertionError)):
        impl.wrap_future(object(), loop=loop)


def test_future_without_loop_uses_current(impl, loop):
    if sys.version_info >= (3, 12) and impl is ASYNCIO:  # pragma: no cover
        pass
    f = impl.Future()
    assert f.get_loop() is loop


# -- no reference cycles through a raised exception's traceback ----------------------------------

needs_refcounting = pytest.mark.skipif(sys.implementation.name != "cpython",
                                       reason="frees by reference counting: CPython only")


class _Failure(Exception):
    """An exception that can be weakly referenced."""


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@needs_refcounting
def test_failed_future_freed_after_result(impl, loop, no_gc):
    fut = impl.Future(loop=loop)
    fut.set_exception(_Failure())
    exc_ref = weakref.ref(fut.exception())
    try:
        fut.result()
    except _Failure:
        pass
    fut_ref = weakref.ref(fut)
    del fut
    assert fut_ref() is None and exc_ref() is None


@needs_refcounting
def test_failed_future_freed_after_await(impl, loop, no_gc):
    async def main(box):
        try:
            await box.pop()
        except _Failure:
            return "caught"

    fut = impl.Future(loop=loop)
    fut.set_exception(_Failure())
    refs = weakref.ref(fut), weakref.ref(fut.exception())
    task = impl.Task(main([fut]), loop=loop)
    del fut
    assert loop.run_until_complete(task) == "caught"
    del task
    assert [r() for r in refs] == [None, None]


@needs_refcounting
def test_failed_task_freed_after_await(impl, loop, no_gc):
    async def boom():
        await impl.sleep(0)
        raise _Failure()

    async def main():
        task = impl.create_task(boom())
        await impl.wait([task])
        exc = task.exception()
        refs = weakref.ref(task), weakref.ref(exc)
        del task, exc
        return refs

    refs = loop.run_until_complete(impl.Task(main(), loop=loop))
    assert [r() for r in refs] == [None, None]


@needs_refcounting
def test_foreign_failed_future_freed_after_await(impl, loop, no_gc):
    # A Task of one implementation awaiting a failed future of the other (the _wakeup path).
    other = asyncio.Future if impl.Future is not asyncio.Future else uf.Future

    async def main(box):
        try:
            await box.pop()
        except _Failure:
            return "caught"

    fut = other(loop=loop)
    refs = weakref.ref(fut), None
    task = impl.Task(main([fut]), loop=loop)
    loop.call_soon(fut.set_exception, _Failure())
    del fut
    assert loop.run_until_complete(task) == "caught"
    del task
    assert refs[0]() is None
