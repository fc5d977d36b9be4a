"""Waking the loop from other threads (``call_soon_threadsafe``), on asyncio's loop and uvcffi's."""

from __future__ import annotations

import threading

import pytest


def test_a_blocked_loop_is_woken_every_time(loop):
    # ping-pong: each round the loop blocks in its poll until the thread's call wakes it
    rounds = 300
    got = []
    turn = threading.Event()

    def pong(i):
        got.append(i)
        turn.set()
        if i == rounds - 1:
            loop.stop()

    def thread():
        for i in range(rounds):
            loop.call_soon_threadsafe(pong, i)
            assert turn.wait(30), f"round {i}: the loop was not woken"
            turn.clear()

    t = threading.Thread(target=thread)
    loop.call_soon(t.start)
    loop.run_forever()
    t.join(30)
    assert got == list(range(rounds))


def test_uvcffi_sends_one_wakeup_per_blocking_poll(loop):
    if not type(loop).__module__.startswith("uvcffi"):
        pytest.skip("counts uvcffi's uv_async sends")
    sends = []
    real_send = loop._async.send

    def send():
        sends.append(1)
        real_send()

    loop._async.send = send
    got = []
    for i in range(5):  # the loop may block: the first call wakes it, the others need not
        loop.call_soon_threadsafe(got.append, i)
    assert len(sends) == 1
    loop.call_soon(loop.stop)
    loop.run_forever()
    # between runs the loop is not polling: no send; the next run's first turn sees the call
    loop.call_soon_threadsafe(got.append, 5)
    assert len(sends) == 1
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == list(range(6))
