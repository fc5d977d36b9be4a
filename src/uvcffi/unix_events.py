"""Datagram, subprocess and signal APIs of the loop.

``OSMixin`` is a base class of ``uvcffi.Loop``.

Signals: Python's ``signal`` module, not ``uv_signal_t``
--------------------------------------------------------
A process has one disposition per signal and two parties want it: libuv (``uv_signal_start``
calls ``sigaction`` behind the interpreter's back) and the interpreter (``signal.signal``).
If the loop used ``uv_signal_t`` for, say, ``SIGINT``, ``signal.getsignal`` would still report
Python's handler, and the next ``signal.signal(SIGINT, ...)`` — ``uvcffi.run`` installs one
per run, as ``asyncio.Runner`` does — would silently disconnect libuv's watcher. So
``add_signal_handler`` does what asyncio's unix loop does: it points ``signal.set_wakeup_fd``
at the loop's wake-up socket and installs a Python-level handler that does nothing. Python's
C-level handler writes each signal's number to that socket as one byte, and the loop reads
the numbers back and runs the handlers registered for them (``_SignalWakeup``). The
Python-level handler is *not* what dispatches: a library that puts its own handler on top
(uvicorn's ``capture_signals`` calls ``signal.signal`` for the signals the loop watches) does
not hide the loop's handlers, as with asyncio. The socket is read wherever the loop runs, so
a loop running in another thread gets its signals too (handlers are added in the main
thread, where ``set_wakeup_fd`` works).

How the numbers are read matters for Ctrl-C. No Python may run inside ``uv_run`` on behalf of
the wake-up socket: a signal whose Python-level handler raises (``KeyboardInterrupt``) would
raise at the entry of that callback, outside any ``try`` of ours, and cffi would swallow it.
So the socket is read by C: while the loop has no Python-level handler, a C poll callback
drains it (waking ``uv_run`` is all it has to do: the interpreter runs its own handlers when
``uv_run`` returns); from the first ``add_signal_handler`` on, it is a ``uv_pipe_t`` read by
the loop's batched read engine (``transports/stream.py``, ``ReadBatch``), and its bytes reach
``_SignalWakeup._on_batched_read`` after ``uv_run`` returns, with the stream reads of the
turn. The wake-up socket exists from the loop's creation, as asyncio's self-pipe does: a
descriptor the user closed without ``remove_reader`` cannot be reused by it (``sock.py``).

Outside the signal handlers, a loop running in the main thread points the wake-up fd at its
socket for the length of each run (``Loop._install_signal_wakeup``): libuv's poll restarts
on ``EINTR``, so without a byte to read, Ctrl-C would wait for the next event.

The exception is ``SIGCHLD``: libuv owns it as soon as it spawns a process (its reaper is a
``uv_signal_t``), and ``signal.signal(SIGCHLD, ...)`` would leave every child a zombie. So a
``SIGCHLD`` handler is a ``uv_signal_t`` (``handles/signal.py``); libuv multiplexes watchers.

Errors, as asyncio's unix loop: ``TypeError`` for a coroutine callback or a non-int signal,
``ValueError`` for a number outside ``signal.valid_signals()``, ``RuntimeError`` when the loop
is closed, when called outside the main thread, and for a signal that cannot be caught
(``SIGKILL``, ``SIGSTOP``). ``Loop.close()`` removes every handler (``_close_signal_handlers``).

Datagrams: ``create_datagram_endpoint`` resolves and creates the socket in Python, as asyncio
does, and wraps it in ``transports.datagram.DatagramTransport`` (why a poll and not
``uv_udp_t``: that module's essay).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import warnings
from asyncio import events

from ._binding import lib
from .handles.pipe import Pipe
from .handles.poll import Poll
from .handles.signal import Signal
from .transports.datagram import DatagramTransport
from .transports.stream import ReadBatch
from .transports.subprocess import SubprocessTransport

__all__ = ["OSMixin"]

logger = logging.getLogger("asyncio")

_unset = object()
_HAS_IPV6 = hasattr(socket, "AF_INET6")


def _sighandler_noop(signum, frame) -> None:
    """The Python-level handler of a signal the loop watches: Python's C-level handler has
    already written the number to the loop's wake-up socket, which is what the loop reads."""


class _SignalWakeup:
    """The loop's wake-up socket pair: Python writes signal numbers to ``wfd``
    (``signal.set_wakeup_fd``); libuv watches the other end (see the module's essay).

    Two states, one way: *draining* (a C poll callback discards the bytes: they only wake
    ``uv_run``) until ``read_numbers()``, then *reading* (a ``uv_pipe_t`` in the loop's read
    batch; each byte is a signal number for ``loop._handle_signal``). ``close()`` closes both
    ends; the loop closes its libuv handles itself."""

    _poll = None  # the draining poll, until read_numbers()
    _pipe = None  # the reading pipe, after it
    _rsock = None
    _wsock = None

    def __init__(self, loop) -> None:
        self._loop = loop
        rsock, wsock = socket.socketpair()
        try:
            rsock.setblocking(False)
            wsock.setblocking(False)  # set_wakeup_fd requires it
            poll = Poll(loop, rsock.fileno())
            try:
                poll.start_drain()
                poll.unref()  # never the reason the loop stays alive
            except BaseException:
                poll.close()
                raise
        except BaseException:
            rsock.close()
            wsock.close()
            raise
        self._rsock, self._wsock, self._poll = rsock, wsock, poll

    @property
    def wfd(self) -> int:
        return self._wsock.fileno()

    def read_numbers(self) -> None:
        """Start handing the signal numbers to the loop (idempotent)."""
        if self._pipe is not None:
            return
        loop = self._loop
        batch = loop._read_batch if loop._read_batch is not None else ReadBatch(loop)
        self._poll.close()  # libuv forgets the descriptor at once: the pipe may take it
        self._poll = None
        fd = self._rsock.fileno()
        pipe = Pipe(loop, fd=fd)  # libuv owns the descriptor from here on
        self._rsock.detach()
        self._pipe = pipe
        batch.register(pipe, self, None)
        pipe.read_start(False)
        pipe.unref()

    def _on_batched_read(self, start: int, end: int) -> None:
        # after uv_run, from ReadBatch.dispatch: the bytes are signal numbers
        loop = self._loop
        for signum in loop._read_batch.view[start:end]:
            if signum:
                loop._handle_signal(signum)

    def _on_status(self, status: int) -> None:
        if status != lib.UV_ENOBUFS or self._pipe is None:
            return  # EOF or an error: only when the loop closes the pair
        # a read of 64 KiB or more switched the stream to reading it ourselves (ReadBatch):
        # read what waits, and hand the stream back to C
        pipe = self._pipe
        pipe.self_read = 0
        fd = pipe.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum:
                    self._loop._handle_signal(signum)

    def close(self) -> None:
        for handle in (self._poll, self._pipe):
            if handle is not None:
                handle.close()
        for sock in (self._rsock, self._wsock):
            if sock is not None:
                sock.close()  # a detached socket (the pipe's) closes nothing


class OSMixin:
    """The loop's UDP, subprocess and signal methods."""

    # sig -> asyncio Handle (Python-level) ; SIGCHLD's Handle lives there too, its
    # uv_signal_t in _sigchld_watcher.
    _signal_handlers = None
    _sigchld_watcher = None

    # ------------------------------------------------------------------ signals
    def add_signal_handler(self, sig, callback, *args) -> None:
        """Run ``callback(*args)`` as a loop callback whenever signal ``sig`` arrives.

        Replaces a previous handler for ``sig``. ``TypeError`` for a coroutine (function) or a
        non-int ``sig``; ``ValueError`` for an invalid signal number; ``RuntimeError`` if the
        loop is closed, if called outside the main thread, or if ``sig`` cannot be caught."""
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if sig == signal.SIGCHLD:  # a uv_signal_t (see the module's essay)
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
            if self._signal_handlers is None:
                self._signal_handlers = {}
            if self._sigchld_watcher is None:
                self._sigchld_watcher = Signal(self, sig, self._handle_signal)
            self._signal_handlers[sig] = events.Handle(callback, args, self, None)
            return
        wakeup = self._signal_wakeup
        try:
            # raises ValueError outside the main thread: a loop running in another thread
            # cannot add handlers, as asyncio
            signal.set_wakeup_fd(wakeup.wfd)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None
        wakeup.read_numbers()
        if self._signal_handlers is None:
            self._signal_handlers = {}
        self._signal_handlers[sig] = events.Handle(callback, args, self, None)
        try:
            signal.signal(sig, _sighandler_noop)
            signal.siginterrupt(sig, False)  # SA_RESTART: fewer EINTRs elsewhere
        except OSError as exc:
            del self._signal_handlers[sig]
            self._release_signal_wakeup()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise

    def remove_signal_handler(self, sig) -> bool:
        """Remove the handler for ``sig``; ``True`` if there was one. The signal goes back to
        its default action (``SIGINT``: ``KeyboardInterrupt``). ``TypeError``/``ValueError``
        for a bad ``sig``, as ``add_signal_handler``."""
        self._check_signal(sig)
        handlers = self._signal_handlers
        if not handlers or sig not in handlers:
            return False
        del handlers[sig]
        if sig == signal.SIGCHLD:
            watcher, self._sigchld_watcher = self._sigchld_watcher, None
            if watcher is not None:
                watcher.close()
            return True
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        self._release_signal_wakeup()
        return True

    def _check_signal(self, sig) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _wakeup_handlers(self) -> bool:
        """Whether a handler of this loop needs the wake-up fd (every one but SIGCHLD's)."""
        return any(sig != signal.SIGCHLD for sig in self._signal_handlers or ())

    def _release_signal_wakeup(self) -> None:
        """The last handler that needed the wake-up fd is gone: stop pointing it at this
        loop's socket (asyncio sets -1; a wake-up fd someone else set since is left alone).
        While the loop runs in the main thread the run keeps it, and restores the one it found
        when it ends (``Loop._restore_signal_wakeup``)."""
        if self._wakeup_handlers() or self._signal_wakeup is None:
            return
        if self._thread_id is not None and self._thread_id == threading.main_thread().ident:
            return
        try:
            old = signal.set_wakeup_fd(-1)
            if old != -1 and old != self._signal_wakeup.wfd:
                signal.set_wakeup_fd(old)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def _handle_signal(self, sig) -> None:
        """Signal ``sig`` arrived (a number read from the wake-up socket, or SIGCHLD's
        watcher): its handler joins the ready queue. Runs in the loop, after ``uv_run``."""
        handlers = self._signal_handlers
        handle = handlers.get(sig) if handlers else None
        if handle is None or self._closed:
            return  # no handler of ours: a signal for someone else, or a race with removal
        if handle._cancelled:
            self.remove_signal_handler(sig)
            return
        self._ready.append(handle)

    def _close_signal_handlers(self) -> None:
        """Called by ``Loop.close()``: give every signal back to its default action."""
        if not self._signal_handlers:
            return
        if sys.is_finalizing():
            warnings.warn(f"Closing the loop {self!r} on interpreter shutdown stage, "
                          "skipping signal handlers removal", ResourceWarning, source=self, stacklevel=1)
            self._signal_handlers.clear()
            return
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)

    # ------------------------------------------------------------------ subprocesses
    async def subprocess_exec(self, protocol_factory, program, *args, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=False, shell=False, bufsize=0, encoding=None,
                              errors=None, text=None, **kwargs):
        """Run ``program`` with ``args`` (no shell); returns ``(transport, protocol)`` once the
        pipes are connected. ``ValueError`` for text-mode/buffering/shell arguments, as
        asyncio; ``OSError`` (``FileNotFoundError``, ``PermissionError``) from a failed spawn,
        with nothing left open. Cancelled while connecting: the child is killed and reaped."""
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")
        protocol = protocol_factory()
        return await self._make_subprocess(protocol, (program,) + args, False, stdin, stdout,
                                           stderr, kwargs)

    async def subprocess_shell(self, protocol_factory, cmd, *, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=False, shell=True, bufsize=0, encoding=None,
                               errors=None, text=None, **kwargs):
        """Run ``cmd`` with ``/bin/sh -c``; as ``subprocess_exec`` otherwise."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")
        protocol = protocol_factory()
        return await self._make_subprocess(protocol, cmd, True, stdin, stdout, stderr, kwargs)

    async def _make_subprocess(self, protocol, args, shell, stdin, stdout, stderr, kwargs):
        self._check_closed()
        waiter = self.create_future()
        transport = SubprocessTransport(self, protocol, args, shell, stdin, stdout, stderr,
                                        waiter=waiter, **kwargs)
        try:
            await waiter
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        return transport, protocol

    # ------------------------------------------------------------------ datagrams
    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None, *,
                                       family=0, proto=0, flags=0, reuse_address=_unset,
                                       reuse_port=None, allow_broadcast=None, sock=None):
        """Create a datagram endpoint; returns ``(transport, protocol)``.

        As asyncio: ``sock`` excludes every other socket argument (``ValueError``) and must be a
        ``SOCK_DGRAM`` socket; ``family=AF_UNIX`` takes path strings (a stale socket file at
        ``local_addr`` is removed); host addresses are resolved and each ``(family, proto)``
        tried in turn, the first failure raised if all fail. ``reuse_address`` is rejected:
        ``TypeError`` on Python 3.11+ (where asyncio removed it), ``ValueError`` if true on
        older versions. Cancellation while resolving leaves nothing open."""
        if reuse_address is not _unset:
            if sys.version_info >= (3, 11):
                raise TypeError("create_datagram_endpoint() got an unexpected keyword argument "
                                "'reuse_address'")
            if reuse_address:
                raise ValueError("Passing `reuse_address=True` is no longer supported, as the usage "
                                 "of SO_REUSEPORT in UDP poses a significant security concern.")
            warnings.warn("The *reuse_address* parameter has been deprecated as of 3.5.10 and "
                          "is scheduled for removal in 3.11.", DeprecationWarning, stacklevel=2)
        self._check_closed()
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
            pairs = await self._datagram_address_pairs(local_addr, remote_addr, family, proto, flags)
            errors = []
            for (fam, pro), (local_address, remote_address) in pairs:
                sock = None
                try:
                    sock = socket.socket(family=fam, type=socket.SOCK_DGRAM, proto=pro)
                    if reuse_port:
                        if not hasattr(socket, "SO_REUSEPORT"):
                            raise ValueError("reuse_port not supported by socket module")
                        try:
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                        except OSError:
                            raise ValueError("reuse_port not supported by socket module, "
                                             "SO_REUSEPORT defined but not implemented.") from None
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
        waiter = self.create_future()
        transport = DatagramTransport(self, sock, protocol, r_addr, waiter)
        if self._debug:
            logger.debug("Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                         local_addr, remote_addr, transport, protocol)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _datagram_address_pairs(self, local_addr, remote_addr, family, proto, flags):
        """``[((family, proto), (local_address, remote_address)), ...]`` to try in order."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), (None, None))]
        if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr and local_addr[0] not in (0, "\x00"):
                try:
                    if stat.S_ISSOCK(os.stat(local_addr).st_mode):
                        os.remove(local_addr)  # a stale socket file from an earlier run
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to check or remove stale UNIX socket %r: %r", local_addr, err)
            return [((family, proto), (local_addr, remote_addr))]
        infos_by_key: dict = {}  # insertion-ordered: the resolver's preference
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await self._resolve_datagram(addr, family, proto, flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                infos_by_key.setdefault((fam, pro), [None, None])[idx] = address
        pairs = [(key, pair) for key, pair in infos_by_key.items()
                 if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _resolve_datagram(self, addr, family, proto, flags):
        host, port = addr[:2]
        numeric = _numeric_address(host, port, family, proto)
        if numeric is not None:
            return [numeric]
        getaddrinfo = getattr(self, "getaddrinfo", None)
        if getaddrinfo is None or type(self).getaddrinfo is asyncio.AbstractEventLoop.getaddrinfo:
            return await self.run_in_executor(None, lambda: socket.getaddrinfo(
                host, port, family, socket.SOCK_DGRAM, proto, flags))
        return await getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM, proto=proto,
                                 flags=flags)


def _numeric_address(host, port, family, proto):
    """The getaddrinfo entry for an already numeric host, without resolving (asyncio's rule)."""
    if proto not in (0, socket.IPPROTO_UDP) or host is None:
        return None
    if port is None or port == b"" or port == "":
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None  # a service name
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str) or "%" in host:
        return None
    families = [family] if family else ([socket.AF_INET, socket.AF_INET6] if _HAS_IPV6 else [socket.AF_INET])
    for af in families:
        try:
            socket.inet_pton(af, host)
        except (OSError, ValueError):
            continue
        if _HAS_IPV6 and af == socket.AF_INET6:
            return af, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", (host, port, 0, 0)
        return af, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", (host, port)
    return None
