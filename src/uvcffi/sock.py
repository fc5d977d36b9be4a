"""``add_reader``/``add_writer`` on ``uv_poll`` and the ``sock_*`` coroutines built on them.

One ``uv_poll_t`` per file descriptor (libuv forbids two active polls on one descriptor),
holding at most one reader and one writer ``Handle``; its event mask follows what is
registered, and it is closed when both are removed (the descriptor may be closed right
after ``remove_reader``: a stale poll must not outlive it). A descriptor that a stream
transport owns (libuv watches it already) is refused with ``RuntimeError``, as asyncio does.

The ``sock_*`` coroutines follow asyncio's selector loop: try the non-blocking call first,
register for readiness only when it would block, unregister when the future is done
(cancellation included). Errors are the socket module's own ``OSError``s.
"""

from __future__ import annotations

import errno
import os
import socket
from asyncio import events

from ._binding import lib
from .handles.poll import Poll
from .transports.stream import fd_transports

__all__ = ["SockMixin"]

_READABLE = lib.UV_READABLE
_WRITABLE = lib.UV_WRITABLE


def _fileobj_to_fd(fileobj) -> int:
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class _FdWatch:
    """The reader and writer of one descriptor, on one ``Poll``."""

    __slots__ = ("loop", "fd", "poll", "reader", "writer", "mask")

    def __init__(self, loop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.poll = Poll(loop, fd)
        self.reader = None
        self.writer = None
        self.mask = 0

    def update(self) -> None:
        mask = (_READABLE if self.reader is not None else 0) | (_WRITABLE if self.writer is not None else 0)
        if mask == self.mask:
            return
        self.mask = mask
        if mask:
            self.poll.start(mask, self.on_poll)
        else:
            self.poll.stop()

    def on_poll(self, status: int, events: int) -> None:
        # An error (status < 0) wakes both sides, as a selector reports the fd ready.
        if status < 0:
            events = self.mask
        r = self.reader
        if events & _READABLE and r is not None:
            if r._cancelled:
                self.loop._remove_reader(self.fd)
            else:
                self.loop._ready.append(r)
        w = self.writer
        if events & _WRITABLE and w is not None:
            if w._cancelled:
                self.loop._remove_writer(self.fd)
            else:
                self.loop._ready.append(w)


class SockMixin:
    """``add_reader``/``add_writer`` and ``sock_*`` for ``uvcffi.Loop``."""

    def _fd_watches(self) -> dict:
        return self._io.fd_watch

    def _ensure_fd_no_transport(self, fd) -> None:
        # As asyncio: only the file-object conversion is checked here; a negative number is
        # the registration's business (so remove_reader(-1) on a closed loop is False).
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = fd_transports(self).get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    # -- readers and writers ---------------------------------------------------------------
    def _add_reader(self, fd, callback, *args):
        return self._add_watch(fd, callback, args, True)

    def _add_writer(self, fd, callback, *args):
        return self._add_watch(fd, callback, args, False)

    def _add_watch(self, fd, callback, args, read: bool):
        self._check_closed()
        fd = _fileobj_to_fd(fd)
        handle = events.Handle(callback, args, self, None)
        watches = self._fd_watches()
        w = watches.get(fd)
        if w is None:
            w = watches[fd] = _FdWatch(self, fd)
        old = w.reader if read else w.writer
        if read:
            w.reader = handle
        else:
            w.writer = handle
        if old is not None:
            old.cancel()
        try:
            w.update()
        except BaseException:
            self._drop_watch(w, read)
            raise
        return handle

    def _drop_watch(self, w, read: bool) -> bool:
        old = w.reader if read else w.writer
        if read:
            w.reader = None
        else:
            w.writer = None
        if w.reader is None and w.writer is None:
            del self._fd_watches()[w.fd]
            w.poll.close()
        else:
            w.update()
        if old is None:
            return False
        old.cancel()
        return True

    def _remove_reader(self, fd) -> bool:
        if self.is_closed():
            return False
        w = self._fd_watches().get(_fileobj_to_fd(fd))
        return w is not None and self._drop_watch(w, True)

    def _remove_writer(self, fd) -> bool:
        if self.is_closed():
            return False
        w = self._fd_watches().get(_fileobj_to_fd(fd))
        return w is not None and self._drop_watch(w, False)

    def add_reader(self, fd, callback, *args) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is readable (replaces an earlier reader)."""
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd) -> bool:
        """Stop watching ``fd`` for reading; True if a reader was registered."""
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd, callback, *args) -> None:
        """Call ``callback(*args)`` whenever ``fd`` is writable (replaces an earlier writer)."""
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd) -> bool:
        """Stop watching ``fd`` for writing; True if a writer was registered."""
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    # -- sock_* ------------------------------------------------------------------------------
    def _check_sock(self, sock) -> None:
        _check_ssl_socket(sock)
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    async def _sock_io(self, sock, attempt, read: bool):
        """Call ``attempt()`` until it does not raise BlockingIOError; wait for readiness between
        tries. Cancelled: the registration is removed and CancelledError propagates."""
        try:
            return attempt()
        except (BlockingIOError, InterruptedError):
            pass
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        fut = self.create_future()

        def on_ready():
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

        handle = self._add_reader(fd, on_ready) if read else self._add_writer(fd, on_ready)
        try:
            return await fut
        finally:
            if not self.is_closed():
                w = self._fd_watches().get(fd)
                if w is not None and (w.reader if read else w.writer) is handle:
                    self._drop_watch(w, read)
            fut = None  # break the cycle with an exception's traceback

    async def sock_recv(self, sock, n):
        """Receive up to ``n`` bytes from non-blocking ``sock``; b"" at EOF."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.recv(n), True)

    async def sock_recv_into(self, sock, buf):
        """Receive into ``buf``; returns the number of bytes received."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.recv_into(buf), True)

    async def sock_recvfrom(self, sock, bufsize):
        """Receive a datagram of up to ``bufsize`` bytes; returns ``(data, address)``."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.recvfrom(bufsize), True)

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        """Receive a datagram into ``buf``; returns ``(nbytes, address)``."""
        self._check_sock(sock)
        if not nbytes:
            nbytes = len(buf)
        return await self._sock_io(sock, lambda: sock.recvfrom_into(buf, nbytes), True)

    async def sock_sendto(self, sock, data, address):
        """Send a datagram to ``address``; returns the number of bytes sent."""
        self._check_sock(sock)
        return await self._sock_io(sock, lambda: sock.sendto(data, address), False)

    async def sock_sendall(self, sock, data):
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
            def attempt(start=sent):
                return sock.send(view[start:])
            sent += await self._sock_io(sock, attempt, False)

    async def sock_connect(self, sock, address):
        """Connect ``sock`` to ``address`` (resolved first unless already numeric)."""
        self._check_sock(sock)
        if sock.family == socket.AF_INET or (hasattr(socket, "AF_INET6") and sock.family == socket.AF_INET6):
            resolved = await self._ensure_resolved(address, family=sock.family, type=sock.type,
                                                   proto=sock.proto)
            _, _, _, _, address = resolved[0]
        try:
            sock.connect(address)
            return None
        except (BlockingIOError, InterruptedError):
            pass

        def finish():
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in (errno.EINPROGRESS, errno.EALREADY):
                raise BlockingIOError(err, os.strerror(err))
            if err != 0:
                raise OSError(err, f"Connect call failed {address}")

        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        fut = self.create_future()

        def on_ready():
            if fut.done():
                return
            try:
                finish()
            except (BlockingIOError, InterruptedError):
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(None)

        handle = self._add_writer(fd, on_ready)
        try:
            return await fut
        finally:
            if not self.is_closed():
                w = self._fd_watches().get(fd)
                if w is not None and w.writer is handle:
                    self._drop_watch(w, False)
            fut = None

    async def sock_accept(self, sock):
        """Accept a connection on listening ``sock``; returns ``(conn, address)``, conn non-blocking."""
        self._check_sock(sock)

        def attempt():
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address

        return await self._sock_io(sock, attempt, True)


def _check_ssl_socket(sock) -> None:
    try:
        import ssl
    except ImportError:  # pragma: no cover
        return
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
