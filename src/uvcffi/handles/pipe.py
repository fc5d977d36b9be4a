"""``uv_pipe_t``: unix-domain sockets, pipes and character devices as a libuv stream.

Two ways in:

* ``Pipe(loop, fd=fd)``: libuv takes ownership of an open descriptor (``uv_pipe_open``) and
  closes it in ``uv_close``.
* ``Pipe(loop)``: an initialized but unopened handle, for ``uv_spawn``'s ``UV_CREATE_PIPE``
  stdio containers (pass ``pipe._ptr`` cast to ``uv_stream_t*``); after the spawn the handle
  is open and ``transports.stream.ReadPipeTransport.from_handle`` /
  ``WritePipeTransport.from_handle`` wrap it.
"""

from __future__ import annotations

from typing import Optional

from .._binding import check, lib
from .stream import Stream

__all__ = ["Pipe"]


class Pipe(Stream):
    CTYPE = "uv_pipe_t*"

    def __init__(self, loop, fd: Optional[int] = None, ipc: bool = False) -> None:
        super().__init__(loop)
        self._registered(lib.uv_pipe_init(loop._uv, self._ptr, 1 if ipc else 0))
        if fd is not None:
            status = lib.uv_pipe_open(self._ptr, fd)
            if status < 0:
                self.close()
                check(status)
