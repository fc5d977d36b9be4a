"""anyio on the asyncio backend, with uvcffi's loop given as the backend's ``loop_factory``.

``anyio.run(..., backend_options={"loop_factory": factory})`` runs each body on asyncio's loop and
on uvcffi's (the ``loop_factory`` fixture). anyio cancels a task only after checking that its
waiter is an ``asyncio.Future`` that is not done yet, so a value handed to a receiver that is
cancelled in the same turn must still arrive: the memory-stream race below counts every item.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading

import pytest

anyio = pytest.importorskip("anyio")
from anyio import to_process, to_thread  # noqa: E402

import uvcffi  # noqa: E402


def arun(loop_factory, fn, *args):
    return anyio.run(fn, *args, backend="asyncio", backend_options={"loop_factory": loop_factory})


def test_runs_on_the_factory_loop(loop_factory, loop_name):
    async def main():
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert arun(loop_factory, main) == loop_name


def test_task_group_failure_cancels_siblings(loop_factory):
    async def main():
        log = []

        async def sibling(i):
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                log.append(f"cancelled {i}")
                raise

        async def failing():
            await anyio.sleep(0)
            raise ValueError("boom")

        try:
            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(sibling, i)
                tg.start_soon(failing)
        except BaseException as exc:  # ExceptionGroup (exceptiongroup's backport before 3.11)
            return sorted(log), [type(e).__name__ for e in exc.exceptions]

    assert arun(loop_factory, main) == (["cancelled 0", "cancelled 1", "cancelled 2"], ["ValueError"])


def test_cancel_scopes(loop_factory):
    async def main():
        with anyio.move_on_after(0.05) as scope:
            await anyio.sleep(30)
        moved = scope.cancelled_caught
        try:
            with anyio.fail_after(0.05):
                await anyio.sleep(30)
        except TimeoutError:
            failed = True
        shielded = []
        with anyio.CancelScope() as outer:
            outer.cancel()
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)  # the shield keeps the outer cancellation out
                shielded.append("ran")
            await anyio.sleep(30)
        with anyio.move_on_after(0.05):
            await anyio.sleep_forever()
        with anyio.move_on_after(0.05):
            await asyncio.sleep(math.inf)
        return moved, failed, shielded, outer.cancelled_caught

    assert arun(loop_factory, main) == (True, True, ["ran"], True)


def test_memory_stream_value_survives_receiver_cancellation(loop_factory):
    async def main():
        send, recv = anyio.create_memory_object_stream(0)
        received = []
        leftover = []
        async with send, recv:
            for i in range(200):
                scope = anyio.CancelScope()

                async def receiver(scope=scope):
                    with scope:
                        received.append(await recv.receive())

                async with anyio.create_task_group() as tg:
                    tg.start_soon(receiver)
                    for _ in range(1000):  # bounded: until the receiver waits in receive()
                        if recv.statistics().tasks_waiting_receive:
                            break
                        await anyio.lowlevel.checkpoint()
                    send.send_nowait(i)  # handed to the waiting receiver...
                    scope.cancel()  # ...which is cancelled in the same turn
                try:
                    leftover.append(recv.receive_nowait())
                except anyio.WouldBlock:
                    pass
        return sorted(received + leftover)

    assert arun(loop_factory, main) == list(range(200))


def test_to_thread(loop_factory):
    async def main():
        main_thread = threading.get_ident()
        other = await to_thread.run_sync(threading.get_ident)
        results = await asyncio.gather(*(to_thread.run_sync(pow, i, 2) for i in range(20)))
        gate = threading.Event()
        with anyio.move_on_after(0.05) as scope:
            await to_thread.run_sync(gate.wait, 10, abandon_on_cancel=True)
        gate.set()
        back = await to_thread.run_sync(lambda: anyio.from_thread.run_sync(threading.get_ident))
        return other != main_thread, results, scope.cancelled_caught, back == main_thread

    assert arun(loop_factory, main) == (True, [i * i for i in range(20)], True, True)


def test_to_process(loop_factory):
    async def main():
        return await to_process.run_sync(os.getpid) != os.getpid()

    assert arun(loop_factory, main) is True


def test_loop_factory_is_a_plain_callable():
    """anyio calls the factory with no arguments: uvcffi.new_event_loop itself works."""

    async def main():
        return type(asyncio.get_running_loop())

    assert anyio.run(main, backend="asyncio", backend_options={"loop_factory": uvcffi.new_event_loop}) \
        is uvcffi.Loop
