"""add_signal_handler / remove_signal_handler, on both loops (unix_events.OSMixin)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

TIMEOUT = 10  # a bound, never a synchronization: every wait below ends by an event


def _kill_from_thread(sig):
    t = threading.Thread(target=os.kill, args=(os.getpid(), sig))
    t.start()
    return t


def test_handler_runs_as_loop_callback_with_args(loop):
    got = []

    async def main():
        fut = loop.create_future()

        def on_usr1(*args):
            got.append(args)
            fut.set_result(None)

        loop.add_signal_handler(signal.SIGUSR1, on_usr1, "a", 2)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert got == []  # never called from inside the signal handler
            await asyncio.wait_for(fut, TIMEOUT)
        finally:
            assert loop.remove_signal_handler(signal.SIGUSR1)
        assert got == [("a", 2)]

    loop.run_until_complete(main())


def test_signal_wakes_a_blocked_loop(loop):
    async def main():
        fut = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR2, fut.set_result, "usr2")
        try:
            # the loop sleeps in its poll when another thread sends the signal
            loop.call_soon(_kill_from_thread, signal.SIGUSR2)
            assert await asyncio.wait_for(fut, TIMEOUT) == "usr2"
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)

    loop.run_until_complete(main())


def test_repeated_signals_each_run_the_handler(loop):
    async def main():
        count = []
        done = loop.create_future()

        def on_sig():
            count.append(1)
            if len(count) < 3:
                os.kill(os.getpid(), signal.SIGUSR1)
            else:
                done.set_result(None)

        loop.add_signal_handler(signal.SIGUSR1, on_sig)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(done, TIMEOUT)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        assert len(count) == 3

    loop.run_until_complete(main())


def test_add_replaces_previous_handler(loop):
    async def main():
        fut = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, fut.set_result, "first")
        loop.add_signal_handler(signal.SIGUSR1, fut.set_result, "second")
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert await asyncio.wait_for(fut, TIMEOUT) == "second"
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    loop.run_until_complete(main())


def test_remove_restores_defaults(loop):
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert loop.remove_signal_handler(signal.SIGUSR1) is False

    old = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        assert loop.remove_signal_handler(signal.SIGINT) is True
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, old)


def test_close_removes_handlers(loop_factory):
    lp = loop_factory()
    lp.add_signal_handler(signal.SIGUSR1, lambda: None)
    lp.add_signal_handler(signal.SIGUSR2, lambda: None)
    lp.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


@pytest.mark.parametrize("sig, exc", [
    ("1", TypeError),
    (1.0, TypeError),
    (None, TypeError),
    (0, ValueError),
    (-1, ValueError),
    (100000, ValueError),
    (signal.NSIG, ValueError),
    (signal.SIGKILL, RuntimeError),
    (signal.SIGSTOP, RuntimeError),
])
def test_bad_signals(loop, sig, exc):
    with pytest.raises(exc):
        loop.add_signal_handler(sig, lambda: None)
    if exc is not RuntimeError:
        with pytest.raises(exc):
            loop.remove_signal_handler(sig)
    else:
        assert loop.remove_signal_handler(sig) is False


def test_coroutine_callbacks_rejected(loop):
    async def coro_fn():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.add_signal_handler(signal.SIGUSR1, coro_fn)
    coro = coro_fn()
    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    coro.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_closed_loop_rejects(loop_factory):
    lp = loop_factory()
    lp.close()
    with pytest.raises(RuntimeError):
        lp.add_signal_handler(signal.SIGUSR1, lambda: None)
    with pytest.raises(ValueError):  # the signal is checked first, as asyncio does
        lp.add_signal_handler(0, lambda: None)


def test_not_main_thread_rejects(loop):
    errors = []

    def worker():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(TIMEOUT)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_cancelled_handle_removes_handler(loop):
    # asyncio keeps one Handle per signal; cancelling it removes the handler on delivery.
    async def main():
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        handle = _handlers(loop)[signal.SIGUSR1]
        handle.cancel()
        fut = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR2, fut.set_result, None)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGUSR2)
            await asyncio.wait_for(fut, TIMEOUT)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)
        assert signal.SIGUSR1 not in _handlers(loop)
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL

    loop.run_until_complete(main())


def _handlers(lp):
    return lp._signal_handlers or {}


def test_sigchld_handler(loop):
    async def main():
        fut = loop.create_future()
        loop.add_signal_handler(signal.SIGCHLD, lambda: fut.done() or fut.set_result(None))
        try:
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            await asyncio.wait_for(fut, TIMEOUT)
        finally:
            assert loop.remove_signal_handler(signal.SIGCHLD)

    loop.run_until_complete(main())


def _run_script(loop_name, body):
    script = textwrap.dedent("""
        import asyncio, os, signal, sys, threading
        if sys.argv[1] == "uvcffi":
            import uvcffi
            run = uvcffi.run
        else:
            run = asyncio.run
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script, loop_name], capture_output=True, text=True,
                          timeout=60)


def test_run_with_sigint_handler_then_ctrl_c(loop_name):
    # A SIGINT handler added inside run() gets Ctrl-C instead of the runner; once run()
    # returns, SIGINT is back to KeyboardInterrupt, and a later run() still cancels on Ctrl-C.
    proc = _run_script(loop_name, """
        async def with_handler():
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            loop.add_signal_handler(signal.SIGINT, fut.set_result, "handled")
            loop.call_soon(lambda: threading.Thread(
                target=os.kill, args=(os.getpid(), signal.SIGINT)).start())
            return await fut
        print(run(with_handler()))
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)

        async def plain():
            loop = asyncio.get_running_loop()
            loop.call_soon(lambda: threading.Thread(
                target=os.kill, args=(os.getpid(), signal.SIGINT)).start())
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                print("cancelled")
                raise
        try:
            run(plain())
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["handled", "True", "cancelled", "KeyboardInterrupt"]
