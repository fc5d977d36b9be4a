"""The datagram transport: UDP (IPv4, IPv6) and unix datagram sockets, over one ``uv_poll_t``.

Why ``uv_poll_t`` and a Python socket, not ``uv_udp_t``. The transport owns a non-blocking
``socket.socket`` and libuv only tells it when the socket is readable or writable; the
datagrams themselves move through the socket's own ``recvfrom``/``sendto``/``send``:

* One code path for every family. ``uv_udp_t`` does not do ``AF_UNIX``, so a ``uv_udp_t``
  transport would need a second, poll-based one for unix datagram sockets anyway.
* Fewer crossings on the per-datagram path. With ``uv_udp_t`` a received datagram costs the
  C->Python callback plus a Python-side decode of the ``struct sockaddr`` through several
  cffi calls. A send is one ``socket.sendto`` call (C, no cffi at all) when nothing is queued,
  exactly asyncio's fast path; libuv is only asked to watch for writability when the kernel
  buffer is full.

Reading. An IPv4/IPv6 socket's poll is a ``DatagramPoll``: when it is readable, C itself reads
up to 32 datagrams (until ``EAGAIN``) into the loop's read arena, each after its sender's
``struct sockaddr``, and the loop's read engine (``read_engine.py``) hands them to
``_on_batched_read`` after ``uv_run`` with the stream reads of the turn: no C->Python callback
and no Python ``recvfrom`` per datagram, and one loop turn serves every datagram that arrived
meanwhile (asyncio's selector loop reads one per socket per turn). The sender's tuple comes
from a per-transport cache keyed by the raw address bytes (built like ``recvfrom``'s on a
miss). A datagram is read up to ``min(max_size, 64 KiB)`` bytes -- no UDP datagram is larger.
Unix datagram sockets (which can carry more) read in Python, one ``recvfrom_into`` per
readiness event.

* asyncio's error semantics for free: the same socket calls raise the same ``OSError``
  subclasses, so an oversized datagram (``EMSGSIZE``) and an ICMP "port unreachable" on a
  connected socket (``ECONNREFUSED``) reach ``protocol.error_received`` as on the stock loop.

One libuv quirk shapes the read side: when epoll reports ``EPOLLERR`` (a pending socket error,
e.g. an ICMP error queued on a connected UDP socket), ``uv_poll_t`` *stops itself* and reports
``UV_EBADF`` instead of the error. ``_on_poll`` then reads the socket to collect the real
error (which clears it), hands it to ``error_received``, and restarts the watcher.

Ownership: the transport owns the socket (``sock=`` sockets included, as in asyncio) and the
poll handle. Closing stops the poll first — ``uv_poll_stop``/``uv_close`` remove the fd from
epoll synchronously — then closes the socket; the poll handle's memory follows libuv's close
callback (``handles/base.py``).

States: open -> closing (``close()`` called, queued datagrams still flushing) -> lost
(``_conn_lost`` > 0: ``connection_lost`` scheduled) -> closed (``_sock`` is None).
"""

from __future__ import annotations

import collections
import contextvars
import logging
import operator
import os
import socket
import sys
import warnings
from asyncio import transports
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from .._binding import convert_error, lib
from .._compat import LOG_THRESHOLD_FOR_CONNLOST_WRITES as _LOG_THRESHOLD_FOR_CONNLOST_WRITES
from .._compat import TransportSocket, _FlowControlMixin
from .._future_helpers import set_result_unless_cancelled as _set_result_unless_cancelled
from ..handles.poll import DatagramPoll, Poll
from ..sock import set_reuseport, unlink_stale
from . import started

if TYPE_CHECKING:
    import asyncio
    from socket import _Address, _RetAddress

    from ..dns import Sockaddr
    from ..loop import Loop

    # an address as create_datagram_endpoint takes it: (host, port), or a unix socket's path
    _EndpointAddr = Union[Tuple[str, int], str, None]

__all__ = ["DatagramTransport"]

_ProtocolT = TypeVar("_ProtocolT", bound="asyncio.BaseProtocol")

logger = logging.getLogger("asyncio")

_READABLE = lib.UV_READABLE
_WRITABLE = lib.UV_WRITABLE
_EBADF = lib.UV_EBADF
_MAX_SIZE = 256 * 1024  # largest datagram read at once (asyncio's max_size)
# IPv4/IPv6 datagrams are read by C into the loop's read batch (at most 64 KiB each: no UDP
# datagram is larger); each sits after a slot holding its sender's struct sockaddr
_BATCHED_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_IP_MAX_DATAGRAM = 65536
# What a queued datagram adds to the write buffer size beyond its payload: 8 (a UDP header)
# from Python 3.13, as asyncio counts it there (taken off again when it is sent, as 3.13.6+
# does; 3.13.0-3.13.5 never took it off, gh-135444), none before.
_HEADER = 8 if sys.version_info >= (3, 13) else 0
_ADDR_SLOT = lib.UVCFFI_DGRAM_ADDR
_ADDR_LEN = 28  # sizeof(struct sockaddr_in6); a sockaddr_in is zero-padded to it
_ADDR_CACHE = 1024  # sender addresses remembered per transport
_NI_NUMERIC = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
# asyncio sends empty datagrams from 3.13 (before, sendto(b"") did nothing); then a released
# memoryview reaches the socket too, and its ValueError is a fatal error, not raised
_SENDS_EMPTY = sys.version_info >= (3, 13)
# asyncio 3.11+ gives datagram transports pause_reading/resume_reading/is_reading (before, only
# stream transports had them)
_PAUSES_READING = sys.version_info >= (3, 11)


class DatagramTransport(_FlowControlMixin, transports.DatagramTransport):  # type: ignore[misc]  # (_compat's: Any to the checker)
    """``asyncio.DatagramTransport`` over a non-blocking datagram socket watched by libuv."""

    _max_size = _MAX_SIZE

    @property
    def max_size(self) -> int:
        """The most bytes of a datagram one read takes (asyncio's attribute: the rest of a
        longer datagram is lost). Read at every read, as asyncio does; C's batched reads learn
        a new value at once."""
        return self._max_size

    @max_size.setter
    def max_size(self, value: int) -> None:
        value = operator.index(value)
        if value < 0:
            raise ValueError("max_size must be >= 0")  # recvfrom would refuse it at every read
        self._max_size = value
        poll = self._poll
        if isinstance(poll, DatagramPoll):
            poll.set_max_size(min(value, _IP_MAX_DATAGRAM))

    # Class attributes as defaults: a half-built transport still reprs and finalizes.
    # (_sock, _protocol and _loop: None in a half-built transport, and once closed)
    _sock: socket.socket = None  # type: ignore[assignment]  # None once connection_lost has run
    _poll: Optional[Poll] = None  # the uv_poll_t watching it; None once closing
    _protocol: asyncio.DatagramProtocol = None  # type: ignore[assignment]
    _loop: Loop = None  # type: ignore[assignment]  # (asyncio's _FlowControlMixin's slot)
    _extra: Dict[str, Any]  # (asyncio's BaseTransport's slot: get_extra_info)
    if TYPE_CHECKING:  # asyncio's _FlowControlMixin's, which typeshed leaves out
        def _maybe_pause_protocol(self) -> None: ...
        def _maybe_resume_protocol(self) -> None: ...
    _address: Optional[_Address] = None  # the connected peer (remote_addr), or None
    _connected = False  # the socket is connect()ed: send() instead of sendto()
    _closing = False  # close()/abort() called
    _paused = False  # pause_reading() called (3.11+): the poll does not watch _READABLE
    _conn_lost = 0  # > 0: connection_lost scheduled (or sends after it counted)
    _events = 0  # what the poll watches now: _READABLE | _WRITABLE
    _buffer_size = 0
    # The contexts the protocol's callbacks run in, as asyncio's reader and writer handles':
    # reads (datagram_received, error_received of a read) in a copy of the constructor's
    # context; a queue's completion (resume_writing, error_received of a queued send) in a
    # copy of the context of the sendto() that found the socket full with nothing queued.
    _read_ctx: contextvars.Context = None  # type: ignore[assignment]  # (None: half-built)
    _write_ctx: Optional[contextvars.Context] = None

    def __init__(self, loop: Loop, sock: socket.socket, protocol: asyncio.DatagramProtocol,
                 address: Optional[_Address] = None, waiter: Optional[asyncio.Future[None]] = None,
                 extra: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(extra, loop)  # type: ignore[call-arg]
        self._extra["socket"] = TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._connected = bool(self._extra["peername"])
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._protocol = protocol
        self._address = address
        # (bytes, addr) waiting for POLLOUT
        self._buffer: Deque[Tuple[bytes, Optional[_Address]]] = collections.deque()
        self._read_ctx = contextvars.copy_context()
        if sock.family in _BATCHED_FAMILIES:
            # C reads the datagrams into the loop's read engine (see the module docstring)
            self._poll = DatagramPoll(loop, self._sock_fd, min(self._max_size, _IP_MAX_DATAGRAM))
            self._poll.register_reads(self, self._read_ctx)  # until the poll closes
            self._arena = loop._reads.view
            self._addrs: Dict[bytes, Sockaddr] = {}
        else:
            self._poll = Poll(loop, self._sock_fd)
        self._rview = loop._reads.python_buffer(_MAX_SIZE)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)  # only once connection_made has run
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={getattr(self, '_sock_fd', -1)}")
        if self._sock is not None and self._loop is not None and not self._loop.is_closed():
            info.append("read=polling" if self._events & _READABLE else "read=idle")
            state = "polling" if self._events & _WRITABLE else "idle"
            info.append(f"write=<{state}, bufsize={self._buffer_size}>")
        return f"<{' '.join(info)}>"

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            poll = self._poll
            if poll is not None and not self._loop.is_closed():
                poll.close()
            self._sock.close()

    # ------------------------------------------------------------------ public API
    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]  # a DatagramProtocol

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        """Bytes of datagrams queued because the socket's send buffer was full."""
        return self._buffer_size

    def sendto(self, data: Union[bytes, bytearray, memoryview], addr: Optional[_Address] = None) -> None:
        """Send one datagram to ``addr`` (or the connected peer). Never blocks; never raises
        for a failed send: an ``OSError`` goes to ``protocol.error_received``, as in asyncio.
        ``TypeError`` for a non-bytes-like ``data``; ``ValueError`` for an ``addr`` other than
        the connected peer."""
        if type(data) is not bytes and not isinstance(data, (bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if not _SENDS_EMPTY and not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost and self._address:
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                if self._connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)  # type: ignore[arg-type]  # unconnected: given
                return
            except (BlockingIOError, InterruptedError):
                # queue it below and wait for POLLOUT
                self._write_ctx = contextvars.copy_context()
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._buffer.append((bytes(data), addr))  # immutable copy: the caller may reuse data
        self._buffer_size += len(data) + _HEADER
        self._set_events(self._events | _WRITABLE)
        self._maybe_pause_protocol()

    def close(self) -> None:
        """Stop receiving; ``connection_lost(None)`` follows once queued datagrams are sent."""
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._conn_lost += 1
            self._set_events(0)
            self._loop.call_soon(self._call_connection_lost, None)
        else:
            self._set_events(_WRITABLE)

    def abort(self) -> None:
        """Close at once, dropping queued datagrams; ``connection_lost(None)`` follows."""
        self._force_close(None)

    if _PAUSES_READING:

        def is_reading(self) -> bool:
            """False once paused or closing."""
            return not self._closing and not self._paused

        def pause_reading(self) -> None:
            """Stop watching for datagrams until ``resume_reading()``; nothing when paused or
            closing already. Datagrams read in the same turn are still delivered."""
            if not self.is_reading():
                return
            self._paused = True
            self._set_events(self._events & ~_READABLE)
            if self._loop.get_debug():
                logger.debug("%r pauses reading", self)

        def resume_reading(self) -> None:
            """Watch for datagrams again; nothing when not paused or closing."""
            if self._closing or not self._paused:
                return
            self._paused = False
            self._start_reading()
            if self._loop.get_debug():
                logger.debug("%r resumes reading", self)

    # ------------------------------------------------------------------ libuv side
    def _start_reading(self) -> None:
        if not self._closing and not self._paused and self._sock is not None:
            self._set_events(self._events | _READABLE)

    def _set_events(self, events: int) -> None:
        """Make the poll watch ``events`` (0: stop). The only place the poll is (re)armed."""
        poll = self._poll
        if poll is None or poll.is_closing():
            self._events = 0
            return
        if events == self._events:
            return
        self._events = events
        if events:
            poll.start(events, self._on_poll)
        else:
            poll.stop()

    def _on_poll(self, status: int, events: int) -> None:
        # from libuv, during uv_run: each side runs in its context (see _read_ctx)
        if events == _READABLE and status == 0:  # the per-datagram path, first
            if not self._conn_lost:
                self._read_ctx.run(self._read_ready)
            return
        if status < 0:
            self._read_ctx.run(self._on_poll_error, status)
            return
        if events & _WRITABLE:
            ctx = self._write_ctx
            if ctx is None:
                self._send_ready()
            else:
                ctx.run(self._send_ready)
        if events & _READABLE and not self._conn_lost and self._sock is not None:
            self._read_ctx.run(self._read_ready)

    def _on_poll_error(self, status: int) -> None:
        # libuv stopped the poll (EPOLLERR): fetch the socket's pending error, then re-arm.
        events, self._events = self._events, 0
        if status != _EBADF or self._sock is None or self._conn_lost:
            if not self._conn_lost:
                self._fatal_error(convert_error(status), "Fatal error on datagram transport")
            return
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._protocol.error_received(OSError(err, os.strerror(err)))
        if not self._conn_lost and self._sock is not None:
            self._set_events(events)

    def _on_batched_read(self, a: int, b: int) -> None:
        """A datagram C read into the loop's batch, in bytes ``[a, b)`` of the arena: from
        ``a`` rounded up to 8, the sender's ``struct sockaddr`` slot, then the datagram.
        (ReadEngine.dispatch calls this: datagrams never take its fast path.)"""
        if self._closing:
            return  # close() stops the reading; what the batch still holds is dropped
        arena = self._arena
        at = (a + 7) & ~7
        raw = arena[at:at + _ADDR_LEN]
        a = at + _ADDR_SLOT
        addr = self._addrs.get(raw)
        if addr is None:
            addr = self._sender(raw)
        if self._loop._ready:
            # Callbacks were ready before this turn's poll: asyncio runs them before the I/O
            # callbacks of the poll (a future created there must exist when the datagram
            # arrives). The bytes are a copy, the context is the reader's own.
            self._loop.call_soon(self._deliver_datagram, arena[a:b], addr, context=self._read_ctx)
            return
        self._protocol.datagram_received(arena[a:b], addr)  # type: ignore[arg-type]  # an IPv6 sender: 4 items

    def _deliver_datagram(self, data: bytes, addr: _RetAddress) -> None:
        if not self._closing:
            self._protocol.datagram_received(data, addr)

    def _on_status(self, status: int) -> None:
        """A failed ``recvfrom`` of C's batched reads: ``-status`` is its errno."""
        if not self._closing:
            self._protocol.error_received(OSError(-status, os.strerror(-status)))

    def _sender(self, raw: bytes) -> Sockaddr:
        """The address tuple ``socket.recvfrom`` would give for the ``struct sockaddr`` ``raw``
        (remembered: a server hears from the same peers again and again)."""
        family = int.from_bytes(raw[:2], sys.byteorder)
        port = int.from_bytes(raw[2:4], "big")
        addr: Sockaddr
        if family == socket.AF_INET:
            addr = (socket.inet_ntop(family, raw[4:8]), port)
        else:
            flowinfo = int.from_bytes(raw[4:8], "big")
            host = socket.inet_ntop(family, raw[8:24])
            scope_id = int.from_bytes(raw[24:28], sys.byteorder)
            if scope_id:  # link-local: the host names its interface, as recvfrom's does
                host = socket.getnameinfo((host, port, flowinfo, scope_id), _NI_NUMERIC)[0]
            addr = (host, port, flowinfo, scope_id)
        if len(self._addrs) >= _ADDR_CACHE:
            self._addrs.clear()
        self._addrs[raw] = addr
        return addr

    def _read_ready(self) -> None:
        # Into the loop's buffer, then a copy of just the datagram: recvfrom(max_size) would
        # allocate 256 KiB per datagram (mmap, mremap to shrink, munmap: three system calls
        # more per packet). Only this callback uses the buffer, and copies out before calling
        # the protocol.
        view = self._rview
        size = self._max_size
        try:
            if size <= len(view):
                n, addr = self._sock.recvfrom_into(view, size)
                data = view[:n].tobytes()
            else:  # a max_size raised past the loop buffer
                data, addr = self._sock.recvfrom(size)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._protocol.error_received(exc)  # asyncio's rule: the protocol's business
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
        else:
            if self._loop._ready:  # as in _on_batched_read: earlier callbacks first
                self._loop.call_soon(self._deliver_datagram, data, addr, context=self._read_ctx)
                return
            self._protocol.datagram_received(data, addr)

    def _send_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer.popleft()
            self._buffer_size -= len(data) + _HEADER
            try:
                if self._connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)  # type: ignore[arg-type]  # unconnected: given
            except (BlockingIOError, InterruptedError):
                buffer.appendleft((data, addr))  # try again on the next POLLOUT
                self._buffer_size += len(data) + _HEADER
                break
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._maybe_resume_protocol()  # may queue more
        if not buffer:
            self._set_events(self._events & ~_WRITABLE)
            if self._closing and not self._conn_lost:
                self._conn_lost += 1
                self._call_connection_lost(None)

    # ------------------------------------------------------------------ closing
    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._force_close(exc)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
        self._closing = True
        self._set_events(0)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Optional[BaseException]) -> None:
        try:
            self._protocol.connection_lost(exc)  # type: ignore[arg-type]  # as asyncio's: any error
        finally:
            poll, self._poll = self._poll, None
            if poll is not None:
                poll.close()  # takes the fd out of epoll now; memory freed on libuv's close cb
            self._events = 0
            sock, self._sock = self._sock, None  # type: ignore[assignment]
            if sock is not None:
                sock.close()
            self._protocol = None  # type: ignore[assignment]
            self._loop = None  # type: ignore[assignment]


async def open_endpoint(loop: Loop, protocol_factory: Callable[[], _ProtocolT], local_addr: _EndpointAddr,
                        remote_addr: _EndpointAddr, family: int, proto: int, flags: int,
                        reuse_port: Optional[bool], allow_broadcast: Optional[bool],
                        sock: Optional[socket.socket]) -> Tuple[DatagramTransport, _ProtocolT]:
    """``Loop.create_datagram_endpoint`` once its ``reuse_address`` is judged: every way it
    ends is written there."""
    loop._check_closed()
    r_addr = None
    if sock is not None:
        if sock.type != socket.SOCK_DGRAM:
            raise ValueError(f"A UDP Socket was expected, got {sock!r}")
        given = dict(local_addr=local_addr, remote_addr=remote_addr, family=family, proto=proto,
                     flags=flags, reuse_port=reuse_port, allow_broadcast=allow_broadcast)
        problems = ", ".join(f"{k}={v}" for k, v in given.items() if v)
        if problems:
            raise ValueError("socket modifier keyword arguments can not be used when sock is "
                             f"specified. ({problems})")
        sock.setblocking(False)
    else:
        pairs = await _address_pairs(loop, local_addr, remote_addr, family, proto, flags)
        errors: List[OSError] = []
        for (fam, pro), (local_address, remote_address) in pairs:
            sock = None
            try:
                sock = socket.socket(family=fam, type=socket.SOCK_DGRAM, proto=pro)
                if reuse_port:
                    set_reuseport(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local_address)
                if remote_addr:
                    if not allow_broadcast:
                        sock.connect(remote_address)  # datagram connect never blocks
                    r_addr = remote_address
            except OSError as exc:
                if sock is not None:
                    sock.close()
                errors.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
            else:
                break
        else:
            raise errors[0]

    try:
        protocol = protocol_factory()
    except BaseException:
        sock.close()
        raise
    waiter = loop.create_future()
    transport = DatagramTransport(loop, sock, protocol, r_addr, waiter)  # type: ignore[arg-type]  # a DatagramProtocol
    if loop._debug:
        logger.debug("Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                     local_addr, remote_addr, transport, protocol)
    await started(transport, waiter)
    return transport, protocol


async def _address_pairs(
        loop: Loop, local_addr: _EndpointAddr, remote_addr: _EndpointAddr, family: int, proto: int,
        flags: int) -> Sequence[Tuple[Tuple[int, int], Sequence[Any]]]:
    """``[((family, proto), (local_address, remote_address)), ...]`` to try in order."""
    if not (local_addr or remote_addr):
        if family == 0:
            raise ValueError("unexpected address family")
        return [((family, proto), (None, None))]
    if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
        for addr in (local_addr, remote_addr):
            if addr is not None and not isinstance(addr, str):
                raise TypeError("string is expected")
        if local_addr:
            unlink_stale(local_addr)  # type: ignore[arg-type]  # AF_UNIX: a path
        return [((family, proto), (local_addr, remote_addr))]
    infos_by_key: Dict[Tuple[int, int], List[Any]] = {}  # insertion-ordered: the resolver's preference
    for idx, addr in ((0, local_addr), (1, remote_addr)):
        if addr is None:
            continue
        if not (isinstance(addr, tuple) and len(addr) == 2):
            raise TypeError("2-tuple is expected")
        infos = await loop._resolver.ensure_resolved(addr, family=family, type=socket.SOCK_DGRAM,
                                                 proto=proto, flags=flags)
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        for fam, _, pro, _, address in infos:
            infos_by_key.setdefault((fam, pro), [None, None])[idx] = address
    pairs = [(key, pair) for key, pair in infos_by_key.items()
             if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))]
    if not pairs:
        raise ValueError("can not get address information")
    return pairs
