"""The GIL rule of the C part (src/uvcffi/_c/gil.h): a lib call keeps the GIL, a blocking loop
turn releases it.

Keeping the GIL around lib calls rests on redefining the two macros cffi's CPython wrappers
release it with: if a cffi release stops using them, ``test_a_lib_call_keeps_the_gil`` fails.
If the blocking wait of a turn held the GIL, no other thread could run while the loop sleeps
(call_soon_threadsafe, executors): ``test_a_blocking_turn_lets_other_threads_run`` fails.
"""

from __future__ import annotations

import platform
import sys
import threading

PYPY = platform.python_implementation() == "PyPy"


def test_a_lib_call_keeps_the_gil():
    from uvcffi._binding import lib

    # 1: the calling thread held the GIL inside the call. PyPy releases its own GIL around
    # every cffi call, and the probe says it cannot tell (-1).
    assert lib.uvcffi_gil_held() == (-1 if PYPY else 1)


def test_a_blocking_turn_lets_other_threads_run(loop):
    """The loop waits for I/O with nothing ready and its only timer seconds away; a thread
    that needs the GIL must get it during that wait, and wakes the loop."""
    go = threading.Lock()
    go.acquire()
    woke = loop.create_future()

    def other() -> None:
        go.acquire()  # waits without the GIL until the loop's callback releases the lock
        loop.call_soon_threadsafe(woke.set_result, "thread")  # Python: needs the GIL

    thread = threading.Thread(target=other, daemon=True)
    interval = sys.getswitchinterval()
    # The main thread never hands the GIL over on its own within the test: the thread runs
    # only if the loop's wait releases it.
    sys.setswitchinterval(60.0)
    try:
        thread.start()
        loop.call_soon(go.release)
        timeout = loop.call_later(10.0, lambda: woke.done() or woke.set_result("timeout"))
        assert loop.run_until_complete(woke) == "thread"
        timeout.cancel()
    finally:
        sys.setswitchinterval(interval)
        thread.join(10.0)
    assert not thread.is_alive()
