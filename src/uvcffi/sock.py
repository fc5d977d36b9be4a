"""``add_reader``/``add_writer`` on ``uv_poll`` and the ``sock_*`` coroutines built on them.

One ``uv_poll_t`` per file descriptor (libuv forbids two active polls on one descriptor),
holding at most one reader and one writer ``Handle``; its event mask follows what is
registered, and it is closed when both are removed (the descriptor may be closed right
after ``remove_reader``: a stale poll must not outlive it). A descriptor that a stream
transport owns (libuv watches it already) is refused with ``RuntimeError``, as asyncio does.

Closed descriptors. Users close sockets without removing their reader first (anyio does, while
a receive waits), so a watch may outlive its descriptor, and the number may come back for a
new one. The rules, asyncio's selector's where it has one:

* A watch remembers the object it was registered with (asyncio's selector key's ``fileobj``).
  ``remove_reader(sock)`` of a socket already closed (``fileno()`` is -1) finds its watch by
  that object, as asyncio does, instead of failing with ``ValueError`` and leaving the watch
  on the number for the next socket that gets it.
* libuv registers a started poll's descriptor with epoll lazily, at the start of the next
  ``uv_run``, and aborts the process if that fails (a descriptor closed in between). asyncio
  registers at once, and the kernel forgets a closed descriptor by itself. So the loop keeps
  the polls started since its last turn (``Loop._fd_fresh``), and before the next one
  ``check_fresh_watches`` closes those whose descriptor is gone (or became a regular file,
  which epoll refuses); the watch stays registered, as the key in asyncio's selector does,
  until ``remove_reader``/``remove_writer``. And a live watch never restarts its poll with a
  new event mask (the other side added or removed): it takes a new ``uv_poll_t``, whose
  ``uv_poll_init`` checks the descriptor at once. A closed one raises ``OSError(EBADF)``
  there and the watch is dropped, which is what asyncio's epoll selector raises and does in
  the same case.
* A watch whose object is a closed socket (its ``fileno()`` is no longer the watched number)
  is stale: registering a new object on that number replaces it instead of inheriting it.

The ``sock_*`` coroutines follow asyncio's selector loop: try the non-blocking call first,
register for readiness only when it would block, unregister when the future is done
(cancellation included). Errors are the socket module's own ``OSError``s.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from asyncio import events

from ._binding import lib
from .handles.poll import Poll
from .transports.stream import fd_transports

__all__ = ["SockMixin", "check_fresh_watches"]

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

    __slots__ = ("loop", "fd", "fileobj", "poll", "reader", "writer", "mask")

    def __init__(self, loop, fd: int, fileobj) -> None:
        self.loop = loop
        self.fd = fd
        self.fileobj = fileobj  # what it was registered with: an int, or an object with fileno()
        self.poll = Poll(loop, fd)
        self.reader = None
        self.writer = None
        self.mask = 0

    def is_stale(self) -> bool:
        """Registered with an object that no longer has this descriptor (closed since)."""
        obj = self.fileobj
        if isinstance(obj, int):
            return False  # nothing to tell by
        try:
            return int(obj.fileno()) != self.fd
        except (AttributeError, TypeError, ValueError, OSError):
            return True

    def update(self) -> None:
        """Make the poll's event mask match the registered sides (never 0: see _drop_watch).
        ``OSError`` if the descriptor went bad since (the caller drops the watch)."""
        mask = (_READABLE if self.reader is not None else 0) | (_WRITABLE if self.writer is not None else 0)
        if mask == self.mask:
            return
        if self.mask or self.poll.is_closing():
            # started before, or closed by check_fresh_watches: a new poll checks the
            # descriptor now (see the module's essay)
            self.poll.close()
            self.mask = 0
            self.poll = Poll(self.loop, self.fd)
        self.poll.start(mask, self.on_poll)
        self.mask = mask
        self.loop._fd_fresh.append(self)

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


def check_fresh_watches(loop) -> None:
    """Before ``uv_run``: close the polls started since the last turn whose descriptor is no
    longer one epoll takes (closed, or reused by a regular file or directory); libuv would
    abort the process registering it. Called by ``Loop._run_once`` when any were started."""
    fresh = loop._fd_fresh
    loop._fd_fresh = []
    for w in fresh:
        if w.mask and not w.poll.is_closing() and not _pollable(w.fd):
            w.poll.close()
            w.mask = 0


def _pollable(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


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

    def _find_watch(self, fileobj):
        """The watch of ``fileobj`` (a descriptor or an object with ``fileno()``), or None.
        A closed socket is found by the object it was registered with, as asyncio's selector
        does; ``ValueError`` for a bad descriptor or object that was never registered."""
        try:
            fd = _fileobj_to_fd(fileobj)
        except ValueError:
            for w in self._fd_watches().values():
                if w.fileobj is fileobj:
                    return w
            raise
        return self._fd_watches().get(fd)

    def _add_watch(self, fileobj, callback, args, read: bool):
        self._check_closed()
        w = self._find_watch(fileobj)
        handle = events.Handle(callback, args, self, None)
        if w is not None and w.fileobj is not fileobj and w.is_stale():
            self._forget_watch(w)  # the number of a socket closed since: a new registration
            w = None
        if w is None:
            fd = _fileobj_to_fd(fileobj)
            watches = self._fd_watches()
            w = watches[fd] = _FdWatch(self, fd, fileobj)
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
            if w.mask:
                self._drop_watch(w, read)
            else:  # its descriptor went bad (or was never good): the watch goes
                self._forget_watch(w)
            raise
        return handle

    def _forget_watch(self, w) -> None:
        """Drop ``w`` from the table and close its poll; its handles are left as they are
        (asyncio's selector unregisters a key the same way when its descriptor went bad)."""
        watches = self._fd_watches()
        if watches.get(w.fd) is w:
            del watches[w.fd]
        w.poll.close()

    def _drop_watch(self, w, read: bool) -> bool:
        old = w.reader if read else w.writer
        if read:
            w.reader = None
        else:
            w.writer = None
        if w.reader is None and w.writer is None:
            self._forget_watch(w)
        else:
            try:
                w.update()
            except OSError:
                self._forget_watch(w)  # closed under the other side's feet: asyncio's EBADF
                raise
        if old is None:
            return False
        old.cancel()
        return True

    def _remove_reader(self, fd) -> bool:
        if self.is_closed():
            return False
        w = self._find_watch(fd)
        return w is not None and self._drop_watch(w, True)

    def _remove_writer(self, fd) -> bool:
        if self.is_closed():
            return False
        w = self._find_watch(fd)
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
            resolved = await self._resolver.ensure_resolved(address, family=sock.family,
                                                            type=sock.type, proto=sock.proto)
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
