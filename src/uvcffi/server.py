"""``Server``: what ``create_server``/``create_unix_server`` return (asyncio 3.13's semantics).

Listening sockets are Python sockets watched by ``uv_poll`` (``loop._fds``, ``fds.py``); a ready
socket is drained with ``accept()`` up to ``backlog`` times per wake-up and each connection
becomes a ``StreamTransport`` at once (no task per connection unless TLS needs a handshake;
what the task gave asyncio's connections, a context of their own, each gets from a copy).
Accepting in Python keeps asyncio's behaviour where libuv's differs: when accept fails with
EMFILE/ENFILE/ENOBUFS/ENOMEM the server reports it to the exception handler, stops watching
the socket and retries after ``ACCEPT_RETRY_DELAY`` seconds, leaving pending connections in
the kernel's backlog (libuv's own listener would accept and drop them).

States: serving (watched) -> not serving (``close()``: sockets closed, ``_sockets is None``)
-> closed (every client transport detached: ``wait_closed()`` returns).
"""

from __future__ import annotations

import contextvars
import errno
import logging
import socket
from asyncio import events, exceptions, tasks
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from ._compat import ACCEPT_RETRY_DELAY, TransportSocket
from .transports import started as _started
from .transports.stream import StreamTransport

if TYPE_CHECKING:
    import asyncio
    import ssl

    from .loop import Loop, TimerHandle

__all__ = ["Server"]

logger = logging.getLogger("asyncio")

_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Server(events.AbstractServer):
    """A listening server; ``async with server:`` closes it and waits for its clients."""

    _sockets: Optional[List[socket.socket]] = None
    _serving = False
    _serving_forever_fut: Optional[asyncio.Future[None]] = None

    def __init__(self, loop: Loop, sockets: List[socket.socket],
                 protocol_factory: Callable[[], asyncio.BaseProtocol],
                 ssl_context: Optional[ssl.SSLContext], backlog: int,
                 ssl_handshake_timeout: Optional[float],
                 ssl_shutdown_timeout: Optional[float] = None) -> None:
        self._loop = loop
        self._sockets = sockets
        self._clients: Set[asyncio.Transport] = set()
        self._waiters: Optional[List[asyncio.Future[None]]] = []
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._retry_handles: List[TimerHandle] = []

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    def _attach(self, transport: asyncio.Transport) -> None:
        self._clients.add(transport)

    def _detach(self, transport: asyncio.Transport) -> None:
        self._clients.discard(transport)
        if not self._clients and self._sockets is None:
            self._wakeup()

    def _wakeup(self) -> None:
        waiters = self._waiters
        self._waiters = None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_serving(self) -> None:
        if self._serving:
            return
        self._serving = True
        for sock in self._sockets:  # type: ignore[union-attr]  # not closed: serving starts before
            sock.listen(self._backlog)
            self._watch(sock)

    def _watch(self, sock: socket.socket) -> None:
        if self._sockets is None or sock.fileno() < 0:
            return
        self._loop._fds.add(sock.fileno(), self._accept, (sock,), True)

    def _accept(self, sock: socket.socket) -> None:
        loop = self._loop
        for _ in range(self._backlog):
            try:
                conn, addr = sock.accept()
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise
                loop.call_exception_handler({
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": TransportSocket(sock),
                })
                loop._fds.remove(sock.fileno(), True)
                self._retry_handles.append(
                    loop.call_later(ACCEPT_RETRY_DELAY, self._retry, sock))
                return
            extra: Dict[str, Any] = {"peername": addr}
            if self._ssl_context is not None:
                loop.create_task(self._accept_tls(conn, extra))
            else:
                # asyncio makes each connection in a task of its own: the protocol factory and
                # the transport see a copy of the server's context, per connection
                contextvars.copy_context().run(self._accept_plain, conn, extra)

    def _retry(self, sock: socket.socket) -> None:
        self._retry_handles = [h for h in self._retry_handles if not h.cancelled() and h._scheduled]
        if self._serving:
            self._watch(sock)

    def _accept_plain(self, conn: socket.socket, extra: Dict[str, Any]) -> None:
        protocol = None
        try:
            protocol = self._protocol_factory()
            StreamTransport(self._loop, conn, protocol, None, extra, self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            conn.close()
            # asyncio tells the exception handler only in debug mode (the connection is the
            # peer's business, like an OSError on an established one)
            if self._loop.get_debug():
                context = {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                }
                if protocol is not None:
                    context["protocol"] = protocol
                self._loop.call_exception_handler(context)

    async def _accept_tls(self, conn: socket.socket, extra: Dict[str, Any]) -> None:
        loop = self._loop
        transport = None
        try:
            protocol = self._protocol_factory()
            waiter = loop.create_future()
            transport = loop._make_ssl_transport(
                conn, protocol, self._ssl_context, waiter, server_side=True, extra=extra, server=self,
                ssl_handshake_timeout=self._ssl_handshake_timeout,
                ssl_shutdown_timeout=self._ssl_shutdown_timeout)
            await _started(transport, waiter)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if transport is None:
                conn.close()
            if loop.get_debug():
                loop.call_exception_handler({
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                })

    # -- public API -----------------------------------------------------------------------
    def get_loop(self) -> Loop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> Tuple[TransportSocket, ...]:
        if self._sockets is None:
            return ()
        return tuple(TransportSocket(s) for s in self._sockets)

    def close(self) -> None:
        """Stop listening and close the listening sockets; connected clients stay open."""
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        for h in self._retry_handles:
            h.cancel()
        self._retry_handles = []
        for sock in sockets:
            self._loop._stop_serving(sock)
        self._serving = False
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if not self._clients:
            self._wakeup()

    def close_clients(self) -> None:
        """Close every connected client transport (queued data is sent first)."""
        for transport in self._clients.copy():
            transport.close()

    def abort_clients(self) -> None:
        """Abort every connected client transport (queued data is dropped)."""
        for transport in self._clients.copy():
            transport.abort()

    async def start_serving(self) -> None:
        """Start accepting connections (no-op if already serving)."""
        self._start_serving()
        await tasks.sleep(0)

    async def serve_forever(self) -> None:
        """Serve until cancelled; then close the server and wait for it. ``RuntimeError`` if
        already awaited elsewhere or closed."""
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except exceptions.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every client connection is gone."""
        if self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()
