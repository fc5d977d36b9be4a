"""``uv_signal_t``: a libuv signal watcher, used by the loop for ``SIGCHLD`` only.

Why only ``SIGCHLD``: a process has one disposition per signal, and both libuv and the
interpreter want to own it. libuv's ``uv_signal_start`` installs its own ``sigaction`` without
telling the interpreter, so ``signal.getsignal`` would lie and a later ``signal.signal`` (as
``uvcffi.run`` does for ``SIGINT``) would silently disconnect libuv's watcher. So the loop
routes every signal through Python's ``signal`` module (see ``signals.py``), except ``SIGCHLD``:
libuv already owns that one as soon as a process is spawned (``uv_spawn`` reaps children from
a ``SIGCHLD`` watcher), and Python taking it over would leave every child a zombie. libuv
multiplexes any number of watchers per signal, so a user's ``SIGCHLD`` handler and libuv's
child reaper coexist here.

The handle is unreferenced: like asyncio's signal handlers, it never keeps a loop alive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from .._binding import check, lib
from .base import UVHandle

if TYPE_CHECKING:
    from ..loop import Loop

__all__ = ["Signal"]


class Signal(UVHandle):
    """Calls ``callback(signum)`` from the loop's turn each time ``signum`` arrives."""

    CTYPE = "uv_signal_t*"
    _callback: Optional[Callable[[int], object]] = None

    def __init__(self, loop: Loop, signum: int, callback: Callable[[int], object]) -> None:
        super().__init__(loop)
        self._callback = callback
        self._registered(lib.uv_signal_init(loop._uv, self._ptr))
        try:
            check(lib.uv_signal_start(self._ptr, lib._uvcffi_on_signal, signum))
        except BaseException:
            self.close()
            raise
        lib.uv_unref(self._hptr)

    def _on_signal(self, signum: int) -> None:
        cb = self._callback
        if cb is not None:
            cb(signum)

    def close(self) -> None:
        self._callback = None
        super().close()
