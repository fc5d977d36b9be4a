"""The loop's read engine: the stream and datagram reads of a turn, handed over in one loop.

Why. A C->Python callback costs about 0.37 µs under cffi, a large share of a small message's
budget. So during ``uv_run`` no Python runs for a read: C (_c/reads.c: the
stream read callbacks and ``uvcffi_dgram_poll_cb``) reads into one per-loop arena and records an event per
read in an ``int64`` array. After ``uv_run`` returns, ``Loop._run_once`` calls
``ReadEngine.dispatch`` (or queues its ``marker`` behind the callbacks that were ready before
the poll), which walks the events in one Python loop and calls each protocol. C dispatches
early, from inside ``uv_run``, when the arena or the event array fills up
(``_callbacks._uvcffi_on_read_batch``).

The event encoding, the one place Python reads it. An event is two ``int64``: ``(key, x)``.
For a read, ``key`` is the reader's slot (its ``BatchReadHandle.key``, given by ``register``)
and ``x`` the arena offset where its bytes end (they begin where the previous read's ended;
a datagram's bytes begin with its sender's address, ``transports/datagram.py``). EOF and
errors are events of key ``KEY_STATUS`` whose ``x`` is ``status_event(key, status)``:
``(key << STATUS_BITS) | -status`` (libuv statuses are -4095..-1). ``KEY_GONE`` is no one's:
a closed reader's waiting events are rewritten to it (``forget``). C defines the numbers
(``UVCFFI_KEY_GONE``, ``UVCFFI_KEY_STATUS``, ``UVCFFI_STATUS_BITS``) and writes the events;
this module reads the numbers from C once and is the only Python code that decodes them.

Component. The loop makes its engine in ``Loop.__init__`` (``Loop._reads``) and closes it in
``Loop.close()`` after libuv has closed every handle. Readers register when they are
made (stream and datagram transports, in their constructors; the signal wake-up pipe, at the
first signal handler), through their handle
(``handles.base.BatchReadHandle.register_reads``, which keeps the key in C next to the
handle), and are forgotten when that handle closes (``BatchReadHandle.close``). The engine's
tables (``readers``, ``fast``, ``ctxs``) are written by its own methods only: a transport
changes its entries with ``set_fast`` and ``set_context``.
"""

from __future__ import annotations

import contextvars
from asyncio import Handle
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from ._binding import ffi, lib

if TYPE_CHECKING:
    from typing import Protocol

    from .loop import Loop

    class Reader(Protocol):
        """What a key's reader is: a transport (or the signal wake-up), _Gone, _Statuses."""

        def _on_batched_read(self, start: int, end: int, /) -> None: ...
        def _on_status(self, status: int, /) -> None: ...

__all__ = ["ReadEngine", "KEY_GONE", "KEY_STATUS", "STATUS_BITS", "status_event", "decode_status"]

KEY_GONE = lib.UVCFFI_KEY_GONE  # the key of a closed (or no) reader's waiting events
KEY_STATUS = lib.UVCFFI_KEY_STATUS  # the key of status events (EOF, errors)
STATUS_BITS: int = lib.UVCFFI_STATUS_BITS  # a status event's x: (key << STATUS_BITS) | -status
_STATUS_MASK = (1 << STATUS_BITS) - 1
# Every read gets UVCFFI_READ_MAX bytes of the arena (C dispatches early rather than hand out
# less), so a turn's reads batch up to at least that much; _EVENT_CAP events at most per
# dispatch.
_ARENA_SIZE = 2 * lib.UVCFFI_READ_MAX
_EVENT_CAP = 1024


def status_event(key: int, status: int) -> int:
    """The ``x`` of the status event (key ``KEY_STATUS``) of reader ``key``; ``status`` < 0."""
    return (key << STATUS_BITS) | -status


def decode_status(x: int) -> Tuple[int, int]:
    """``(key, status)`` of a status event's ``x``: ``status_event``'s inverse."""
    return x >> STATUS_BITS, -(x & _STATUS_MASK)


class _Gone:
    """Stands in ``ReadEngine.readers`` where no stream is registered: the key of closed
    streams' events and free slots. What reaches it goes nowhere."""

    __slots__ = ()

    def _on_batched_read(self, a: int, b: int) -> None:
        pass

    def _on_status(self, status: int) -> None:
        pass


_GONE = _Gone()


class _Statuses:
    """``ReadEngine.readers[KEY_STATUS]``: routes a status event (EOF or an error, its ``x``
    made by ``status_event``) to the stream it belongs to."""

    __slots__ = ("readers", "ctxs")

    def __init__(self, readers: List[Reader], ctxs: List[Optional[contextvars.Context]]) -> None:
        self.readers = readers
        self.ctxs = ctxs

    def _on_batched_read(self, a: int, x: int) -> None:
        key, status = decode_status(x)
        ctx = self.ctxs[key]
        if ctx is None:  # a closed stream's (_GONE)
            self.readers[key]._on_status(status)
        else:
            ctx.run(self.readers[key]._on_status, status)


class ReadEngine:
    """The stream reads of one ``uv_run`` turn, for every stream transport of a loop.

    C (_c/reads.c) reads into this arena, front to back, and
    records each read as an event ``(key, end)``: the stream's bytes run from the previous
    read's end to ``end``. EOF and errors are events of key ``KEY_STATUS`` that name the
    stream (``_Statuses``); datagram polls add their own events (transports/datagram.py).
    ``dispatch`` hands them to the transports registered in ``readers`` (a list: the key is the
    slot), in order, after ``uv_run`` returns (``Loop._run_once``) or when the arena fills up
    during it (``_callbacks._uvcffi_on_read_batch``).

    Between the read and its dispatch, other callbacks of the turn may have paused or closed
    the transport, or made it buffered. ``fast`` (beside ``readers``) holds for each key its
    protocol's ``data_received`` while bytes may go straight to it, None otherwise (the
    transport's ``_fast_dr``), so the common case is one test, and the rest takes
    ``_Reader._on_batched_read``, which keeps asyncio's promises: nothing after ``close()``,
    nothing while paused (the bytes wait in the transport until ``resume_reading``). A stream's
    events are forgotten when its handle closes (``Stream.close``), and only then is its key
    free for another stream.

    Contexts: ``ctxs`` (beside ``readers``) holds for each key the ``contextvars.Context`` its
    transport's read callbacks run in -- asyncio runs them in the context of the reader handle
    its transport registers (a copy of the context the transport was made in, and a new copy
    of the caller's at every ``resume_reading``), so each event is dispatched inside
    ``ctxs[key].run``: a contextvar set before ``create_server`` reaches ``data_received``,
    and what ``data_received`` sets stays with its transport. None for keys without a
    transport (status events route to their stream's context themselves, ``_Statuses``).
    """

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self._mem = ffi.new("char[]", _ARENA_SIZE)
        self._ev = ffi.new("int64_t[]", 2 * _EVENT_CAP)
        self._cself = ffi.new_handle(self)
        rb = self._rb = ffi.new("uvcffi_rbuf_t*")
        rb.base = self._mem
        rb.len = _ARENA_SIZE
        rb.ev = self._ev
        rb.cap = _EVENT_CAP
        rb.owner = self._cself
        self.view = ffi.buffer(self._mem)  # slicing it makes bytes
        # the events as int64s: iterating a slice of this makes no list (ffi.unpack would)
        self._events = memoryview(ffi.buffer(self._ev)).cast("q")
        # key -> transport, and key -> data_received or None (see above); the first keys are
        # nobody's: status events' and closed streams'
        self.readers: List[Reader] = [_GONE] * (max(KEY_STATUS, KEY_GONE) + 1)
        self.fast: List[Optional[Callable[[bytes], object]]] = [None] * len(self.readers)
        self.ctxs: List[Optional[contextvars.Context]] = [None] * len(self.readers)
        # (a router of status events: it is sent none itself)
        self.readers[KEY_STATUS] = _Statuses(self.readers, self.ctxs)  # type: ignore[call-overload]
        self._free: List[int] = []  # keys of closed streams, reused first (they stay small)
        self._python_buffer: Optional[memoryview] = None  # python_buffer(): made on first use
        # Loop._run_once puts it in the ready queue behind the callbacks that were ready before
        # the poll, when there were any: the reads are dispatched from there, as asyncio runs its
        # I/O callbacks after those. (Each protocol still runs in its own context, ctxs.)
        self.marker = Handle(self._dispatch_in_turn, (), loop, contextvars.Context())
        loop._uv.data = rb  # where C finds the arena (uvcffi_run_turn, the read callbacks)

    def python_buffer(self, size: int) -> memoryview:
        """A buffer of at least ``size`` bytes for the reads that Python makes itself (unix
        datagram sockets, ``transports/datagram.py``), one per loop: each reader copies its
        bytes out before it calls its protocol. Made on first use (``size`` is the same
        everywhere it is asked for)."""
        buf = self._python_buffer
        if buf is None or len(buf) < size:
            buf = self._python_buffer = memoryview(bytearray(size))
        return buf

    def register(self, transport: Reader, ctx: Optional[contextvars.Context]) -> int:
        """A new key for ``transport``, whose read callbacks run in the context ``ctx``
        (``BatchReadHandle.register_reads`` keeps it next to the handle C reads)."""
        if self._free:
            key = self._free.pop()
            self.readers[key] = transport
            self.ctxs[key] = ctx
        else:
            key = len(self.readers)
            self.readers.append(transport)
            self.fast.append(None)
            self.ctxs.append(ctx)
        return key

    def set_fast(self, key: int, data_received: Optional[Callable[[bytes], object]]) -> None:
        """What ``dispatch`` calls straight for reader ``key``'s bytes: its protocol's
        ``data_received`` while bytes may go straight to it, else None (see the class)."""
        self.fast[key] = data_received

    def set_context(self, key: int, ctx: Optional[contextvars.Context]) -> None:
        """The context reader ``key``'s callbacks run in from now on."""
        self.ctxs[key] = ctx

    def forget(self, key: int) -> None:
        """The handle of reader ``key`` is closing: drop its registration and its waiting
        events; free the key."""
        self.readers[key] = _GONE
        self.fast[key] = None
        self.ctxs[key] = None
        if self._rb.nev:
            lib.uvcffi_reads_forget(self._rb, key)
        self._free.append(key)

    def dispatch(self) -> Optional[BaseException]:
        """Hand every waiting read to its transport; the arena is empty afterwards. Returns the
        first ``KeyboardInterrupt``/``SystemExit`` a protocol raised (the other transports still
        get their bytes; the caller re-raises it), else None."""
        rb = self._rb
        it = iter(self._events[:2 * rb.nev])
        fast = self.fast
        readers = self.readers
        ctxs = self.ctxs
        view = self.view
        start = 0  # where the next read's bytes begin
        escaped = None
        try:
            for key, end in zip(it, it):
                data_received = fast[key]
                try:
                    if data_received is not None:  # then ctxs[key] is a Context too
                        data = view[start:end]
                        start = end
                        try:
                            ctxs[key].run(data_received, data)  # type: ignore[union-attr]
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException as exc:
                            # (a transport's: fast[key] is set for transports only)
                            ctxs[key].run(readers[key]._data_received_failed, exc)  # type: ignore[union-attr, attr-defined]
                    else:
                        a = start
                        if key != KEY_STATUS:
                            start = end
                        ctx = ctxs[key]
                        if ctx is None:
                            readers[key]._on_batched_read(a, end)
                        else:
                            ctx.run(readers[key]._on_batched_read, a, end)
                except (SystemExit, KeyboardInterrupt) as exc:
                    if escaped is None:
                        escaped = exc
                except BaseException as exc:  # a fault of ours: report it, serve the others
                    self._loop._callback_error(exc, readers[key])
        finally:
            rb.nev = 0
            rb.used = 0
        return escaped

    def _dispatch_in_turn(self) -> None:
        escaped = self.dispatch()
        if escaped is not None:
            raise escaped

    def close(self) -> None:
        """``Loop.close()``, after libuv closed every handle (each forgot its key then): drop
        the events still waiting and every registration. The arena's memory goes with this
        object (transports may still hold a view of it). Idempotent."""
        rb = self._rb
        rb.nev = 0
        rb.used = 0
        for key in range(len(self.readers)):
            if key != KEY_STATUS:
                self.readers[key] = _GONE
            self.fast[key] = None
            self.ctxs[key] = None
        self._free = []
