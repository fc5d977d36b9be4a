"""``uv_tcp_t``: a TCP socket as a libuv stream.

uvcffi creates, binds, connects and accepts sockets with Python's ``socket`` module (that is
what gives ``create_connection``/``create_server`` asyncio's exact options and errors, and
``Server.sockets`` real sockets), then hands the connected descriptor to libuv with
``uv_tcp_open``. From then on libuv owns the descriptor: ``uv_close`` closes it, so the
transport detaches its ``socket.socket`` object at the same moment (never two closes of one
descriptor number).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._binding import check, lib
from .base import UV_EEXIST
from .stream import Stream

if TYPE_CHECKING:
    from ..loop import Loop

__all__ = ["TCP"]


class TCP(Stream):
    CTYPE = "uv_tcp_t*"

    def __init__(self, loop: Loop, fd: int) -> None:
        super().__init__(loop)
        self._registered(lib.uv_tcp_init(loop._uv, self._ptr))
        status = lib.uv_tcp_open(self._ptr, fd)
        if status == UV_EEXIST and loop._fds.release(fd):  # a watch left on the number (base.py)
            status = lib.uv_tcp_open(self._ptr, fd)
        if status < 0:
            # libuv did not take the descriptor: the caller still owns it. Close the handle
            # without letting libuv close fd (uv_tcp_open failed, so it is not attached).
            self.close()
            check(status)

    def nodelay(self, enable: bool) -> None:
        check(lib.uv_tcp_nodelay(self._ptr, 1 if enable else 0))
