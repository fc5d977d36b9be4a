"""``uv_stream_t``: the libuv half of every byte-stream transport (TCP, unix sockets, pipes).

One owner. A ``Stream`` alone holds the handle's pointer and alone calls libuv on it: start and
stop reading, try a write, queue a vectored write, shut the write side down, close. Its state
(``_reading``, the requests in flight, what C reads next to the handle) is written by its own
methods only. Protocol logic (flow control, EOF, closing order) lives in the transport
(``transports/stream.py``), which calls these methods; ``tcp.py`` and ``pipe.py`` only know how
to open their handle.

The owner's side. ``attach(owner)`` names the one object the handle reports to, through two
methods every owner has: ``owner._on_write_done(status)`` when a ``write`` completes, and
``owner._detach_fd()`` when the handle closes (libuv closes the descriptor then, maybe from
``Loop.close()``: the owner forgets it at that moment). The reference is dropped when libuv's
close callback has run, which breaks the cycle handle <-> owner.

Routing. Reads into the loop's arena do not come through this object: C records them under
the stream's ``key`` and the loop's ``ReadEngine`` (read_engine.py) hands them to the reader
registered under it (``register_reads``, ``handles/base.py``). Write and shutdown completions
do: ``_callbacks.py`` calls ``_on_write``/``_on_shutdown`` on the object behind
``req->data``, which is this handle.

The write fast path. A transport's ``write()`` with nothing queued is a few thousand
instructions in all, and calling ``try_write`` (a Python frame) costs some 500 more on
CPython 3.11 (a ``functools.partial`` over the C function costs more still: cffi's functions
have no vectorcall). So ``_Writer.write`` in ``transports/stream.py`` keeps an inline copy of
``try_write``'s body, the one place outside this class that passes the pointer to C, and only
while its ``_wready`` says the handle is open.

Request lifetime. ``uv_write_t``/``uv_shutdown_t`` memory and every buffer a write points at
must outlive the request: ``write()`` keeps ``(req, uv_buf_t[], buffers)`` in
``self._write_req`` until libuv's write callback, and at most one write request is in flight
(the transport coalesces what arrives meanwhile into the next one). ``req->data`` is this
handle's own ``ffi.new_handle``, so a request costs no extra handle object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from .._binding import STREAM_ALLOC_CB, STREAM_READ_CB, CData, check, ffi, lib
from .base import BatchReadHandle

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from ..loop import Loop

__all__ = ["Stream"]

_new = ffi.new
_from_buffer = ffi.from_buffer
_try_write = lib.uvcffi_try_write
_UV_EBADF = lib.UV_EBADF


class Stream(BatchReadHandle):
    """A ``uv_stream_t`` owned by Python; subclasses open it (``uv_tcp_open``, ``uv_pipe_open``)."""

    CTYPE = "uv_stream_t*"

    _sptr: CData = None  # the handle as uv_stream_t*
    _owner: Any = None  # what attach() named: told of write completions and of the close
    # (uv_write_t*, uv_buf_t[], [buffers]) while a write is in flight
    _write_req: Optional[Tuple[CData, CData, List[CData], Sequence[ReadableBuffer]]] = None
    _shutdown_req: CData = None  # uv_shutdown_t* while a shutdown is in flight
    _reading = False  # uv_read_start is in effect (libuv stops by itself at EOF: read_ended)
    _buffered = False  # reading for a BufferedProtocol: C's self_read stays 1 (start_reading)

    def __init__(self, loop: Loop) -> None:
        super().__init__(loop)
        self._sptr = ffi.cast("uv_stream_t*", self._ptr)

    def attach(self, owner: Any) -> None:
        """Report write completions and the close to ``owner`` (see the module docstring)."""
        self._owner = owner

    # -- reading --------------------------------------------------------------------------
    def start_reading(self, buffered: bool) -> None:
        """Read into the loop's read arena, the events dispatched in batches
        (``read_engine.py``). ``buffered`` (a ``BufferedProtocol``'s stream): C offers
        libuv no arena space (``self_read``), so a readable stream is a ``UV_ENOBUFS`` event in
        the batch, dispatched in turn, and the transport reads into the protocol's buffer
        itself then, as asyncio's ``recv_into`` (``_Reader._read_into_protocol``).
        ``OSError`` if libuv refuses; nothing once closing."""
        if self._closing:
            return
        if buffered != self._buffered:
            self._buffered = buffered
            self._box.self_read = 1 if buffered else 0
        if not self._reading:
            check(lib.uv_read_start(self._sptr, STREAM_ALLOC_CB, STREAM_READ_CB))
            self._reading = True

    def stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            if not self._closing:
                lib.uv_read_stop(self._sptr)

    def read_ended(self) -> None:
        """An EOF came from libuv's read callback: libuv has stopped reading by itself."""
        self._reading = False

    def read_to_arena(self) -> None:
        """Hand the reads back to C's arena after C left a large one to Python (_c/reads.c,
        "Large reads", which sets ``self_read``)."""
        self._box.self_read = 0

    def is_reading(self) -> bool:
        return self._reading

    # -- writing --------------------------------------------------------------------------
    def try_write(self, data: bytes) -> int:
        """Hand ``data`` to the kernel now if it takes it (``uv_try_write``, no request): the
        number of bytes it did *not* take (0: all sent), or a negative libuv error;
        ``UV_EBADF`` once closing, without asking libuv. (``_Writer.write`` inlines this: see
        the module docstring.)"""
        if self._closing:
            return _UV_EBADF  # type: ignore[no-any-return]
        return _try_write(self._sptr, data, len(data))  # type: ignore[no-any-return]

    def write(self, buffers: Sequence[ReadableBuffer], skip: int = 0) -> int:
        """Queue one vectored ``uv_write`` of ``buffers`` (bytes-like, kept alive until it
        completes), less the first ``skip`` bytes of the first one; the owner's
        ``_on_write_done(status)`` follows. Returns 0 or a negative libuv error. (``skip``
        instead of a memoryview slice: a from_buffer cdata of a memoryview, caught in a garbage
        cycle, crashes CPython's collector.)

        One write in flight at a time (the transport queues the rest): a second one would
        release the first one's buffers while libuv still reads them, so it is refused."""
        if self._write_req is not None:
            raise RuntimeError(f"{self!r}: a uv_write is already in flight")
        n = len(buffers)
        req = _new("uv_write_t*")
        req.data = self._cself
        bufs = _new("uv_buf_t[]", n)
        keep: List[CData] = []
        for i in range(n):
            b = buffers[i]
            c = _from_buffer(b)
            keep.append(c)
            bufs[i].base = c
            bufs[i].len = len(c)
        if skip:
            bufs[0].base = keep[0] + skip
            bufs[0].len -= skip
        status: int = lib.uv_write(req, self._sptr, bufs, n, lib._uvcffi_on_write)
        if status == 0:
            self._write_req = (req, bufs, keep, buffers)
        return status

    def _on_write(self, req: CData, status: int) -> None:
        self._write_req = None  # libuv is done with the request and its buffers
        owner = self._owner
        if owner is not None:
            owner._on_write_done(status)

    def shutdown(self) -> int:
        """``uv_shutdown``: after the queued writes, close the write side. Returns 0 or a
        negative libuv error; the request is released when it completes (``_on_shutdown``)."""
        req = _new("uv_shutdown_t*")
        req.data = self._cself
        status: int = lib.uv_shutdown(req, self._sptr, lib._uvcffi_on_shutdown)
        if status == 0:
            self._shutdown_req = req
        return status

    def _on_shutdown(self, status: int) -> None:
        self._shutdown_req = None

    @property
    def write_queue_size(self) -> int:
        return 0 if self._closed else self._sptr.write_queue_size

    # -- closing --------------------------------------------------------------------------
    def close(self) -> None:
        """``uv_close``: libuv closes the descriptor now, and the owner's ``_detach_fd()`` lets
        it forget the descriptor at the same moment. Memory lives until ``_on_closed``.
        Idempotent."""
        if self._closing:
            return
        super().close()  # forgets the key and its waiting reads (BatchReadHandle)
        owner = self._owner
        if owner is not None:
            owner._detach_fd()

    def _on_closed(self) -> None:
        super()._on_closed()
        # libuv has run (or cancelled) every request: release them, break the cycle.
        self._write_req = self._shutdown_req = self._owner = None
