"""``uv_stream_t``: the libuv half of every byte-stream transport (TCP, unix sockets, pipes).

What this layer does, and nothing more: start/stop reading, try a write, queue a vectored
write, shut the write side down. Protocol logic (flow control, EOF, closing order) lives in
``transports/stream.py``; ``tcp.py`` and ``pipe.py`` only know how to open their handle.

Routing. Reads into the loop's arena do not come through this object: C records them under
the stream's ``key`` and the loop's ``ReadEngine`` (read_engine.py) hands them to the
transport registered under it. The key lives in C next to the handle (``BatchReadHandle``).
Every other callback (write done, shutdown) does: ``_callbacks.py`` calls e.g.
``owner._owner_write_done(status)`` on the object behind ``handle->data``, which is this
handle. ``attach(transport)`` stores the transport's bound
methods as *instance attributes* named like the callbacks, so the C callback lands directly
in the transport's method: no forwarding frame on the hot path. The cycle handle <-> transport
is broken when the handle's close callback runs.

Request lifetime. ``uv_write_t``/``uv_shutdown_t`` memory and every buffer a write points at
must outlive the request: ``write()`` keeps ``(req, uv_buf_t[], buffers)`` in
``self._write_req`` until libuv's write callback, and at most one write request is in flight
(the transport coalesces what arrives meanwhile into the next one). ``req->data`` is this
handle's own ``ffi.new_handle``, so a request costs no extra handle object.
"""

from __future__ import annotations

from .._binding import STREAM_ALLOC_CB, STREAM_READ_CB, check, ffi, lib
from .base import BatchReadHandle

__all__ = ["Stream"]

_new = ffi.new
# (attribute on this handle, method of the owner) for each callback attach() routes
_HOOKS = (("_owner_write_done", "_on_write_done"), ("_on_shutdown", "_on_shutdown"))
_from_buffer = ffi.from_buffer


class Stream(BatchReadHandle):
    """A ``uv_stream_t`` owned by Python; subclasses open it (``uv_tcp_open``, ``uv_pipe_open``)."""

    CTYPE = "uv_stream_t*"

    _sptr = None  # the handle as uv_stream_t*
    _write_req = None  # (uv_write_t*, uv_buf_t[], [buffers]) while a write is in flight
    _shutdown_req = None  # uv_shutdown_t* while a shutdown is in flight
    _reading = False
    _buffered = False  # reading for a BufferedProtocol: self_read stays 1 (read_start)

    def __init__(self, loop) -> None:
        super().__init__(loop)
        self._sptr = ffi.cast("uv_stream_t*", self._ptr)

    def attach(self, owner) -> None:
        """Route libuv's callbacks to ``owner``'s ``_on_write_done``/``_on_shutdown``: those
        it has (a pipe transport has one direction's); the others keep
        this class's do-nothing defaults."""
        d = self.__dict__
        for mine, theirs in _HOOKS:
            method = getattr(owner, theirs, None)
            if method is not None:
                d[mine] = method

    # -- reading --------------------------------------------------------------------------
    def read_start(self, buffered: bool) -> None:
        """Read into the loop's read arena, the events dispatched in batches
        (``read_engine.py``). ``buffered`` (a ``BufferedProtocol``'s stream): C offers
        libuv no arena space (``self_read``), so a readable stream is a ``UV_ENOBUFS`` event in
        the batch, dispatched in turn, and the transport reads into the protocol's buffer
        itself then, as asyncio's ``recv_into`` (``_Reader._read_into_protocol``)."""
        if self._closing:
            return
        if buffered != self._buffered:
            self._buffered = buffered
            self.self_read = 1 if buffered else 0
        if not self._reading:
            check(lib.uv_read_start(self._sptr, STREAM_ALLOC_CB, STREAM_READ_CB))
            self._reading = True

    def read_stop(self) -> None:
        if self._reading:
            self._reading = False
            if not self._closing:
                lib.uv_read_stop(self._sptr)

    # -- writing --------------------------------------------------------------------------
    def write(self, buffers: list, skip: int = 0) -> int:
        """Queue one vectored ``uv_write`` of ``buffers`` (bytes-like, kept alive until it
        completes), less the first ``skip`` bytes of the first one; ``_on_write_done(status)``
        follows. Returns 0 or a negative libuv error. (``skip`` instead of a memoryview slice: a
        from_buffer cdata of a memoryview, caught in a garbage cycle, crashes CPython's
        collector.)

        One write in flight at a time (the transport queues the rest): a second one would
        release the first one's buffers while libuv still reads them, so it is refused."""
        if self._write_req is not None:
            raise RuntimeError(f"{self!r}: a uv_write is already in flight")
        n = len(buffers)
        req = _new("uv_write_t*")
        req.data = self._cself
        bufs = _new("uv_buf_t[]", n)
        keep = []
        for i in range(n):
            b = buffers[i]
            c = _from_buffer(b)
            keep.append(c)
            bufs[i].base = c
            bufs[i].len = len(c)
        if skip:
            bufs[0].base = keep[0] + skip
            bufs[0].len -= skip
        status = lib.uv_write(req, self._sptr, bufs, n, lib._uvcffi_on_write)
        if status == 0:
            self._write_req = (req, bufs, keep, buffers)
        return status

    def _on_write(self, req, status: int) -> None:
        self._write_req = None  # libuv is done with the request and its buffers
        self._owner_write_done(status)

    def shutdown(self) -> int:
        """``uv_shutdown``: after the queued writes, close the write side. ``_on_shutdown`` follows."""
        req = _new("uv_shutdown_t*")
        req.data = self._cself
        status = lib.uv_shutdown(req, self._sptr, lib._uvcffi_on_shutdown)
        if status == 0:
            self._shutdown_req = req
        return status

    @property
    def write_queue_size(self) -> int:
        return 0 if self._closed else self._sptr.write_queue_size

    # -- closing --------------------------------------------------------------------------
    def close(self) -> None:
        """``uv_close``: libuv closes the descriptor now; the owner's ``_detach_fd`` hook (if
        set) lets it forget the descriptor at the same moment. Memory lives until ``_on_closed``."""
        super().close()  # forgets the key and its waiting reads (BatchReadHandle)
        hook = self.__dict__.pop("_detach_fd", None)
        if hook is not None:
            hook()

    def _on_closed(self) -> None:
        super()._on_closed()
        # libuv has run (or cancelled) every request: release them, break the cycle.
        self._write_req = self._shutdown_req = None
        d = self.__dict__
        for mine, _ in _HOOKS:
            d.pop(mine, None)

    # Defaults while nothing is attached: a late callback is dropped, never an AttributeError.
    def _owner_write_done(self, status: int) -> None:
        pass

    def _on_shutdown(self, status: int) -> None:
        self._shutdown_req = None
