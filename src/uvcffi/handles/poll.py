"""``uv_poll_t``: readiness of a file descriptor libuv does not own.

Uses: the loop's signal wake-up socket (``start_drain``: a C callback empties the socket, no
Python involved, so that ``uv_run`` returns and the interpreter runs its signal handlers), and
every readiness watch in Python (``start``: events reach the callback given to ``start``
through ``_callbacks.py``): ``add_reader``/``add_writer`` and the ``sock_*`` waits
(``fds.py``), datagram sockets (``DatagramPoll`` reads IPv4/IPv6 datagrams in C), a write
pipe's hang-up, a child's pidfd.

The callback is a field of the poll (``_callback``), written by ``start`` and ``close`` only:
``_callbacks._uvcffi_on_poll`` calls it with no forwarding frame in between.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .._binding import DGRAM_POLL_CB, DRAIN_POLL_CB, check, lib
from .base import UV_EEXIST, BatchReadHandle, UVHandle

if TYPE_CHECKING:
    from ..loop import Loop

__all__ = ["Poll", "DatagramPoll"]


def _ignore(status: int, events: int) -> None:
    """A ``Poll``'s callback while nothing is started, or once closed: a late event is dropped."""


class Poll(UVHandle):
    CTYPE = "uv_poll_t*"
    _callback = staticmethod(_ignore)  # called as _callback(status, events) on readiness

    def __init__(self, loop: Loop, fd: int, *, claim: bool = False) -> None:
        # claim: a transport's poll takes the number from a watch left on it (base.UV_EEXIST);
        # the add_reader watches' own polls (fds.py) never do
        super().__init__(loop)
        self._fd = fd
        status = lib.uv_poll_init(loop._uv, self._ptr, fd)
        if claim and status == UV_EEXIST and loop._fds.release(fd):  # a watch left on the number
            status = lib.uv_poll_init(loop._uv, self._ptr, fd)
        self._registered(status)

    def start_drain(self) -> None:
        check(lib.uv_poll_start(self._ptr, lib.UV_READABLE, DRAIN_POLL_CB))

    _C_CALLBACK = lib._uvcffi_on_poll

    def start(self, events: int, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(status, events)`` on readiness; status < 0 is a libuv error.
        ``OSError`` if libuv refuses."""
        self._callback = callback  # type: ignore[assignment]  # any (status, events) callable
        check(lib.uv_poll_start(self._ptr, events, self._C_CALLBACK))

    def stop(self) -> None:
        if not self._closing:
            check(lib.uv_poll_stop(self._ptr))

    def close(self) -> None:
        self._callback = _ignore
        super().close()


class DatagramPoll(BatchReadHandle, Poll):
    """The poll of an IPv4/IPv6 datagram socket: once a transport registers it in the loop's
    read batch, C reads the datagrams itself when the socket is readable (_c/reads.c,
    ``uvcffi_dgram_poll_cb``), up to ``max_size`` bytes each; every other event reaches
    the callback given to ``start``, as with ``Poll``."""

    _C_CALLBACK = DGRAM_POLL_CB

    def __init__(self, loop: Loop, fd: int, max_size: int) -> None:
        super().__init__(loop, fd, claim=True)
        self._box.dgram_max = max_size

    def set_max_size(self, max_size: int) -> None:
        """The most bytes C reads of one datagram from now on."""
        self._box.dgram_max = max_size

