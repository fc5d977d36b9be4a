"""Every example of spec/coroutines-and-tasks.rst, run with uvcffi's tasks and asyncio's.

Each test is the spec's snippet with ``asyncio.X`` replaced by ``impl.X`` and one "second" scaled
to ``S`` seconds; it checks the printed output (captured) and, where the spec states a duration,
the elapsed loop time with a tolerance.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings

import pytest
from test_futures import impl, uv_impl  # noqa: F401  (fixtures)

from uvcffi import tasks as ut

S = 0.05  # one spec "second" (the bounds below allow 0.9 of it for a loaded machine)


def lines(capsys):
    return capsys.readouterr().out.splitlines()


class Clock:
    def __init__(self, loop):
        self.loop = loop
        self.t0 = loop.time()

    def units(self):
        return (self.loop.time() - self.t0) / S


def assert_units(clock, expected):
    got = clock.units()
    assert expected - 0.1 <= got <= expected + 0.9, f"took {got:.2f} units, expected {expected}"


def test_hello_world(impl, loop, capsys):
    async def main():
        print("hello")
        await impl.sleep(1 * S)
        print("world")

    c = Clock(loop)
    loop.run_until_complete(main())
    assert_units(c, 1)
    assert lines(capsys) == ["hello", "world"]


def test_calling_coroutine_does_not_schedule_it(impl, loop, capsys):
    async def main():
        print("ran")

    coro = main()
    assert repr(coro).startswith(
        "<coroutine object test_calling_coroutine_does_not_schedule_it.<locals>.main at 0x")
    loop.run_until_complete(impl.sleep(0))
    assert lines(capsys) == []
    coro.close()


async def say_after(impl, delay, what):
    await impl.sleep(delay * S)
    print(what)


def test_awaiting_coroutines_sequentially(impl, loop, capsys):
    async def main():
        print("started at")
        await say_after(impl, 1, "hello")
        await say_after(impl, 2, "world")
        print("finished at")

    c = Clock(loop)
    loop.run_until_complete(main())
    assert_units(c, 3)
    assert lines(capsys) == ["started at", "hello", "world", "finished at"]


def test_create_task_runs_concurrently(impl, loop, capsys):
    async def main():
        task1 = impl.create_task(say_after(impl, 1, "hello"))
        task2 = impl.create_task(say_after(impl, 2, "world"))
        print("started at")
        await task1
        await task2
        print("finished at")

    c = Clock(loop)
    loop.run_until_complete(main())
    assert_units(c, 2)  # "1 second faster than before"
    assert lines(capsys) == ["started at", "hello", "world", "finished at"]


def test_awaitable_coroutines(impl, loop, capsys):
    async def nested():
        return 42

    async def main():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "never awaited": the point of the example
            nested()
        print(await nested())

    loop.run_until_complete(main())
    assert lines(capsys) == ["42"]


def test_awaitable_tasks(impl, loop, capsys):
    async def nested():
        return 42

    async def main():
        task = impl.create_task(nested())
        print(await task)

    loop.run_until_complete(main())
    assert lines(capsys) == ["42"]


def test_awaitable_futures(impl, loop, capsys):
    def function_that_returns_a_future_object():
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "future")
        return fut

    async def some_python_coroutine():
        return "coroutine"

    async def main():
        print(await function_that_returns_a_future_object())
        print(await impl.gather(function_that_returns_a_future_object(), some_python_coroutine()))

    loop.run_until_complete(main())
    assert lines(capsys) == ["future", "['future', 'coroutine']"]


def test_run_example(impl, loop, capsys):
    async def main():
        await impl.sleep(1 * S)
        print("hello")

    c = Clock(loop)
    loop.run_until_complete(main())
    assert_units(c, 1)
    assert lines(capsys) == ["hello"]


def test_create_task_and_ensure_future(impl, loop, capsys):
    async def coro():
        print("coro")

    async def main():
        task = impl.create_task(coro())
        await task
        task = impl.ensure_future(coro())
        assert isinstance(task, impl.Task)
        await task

    loop.run_until_complete(main())
    assert lines(capsys) == ["coro", "coro"]


def test_sleep_display_date(impl, loop, capsys):
    async def display_date():
        end_time = loop.time() + 5.0 * S
        while True:
            print(f"{loop.time():.3f}")
            if (loop.time() + 1.0 * S) >= end_time:
                break
            await impl.sleep(1 * S)

    c = Clock(loop)
    loop.run_until_complete(display_date())
    assert_units(c, 4)
    stamps = [float(x) for x in lines(capsys)]
    assert len(stamps) == 5
    assert all(b - a >= 0.9 * S for a, b in zip(stamps, stamps[1:]))


def test_gather_factorial(impl, loop, capsys):
    async def factorial(name, number):
        f = 1
        for i in range(2, number + 1):
            print(f"Task {name}: Compute factorial({i})...")
            await impl.sleep(1 * S)
            f *= i
        print(f"Task {name}: factorial({number}) = {f}")

    async def main():
        await impl.gather(factorial("A", 2), factorial("B", 3), factorial("C", 4))

    c = Clock(loop)
    loop.run_until_complete(main())
    assert_units(c, 3)
    assert lines(capsys) == [
        "Task A: Compute factorial(2)...",
        "Task B: Compute factorial(2)...",
        "Task C: Compute factorial(2)...",
        "Task A: factorial(2) = 2",
        "Task B: Compute factorial(3)...",
        "Task C: Compute factorial(3)...",
        "Task B: factorial(3) = 6",
        "Task C: Compute factorial(4)...",
        "Task C: factorial(4) = 24",
    ]


def test_shield_with_try_except(impl, loop, capsys):
    async def something():
        await impl.sleep(1 * S)
        return "something"

    async def main():
        inner = impl.create_task(something())

        async def caller():
            try:
                res = await impl.shield(inner)
            except asyncio.CancelledError:
                res = None
            print(res)

        t = impl.create_task(caller())
        await impl.sleep(0)
        t.cancel()
        await t
        print(await inner)

    loop.run_until_complete(main())
    assert lines(capsys) == ["None", "something"]


def test_wait_for_eternity(impl, loop, capsys):
    async def eternity():
        await impl.sleep(3600)
        print("yay!")

    async def main():
        try:
            await impl.wait_for(eternity(), timeout=1.0 * S)
        except asyncio.TimeoutError:
            print("timeout!")

    c = Clock(loop)
    loop.run_until_complete(main())
    assert_units(c, 1)
    assert lines(capsys) == ["timeout!"]


def test_wait_usage(impl, loop, capsys):
    async def main():
        aws = {impl.create_task(impl.sleep(0, i)) for i in range(3)}
        done, pending = await impl.wait(aws)
        print(sorted(t.result() for t in done), pending)

    loop.run_until_complete(main())
    assert lines(capsys) == ["[0, 1, 2] set()"]


def test_wait_coroutine_note(uv_impl, loop, capsys):
    async def foo():
        return 42

    async def broken():
        coro = foo()
        with pytest.warns(DeprecationWarning):
            done, pending = await uv_impl.wait({coro})
        if coro in done:  # pragma: no cover - the spec: "This branch will never be run!"
            print("never")

    async def fixed():
        task = uv_impl.create_task(foo())
        done, pending = await uv_impl.wait({task})
        if task in done:
            print("Everything will work as expected now.")

    loop.run_until_complete(broken())
    loop.run_until_complete(fixed())
    assert lines(capsys) == ["Everything will work as expected now."]


def test_as_completed_example(impl, loop, capsys):
    async def after(n):
        await impl.sleep(n * S)
        return n

    async def main():
        aws = [after(3), after(1), after(2)]
        for f in impl.as_completed(aws):
            earliest_result = await f
            print(earliest_result)

    loop.run_until_complete(main())
    assert lines(capsys) == ["1", "2", "3"]


def _threadsafe_example(impl, loop, coro, timeout):
    """The spec's run_coroutine_threadsafe snippet, run in a thread while ``loop`` runs."""
    out = []
    done = loop.create_future()

    def thread():
        future = impl.run_coroutine_threadsafe(coro, loop)
        try:
            result = future.result(timeout)
        except (asyncio.TimeoutError, TimeoutError, concurrent.futures.TimeoutError):
            # concurrent.futures.TimeoutError: its own class before 3.11, the builtin since
            out.append("The coroutine took too long, cancelling the task...")
            future.cancel()
        except Exception as exc:
            out.append(f"The coroutine raised an exception: {exc!r}")
        else:
            out.append(f"The coroutine returned: {result!r}")
        loop.call_soon_threadsafe(done.set_result, None)

    th = threading.Thread(target=thread)
    th.start()
    loop.run_until_complete(done)
    th.join()
    return out


def test_run_coroutine_threadsafe_example(impl, loop):
    coro = impl.sleep(1 * S, result=3)
    assert _threadsafe_example(impl, loop, coro, 10) == ["The coroutine returned: 3"]

    async def boom():
        raise ValueError("boom")

    assert _threadsafe_example(impl, loop, boom(), 10) == [
        "The coroutine raised an exception: ValueError('boom')"]


def test_run_coroutine_threadsafe_timeout_cancels(impl, loop):
    started = []

    async def slow():
        started.append(asyncio.current_task())
        await impl.sleep(3600)

    out = _threadsafe_example(impl, loop, slow(), 2 * S)
    assert out == ["The coroutine took too long, cancelling the task..."]
    task = started[0]
    if not task.done():
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    assert task.cancelled()


def test_task_cancel_example(impl, loop, capsys):
    async def cancel_me():
        print("cancel_me(): before sleep")
        try:
            await impl.sleep(3600)
        except asyncio.CancelledError:
            print("cancel_me(): cancel sleep")
            raise
        finally:
            print("cancel_me(): after sleep")

    async def main():
        task = impl.create_task(cancel_me())
        await impl.sleep(1 * S)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            print("main(): cancel_me is cancelled now")

    loop.run_until_complete(main())
    assert lines(capsys) == [
        "cancel_me(): before sleep",
        "cancel_me(): cancel sleep",
        "cancel_me(): after sleep",
        "main(): cancel_me is cancelled now",
    ]


def test_generator_based_coroutine(uv_impl, loop, capsys):
    with pytest.warns(DeprecationWarning):

        @ut.coroutine
        def old_style_coroutine():
            yield from uv_impl.sleep(1 * S)
            print("old style")

    async def main():
        await old_style_coroutine()

    c = Clock(loop)
    loop.run_until_complete(main())
    assert_units(c, 1)
    assert lines(capsys) == ["old style"]
