"""The loop's scheduling API: each test body runs on asyncio's loop (the oracle) and on uvcffi's."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import inspect
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest
from _support import CTRL_C_WHEN_POLLING, default_sigint


def test_call_soon_fifo(loop):
    order = []
    for i in range(100):
        loop.call_soon(order.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == list(range(100))


def test_call_soon_scheduled_during_turn_runs_next_turn(loop):
    order = []

    def first():
        order.append("first")
        loop.call_soon(order.append, "third")

    loop.call_soon(first)
    loop.call_soon(order.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    # stop() lets the current turn finish; "third" was scheduled into the next turn.
    assert order == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["first", "second", "third"]


def test_handle_cancel(loop):
    calls = []
    h = loop.call_soon(calls.append, 1)
    assert not h.cancelled()
    h.cancel()
    assert h.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == []
    assert isinstance(h, asyncio.Handle)
    assert "cancelled" in repr(h)


def test_handle_repr(loop):
    def cb():
        pass

    h = loop.call_soon(cb)
    assert repr(h).startswith("<Handle test_handle_repr.<locals>.cb() at ")
    th = loop.call_later(10, cb)
    assert repr(th).startswith("<TimerHandle when=")
    assert isinstance(th, asyncio.TimerHandle)
    assert th.when() == pytest.approx(loop.time() + 10, abs=1)
    th.cancel()
    h.cancel()


def test_timers_in_deadline_order_and_never_early(loop):
    fired = []
    delays = [0.03, 0.01, 0.02, 0.0, 0.015, 0.005, 0.025]
    for d in delays:
        when = loop.time() + d
        loop.call_at(when, lambda w=when, d=d: fired.append((d, loop.time() >= w)))
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert [d for d, _ in fired] == sorted(delays)
    assert all(ok for _, ok in fired), fired


def test_call_later_not_early_many(loop):
    early = []
    for i in range(50):
        delay = (i % 7) * 0.001 + 0.0003
        when = loop.time() + delay

        def check(when=when):
            now = loop.time()
            if now < when:
                early.append(when - now)

        loop.call_later(delay, check)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert early == []


def test_equal_deadlines_keep_order(loop):
    fired = []
    when = loop.time() + 0.001
    for i in range(20):
        loop.call_at(when, fired.append, i)
    loop.call_at(when + 0.002, loop.stop)
    loop.run_forever()
    assert sorted(fired) == list(range(20))


def test_timer_cancel(loop):
    fired = []
    handles = [loop.call_later(0.001 * i, fired.append, i) for i in range(10)]
    for h in handles[::2]:
        h.cancel()
    assert all(h.cancelled() for h in handles[::2])
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert fired == [1, 3, 5, 7, 9]


def test_thousands_of_pending_timers(loop):
    fired = []
    n = 5000
    handles = []
    for i in range(n):
        handles.append(loop.call_later(0.001 + (i % 100) * 0.0001, fired.append, i))
    # Cancel most of them: exercises the bulk sweep of cancelled timers.
    for h in handles[: n - 500]:
        h.cancel()
    far = [loop.call_later(3600, fired.append, -1) for _ in range(2000)]
    loop.call_later(0.03, loop.stop)
    loop.run_forever()
    assert sorted(fired) == list(range(n - 500, n))
    for h in far:
        h.cancel()


def test_call_later_zero_and_negative(loop):
    fired = []
    loop.call_later(-1, fired.append, "neg")
    loop.call_later(0, fired.append, "zero")
    loop.call_soon(fired.append, "soon")
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    assert set(fired) == {"neg", "zero", "soon"}


def test_time_is_monotonic_and_fine(loop):
    samples = [loop.time() for _ in range(1000)]
    assert samples == sorted(samples)
    assert len(set(samples)) > 1  # better than millisecond resolution
    assert abs(loop.time() - time.monotonic()) < 1.0


def test_call_soon_threadsafe_8_threads(loop):
    n_threads, per_thread = 8, 500
    got = []
    done = loop.create_future()
    barrier = threading.Barrier(n_threads)

    def cb(item):
        got.append(item)
        if len(got) == n_threads * per_thread and not done.done():
            done.set_result(None)

    def worker(t):
        barrier.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(cb, (t, i))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    loop.run_until_complete(asyncio.wait_for(done, 30))
    for t in threads:
        t.join()
    assert len(got) == n_threads * per_thread
    for t in range(n_threads):  # each thread's calls keep their order
        assert [i for (tt, i) in got if tt == t] == list(range(per_thread))


def test_call_soon_threadsafe_wakes_blocked_loop(loop):
    fut = loop.create_future()

    def later():
        time.sleep(0.05)
        loop.call_soon_threadsafe(fut.set_result, "woken")

    t = threading.Thread(target=later)
    t.start()
    start = time.monotonic()
    assert loop.run_until_complete(fut) == "woken"
    assert time.monotonic() - start < 5
    t.join()


def test_exception_in_callback_goes_to_handler(loop, handler_calls):
    def bad():
        raise ZeroDivisionError("boom")

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(handler_calls) == 1
    ctx = handler_calls[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["message"].startswith("Exception in callback ")
    assert isinstance(ctx["handle"], asyncio.Handle)


def test_exception_handler_api(loop):
    assert loop.get_exception_handler() is not None  # the fixture's recorder
    with pytest.raises(TypeError):
        loop.set_exception_handler(42)
    seen = []

    def handler(lp, ctx):
        seen.append((lp, ctx))

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.call_exception_handler({"message": "hi"})
    assert seen == [(loop, {"message": "hi"})]


def test_default_exception_handler_logs(loop, caplog):
    loop.set_exception_handler(None)
    try:
        raise ValueError("logged")
    except ValueError as e:
        exc = e
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "something failed", "exception": exc, "extra": 1})
    assert "something failed" in caplog.text
    assert "extra: 1" in caplog.text
    assert "ValueError: logged" in caplog.text


def test_broken_custom_handler_falls_back_to_default(loop, caplog):
    def handler(lp, ctx):
        raise RuntimeError("handler broke")

    loop.set_exception_handler(handler)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "original"})
    assert "Unhandled error in exception handler" in caplog.text
    assert "handler broke" in caplog.text


def test_keyboard_interrupt_from_callback_propagates(loop):
    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()
    # The loop can still run and close.
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_system_exit_from_callback_propagates(loop):
    loop.call_soon(sys.exit, 3)
    with pytest.raises(SystemExit):
        loop.run_forever()


def test_debug_slow_callback_warning(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01

    def slow():
        time.sleep(0.03)

    loop.call_soon(slow)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert "Executing <Handle" in caplog.text
    assert "took" in caplog.text and "seconds" in caplog.text
    loop.set_debug(False)


def test_debug_source_traceback(loop):
    loop.set_debug(True)
    h = loop.call_soon(lambda: None)
    assert h._source_traceback
    assert h._source_traceback[-1][2] == "test_debug_source_traceback"
    th = loop.call_later(1, lambda: None)
    assert th._source_traceback[-1][2] == "test_debug_source_traceback"
    th.cancel()
    loop.set_debug(False)
    h2 = loop.call_soon(lambda: None)
    assert h2._source_traceback is None
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_debug_rejects_non_callable(loop):
    loop.set_debug(True)
    with pytest.raises(TypeError):
        loop.call_soon(42)
    with pytest.raises(TypeError):
        loop.call_later(1, "nope")

    async def coro():
        pass

    with pytest.raises(TypeError):
        loop.call_soon(coro)
    loop.set_debug(False)


def test_debug_wrong_thread(loop):
    loop.set_debug(True)
    errors = []

    def from_thread():
        try:
            loop.call_soon(lambda: None)
        except RuntimeError as e:
            errors.append(e)

    async def main():
        t = threading.Thread(target=from_thread)
        t.start()
        await loop.run_in_executor(None, t.join)

    loop.run_until_complete(main())
    assert len(errors) == 1
    loop.set_debug(False)


def test_get_running_loop(loop):
    async def main():
        return asyncio.get_running_loop()

    assert loop.run_until_complete(main()) is loop
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_run_inside_running_loop_raises(loop, loop_factory):
    if (3, 13) <= sys.version_info[:3] < (3, 13, 3) and isinstance(loop, asyncio.BaseEventLoop):
        # gh-130145: the refused run_forever() resets the running state, so close() closes it
        pytest.skip("asyncio 3.13.0-3.13.2: run_forever() inside the running loop marks it stopped")
    other = loop_factory()

    async def main():
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            other.run_until_complete(coro)
        coro.close()
        with pytest.raises(RuntimeError):
            loop.run_forever()
        with pytest.raises(RuntimeError):
            loop.close()
        return "ok"

    assert loop.run_until_complete(main()) == "ok"
    other.close()


def test_closed_loop_raises(loop):
    loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError):
        loop.call_soon(lambda: None)
    with pytest.raises(RuntimeError):
        loop.call_later(1, lambda: None)
    with pytest.raises(RuntimeError):
        loop.call_soon_threadsafe(lambda: None)
    with pytest.raises(RuntimeError):
        loop.run_forever()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, print)
    loop.close()  # idempotent


def test_stopped_loop_runs_again(loop):
    counts = []
    for i in range(3):
        loop.call_soon(counts.append, i)
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert counts == [0, 1, 2]
    assert loop.run_until_complete(asyncio.sleep(0.001, "again")) == "again"


def test_stop_before_run(loop):
    ran = []
    loop.stop()
    loop.call_soon(ran.append, 1)
    loop.run_forever()  # runs one turn, then stops
    assert ran == [1]


def test_run_until_complete_result_and_exception(loop):
    async def ok():
        await asyncio.sleep(0)
        return 7

    async def bad():
        await asyncio.sleep(0)
        raise KeyError("k")

    assert loop.run_until_complete(ok()) == 7
    with pytest.raises(KeyError):
        loop.run_until_complete(bad())
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "f")
    assert loop.run_until_complete(fut) == "f"


def test_run_until_complete_stopped_early(loop):
    fut = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed"):
        loop.run_until_complete(fut)
    fut.cancel()


def test_context_on_scheduling_calls(loop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in-ctx")
    seen = []
    loop.call_soon(lambda: seen.append(("soon", var.get())), context=ctx)
    loop.call_later(0, lambda: seen.append(("later", var.get())), context=ctx)
    loop.call_at(loop.time(), lambda: seen.append(("at", var.get())), context=ctx)
    loop.call_soon_threadsafe(lambda: seen.append(("threadsafe", var.get())), context=ctx)
    loop.call_soon(lambda: seen.append(("none", var.get())))
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    assert sorted(seen) == sorted([("soon", "in-ctx"), ("later", "in-ctx"), ("at", "in-ctx"),
                                   ("threadsafe", "in-ctx"), ("none", "default")])


def test_run_in_executor(loop):
    main_thread = threading.get_ident()

    def work(a, b):
        return a + b, threading.get_ident()

    async def main():
        result, tid = await loop.run_in_executor(None, work, 2, 3)
        assert tid != main_thread
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            r2, _ = await loop.run_in_executor(ex, work, 4, 5)
        return result, r2

    assert loop.run_until_complete(main()) == (5, 9)
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, work, 1, 2)


def test_set_default_executor(loop):
    ex = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="mine")
    loop.set_default_executor(ex)

    def name():
        return threading.current_thread().name

    assert loop.run_until_complete(loop.run_in_executor(None, name)).startswith("mine")
    if sys.version_info >= (3, 11) or hasattr(loop, "_live_handles"):
        # asyncio before 3.11 only warned; uvcffi raises on every Python
        with pytest.raises(TypeError):
            loop.set_default_executor(object())
    loop.run_until_complete(loop.shutdown_default_executor())


@pytest.mark.skipif(sys.version_info < (3, 12), reason="timeout= of shutdown_default_executor is 3.12+")
def test_shutdown_default_executor_timeout(loop):
    if type(loop).__module__.startswith("asyncio") and "timeout(" not in inspect.getsource(
            type(loop).shutdown_default_executor):
        # 3.12.0/3.12.1 await the whole shutdown first and only then join with the timeout
        pytest.skip("this asyncio's shutdown_default_executor() does not bound the wait")
    release = threading.Event()
    loop.run_in_executor(None, release.wait, 5)
    with pytest.warns(RuntimeWarning):
        loop.run_until_complete(loop.shutdown_default_executor(timeout=0.05))
    release.set()


def test_shutdown_default_executor_timeout_uvcffi(loop_factory):
    loop = loop_factory()
    if not hasattr(loop, "_live_handles"):
        loop.close()
        pytest.skip("uvcffi accepts timeout= on every Python; asyncio only from 3.12")
    release = threading.Event()
    loop.run_in_executor(None, release.wait, 5)
    with pytest.warns(RuntimeWarning):
        loop.run_until_complete(loop.shutdown_default_executor(timeout=0.05))
    release.set()
    loop.close()


def test_shutdown_asyncgens(loop):
    closed = []

    async def agen():
        try:
            for i in range(10):
                yield i
        finally:
            closed.append("finally")

    async def main():
        g = agen()
        assert await g.__anext__() == 0
        return g

    g = loop.run_until_complete(main())
    assert closed == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == ["finally"]
    del g


def test_asyncgen_finalizer_hook_closes_on_loop(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(asyncio.get_running_loop())

    async def main():
        g = agen()
        await g.__anext__()
        del g
        # CPython frees g at once; PyPy's collector may need more than one pass (seen once in
        # a full PyPy run), so collect until the hook's aclose() task has run, a bounded while
        for _ in range(20):
            gc.collect()
            for _ in range(5):
                await asyncio.sleep(0)
            if closed:
                break

    loop.run_until_complete(main())
    assert closed == [loop]


def test_shutdown_asyncgens_error_goes_to_handler(loop, handler_calls):
    async def agen():
        try:
            yield 1
        finally:
            raise ValueError("in aclose")

    async def main():
        g = agen()
        await g.__anext__()
        return g

    g = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert len(handler_calls) == 1
    assert isinstance(handler_calls[0]["exception"], ValueError)
    assert handler_calls[0]["asyncgen"] is g


def test_close_with_pending_handles(loop_factory):
    loop = loop_factory()
    ran = []
    for i in range(10):
        loop.call_soon(ran.append, i)
        loop.call_later(100 + i, ran.append, i)
    loop.call_soon_threadsafe(ran.append, "ts")
    loop.close()
    assert loop.is_closed()
    assert ran == []


def test_close_running_loop_raises(loop):
    async def main():
        with pytest.raises(RuntimeError):
            loop.close()

    loop.run_until_complete(main())


def test_unclosed_loop_warns(loop_factory):
    loop = loop_factory()
    loop.call_later(10, lambda: None)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        loop.__del__()
    assert any(issubclass(x.category, ResourceWarning) and "unclosed event loop" in str(x.message)
               for x in w)
    assert loop.is_closed()


def test_create_task_and_factory(loop):
    async def coro(x):
        return x

    task = loop.create_task(coro(1), name="named")
    assert task.get_name() == "named"
    assert loop.run_until_complete(task) == 1

    made = []

    def factory(lp, c, **kwargs):
        made.append(kwargs)
        return asyncio.Task(c, loop=lp, **kwargs)

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    if sys.version_info >= (3, 11):  # create_task(context=) is 3.11+ in asyncio
        ctx = contextvars.copy_context()
        t2 = loop.create_task(coro(2), context=ctx)
        assert loop.run_until_complete(t2) == 2
        assert made == [{"context": ctx}]
    else:
        assert loop.run_until_complete(loop.create_task(coro(2))) == 2
        assert made == [{}]
    loop.set_task_factory(None)
    with pytest.raises(TypeError):
        loop.set_task_factory(1)


def test_create_future_belongs_to_loop(loop):
    fut = loop.create_future()
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is loop
    fut.cancel()


def test_debug_flags(loop):
    assert loop.get_debug() is False or os.environ.get("PYTHONASYNCIODEBUG") or sys.flags.dev_mode
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


# --------------------------------------------------------------------- whole-process behaviour
# These run a fresh interpreter so that signals and environment variables cannot leak into
# the test process. The same script runs with each loop; asyncio's is the oracle.

def _run_script(loop_name: str, body: str, env=None, timeout=60):
    script = textwrap.dedent("""
        import asyncio, sys
        LOOP = sys.argv[1]
        if LOOP == "uvcffi":
            import uvcffi
            new_loop = uvcffi.new_event_loop
            run = uvcffi.run
        else:
            new_loop = asyncio.new_event_loop
            run = asyncio.run
    """) + CTRL_C_WHEN_POLLING + textwrap.dedent(body)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", script, loop_name], capture_output=True, text=True,
                          timeout=timeout, env=full_env, preexec_fn=default_sigint)


def test_ctrl_c_during_run_until_complete(loop_name):
    proc = _run_script(loop_name, """
        loop = new_loop()
        async def main():
            # the loop is blocked in its poll for 30 s when the signal arrives
            ctrl_c_when_polling()
            await asyncio.sleep(30)
        try:
            loop.run_until_complete(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        for t in asyncio.all_tasks(loop):
            t.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        print("closed", loop.is_closed())
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["KeyboardInterrupt", "closed", "True"]


def test_ctrl_c_during_run(loop_name):
    proc = _run_script(loop_name, """
        import signal, threading
        cleaned = []
        async def main():
            loop = asyncio.get_running_loop()
            main_thread = threading.main_thread().ident  # see test_ctrl_c_during_run_until_complete
            loop.call_later(0.1, lambda: threading.Thread(
                target=signal.pthread_kill, args=(main_thread, signal.SIGINT)).start())
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cleaned.append("cancelled")
                raise
        try:
            run(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt", cleaned)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "KeyboardInterrupt ['cancelled']"


def test_pythonasynciodebug_env(loop_name):
    proc = _run_script(loop_name, """
        loop = new_loop()
        print(loop.get_debug())
        loop.close()
    """, env={"PYTHONASYNCIODEBUG": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_dev_mode_enables_debug(loop_name):
    proc = subprocess.run([sys.executable, "-X", "dev", "-c",
                           "import asyncio, sys\n"
                           "if sys.argv[1] == 'uvcffi':\n"
                           "    import uvcffi; loop = uvcffi.new_event_loop()\n"
                           "else:\n"
                           "    loop = asyncio.new_event_loop()\n"
                           "print(loop.get_debug()); loop.close()", loop_name],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="a CPython attribute-layout limit")
def test_uvcffi_loop_attributes_stay_inline():
    """uvcffi's own invariant, not an asyncio behaviour: after servers, streams, DNS, UDP,
    signals, add_reader, a subprocess and an executor call, a Loop has at most 29 instance
    attributes. CPython keeps attributes inline (its fastest lookups, on every call_soon and
    every turn) only up to 30 shared names, and the 30th already cost: measured on CPython 3.11,
    future_set_await took 27,829 instructions per operation with 30 and 27,343 with 29
    (``python -m bench.instructions future_set_await --loops uvcffi``)."""
    import signal
    import socket

    import uvcffi

    loop = uvcffi.Loop()

    async def main():
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        _, w = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1])
        w.close()
        srv.close()
        await srv.wait_closed()
        await loop.getaddrinfo("127.0.0.1", 80)
        t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        t.close()
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        loop.remove_signal_handler(signal.SIGUSR1)
        a, b = socket.socketpair()
        loop.add_reader(a, lambda: None)
        loop.remove_reader(a)
        a.close()
        b.close()
        p = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        await p.wait()
        await loop.run_in_executor(None, lambda: None)

    try:
        loop.run_until_complete(main())
        assert len(vars(loop)) <= 29, sorted(vars(loop))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
