"""``uv_pipe_t``: unix-domain sockets, pipes and character devices as a libuv stream.

``Pipe(loop, fd)``: libuv takes ownership of an open descriptor (``uv_pipe_open``) and closes
it in ``uv_close``. Every caller opens one this way: unix socket transports
(``transports/stream.py``), ``connect_read_pipe``/``connect_write_pipe`` (on a duplicate of
the user's descriptor), a child's stdio (``transports/subprocess.py``: the parent's end of an
``os.pipe()``) and the loop's signal wake-up pipe (``signals.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._binding import check, lib
from .base import UV_EEXIST
from .stream import Stream

if TYPE_CHECKING:
    from ..loop import Loop

__all__ = ["Pipe"]


class Pipe(Stream):
    CTYPE = "uv_pipe_t*"

    def __init__(self, loop: Loop, fd: int) -> None:
        super().__init__(loop)
        self._registered(lib.uv_pipe_init(loop._uv, self._ptr, 0))
        status = lib.uv_pipe_open(self._ptr, fd)
        if status == UV_EEXIST and loop._fds.release(fd):  # a watch left on the number (base.py)
            status = lib.uv_pipe_open(self._ptr, fd)
        if status < 0:
            # libuv did not take the descriptor: the caller still owns it
            self.close()
            check(status)
