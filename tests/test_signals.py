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
from _support import CTRL_C_WHEN_POLLING, default_sigint

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
    """) + CTRL_C_WHEN_POLLING + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script, loop_name], capture_output=True, text=True,
                          timeout=60, preexec_fn=default_sigint)


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


# ------------------------------------------------------------------ the wake-up fd is the source
# asyncio's unix loop learns which signals arrived from the bytes Python's C-level handler
# writes to the wake-up fd, not from its Python-level handler (a no-op): whoever replaces that
# handler does not hide the loop's. uvcffi did dispatch from the Python-level handler, so a
# library's signal.signal on top silenced the loop's handler.

def _capture_signals(sigs, captured):
    """uvicorn's ``Server.capture_signals``: its own handler on top of whatever is there; the
    originals back afterwards, then each captured signal raised again."""
    def handle_exit(sig, frame):
        captured.append(sig)

    originals = {sig: signal.signal(sig, handle_exit) for sig in sigs}

    def restore():
        for sig, handler in originals.items():
            signal.signal(sig, handler)
        for sig in reversed(captured):
            signal.raise_signal(sig)

    return restore


def test_library_handler_on_top_does_not_hide_the_loops(loop):
    async def main():
        got = []
        first = loop.create_future()
        second = loop.create_future()

        def on_usr1():
            got.append("loop")
            (second if first.done() else first).set_result(None)

        loop.add_signal_handler(signal.SIGUSR1, on_usr1)
        captured = []
        restore = _capture_signals([signal.SIGUSR1], captured)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(first, TIMEOUT)  # uvcffi: never, the library's handler won
            assert captured == [signal.SIGUSR1]
        finally:
            restore()  # raises the captured SIGUSR1 again: now the loop's own handler is back
        await asyncio.wait_for(second, TIMEOUT)
        assert got == ["loop", "loop"]
        assert loop.remove_signal_handler(signal.SIGUSR1)

    loop.run_until_complete(main())


def _marker(loop, sig=signal.SIGUSR2):
    """A future that a handler of ``sig`` completes: signals are read in the order they came,
    so once it is done, every signal sent before ``sig`` has been seen."""
    fut = loop.create_future()
    loop.add_signal_handler(sig, lambda: fut.done() or fut.set_result(None))
    return fut


@pytest.mark.parametrize("replacement, sig", [
    (signal.SIG_IGN, signal.SIGUSR1),
    (signal.SIG_DFL, signal.SIGWINCH),  # its default action is to ignore it
])
def test_handler_replaced_by_ignore_or_default(loop, replacement, sig):
    # the kernel drops an ignored signal: no byte, so the loop's handler does not run
    async def main():
        got = []
        loop.add_signal_handler(sig, got.append, "loop")
        marker = _marker(loop)
        loops_handler = signal.signal(sig, replacement)
        try:
            os.kill(os.getpid(), sig)
            os.kill(os.getpid(), signal.SIGUSR2)
            await asyncio.wait_for(marker, TIMEOUT)
            assert got == []
        finally:
            signal.signal(sig, loops_handler)
        again = _marker(loop)
        os.kill(os.getpid(), sig)
        os.kill(os.getpid(), signal.SIGUSR2)
        await asyncio.wait_for(again, TIMEOUT)
        assert got == ["loop"]
        assert loop.remove_signal_handler(sig)
        assert loop.remove_signal_handler(signal.SIGUSR2)

    loop.run_until_complete(main())


def test_several_signals_in_one_turn_run_in_order(loop):
    async def main():
        got = []
        done = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        loop.add_signal_handler(signal.SIGWINCH, got.append, "winch")
        loop.add_signal_handler(signal.SIGUSR2, lambda: (got.append("usr2"), done.set_result(None)))

        def burst():  # one callback: every byte waits in the socket before the loop reads
            for sig in (signal.SIGUSR1, signal.SIGWINCH, signal.SIGUSR1, signal.SIGUSR2):
                os.kill(os.getpid(), sig)

        loop.call_soon(burst)
        await asyncio.wait_for(done, TIMEOUT)
        assert got == ["usr1", "winch", "usr1", "usr2"]
        for sig in (signal.SIGUSR1, signal.SIGWINCH, signal.SIGUSR2):
            assert loop.remove_signal_handler(sig)

    loop.run_until_complete(main())


def test_signal_racing_remove_is_dropped(loop):
    # the number is already in the socket when the handler goes: nothing runs
    async def main():
        got = []
        loop.add_signal_handler(signal.SIGWINCH, got.append, "winch")
        marker = _marker(loop)
        os.kill(os.getpid(), signal.SIGWINCH)
        assert loop.remove_signal_handler(signal.SIGWINCH)
        assert signal.getsignal(signal.SIGWINCH) == signal.SIG_DFL
        os.kill(os.getpid(), signal.SIGUSR2)
        await asyncio.wait_for(marker, TIMEOUT)
        assert got == []
        assert loop.remove_signal_handler(signal.SIGUSR2)

    loop.run_until_complete(main())


def test_signal_while_stopped_runs_at_next_run(loop):
    got = []
    loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # no run in progress
        assert got == []

        async def wait_for_it():
            while not got:
                await asyncio.sleep(0)  # bounded by the test's pytest timeout

        loop.run_until_complete(asyncio.wait_for(wait_for_it(), TIMEOUT))
        assert got == ["usr1"]
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


def test_handler_added_in_a_run_hears_signals_between_runs(loop):
    got = []

    async def add():
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")

    loop.run_until_complete(add())  # the run ends: the handler must keep the wake-up fd
    os.kill(os.getpid(), signal.SIGUSR1)

    async def wait_for_it():
        while not got:
            await asyncio.sleep(0)

    try:
        loop.run_until_complete(asyncio.wait_for(wait_for_it(), TIMEOUT))
        assert got == ["usr1"]
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1)


def test_handlers_removed_during_a_run_release_the_wakeup_fd(loop):
    # after the last handler goes, the wake-up fd is no longer the loop's (asyncio sets -1)
    async def main():
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        assert loop.remove_signal_handler(signal.SIGUSR1)

    loop.run_until_complete(main())
    assert signal.set_wakeup_fd(-1) == -1
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert loop.remove_signal_handler(signal.SIGUSR1)
    assert signal.set_wakeup_fd(-1) == -1


def test_loop_running_in_another_thread_gets_signals(loop):
    # handlers are added in the main thread; the loop runs elsewhere and still hears them
    got = []
    fut = loop.create_future()

    def on_usr1():
        got.append(threading.get_ident())
        fut.set_result(None)

    loop.add_signal_handler(signal.SIGUSR1, on_usr1)
    started = threading.Event()
    errors = []

    def run():
        async def main():
            started.set()
            await asyncio.wait_for(fut, TIMEOUT)

        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert started.wait(TIMEOUT)
        os.kill(os.getpid(), signal.SIGUSR1)  # the main thread takes it; the loop reads the byte
    finally:
        t.join(TIMEOUT)
    assert not t.is_alive()
    assert errors == []
    assert got == [t.ident]
    assert loop.remove_signal_handler(signal.SIGUSR1)


def test_ctrl_c_while_the_loop_has_other_signal_handlers(loop_name):
    # with a handler of the loop installed, Ctrl-C (the default SIGINT handler) still raises
    # KeyboardInterrupt promptly from a loop sleeping in its poll, and the handler still works
    proc = _run_script(loop_name, """
        loop = asyncio.new_event_loop() if sys.argv[1] == "asyncio" else uvcffi.new_event_loop()
        got = []
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        async def main():
            ctrl_c_when_polling()
            await asyncio.sleep(30)
        task = loop.create_task(main())
        try:
            loop.run_until_complete(task)
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        task.cancel()
        async def usr1():
            os.kill(os.getpid(), signal.SIGUSR1)
            while not got:
                await asyncio.sleep(0)
            return got
        print(loop.run_until_complete(asyncio.wait_for(usr1(), 10)))
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["KeyboardInterrupt", "['usr1']"]
