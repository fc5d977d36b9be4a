"""``uv_async_t``: the thread-safe wake-up of a loop.

``call_soon_threadsafe`` appends to the loop's ready deque (thread-safe in CPython and PyPy)
and then calls ``send()``, which makes a blocked ``uv_run`` return. libuv coalesces sends, and
the callback is a C no-op: the loop drains its ready queue after ``uv_run`` returns anyway.

``send()`` may run on any thread while the loop thread closes the handle. The GIL is held
during every cffi call of this extension (``_c/gil.h``), but the interpreter may hand it to the loop thread
between ``send()``'s test of ``_closing`` and its ``uv_async_send``, and a send to a closed
handle writes to the loop's wake-up descriptor after libuv let it go. So sending and closing
take one lock: a send after close is a no-op (the caller has already been told the loop is
closed, or is racing with close).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .._binding import NOOP_ASYNC_CB, lib
from .base import UVHandle

if TYPE_CHECKING:
    from ..loop import Loop

__all__ = ["Async"]


class Async(UVHandle):
    CTYPE = "uv_async_t*"

    def __init__(self, loop: Loop) -> None:
        super().__init__(loop)
        self._lock = threading.Lock()
        # Referenced: it keeps uv_run(UV_RUN_ONCE) blocking while nothing else is active.
        self._registered(lib.uv_async_init(loop._uv, self._ptr, NOOP_ASYNC_CB))

    def send(self) -> None:
        with self._lock:
            if not self._closing:
                lib.uv_async_send(self._ptr)

    def close(self) -> None:
        with self._lock:
            super().close()
