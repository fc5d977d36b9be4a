"""The loop's one libuv timer.

uvcffi keeps every ``call_later``/``call_at`` in a Python heap; libuv sees a single
``uv_timer_t`` per loop, armed for the earliest deadline by ``uvcffi_run_turn`` (C) in the
same crossing as ``uv_run``. Its callback is a C no-op: firing only has to make ``uv_run``
return, after which the loop pops the due entries of its heap. See ``loop.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

from .._binding import lib
from .base import UVHandle

if TYPE_CHECKING:
    from ..loop import Loop, TimerHandle

__all__ = ["LoopTimer"]


class LoopTimer(UVHandle):
    CTYPE = "uv_timer_t*"

    def __init__(self, loop: Loop) -> None:
        super().__init__(loop)
        # The loop's sorted batch of timers, latest first, used instead of its heap while that
        # is empty (loop.py, "Timers"). Kept here: the loop's own attributes are at their limit.
        self.run: list[Tuple[float, int, TimerHandle]] = []
        self._registered(lib.uv_timer_init(loop._uv, self._ptr))
