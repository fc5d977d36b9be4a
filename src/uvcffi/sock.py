"""The ``sock_*`` coroutines and ``add_reader``/``add_writer``, on the loop's fd watches (``fds.py``).

The ``sock_*`` coroutines follow asyncio's selector loop: try the non-blocking call first,
register for readiness only when it would block, unregister when the future is done
(cancellation included). Errors are the socket module's own ``OSError``s.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple, TypeVar, Union

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures
    from contextvars import Context
    from socket import _Address, _RetAddress

    from _typeshed import FileDescriptorLike, ReadableBuffer, WriteableBuffer
    from typing_extensions import TypeVarTuple, Unpack

    from .dns import Resolver
    from .fds import FdWatches

    _Ts = TypeVarTuple("_Ts")

__all__ = ["SockMixin", "set_reuseport", "unlink_stale"]

_T = TypeVar("_T")

logger = logging.getLogger("asyncio")


class SockMixin:
    """``add_reader``/``add_writer`` and ``sock_*`` for ``uvcffi.Loop``."""

    if TYPE_CHECKING:  # what the mixins use of Loop (loop.py)
        _debug: bool
        _fds: FdWatches
        _resolver: Resolver

        def get_debug(self) -> bool: ...
        def create_future(self) -> asyncio.Future[Any]: ...
        def call_soon(self, callback: Callable[..., object], *args: Any,
                      context: Optional[Context] = None) -> asyncio.Handle: ...
        def run_in_executor(self, executor: Optional[concurrent.futures.Executor],
                            func: Callable[..., _T], *args: Any) -> asyncio.Future[_T]: ...

    def add_reader(self, fd: FileDescriptorLike, callback: Callable[[Unpack[_Ts]], object],
                   *args: Unpack[_Ts]) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is readable (replaces an earlier reader).
        ``RuntimeError`` if the loop is closed or a transport owns ``fd``; ``ValueError``
        for a bad descriptor; ``OSError`` if it cannot be watched."""
        fds = self._fds
        fds.ensure_no_transport(fd)
        fds.add(fd, callback, args, True)

    def remove_reader(self, fd: FileDescriptorLike) -> bool:
        """Stop watching ``fd`` for reading; True if a reader was registered."""
        fds = self._fds
        fds.ensure_no_transport(fd)
        return fds.remove(fd, True)

    def add_writer(self, fd: FileDescriptorLike, callback: Callable[[Unpack[_Ts]], object],
                   *args: Unpack[_Ts]) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is writable (replaces an earlier writer);
        errors as ``add_reader``."""
        fds = self._fds
        fds.ensure_no_transport(fd)
        fds.add(fd, callback, args, False)

    def remove_writer(self, fd: FileDescriptorLike) -> bool:
        """Stop watching ``fd`` for writing; True if a writer was registered."""
        fds = self._fds
        fds.ensure_no_transport(fd)
        return fds.remove(fd, False)

    # -- sock_* ------------------------------------------------------------------------------
    def _check_sock(self, sock: socket.socket) -> None:
        _check_ssl_socket(sock)
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    async def _sock_io(self, sock: socket.socket, attempt: Callable[[], _T], read: bool) -> _T:
        """Call ``attempt()`` at once, and again on each readiness while it raises
        ``BlockingIOError`` (``_wait_ready``). Cancelled: the registration is removed and
        ``CancelledError`` propagates."""
        try:
            return attempt()
        except (BlockingIOError, InterruptedError):
            pass
        fd = sock.fileno()
        self._fds.ensure_no_transport(fd)
        return await self._wait_ready(fd, attempt, read)

    async def _wait_ready(self, fd: int, attempt: Callable[[], _T], read: bool) -> _T:
        """Wait until ``fd`` is readable (``read``) or writable, then return ``attempt()``:
        the one wait for a descriptor of the loop's socket calls (``sock_*``,
        ``sock_connect``, ``sendfile``). While ``attempt()`` raises ``BlockingIOError``/
        ``InterruptedError`` it waits for the next readiness; any other exception ends the
        wait with it. ``attempt`` runs in the readiness callback, as asyncio's selector loop
        retries its calls, so no turn passes between the event and the call. Cancelled: the
        registration is removed and ``CancelledError`` propagates."""
        fds = self._fds
        fut: asyncio.Future[_T] = self.create_future()

        def on_ready() -> None:
            if fut.done():
                return
            try:
                result = attempt()
            except (BlockingIOError, InterruptedError):
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        handle = fds.add(fd, on_ready, (), read)
        try:
            return await fut
        finally:
            fds.remove_handle(fd, handle, read)
            fut = None  # type: ignore[assignment]  # break the cycle with an exception's traceback

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        """Receive up to ``n`` bytes from non-blocking ``sock``; b"" at EOF."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.recv(n), True)

    async def sock_recv_into(self, sock: socket.socket, buf: WriteableBuffer) -> int:
        """Receive into ``buf``; returns the number of bytes received."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.recv_into(buf), True)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> Tuple[bytes, _RetAddress]:
        """Receive a datagram of up to ``bufsize`` bytes; returns ``(data, address)``."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.recvfrom(bufsize), True)

    async def sock_recvfrom_into(self, sock: socket.socket, buf: WriteableBuffer,
                                 nbytes: int = 0) -> Tuple[int, _RetAddress]:
        """Receive a datagram into ``buf``; returns ``(nbytes, address)``."""
        self._check_sock(sock)
        if not nbytes:
            nbytes = len(buf)  # type: ignore[arg-type]  # as socket does
        return await self._sock_io(sock, lambda: sock.recvfrom_into(buf, nbytes), True)

    async def sock_sendto(self, sock: socket.socket, data: ReadableBuffer, address: _Address) -> int:
        """Send a datagram to ``address``; returns the number of bytes sent."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.sendto(data, address), False)

    async def sock_sendall(self, sock: socket.socket, data: ReadableBuffer) -> None:
        """Send all of ``data``; returns None. On error some data may have been sent."""
        self._check_sock(sock)
        view = memoryview(data)
        total = len(view)
        sent = 0
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            pass
        while sent < total:
            def attempt(start: int = sent) -> int:
                return sock.send(view[start:])
            sent += await self._sock_io(sock, attempt, False)

    async def sock_connect(self, sock: socket.socket, address: _Address) -> None:
        """Connect ``sock`` to ``address`` (resolved first unless already numeric)."""
        self._check_sock(sock)
        if sock.family == socket.AF_INET or (hasattr(socket, "AF_INET6") and sock.family == socket.AF_INET6):
            resolved = await self._resolver.ensure_resolved(address, family=sock.family,  # type: ignore[arg-type]
                                                            type=sock.type, proto=sock.proto)
            _, _, _, _, address = resolved[0]
        try:
            sock.connect(address)
            return None
        except (BlockingIOError, InterruptedError):
            pass

        def finish() -> None:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in (errno.EINPROGRESS, errno.EALREADY):
                raise BlockingIOError(err, os.strerror(err))
            if err != 0:
                raise OSError(err, f"Connect call failed {address}")

        fd = sock.fileno()
        self._fds.ensure_no_transport(fd)
        return await self._wait_ready(fd, finish, False)

    async def sock_accept(self, sock: socket.socket) -> Tuple[socket.socket, _RetAddress]:
        """Accept a connection on listening ``sock``; returns ``(conn, address)``, conn non-blocking."""
        self._check_sock(sock)

        def attempt() -> Tuple[socket.socket, _RetAddress]:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address

        return await self._sock_io(sock, attempt, True)


def _check_ssl_socket(sock: socket.socket) -> None:
    try:
        import ssl
    except ImportError:  # pragma: no cover
        return
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def set_reuseport(sock: socket.socket) -> None:
    """``SO_REUSEPORT`` on ``sock``, or asyncio's ``ValueError`` where it is missing
    (``create_server`` and ``create_datagram_endpoint``'s ``reuse_port``)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError("reuse_port not supported by socket module, "
                         "SO_REUSEPORT defined but not implemented.") from None


def unlink_stale(path: Union[str, bytes]) -> None:
    """Remove a socket file left at ``path`` by an earlier process before a unix socket binds
    there (``create_unix_server``, ``create_datagram_endpoint``): only a socket, never a file
    of another kind; nothing for an abstract-namespace name (a leading NUL). A failure is
    logged, as asyncio logs it, and the bind then reports what is wrong."""
    if path[0] in (0, "\x00"):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
