"""Entry points: uvcffi.run, Runner, asyncio.Runner with loop_factory, the policy shim."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import warnings

import pytest

import uvcffi


def test_run_returns_result_on_uvcffi_loop():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.001)
        return type(loop)

    assert uvcffi.run(main()) is uvcffi.Loop


def test_run_debug_flag():
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert uvcffi.run(main(), debug=True) is True
    assert uvcffi.run(main(), debug=False) is False


def test_run_cancels_leftover_tasks_and_closes_asyncgens():
    log = []

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            log.append("agen closed")

    async def main():
        asyncio.get_running_loop().create_task(forever())
        g = agen()
        await g.__anext__()
        main.g = g
        await asyncio.sleep(0)
        main.loop = asyncio.get_running_loop()

    uvcffi.run(main())
    assert sorted(log) == ["agen closed", "cancelled"]
    assert main.loop.is_closed()
    assert main.loop._debug_live_handles() == 0


def test_run_propagates_exception():
    async def main():
        raise LookupError("x")

    with pytest.raises(LookupError):
        uvcffi.run(main())


def test_run_rejects_non_coroutine_and_nesting():
    with pytest.raises(ValueError):
        uvcffi.run(lambda: None)

    async def main():
        coro = asyncio.sleep(0)
        try:
            uvcffi.run(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError):
        uvcffi.run(main())


def test_runner_reuses_one_loop_and_context():
    var = contextvars.ContextVar("v", default=0)

    async def bump():
        var.set(var.get() + 1)
        return asyncio.get_running_loop(), var.get()

    with uvcffi.Runner() as runner:
        loop1, v1 = runner.run(bump())
        loop2, v2 = runner.run(bump())
        assert loop1 is loop2 is runner.get_loop()
        assert (v1, v2) == (1, 2)
    assert loop1.is_closed()
    coro = bump()
    with pytest.raises(RuntimeError):
        runner.run(coro)
    coro.close()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is 3.11+")
def test_asyncio_runner_with_loop_factory():
    async def main():
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=uvcffi.new_event_loop) as runner:
        assert runner.run(main()) is uvcffi.Loop


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_with_loop_factory():
    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=uvcffi.new_event_loop) is uvcffi.Loop


def test_policy_and_install():
    old = asyncio.get_event_loop_policy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(uvcffi.EventLoopPolicy())
            loop = asyncio.new_event_loop()
            assert isinstance(loop, uvcffi.Loop)
            loop.close()
            uvcffi.install()
            assert isinstance(asyncio.get_event_loop_policy(), uvcffi.EventLoopPolicy)

            async def main():
                return type(asyncio.get_running_loop())

            assert asyncio.run(main()) is uvcffi.Loop
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(old)


def test_loop_is_an_abstract_event_loop():
    loop = uvcffi.new_event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


def test_runner_with_either_loop_factory(loop_factory, loop_name):
    """uvcffi.Runner/run with any loop factory (here asyncio's and uvcffi's), on every Python.
    A contextvar set in one run() is seen by the next (one context), except on asyncio's loops
    before 3.11: their create_task takes no context=, so each task starts from a copy of it."""
    var = contextvars.ContextVar("var", default="unset")

    async def setter():
        var.set("set")
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    async def getter():
        return var.get()

    with uvcffi.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(setter()) == loop_name
        seen = runner.run(getter())
    shared = loop_name == "uvcffi" or sys.version_info >= (3, 11)
    assert seen == ("set" if shared else "unset")
    assert uvcffi.run(getter(), loop_factory=loop_factory) == "unset"
