"""Handle lifetime: who owns a libuv handle's memory, and until when.

libuv handles live in memory that libuv reads until the handle's close callback has run,
which is one loop turn *after* ``uv_close``. cffi frees an ``ffi.new`` block as soon as its
owning cdata object is garbage, so the rules are:

1. A ``UVHandle`` Python object owns the handle memory (``self._ptr``, from ``ffi.new``).
2. ``handle->data`` holds ``ffi.new_handle(self)`` (kept in ``self._cself``); C callbacks find
   the Python object through it (``_callbacks.py``).
3. From a successful ``uv_*_init`` until libuv's close callback has run, the loop keeps the
   object in ``loop._live_handles`` (a strong reference), so neither the object nor its
   memory can go away while libuv may touch them, even if user code drops every reference.
4. ``close()`` is idempotent; the close callback (``_on_closed``) drops the loop's reference.
   After that the memory is released with the Python object, never before.
5. ``Loop.close()`` closes every live handle and runs libuv until all close callbacks are
   done, then closes the libuv loop; ``loop._debug_live_handles()`` counts what is left.

Misuse (a closed loop, a closed handle) raises a Python error before reaching libuv. The
pattern follows gevent's libuv backend notes on cffi object lifetimes, in our own terms.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Optional

from .._binding import CData, check, ffi, lib

if TYPE_CHECKING:
    import contextvars

    from ..loop import Loop
    from ..read_engine import Reader

__all__ = ["UVHandle", "BatchReadHandle"]


# libuv's UV_EEXIST on unix: uv_tcp_open/uv_pipe_open/uv_poll_init refuse a number a handle of
# the loop watches already, and change nothing. The callers then ask the loop's add_reader
# watches to give the number up (FdWatches.release: a descriptor closed without remove_reader,
# see fds.py) and try once more: two lines at each, so a connection's open costs one compare.
UV_EEXIST = -errno.EEXIST


class UVHandle:
    """A Python owner for one libuv handle of C type ``CTYPE``."""

    CTYPE = "uv_handle_t*"

    # Class attributes as defaults, so a half-built object still reprs and finalizes.
    _loop: Loop = None  # type: ignore[assignment]  # None only in a half-built object
    _ptr: CData = None  # the handle's memory (CTYPE), owned by this object
    _hptr: CData = None  # the same memory as uv_handle_t*, for the generic calls
    _cself: CData = None  # ffi.new_handle(self), stored in handle->data
    _closing = False  # uv_close has been called
    _closed = False  # libuv's close callback has run; memory may now be released

    def __init__(self, loop: Loop) -> None:
        loop._check_closed()
        self._loop = loop
        self._ptr = self._new_memory()
        self._hptr = ffi.cast("uv_handle_t*", self._ptr)
        self._cself = ffi.new_handle(self)
        self._ptr.data = self._cself

    def _new_memory(self) -> CData:
        """The handle's memory as ``CTYPE``, owned by this object."""
        return ffi.new(self.CTYPE)

    def _registered(self, status: int) -> None:
        """Call with the status of the handle's ``uv_*_init``: on success libuv now owns it."""
        check(status)
        self._loop._live_handles.add(self)

    def close(self) -> None:
        """Start closing the handle; idempotent. The memory stays valid until ``_on_closed``."""
        if self._closing or self._hptr is None:
            return
        self._closing = True
        if self in self._loop._live_handles:
            lib.uv_close(self._hptr, lib._uvcffi_on_close)
        else:  # never initialized in libuv: nothing to wait for
            self._closed = True

    def _on_closed(self) -> None:
        """libuv's close callback (through ``_callbacks.py``): libuv no longer touches the memory."""
        self._closed = True
        self._loop._live_handles.discard(self)

    def is_closing(self) -> bool:
        return self._closing

    def ref(self) -> None:
        if not self._closing:
            lib.uv_ref(self._hptr)

    def unref(self) -> None:
        if not self._closing:
            lib.uv_unref(self._hptr)

    def fileno(self) -> int:
        fd = ffi.new("uv_os_fd_t*")
        check(lib.uv_fileno(self._hptr, fd))
        result: int = fd[0]
        return result

    def __repr__(self) -> str:
        state = "closed" if self._closed else "closing" if self._closing else "open"
        return f"<{type(self).__name__} {state}>"


class BatchReadHandle(UVHandle):
    """A handle whose reads C records in the loop's read engine (``read_engine.py``) under a
    small-integer ``key``: stream handles and datagram polls.

    The key lives in C next to the handle: the handle's memory is a ``uvcffi_reader_t`` (the
    handle first, then ``key``, then what else C reads there), so C finds the key from the
    handle pointer libuv passes. This object alone writes that memory. The key is 0 until
    ``register_reads`` asks the engine for one; closing the handle gives it back
    (``ReadEngine.forget``, which drops its waiting events), so no read reaches whoever reuses
    the key."""

    _box: CData = None  # the uvcffi_reader_t that owns the handle's memory

    def _new_memory(self) -> CData:
        self._box = ffi.new("uvcffi_reader_t*")
        return ffi.cast(self.CTYPE, self._box)

    @property
    def key(self) -> int:
        """The handle's slot in the loop's read engine; 0 while unregistered."""
        box = self._box
        return 0 if box is None else box.key

    def register_reads(self, reader: Reader, ctx: Optional[contextvars.Context]) -> int:
        """From now until this handle closes, the loop's read engine hands this handle's reads
        to ``reader`` (``_on_batched_read``, ``_on_status``), in the context ``ctx`` (None:
        the reader's calls run in the engine's). Returns the key; registers once."""
        if self._box.key:
            raise RuntimeError(f"{self!r} is registered already")
        key = self._box.key = self._loop._reads.register(reader, ctx)
        return key

    def close(self) -> None:
        super().close()
        box = self._box
        if box is not None and box.key:
            key = box.key
            box.key = 0
            self._loop._reads.forget(key)  # and its waiting events
