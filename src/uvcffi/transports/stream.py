"""Byte-stream transports over libuv streams: sockets (TCP, unix) and pipes.

One piece of code serves ``uv_tcp_t`` and ``uv_pipe_t``: ``_Reader`` holds the read side,
``_Writer`` the write side, ``_Base`` what both share (closing, errors, protocol). The public
classes combine them: ``StreamTransport`` (sockets, an ``asyncio.Transport``),
``ReadPipeTransport`` (an ``asyncio.ReadTransport``) and ``WritePipeTransport`` (an
``asyncio.WriteTransport``). Where asyncio's socket and pipe transports behave differently
(EOF, ``close``, which errors reach the exception handler), the pipe classes override the
one method concerned.

The per-message path, and what it costs (``C>`` a C->Python callback, ``>C`` a Python->C call):

* read: libuv reads into the loop's read arena and C records the event (no Python during
  ``uv_run``); after ``uv_run`` returns, ``ReadEngine.dispatch`` walks the turn's events in one
  Python loop: per read, one copy into ``bytes`` (a slice of the arena) and
  ``protocol.data_received``, called straight from that loop -- no C->Python callback and no
  ready-queue round trip per message.
* write: with nothing queued, ``>C uvcffi_try_write`` (``Stream.try_write``, inlined in
  ``write()``) hands the bytes object's own storage to ``uv_try_write``; usually the kernel
  takes it all and that is the whole write. What it does
  not take goes out in one ``uv_write``; writes arriving while that is in flight are queued
  in a Python list and leave as *one* vectored ``uv_write`` when it completes.

So a protocol echo costs one crossing per message, plus one per turn. A ``BufferedProtocol``
(asyncio's TLS runs as one) reads differently: C offers libuv no arena space for its stream, so
a readable turn is a ``UV_ENOBUFS`` event in the batch, and the dispatch reads straight into
``get_buffer(-1)`` (``recv_into``) and calls ``buffer_updated``, as asyncio's transports do.

Write-side states: ``_wbuf`` (Python queue) non-empty implies a ``uv_write`` in flight
(``_inflight``): whatever is queued leaves when that request completes. ``close()`` waits for
both to drain; ``abort()`` and fatal errors drop them (closing the handle cancels the request).

Who owns what. The libuv handle (``handles.stream.Stream``) alone holds its pointer and calls
libuv on it; a transport calls its methods (``try_write``, ``write``, ``start_reading``,
``stop_reading``, ``shutdown``, ``close``) and hears back through two of its own
(``_on_write_done``, ``_detach_fd``: ``Stream.attach``). The transport owns the handle: it
makes it, and closes it once ``connection_lost`` has run (``_release``). The loop's read
engine's entries for the transport are changed through the engine's methods.

Transitions, each in one method: ``_begin_closing`` (every way into closing: the flag, and
the read engine's fast path dropped with it), ``_set_fast`` (whether reads may go straight to
``data_received``), ``_set_wready`` (whether ``write()`` may try the kernel at once).

Pipes other than unix sockets: ``ReadPipeTransport``/``WritePipeTransport.open`` for
``connect_read_pipe``/``connect_write_pipe``, and ``from_handle(loop, Pipe(loop, fd),
protocol)`` for a child's stdio (``transports/subprocess.py``). The transport then owns the
handle and closes it.
"""

from __future__ import annotations

import contextvars
import errno
import logging
import os
import select
import socket
import stat
import sys
from asyncio import BufferedProtocol
from asyncio import transports as _transports
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from .._binding import convert_error, lib
from .._compat import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    TransportSocket,
    _FlowControlMixin,
    _format_callback_source,
    _SendfileMode,
)
from .._future_helpers import set_result_unless_cancelled as _set_result_unless_cancelled
from ..handles.pipe import Pipe
from ..handles.poll import Poll
from ..handles.tcp import TCP

if TYPE_CHECKING:
    import asyncio

    from ..handles.stream import Stream
    from ..loop import Loop
    from ..read_engine import ReadEngine
    from ..server import Server

_Bytes = Union[bytes, bytearray, memoryview]  # what write() takes

__all__ = ["StreamTransport", "ReadPipeTransport", "WritePipeTransport"]

logger = logging.getLogger("asyncio")

_UV_EOF = lib.UV_EOF
_UV_ECANCELED = lib.UV_ECANCELED
_try_write = lib.uvcffi_try_write  # write()'s inline copy of handles.stream.Stream.try_write
_UV_ENOBUFS = lib.UV_ENOBUFS
_readable = lib.uvcffi_readable
_os_read = os.read
_os_readv = getattr(os, "readv", None)  # PyPy 3.9 has none
_copy_context = contextvars.copy_context
_join = b"".join
_READ_MAX = lib.UVCFFI_READ_MAX
# a stream read by _Reader._read_self goes back to the arena after a read smaller than this
_SELF_READ_BELOW = 16 * 1024
# _read_self's guesses of the next read's size stay under glibc's initial mmap threshold
# (128 KiB, less the bytes object's header); larger reads are sized by FIONREAD
_GUESS_MAX = 126 * 1024
# writelines() joins its buffers below this many bytes in all, and hands them to one vectored
# uv_write from here on. Below it, joining costs less than a write request and its completion
# (bench/README.md, "Lab notes": writelines).
_VECTOR_MIN = 256 * 1024
_DATA_RECEIVED_FAILED = "Fatal error: protocol.data_received() call failed."
_LOG_THRESHOLD = LOG_THRESHOLD_FOR_CONNLOST_WRITES


class _Base:
    """State and closing logic shared by every stream transport."""

    _KIND = "socket"  # for asyncio's error messages
    # (_loop: None in a half-built transport, and once connection_lost ran)
    _loop: Loop = None  # type: ignore[assignment]
    _handle: Stream = None  # type: ignore[assignment]  # until _call_connection_lost closed it (then None)
    _protocol: Any = None  # an asyncio.Protocol or BufferedProtocol (None once lost)
    _server: Optional[Server] = None
    _extra: Dict[str, Any]  # (asyncio's BaseTransport's slot: get_extra_info)
    _data_received: Optional[Callable[[bytes], object]]
    if TYPE_CHECKING:  # _Reader's property; what the other classes use of the whole transport
        _fast_dr: Optional[Callable[[bytes], object]]

        def close(self) -> None: ...
        def _maybe_pause_protocol(self) -> None: ...  # asyncio's _FlowControlMixin's
        def _maybe_resume_protocol(self) -> None: ...
    _fd = -1
    _closing = False  # close()/abort()/fatal error: no more reads, no new writes accepted
    _conn_lost = 0  # asyncio's counter: >0 once the connection is gone; counts dropped writes
    _lost_scheduled = False  # _call_connection_lost is scheduled (exactly once)
    _started = False  # the scheduled start (reading) has run
    _buffered = False  # the protocol is a BufferedProtocol

    def _init_base(self, loop: Loop, handle: Stream, protocol: asyncio.BaseProtocol,
                   extra: Dict[str, Any]) -> None:
        """Take ``handle`` over (a ``handles.stream.Stream``); ``_Reader`` extends this."""
        self._loop = loop
        self._handle = handle
        self._extra = extra
        handle.attach(self)
        self._closing = False
        self._fd = handle.fileno()
        loop._fds.transports[self._fd] = self  # add_reader refuses it (fds.py)
        self.set_protocol(protocol)

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._handle is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fd}")
        if self._loop is not None and not self._loop.is_closed():
            info.extend(self._watch_state())
        return "<{}>".format(" ".join(info))

    def _watch_state(self) -> List[str]:
        """What the repr says of the reading and writing sides while the loop is open."""
        return []

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        buffered = isinstance(protocol, BufferedProtocol)
        # getattr: a write-only transport's protocol may be a bare BaseProtocol
        self._data_received = None if buffered else getattr(protocol, "data_received", None)
        self._set_fast()
        if buffered != self._buffered:
            self._buffered = buffered
            handle = self._handle
            if handle is not None and handle.is_reading():
                handle.stop_reading()
                self._start_reading()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing

    def _start_reading(self) -> None:  # overridden by _Reader
        pass

    def _set_fast(self) -> None:  # overridden by _Reader
        pass

    def _set_wready(self) -> None:  # overridden by _Writer
        pass

    def _begin_closing(self) -> None:
        """The one way into closing (``close()``, ``abort()``, a fatal error, a pipe's EOF):
        from here on no read reaches the protocol and no write is accepted, so the read
        engine's fast path is dropped with the flag. What else stops (reading, the peer
        watch) and when ``connection_lost`` comes is the caller's rule."""
        self._closing = True
        self._set_fast()

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        """asyncio's rule for sockets: an ``OSError`` is the peer's business (debug log only),
        anything else reaches the exception handler. Then the transport is torn down."""
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._report(exc, message)
        self._force_close(exc)

    def _report(self, exc: BaseException, message: str) -> None:
        self._loop.call_exception_handler({
            "message": message,
            "exception": exc,
            "transport": self,
            "protocol": self._protocol,
        })

    def abort(self) -> None:
        """Close now: queued writes are dropped; ``connection_lost(None)`` follows."""
        self._force_close(None)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._lost_scheduled:
            return
        self._drop_writes()
        if not self._closing:
            self._begin_closing()
            self._stop_reading()
        self._schedule_lost(exc)

    def _schedule_lost(self, exc: Optional[BaseException]) -> None:
        if self._lost_scheduled:
            return
        self._lost_scheduled = True
        self._conn_lost += 1
        self._set_wready()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _drop_writes(self) -> None:
        pass

    def _stop_reading(self) -> None:
        if self._handle is not None:
            self._handle.stop_reading()

    def _call_connection_lost(self, exc: Optional[BaseException]) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._release()
            # as asyncio: the transport lets go of its protocol (a transport the user keeps
            # must not keep the protocol alive)
            self._protocol = self._data_received = None
            server = self._server
            if server is not None:
                server._detach(self)  # type: ignore[arg-type]  # a StreamTransport
                self._server = None

    def _release(self) -> None:
        """Close the libuv handle (and with it the descriptor it owns)."""
        handle = self._handle
        if handle is not None:
            self._handle = None  # type: ignore[assignment]
            self._set_wready()
            fds = self._loop._fds.transports
            if fds.get(self._fd) is self:
                del fds[self._fd]
            handle.close()

    def _detach_fd(self) -> None:
        """The handle is closing (``Stream.close``, maybe from ``Loop.close()``): libuv has
        just closed the descriptor."""
        self._set_wready()


class _Reader(_Base):
    """The read side: libuv read callbacks -> protocol.

    libuv reads into the loop's arena (up to 256 KiB a read, asyncio's ``max_size``) and
    ``ReadEngine.dispatch`` slices it into ``bytes`` for ``data_received``: a copy that costs
    nothing at small sizes and a few µs per 100 KiB (bench/README.md, "Lab notes"). So a stream whose
    read reached 64 KiB is read by ``_read_self`` instead: C offers it no arena space, and
    Python reads what waits with ``os.read`` straight into a ``bytes`` of about that size (the
    last read's, or FIONREAD's count), until a read under 16 KiB hands it back to the arena.
    Sized, unlike asyncio's ``recv(256 KiB)``: a fresh 256 KiB ``bytes`` per read is a fresh
    ``mmap`` (glibc serves it so), shrunk by ``mremap`` and ``munmap``-ed after use, and its
    pages fault in one by one on every read until glibc raises its mmap threshold
    (bench/README.md, "Lab notes"). A ``BufferedProtocol``'s stream is always read by Python, straight into
    the protocol's buffer (``_read_into_protocol``).
    """

    _paused = False  # pause_reading() by the user (or a flow-controlling protocol)
    # reads dispatched while paused (bytes, or an EOF/error code), oldest first; None if none
    _stash: Any = None  # what waits while paused: bytes, a list of them, or _EOF markers
    _reads: ReadEngine = None  # type: ignore[assignment]  # the loop's read engine (read_engine.ReadEngine)
    _rview: Any = None  # its read arena (ReadEngine.view)
    # The context every read callback (data_received, get_buffer, buffer_updated,
    # eof_received, and what they schedule) runs in: asyncio's reader handle's. A copy of the
    # constructor's context, replaced by a copy of the caller's at every resume_reading (as
    # asyncio registers a new reader handle then). ReadEngine.ctxs holds it for dispatch.
    _read_ctx: contextvars.Context = None  # type: ignore[assignment]  # (None: not reading yet)
    _read_guess = 0  # the size _read_self reads next; 0 or -(a size to keep): ask FIONREAD

    def _init_base(self, loop: Loop, handle: Stream, protocol: asyncio.BaseProtocol,
                   extra: Dict[str, Any]) -> None:
        self._paused = False
        self._stash = None
        reads = self._reads = loop._reads
        self._rview = reads.view
        # asyncio's reader handle is made by a call_soon of this constructor: its context
        # is a copy of this one (see _read_ctx)
        self._read_ctx = _copy_context()
        handle.register_reads(self, self._read_ctx)  # until the handle closes
        super()._init_base(loop, handle, protocol, extra)

    def _set_fast(self) -> None:
        """The one place that says what ``ReadEngine.dispatch`` does with this stream's bytes
        (the engine's ``fast`` entry): call ``data_received`` straight while bytes may go to
        it (not paused, not closing, nothing stashed, not buffered), else hand them to
        ``_on_batched_read``. Called wherever one of those changes."""
        h = self._handle
        if h is not None and h.key:  # else: not registered (yet, or any more)
            self._reads.set_fast(h.key, self._data_received if not self._paused
                                 and not self._closing and self._stash is None else None)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading()``; no-op if not reading."""
        if not self.is_reading():
            return
        self._paused = True
        self._set_fast()
        self._handle.stop_reading()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop._check_closed()  # as asyncio's, whose new reader needs an open loop
        ctx = self._read_ctx = _copy_context()
        h = self._handle
        if h is not None and h.key:
            self._reads.set_context(h.key, ctx)
        self._set_fast()
        if self._stash:
            # reading restarts once the stash is delivered
            self._loop.call_soon(self._unstash, context=ctx)
        else:
            self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _begin_reading(self) -> None:
        # Scheduled by the constructor right after connection_made.
        self._started = True
        self._start_reading()

    def _start_reading(self) -> None:
        if not self._started or self._paused or self._closing or self._handle is None:
            return
        try:
            self._handle.start_reading(self._buffered)
        except OSError as exc:
            self._fatal_error(exc, f"Fatal read error on {self._KIND} transport")

    def _read_ended(self, nread: int) -> None:
        if nread == _UV_EOF:
            self._handle.read_ended()  # libuv stopped reading at EOF
            self._on_eof()
        else:
            self._fatal_error(convert_error(nread), f"Fatal read error on {self._KIND} transport")

    def _data_received_failed(self, exc: BaseException) -> None:
        """The protocol's ``data_received`` raised ``exc``: a socket transport closes, as
        asyncio's do."""
        self._fatal_error(exc, _DATA_RECEIVED_FAILED)

    def _on_batched_read(self, a: int, b: int) -> None:
        """Bytes ``[a, b)`` of the loop's batch that ``ReadEngine.dispatch`` did not deliver
        itself: the transport is paused, closing or buffered now."""
        if self._closing or self._handle is None:
            return  # close() promises no more data_received
        self._hold_or_deliver(self._rview[a:b])

    def _on_status(self, status: int) -> None:
        """EOF or a read error (a libuv status) from the loop's batch; or UV_ENOBUFS: the
        stream is readable and C left the reading to Python (``_read_self``)."""
        if self._closing or self._handle is None:
            return
        if status == _UV_ENOBUFS:
            if self._buffered:
                self._read_into_protocol()
            else:
                self._read_self()
            return
        self._hold_or_deliver(status)

    def _read_self(self) -> None:
        """Read what waits on the descriptor into a ``bytes`` of its size (``os.read``) and
        deliver it: for a stream whose last read was large, C offers libuv no arena buffer
        (_c/reads.c, "Large reads"), which saves the copy out of the arena. A read smaller
        than ``_SELF_READ_BELOW`` hands the stream back to the arena. Paused (or with reads
        held for ``resume_reading``), libuv is not reading and the bytes wait in the kernel.
        EOF and errors end reading as libuv's would.

        The size: ``_read_guess`` when positive, which ``os.read`` trims to what came; else
        FIONREAD's count (one more system call, ~1 µs here), after which the guess is that
        count and one byte, or what it was if larger (a guess does not shrink on a read that
        caught half a message). One byte: a stream of same-size messages then never fills its
        guess, and trimming one byte off leaves glibc's chunk as it is (it splits off no
        remainder under 32 bytes), so the heap sees the exact sizes FIONREAD gave. (An eighth
        of slack left a free remainder behind every read and cost more: bench/README.md, "Lab
        notes".) A guess that came back full is remembered
        half as large again (negative: ask next time; what is left is read on the next turn).
        No guess above ``_GUESS_MAX``."""
        if self._paused or self._stash is not None:
            return
        fd = self._fd
        guess = self._read_guess
        try:
            if guess > 0:
                data = _os_read(fd, guess)
            else:
                # FIONREAD's count, at most asyncio's max_size; 0 (EOF, or a count it cannot
                # give): a read of 64 KiB, which finds the EOF or the bytes
                data = _os_read(fd, min(_readable(fd), _READ_MAX) or 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, f"Fatal read error on {self._KIND} transport")
            return
        n = len(data)
        if not n:
            self._handle.stop_reading()
            self._on_eof()
            return
        if n < _SELF_READ_BELOW:
            self._handle.read_to_arena()
            self._read_guess = 0
        elif guess > 0:
            if n == guess:
                self._read_guess = -min(guess + (guess >> 1), _GUESS_MAX)
        else:
            guess = max(n + 1, -guess)
            self._read_guess = guess if guess <= _GUESS_MAX else 0
        self._deliver(data)

    def _read_into_protocol(self) -> None:
        """A ``BufferedProtocol``'s stream is readable (its reads are always Python's,
        ``Stream.start_reading``): read straight into ``get_buffer(-1)``, then ``buffer_updated``,
        as asyncio's transports do with ``recv_into`` -- in turn, after the callbacks that were
        ready before the poll."""
        if self._paused or self._stash is not None:
            return
        try:
            buf = self._protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            n = self._recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, f"Fatal read error on {self._KIND} transport")
            return
        if not n:
            self._handle.stop_reading()
            self._on_eof()
            return
        try:
            self._protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _recv_into(self, buf: memoryview) -> int:
        """Read what waits into ``buf``: a pipe's way (``StreamTransport`` has a socket)."""
        if _os_readv is not None:
            return _os_readv(self._fd, (buf,))  # type: ignore[no-any-return]
        data = _os_read(self._fd, len(buf))
        memoryview(buf)[:len(data)] = data
        return len(data)

    def _hold_or_deliver(self, item: Union[bytes, int]) -> None:
        """Bytes (or an EOF/error code) read before the protocol could take them at once."""
        if self._paused or self._stash is not None:
            if self._stash is None:
                self._stash = []
                self._set_fast()
            self._stash.append(item)
            return
        self._deliver(item)

    def _deliver(self, item: Union[bytes, int]) -> None:
        """Bytes (or an EOF/error code) read earlier, to whichever protocol is set now."""
        if type(item) is int:
            self._read_ended(item)
            return
        if self._data_received is not None:
            try:
                self._data_received(item)  # type: ignore[arg-type]  # bytes: an int went above
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._data_received_failed(exc)
            return
        try:
            self._feed_buffered(item)  # type: ignore[arg-type]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _feed_buffered(self, data: bytes) -> None:
        """Give ``data`` to the ``BufferedProtocol`` through as many ``get_buffer`` calls as it
        takes. Should ``buffer_updated`` pause or close the transport, or set another protocol,
        the rest waits for ``resume_reading``, is dropped, or goes to the new protocol."""
        proto = self._protocol
        mv = memoryview(data)
        while mv:
            buf = memoryview(proto.get_buffer(len(mv)))
            n = min(len(buf), len(mv))
            if not n:
                raise RuntimeError("get_buffer() returned an empty buffer")
            buf[:n] = mv[:n]
            proto.buffer_updated(n)
            mv = mv[n:]
            if mv and (proto is not self._protocol or self._paused or self._closing):
                if self._closing:
                    return
                rest = bytes(mv)
                if self._paused:  # first in line: anything stashed was read after it
                    if self._stash is None:
                        self._stash = []
                        self._set_fast()
                    self._stash.insert(0, rest)
                else:
                    self._deliver(rest)
                return

    def _unstash(self) -> None:
        """Scheduled by ``resume_reading``: deliver what was read while paused, then read on."""
        stash = self._stash
        if stash is None:
            return  # an earlier _unstash delivered it all
        ended = False
        while stash and not self._paused and not self._closing:
            item = stash.pop(0)
            self._deliver(item)
            if type(item) is int:  # EOF or an error: the last read (libuv stopped reading)
                ended = True
                stash.clear()
        if not stash:
            self._stash = None
            self._set_fast()
            if not ended and not self._paused and not self._closing:
                self._start_reading()

    def _on_eof(self) -> None:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()


class _Writer(_Base):
    """The write side: try now, else one uv_write in flight plus a Python queue behind it."""

    _eof = False  # write_eof() was called
    _shutdown_sent = False
    _inflight = 0  # bytes handed to the uv_write in flight (0: none in flight)
    _wbuf_size = 0
    _empty_waiter: Optional[asyncio.Future[None]] = None  # loop.sendfile waits here for the queue to drain
    # The one flag write() tests: nothing in flight, connection not lost, no EOF written, no
    # sendfile running. Recomputed (_set_wready) wherever one of those changes.
    _wready = False
    # The context a write's completion runs in (resume_writing, a write error, what they
    # schedule): asyncio's writer handle's, registered by the write() that left bytes behind
    # with nothing pending -- a copy of that caller's context, kept while writes are pending.
    _write_ctx: Optional[contextvars.Context] = None
    # How asyncio's writelines() takes its arguments here: joined (b"".join) by every
    # transport before 3.12 and by pipes always; a memoryview of each by sockets from 3.12.
    _WRITELINES_JOINS = sys.version_info < (3, 12)

    _sptr = None  # the handle's pointer, for write()'s inline copy of Stream.try_write only

    def _init_writer(self) -> None:
        self._wbuf: List[_Bytes] = []

    def _init_base(self, loop: Loop, handle: Stream, protocol: asyncio.BaseProtocol,
                   extra: Dict[str, Any]) -> None:
        self._sptr = handle._sptr
        super()._init_base(loop, handle, protocol, extra)

    def _set_wready(self) -> None:
        """The one place that computes ``_wready``. True only while the handle is open, which
        is what lets ``write()`` pass its pointer to C."""
        h = self._handle
        self._wready = (not self._inflight and not self._conn_lost and not self._eof
                        and self._empty_waiter is None and h is not None and not h.is_closing())

    def get_write_buffer_size(self) -> int:
        """Bytes accepted by ``write()`` and not yet taken by the kernel."""
        n = self._wbuf_size
        if self._inflight and self._handle is not None:
            n += self._handle.write_queue_size
        return n

    def write(self, data: _Bytes) -> None:
        """Send ``data`` (bytes-like); never blocks. See the module docstring for the path taken."""
        if self._wready and type(data) is bytes:
            # Stream.try_write(data), inlined: the call costs ~500 instructions per write on
            # CPython 3.11 (~8% of a 1 KiB unix echo's request); _wready holds the handle open
            left = _try_write(self._sptr, data, len(data))
            if left:
                self._write_rest(data, left)
            return
        self._write_slow(data)

    def _check_write(self, data: object) -> bool:
        """asyncio's argument and state checks; False when the data is to be dropped."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return False
        if self._conn_lost:
            if self._conn_lost >= _LOG_THRESHOLD:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return False
        return True

    def _write_slow(self, data: _Bytes) -> None:
        if not self._check_write(data):
            return
        if self._gone():
            return
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse its buffer once write() returns
        if self._inflight:
            self._wbuf.append(data)
            self._wbuf_size += len(data)
            self._maybe_pause_protocol()
            return
        left = self._handle.try_write(data)
        if left:
            self._write_rest(data, left)

    def _write_rest(self, data: _Bytes, left: int) -> None:
        """The kernel did not take the last ``left`` bytes of ``data`` (or failed: ``left < 0``);
        send them with one ``uv_write``."""
        if left < 0:
            self._fatal_error(convert_error(left), f"Fatal write error on {self._KIND} transport")
            return
        self._write_ctx = _copy_context()
        if self._start_write([data], left, len(data) - left):
            self._maybe_pause_protocol()

    def _start_write(self, bufs: List[_Bytes], size: int, skip: int = 0) -> bool:
        """One ``uv_write`` of ``bufs`` (``size`` bytes once the first ``skip`` are left out):
        True once it is in flight, False after a fatal error."""
        status = self._handle.write(bufs, skip)
        if status < 0:
            self._fatal_error(convert_error(status), f"Fatal write error on {self._KIND} transport")
            return False
        self._inflight = size
        self._set_wready()
        return True

    def writelines(self, list_of_data: Iterable[_Bytes]) -> None:
        """Send every buffer of ``list_of_data`` as one write: joined into one ``write()``
        under ``_VECTOR_MIN`` bytes in all (copying that much costs less than a write request
        and its completion); from there on, with nothing in flight, one vectored ``uv_write``
        of the buffers themselves (libuv's ``writev`` right away; what the kernel does not take
        waits for the socket, like any queued write). ``bytearray`` and ``memoryview`` items
        are copied first: the caller may reuse them once this returns.

        The arguments are judged as asyncio judges them (``_WRITELINES_JOINS``): either by
        ``b"".join`` (any C-contiguous buffer; ``TypeError`` for anything else, released views
        included), or, for sockets from 3.12 on, by ``memoryview()`` after the state checks
        (``ValueError`` for a released view, ``TypeError`` for a non-buffer)."""
        if self._WRITELINES_JOINS:
            items = [d if type(d) is bytes else _join((d,)) for d in list_of_data]
        else:
            if self._eof:
                raise RuntimeError("Cannot call writelines() after write_eof()")
            if self._empty_waiter is not None:
                raise RuntimeError("unable to writelines; sendfile is in progress")
            if not list_of_data:
                return
            items = [d if type(d) is bytes else memoryview(d).tobytes() for d in list_of_data]
            if not items:
                return
        if len(items) == 1:
            self.write(items[0])
            return
        total = sum(map(len, items))  # all bytes now
        if total < _VECTOR_MIN or not self._wready:
            self.write(b"".join(items))
            return
        self._write_ctx = _copy_context()
        if self._start_write([d for d in items if d], total):
            self._maybe_pause_protocol()

    def _on_write_done(self, status: int) -> None:
        # from libuv (handles/stream.py routes it here), during uv_run
        ctx = self._write_ctx
        if ctx is None:
            self._write_done(status)
        else:
            ctx.run(self._write_done, status)

    def _write_done(self, status: int) -> None:
        self._inflight = 0
        if self._gone():
            return  # cancelled by our own close
        self._set_wready()
        if status < 0:
            self._fatal_error(convert_error(status), f"Fatal write error on {self._KIND} transport")
            return
        if self._wbuf:
            bufs = self._wbuf
            size = self._wbuf_size
            self._wbuf = []
            self._wbuf_size = 0
            if not self._start_write(bufs, size):
                return
        self._maybe_resume_protocol()
        if self._inflight:
            if self._eof and not self._shutdown_sent:
                self._shutdown()  # libuv runs it after the write just queued
            return
        if self._empty_waiter is not None:
            self._empty_waiter.set_result(None)
        if self._closing:
            self._schedule_lost(None)
        elif self._eof and not self._shutdown_sent:
            self._shutdown()

    def _drop_writes(self) -> None:
        self._wbuf.clear()
        self._wbuf_size = 0

    def _drained(self) -> bool:
        return not self._inflight and not self._wbuf

    def _gone(self) -> bool:
        """The handle was closed under this transport (``Loop.close()``): nothing may reach
        libuv any more. asyncio's transport outlives its loop with its socket open, so a write
        there raises nothing; here the bytes are dropped, silently too."""
        h = self._handle
        return h is None or h.is_closing()

    def _shutdown(self) -> None:
        if self._gone():
            return
        self._shutdown_sent = True
        status = self._handle.shutdown()
        if status < 0 and status != lib.UV_ENOTCONN:
            raise convert_error(status)

    # -- loop.sendfile support -------------------------------------------------------------
    def _make_empty_waiter(self) -> asyncio.Future[None]:
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        self._set_wready()
        if self._drained():
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None
        self._set_wready()


# --------------------------------------------------------------------------------- sockets
class StreamTransport(_Reader, _Writer, _FlowControlMixin):  # type: ignore[misc]  # (_compat's mixin: Any to the checker)
    """A connected stream socket (TCP or unix) on a libuv stream handle.

    Built from a connected, non-blocking ``socket.socket``; libuv takes over its descriptor
    (the socket object is detached when libuv closes it).
    """

    _start_tls_compatible = True
    _sendfile_compatible = _SendfileMode.TRY_NATIVE
    _sock: Optional[socket.socket] = None

    def _watch_state(self) -> List[str]:
        # asyncio's socket transports: "polling" while the side waits on the descriptor;
        # nothing once closed (asyncio drops its loop with its socket)
        if self._handle is None:
            return []
        size = self.get_write_buffer_size()
        return ["read=polling" if self.is_reading() else "read=idle",
                f"write=<{'polling' if size else 'idle'}, bufsize={size}>"]

    def __init__(self, loop: Loop, sock: socket.socket, protocol: asyncio.BaseProtocol,
                 waiter: Optional[asyncio.Future[Any]] = None, extra: Optional[Dict[str, Any]] = None,
                 server: Optional[Server] = None) -> None:
        _FlowControlMixin.__init__(self, extra, loop)
        self._init_writer()
        extra = self._extra
        extra["socket"] = TransportSocket(sock)
        try:
            extra["sockname"] = sock.getsockname()
        except OSError:
            extra["sockname"] = None
        if "peername" not in extra:
            try:
                extra["peername"] = sock.getpeername()
            except OSError:
                extra["peername"] = None
        fd = sock.fileno()
        if sock.family == socket.AF_UNIX:
            handle: Union[Pipe, TCP] = Pipe(loop, fd=fd)
        else:
            handle = TCP(loop, fd)
            # asyncio's rule (base_events._set_nodelay): TCP sockets made as IPPROTO_TCP only
            if sock.type == socket.SOCK_STREAM and sock.proto == socket.IPPROTO_TCP and \
                    sock.family in (socket.AF_INET, socket.AF_INET6):
                handle.nodelay(True)
        self._sock = sock
        self._init_base(loop, handle, protocol, extra)
        self._set_wready()
        if server is not None:
            self._server = server
            server._attach(self)
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._begin_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _recv_into(self, buf: memoryview) -> int:
        return self._sock.recv_into(buf)  # type: ignore[union-attr]  # open while reading

    def _detach_fd(self) -> None:
        self._set_wready()
        sock = self._sock
        if sock is not None:
            self._sock = None
            sock.detach()

    def close(self) -> None:
        """Stop reading; once queued writes are sent, close and call ``connection_lost(None)``."""
        if self._closing:
            return
        self._begin_closing()
        self._stop_reading()
        if self._drained():
            self._schedule_lost(None)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Half-close: send FIN after the queued writes; ``write()`` raises afterwards."""
        if self._closing or self._eof:
            return
        self._eof = True
        self._set_wready()
        if not self._wbuf:
            self._shutdown()


# --------------------------------------------------------------------------------- pipes
def _epoll_refuses(fd: int) -> Optional[OSError]:
    """The error epoll gives for watching ``fd`` (e.g. EPERM for /dev/null), or None."""
    ep = select.epoll()
    try:
        ep.register(fd, select.EPOLLIN)
    except OSError as exc:
        return exc
    finally:
        ep.close()
    return None


def _check_pipe(pipe: Any, message: str) -> Tuple[int, int]:
    fd = pipe.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        raise ValueError(message)
    return fd, mode


class _PipeMixin(_Base):
    """What asyncio's pipe transports do differently from its socket transports."""

    _KIND = "pipe"
    _pipe: Any = None  # the user's file object, closed with the transport (libuv has a dup)

    # OSErrors kept out of the exception handler (a debug log only), as asyncio's pipe
    # transports do: None for every OSError (the write side), else these errnos (the read side).
    _quiet_errnos: Optional[Tuple[int, ...]] = None
    _unpollable: Optional[OSError] = None  # why epoll cannot watch this descriptor, if it cannot

    def __repr__(self) -> str:
        # asyncio's pipe reprs: "closed"/"closing", the fd, then the watch state while the
        # loop runs ("polling"/"idle", and the write side's bufsize), "open" once the loop is
        # closed with the pipe still open, "closed" when the pipe is gone.
        info = [self.__class__.__name__]
        if self._handle is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fd}")
        if self._handle is None:
            info.append("closed")
        elif self._loop is None or self._loop.is_closed():
            info.append("open")
        else:
            info.extend(self._watch_state())
        return "<{}>".format(" ".join(info))

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on pipe transport") -> None:
        if isinstance(exc, OSError) and (self._quiet_errnos is None or exc.errno in self._quiet_errnos):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._report(exc, message)
        self._close(exc)

    def _close(self, exc: Optional[BaseException] = None) -> None:
        if self._lost_scheduled:
            return
        self._begin_closing()
        self._drop_writes()
        self._stop_reading()
        self._schedule_lost(exc)

    _force_close = _close

    def _release(self) -> None:
        super()._release()
        pipe = self._pipe
        if pipe is not None:
            self._pipe = None
            pipe.close()

    @classmethod
    def _open(cls, loop: Loop, pipe: Any, protocol: asyncio.BaseProtocol,
              waiter: Optional[asyncio.Future[Any]], extra: Optional[Dict[str, Any]], message: str) -> Any:
        fd, mode = _check_pipe(pipe, message)
        # Some character devices (/dev/null) cannot be watched by epoll, and libuv aborts the
        # process when epoll refuses a descriptor it reads: ask epoll first, here.
        unpollable = _epoll_refuses(fd) if stat.S_ISCHR(mode) else None
        os.set_blocking(fd, False)
        dup = os.dup(fd)
        try:
            handle = Pipe(loop, fd=dup)
        except BaseException:
            os.close(dup)
            raise
        extra = dict(extra or {})
        extra["pipe"] = pipe
        self = cls.from_handle(loop, handle, protocol, waiter, extra)  # type: ignore[attr-defined]  # each subclass's
        self._pipe = pipe
        if unpollable is not None:
            self._unpollable = unpollable
        return self


class ReadPipeTransport(_PipeMixin, _Reader, _transports.ReadTransport):
    """The read end of a pipe (or a socket / character device used as one)."""

    @classmethod
    def from_handle(cls, loop: Loop, handle: Pipe, protocol: asyncio.BaseProtocol,
                    waiter: Optional[asyncio.Future[Any]] = None,
                    extra: Optional[Dict[str, Any]] = None) -> ReadPipeTransport:
        """Wrap an open ``handles.pipe.Pipe`` (e.g. a child's stdout after ``uv_spawn``)."""
        self = cls.__new__(cls)
        _transports.ReadTransport.__init__(self, extra)
        self._init_base(loop, handle, protocol, self._extra)
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._begin_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return self

    _quiet_errnos = (errno.EIO,)  # a pty whose other side closed: the end, not an error

    def _watch_state(self) -> List[str]:
        return ["polling" if self.is_reading() else "idle"]

    def _data_received_failed(self, exc: BaseException) -> None:
        # asyncio's read pipe calls data_received from its reader callback unguarded: the error
        # reaches the exception handler as that callback's, and the pipe reads on.
        cb = _format_callback_source(self._data_received, ())
        self._loop.call_exception_handler({
            "message": f"Exception in callback {cb}",
            "exception": exc,
            "transport": self,
            "protocol": self._protocol,
        })

    def _begin_reading(self) -> None:
        if self._unpollable is not None:  # never handed to libuv (see _PipeMixin._open)
            self._started = True
            self._fatal_error(self._unpollable, "Fatal read error on pipe transport")
            return
        super()._begin_reading()

    @classmethod
    def open(cls, loop: Loop, pipe: Any, protocol: asyncio.BaseProtocol,
             waiter: Optional[asyncio.Future[Any]] = None,
             extra: Optional[Dict[str, Any]] = None) -> ReadPipeTransport:
        """``loop.connect_read_pipe``'s transport; ``ValueError`` for a regular file."""
        return cls._open(  # type: ignore[no-any-return]
            loop, pipe, protocol, waiter, extra, "Pipe transport is for pipes/sockets only.")

    def _on_eof(self) -> None:
        # asyncio's pipe rule: eof_received's answer is ignored, the transport closes.
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._begin_closing()
        self._loop.call_soon(self._protocol.eof_received)
        self._schedule_lost(None)

    def close(self) -> None:
        if not self._closing:
            self._close(None)


class WritePipeTransport(_PipeMixin, _Writer, _FlowControlMixin, _transports.WriteTransport):  # type: ignore[misc]
    """The write end of a pipe. When the reader goes away, ``connection_lost`` follows (at once
    if nothing is queued, with ``BrokenPipeError`` otherwise), as asyncio does: a poll on a
    duplicate of the descriptor sees the hang-up."""

    _WRITELINES_JOINS = True  # asyncio's WriteTransport.writelines, on every version
    _watch: Optional[Poll] = None  # Poll on _watch_fd
    _watch_fd = -1
    # where the hang-up is handled: asyncio's reader handle's context
    _peer_ctx: Optional[contextvars.Context] = None

    @classmethod
    def from_handle(cls, loop: Loop, handle: Pipe, protocol: asyncio.BaseProtocol,
                    waiter: Optional[asyncio.Future[Any]] = None,
                    extra: Optional[Dict[str, Any]] = None) -> WritePipeTransport:
        """Wrap an open ``handles.pipe.Pipe`` (e.g. a child's stdin after ``uv_spawn``)."""
        self = cls.__new__(cls)
        _FlowControlMixin.__init__(self, extra, loop)
        self._init_writer()
        self._init_base(loop, handle, protocol, self._extra)
        self._set_wready()
        loop.call_soon(self._protocol.connection_made, self)
        mode = os.fstat(self._fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            loop.call_soon(self._watch_peer)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return self

    @classmethod
    def open(cls, loop: Loop, pipe: Any, protocol: asyncio.BaseProtocol,
             waiter: Optional[asyncio.Future[Any]] = None,
             extra: Optional[Dict[str, Any]] = None) -> WritePipeTransport:
        """``loop.connect_write_pipe``'s transport; ``ValueError`` for a regular file."""
        return cls._open(loop, pipe, protocol, waiter, extra,  # type: ignore[no-any-return]
                         "Pipe transport is only for pipes, sockets and character devices")

    def _watch_peer(self) -> None:
        # scheduled by the constructor, as asyncio schedules its reader: this is its context
        if self._closing or self._handle is None:
            return
        self._peer_ctx = _copy_context()
        self._watch_fd = os.dup(self._fd)
        try:
            self._watch = Poll(self._loop, self._watch_fd)
            self._watch.start(lib.UV_READABLE, self._on_peer_event)
        except BaseException:
            self._unwatch()
            raise

    def _unwatch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._watch_fd >= 0:
            os.close(self._watch_fd)
            self._watch_fd = -1

    def _on_peer_event(self, status: int, events: int) -> None:
        # The write end became "readable" or errored: the reader closed the pipe. As asyncio's
        # reader callback, the hang-up is handled from the ready queue, after the callbacks
        # already there: a write() one of them makes meanwhile fails (BrokenPipeError).
        self._unwatch()
        self._loop.call_soon(self._peer_closed, context=self._peer_ctx)

    def _peer_closed(self) -> None:
        if self._lost_scheduled:
            return
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        if self._drained():
            self._close()
        else:
            self._close(BrokenPipeError())

    def _write_slow(self, data: _Bytes) -> None:
        # asyncio's pipe write() asserts the type (an AssertionError, not the sockets' TypeError)
        assert isinstance(data, (bytes, bytearray, memoryview)), repr(data)
        if data and self._closing:
            # asyncio drops writes after close()/write_eof() on a pipe
            if self._conn_lost >= _LOG_THRESHOLD:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        super()._write_slow(data)

    def _watch_state(self) -> List[str]:
        size = self.get_write_buffer_size()
        return ["polling" if size else "idle", f"bufsize={size}"]

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Close the pipe once queued data is written (a pipe has no half-close)."""
        if self._closing:
            return
        self._begin_closing()
        if self._drained():
            self._unwatch()
            self._schedule_lost(None)

    def close(self) -> None:
        if self._handle is not None and not self._closing:
            self.write_eof()

    def _release(self) -> None:
        self._unwatch()
        super()._release()

    def _stop_reading(self) -> None:
        self._unwatch()
