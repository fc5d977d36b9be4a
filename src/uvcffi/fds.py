"""The loop's fd-watch component: ``add_reader``/``add_writer`` on ``uv_poll``.

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
  the polls started since its last turn (``FdWatches.fresh``), and before the next one
  ``FdWatches.check_fresh`` closes those whose descriptor is gone (or became a regular file,
  which epoll refuses); the watch stays registered, as the key in asyncio's selector does,
  until ``remove_reader``/``remove_writer``. And a live watch never restarts its poll with a
  new event mask (the other side added or removed): it takes a new ``uv_poll_t``, whose
  ``uv_poll_init`` checks the descriptor at once. A closed one raises ``OSError(EBADF)``
  there and the watch is dropped, which is what asyncio's epoll selector raises and does in
  the same case.
* A watch whose object is a closed socket (its ``fileno()`` is no longer the watched number)
  is stale: registering a new object on that number replaces it instead of inheriting it.
* A transport or pipe that takes a number a watch still holds (its descriptor closed without
  ``remove_reader``, then reused; or the very socket handed to ``create_connection(sock=)``)
  gets it: libuv refuses the second handle (``UV_EEXIST``), so the handle's open releases the
  watch (``FdWatches.release``, its handles cancelled, as asyncio's transport replaces a
  registered reader) and tries once more (``handles/base.py``, ``UV_EEXIST``).

``FdWatches`` (``Loop._fds``) owns the watches, the polls started since the last turn and the
table of descriptors that stream transports own; ``Loop.add_reader`` and friends, the
``sock_*`` coroutines (``sock.py``), servers' listening sockets (``server.py``) and
``sendfile`` (``net.py``) go through it. ``close()`` (from ``Loop.close()``, after libuv
closed every poll) empties its tables.
"""

from __future__ import annotations

import os
import stat
import weakref
from asyncio import events
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from ._binding import lib
from .handles.poll import Poll

if TYPE_CHECKING:
    import socket

    from _typeshed import FileDescriptorLike

    from .loop import Loop
    from .transports.stream import _Base

__all__ = ["FdWatches"]

_READABLE = lib.UV_READABLE
_WRITABLE = lib.UV_WRITABLE


def _fileobj_to_fd(fileobj: FileDescriptorLike) -> int:
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


def _pollable(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class _FdWatch:
    """The reader and writer of one descriptor, on one ``Poll``."""

    __slots__ = ("fds", "fd", "fileobj", "poll", "reader", "writer", "mask")

    def __init__(self, fds: FdWatches, fd: int, fileobj: FileDescriptorLike) -> None:
        self.fds = fds
        self.fd = fd
        self.fileobj = fileobj  # what it was registered with: an int, or an object with fileno()
        self.poll = Poll(fds._loop, fd)
        self.reader: Optional[events.Handle] = None
        self.writer: Optional[events.Handle] = None
        self.mask = 0  # the started poll's events; 0 while not started (or closed by check_fresh)

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
        """Make the poll's event mask match the registered sides (never 0: see ``drop``).
        ``OSError`` if the descriptor went bad since (the caller drops the watch)."""
        mask = (_READABLE if self.reader is not None else 0) | (_WRITABLE if self.writer is not None else 0)
        if mask == self.mask:
            return
        if self.mask or self.poll.is_closing():
            # started before, or closed by check_fresh: a new poll checks the
            # descriptor now (see the module's essay)
            self.poll.close()
            self.mask = 0
            self.poll = Poll(self.fds._loop, self.fd)
        self.poll.start(mask, self.on_poll)
        self.mask = mask
        self.fds.fresh.append(self)

    def on_poll(self, status: int, events: int) -> None:
        # An error (status < 0) wakes both sides, as a selector reports the fd ready.
        if status < 0:
            events = self.mask
        fds = self.fds
        r = self.reader
        if events & _READABLE and r is not None:
            if r._cancelled:
                fds.remove(self.fd, True)
            else:
                fds._loop._ready.append(r)
        w = self.writer
        if events & _WRITABLE and w is not None:
            if w._cancelled:
                fds.remove(self.fd, False)
            else:
                fds._loop._ready.append(w)


class FdWatches:
    """The descriptors a loop watches (see the module's essay)."""

    __slots__ = ("_loop", "watches", "fresh", "transports", "unix_inodes")

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self.watches: Dict[int, _FdWatch] = {}  # fd -> _FdWatch: one per descriptor, one poll each
        self.fresh: List[_FdWatch] = []  # watches whose poll started since the last turn (check_fresh)
        # fd -> the stream transport whose descriptor libuv owns (transports/stream.py):
        # add_reader refuses these
        self.transports: weakref.WeakValueDictionary[int, _Base] = weakref.WeakValueDictionary()
        # a listening unix socket -> the inode of its path when made (net.py): unlinked at
        # close only if still the same file
        self.unix_inodes: Dict[socket.socket, int] = {}

    def ensure_no_transport(self, fd: FileDescriptorLike) -> None:
        """``RuntimeError`` if a stream transport that is not closing owns ``fd`` (a descriptor
        or an object with ``fileno()``; ``ValueError`` for anything else)."""
        # As asyncio: only the file-object conversion is checked here; a negative number is
        # the registration's business (so remove_reader(-1) on a closed loop is False).
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self.transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    def find(self, fileobj: FileDescriptorLike) -> Optional[_FdWatch]:
        """The watch of ``fileobj`` (a descriptor or an object with ``fileno()``), or None.
        A closed socket is found by the object it was registered with, as asyncio's selector
        does; ``ValueError`` for a bad descriptor or object that was never registered."""
        try:
            fd = _fileobj_to_fd(fileobj)
        except ValueError:
            for w in self.watches.values():
                if w.fileobj is fileobj:
                    return w
            raise
        return self.watches.get(fd)

    def add(self, fileobj: FileDescriptorLike, callback: Callable[..., object], args: Sequence[Any],
            read: bool) -> events.Handle:
        """Register ``callback(*args)`` as the reader (``read``) or writer of ``fileobj``,
        replacing (and cancelling) the one before; returns its handle. ``RuntimeError`` if
        the loop is closed, ``ValueError`` for a bad descriptor, ``OSError`` if libuv refuses
        it (the watch is dropped then)."""
        loop = self._loop
        loop._check_closed()
        w = self.find(fileobj)
        handle = events.Handle(callback, args, loop, None)
        if w is not None and w.fileobj is not fileobj and w.is_stale():
            self.forget(w)  # the number of a socket closed since: a new registration
            w = None
        if w is None:
            fd = _fileobj_to_fd(fileobj)
            w = self.watches[fd] = _FdWatch(self, fd, fileobj)
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
                self.drop(w, read)
            else:  # its descriptor went bad (or was never good): the watch goes
                self.forget(w)
            raise
        return handle

    def release(self, fd: int) -> bool:
        """A libuv handle about to take ``fd`` found it registered (``UV_EEXIST``): the
        ``add_reader``/``add_writer`` watch still on that number gives it up, its handles
        cancelled, as asyncio's transport replaces a reader left on its descriptor. The number
        is a new descriptor's when its old one was closed without ``remove_reader``.
        True if there was a watch (the caller tries once more)."""
        w = self.watches.get(fd)
        if w is None:
            return False
        self.forget(w)
        for handle in (w.reader, w.writer):
            if handle is not None:
                handle.cancel()
        w.reader = w.writer = None
        return True

    def forget(self, w: _FdWatch) -> None:
        """Drop ``w`` from the table and close its poll; its handles are left as they are
        (asyncio's selector unregisters a key the same way when its descriptor went bad)."""
        if self.watches.get(w.fd) is w:
            del self.watches[w.fd]
        w.poll.close()

    def drop(self, w: _FdWatch, read: bool) -> bool:
        """Remove ``w``'s reader (``read``) or writer; True if there was one (it is cancelled).
        ``OSError`` if the descriptor was closed under the other side's feet."""
        old = w.reader if read else w.writer
        if read:
            w.reader = None
        else:
            w.writer = None
        if w.reader is None and w.writer is None:
            self.forget(w)
        else:
            try:
                w.update()
            except OSError:
                self.forget(w)  # closed under the other side's feet: asyncio's EBADF
                raise
        if old is None:
            return False
        old.cancel()
        return True

    def remove(self, fileobj: FileDescriptorLike, read: bool) -> bool:
        """``remove_reader``/``remove_writer`` without the transport check: False on a closed
        loop or when nothing was registered."""
        if self._loop.is_closed():
            return False
        w = self.find(fileobj)
        return w is not None and self.drop(w, read)

    def remove_handle(self, fd: int, handle: events.Handle, read: bool) -> None:
        """The end of a one-shot wait (``sock_*``, ``sendfile``): remove the reader/writer of
        ``fd`` if it is still ``handle`` (and the loop is open)."""
        if self._loop.is_closed():
            return
        w = self.watches.get(fd)
        if w is not None and (w.reader if read else w.writer) is handle:
            self.drop(w, read)

    def check_fresh(self) -> None:
        """Before ``uv_run``: close the polls started since the last turn whose descriptor is no
        longer one epoll takes (closed, or reused by a regular file or directory); libuv would
        abort the process registering it. Called by ``Loop._run_once`` when any were started."""
        fresh = self.fresh
        self.fresh = []
        for w in fresh:
            if w.mask and not w.poll.is_closing() and not _pollable(w.fd):
                w.poll.close()
                w.mask = 0

    def close(self) -> None:
        """``Loop.close()``, after libuv closed every poll: forget every watch (their handles
        are left as they are, as asyncio's selector leaves its keys') and the transports'
        descriptors. Idempotent."""
        self.watches.clear()
        self.fresh = []
        self.transports.clear()
