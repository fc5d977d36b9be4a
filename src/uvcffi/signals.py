"""The loop's signal component: ``add_signal_handler`` and the wake-up socket.

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
the loop's batched read engine (``read_engine.py``), and its bytes reach
``_SignalWakeup._on_batched_read`` after ``uv_run`` returns, with the stream reads of the
turn. The wake-up socket exists from the loop's creation, as asyncio's self-pipe does: a
descriptor the user closed without ``remove_reader`` cannot be reused by it (``fds.py``).

Outside the signal handlers, a loop running in the main thread points the wake-up fd at its
socket for the length of each run (``Signals.run_starts``): libuv's poll restarts
on ``EINTR``, so without a byte to read, Ctrl-C would wait for the next event.

The exception is ``SIGCHLD``: libuv owns it as soon as it spawns a process (its reaper is a
``uv_signal_t``), and ``signal.signal(SIGCHLD, ...)`` would leave every child a zombie. So a
``SIGCHLD`` handler is a ``uv_signal_t`` (``handles/signal.py``); libuv multiplexes watchers.

Errors, as asyncio's unix loop: ``TypeError`` for a coroutine callback or a non-int signal,
``ValueError`` for a number outside ``signal.valid_signals()``, ``RuntimeError`` when the loop
is closed, when called outside the main thread, and for a signal that cannot be caught
(``SIGKILL``, ``SIGSTOP``). ``Loop.close()`` removes every handler (``Signals.close``).

``Signals`` (``Loop._signals``) owns the handlers, the ``SIGCHLD`` watcher and the wake-up
socket pair; ``Loop.add_signal_handler``/``remove_signal_handler`` delegate to it, and a run
of the loop calls ``run_starts``/``run_ends`` around itself.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from asyncio import events
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence

from ._binding import lib
from .handles.pipe import Pipe
from .handles.poll import Poll
from .handles.signal import Signal

if TYPE_CHECKING:
    from types import FrameType

    from .loop import Loop

__all__ = ["Signals"]

logger = logging.getLogger("asyncio")


def _sighandler_noop(signum: int, frame: Optional[FrameType]) -> None:
    """The Python-level handler of a signal the loop watches: Python's C-level handler has
    already written the number to the loop's wake-up socket, which is what the loop reads."""


class _SignalWakeup:
    """The loop's wake-up socket pair: Python writes signal numbers to ``wfd``
    (``signal.set_wakeup_fd``); libuv watches the other end (see the module's essay).

    Two states, one way: *draining* (a C poll callback discards the bytes: they only wake
    ``uv_run``) until ``read_numbers()``, then *reading* (a ``uv_pipe_t`` in the loop's read
    batch; each byte is a signal number for ``Signals.handle``). ``close()`` closes both
    ends; the loop closes its libuv handles itself."""

    _poll: Optional[Poll] = None  # the draining poll, until read_numbers()
    _pipe: Optional[Pipe] = None  # the reading pipe, after it
    _rsock: socket.socket = None  # type: ignore[assignment]  # None only in a half-built object
    _wsock: socket.socket = None  # type: ignore[assignment]  # None only in a half-built object

    def __init__(self, loop: Loop, on_signal: Callable[[int], None]) -> None:
        self._loop = loop
        self._on_signal = on_signal  # Signals.handle
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
        self._poll.close()  # type: ignore[union-attr]  # set until the pipe is; libuv forgets the descriptor at once: the pipe may take it
        self._poll = None
        fd = self._rsock.fileno()
        pipe = Pipe(loop, fd=fd)  # libuv owns the descriptor from here on
        self._rsock.detach()
        self._pipe = pipe
        pipe.register_reads(self, None)
        pipe.start_reading(False)
        pipe.unref()

    def _on_batched_read(self, start: int, end: int) -> None:
        # after uv_run, from ReadEngine.dispatch: the bytes are signal numbers
        on_signal = self._on_signal
        for signum in self._loop._reads.view[start:end]:
            if signum:
                on_signal(signum)

    def _on_status(self, status: int) -> None:
        if status != lib.UV_ENOBUFS or self._pipe is None:
            return  # EOF or an error: only when the loop closes the pair
        # a read of 64 KiB or more switched the stream to reading it ourselves (ReadEngine):
        # read what waits, and hand the stream back to C
        pipe = self._pipe
        pipe.read_to_arena()
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
                    self._on_signal(signum)

    def close(self) -> None:
        for handle in (self._poll, self._pipe):
            if handle is not None:
                handle.close()
        for sock in (self._rsock, self._wsock):
            if sock is not None:
                sock.close()  # a detached socket (the pipe's) closes nothing


class Signals:
    """The signal handlers of one loop (see the module's essay). ``close()`` gives every
    signal back to its default action and closes the wake-up sockets (their libuv handles
    are closed with the loop's)."""

    # sig -> asyncio Handle; SIGCHLD's Handle lives there too, its uv_signal_t in _sigchld
    handlers: Dict[int, events.Handle]
    _sigchld: Optional[Signal] = None  # handles.signal.Signal while a SIGCHLD handler is set
    # made with the loop, as asyncio's self-pipe (None only in a half-built object)
    _wakeup: _SignalWakeup = None  # type: ignore[assignment]

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self.handlers = {}
        self._wakeup = _SignalWakeup(loop, self.handle)

    def add(self, sig: int, callback: Callable[..., object], args: Sequence[Any]) -> None:
        """``Loop.add_signal_handler``: every way it ends is written there."""
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        _check_signal(sig)
        loop = self._loop
        loop._check_closed()
        if sig == signal.SIGCHLD:  # a uv_signal_t (see the module's essay)
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
            if self._sigchld is None:
                self._sigchld = Signal(loop, sig, self.handle)
            self.handlers[sig] = events.Handle(callback, args, loop, None)
            return
        wakeup = self._wakeup
        try:
            # raises ValueError outside the main thread: a loop running in another thread
            # cannot add handlers, as asyncio
            signal.set_wakeup_fd(wakeup.wfd)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None
        wakeup.read_numbers()
        self.handlers[sig] = events.Handle(callback, args, loop, None)
        try:
            signal.signal(sig, _sighandler_noop)
            signal.siginterrupt(sig, False)  # SA_RESTART: fewer EINTRs elsewhere
        except OSError as exc:
            del self.handlers[sig]
            self._release_wakeup()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise

    def remove(self, sig: int) -> bool:
        """``Loop.remove_signal_handler``: every way it ends is written there."""
        _check_signal(sig)
        handlers = self.handlers
        if sig not in handlers:
            return False
        del handlers[sig]
        if sig == signal.SIGCHLD:
            watcher, self._sigchld = self._sigchld, None
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
        self._release_wakeup()
        return True

    def _wakeup_handlers(self) -> bool:
        """Whether a handler of this loop needs the wake-up fd (every one but SIGCHLD's)."""
        return any(sig != signal.SIGCHLD for sig in self.handlers)

    def _release_wakeup(self) -> None:
        """The last handler that needed the wake-up fd is gone: stop pointing it at this
        loop's socket (asyncio sets -1; a wake-up fd someone else set since is left alone).
        While the loop runs in the main thread the run keeps it, and restores the one it found
        when it ends (``run_ends``)."""
        if self._wakeup_handlers() or self._wakeup is None:
            return
        thread_id = self._loop._thread_id
        if thread_id is not None and thread_id == threading.main_thread().ident:
            return
        try:
            old = signal.set_wakeup_fd(-1)
            if old != -1 and old != self._wakeup.wfd:
                signal.set_wakeup_fd(old)
        except (ValueError, OSError) as exc:
            logger.info("set_wakeup_fd(-1) failed: %s", exc)

    def handle(self, sig: int) -> None:
        """Signal ``sig`` arrived (a number read from the wake-up socket, or SIGCHLD's
        watcher): its handler joins the ready queue. Runs in the loop, after ``uv_run``."""
        handle = self.handlers.get(sig)
        loop = self._loop
        if handle is None or loop._closed:
            return  # no handler of ours: a signal for someone else, or a race with removal
        if handle._cancelled:
            self.remove(sig)
            return
        loop._ready.append(handle)

    # -- a run of the loop -----------------------------------------------------------------
    def run_starts(self) -> Optional[int]:
        """In the main thread: point the wake-up fd at the loop's socket for this run; returns
        the one it replaced (None elsewhere, or if the interpreter refuses)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        try:
            return signal.set_wakeup_fd(self._wakeup.wfd)
        except (ValueError, OSError):
            return None

    def run_ends(self, old_fd: Optional[int]) -> None:
        """The run ends: give back the wake-up fd it found -- unless signal handlers of this
        loop still need the socket (then it stays, as asyncio's add_signal_handler leaves it)."""
        if old_fd is None or self._wakeup_handlers():
            return
        if old_fd == self._wakeup.wfd:
            old_fd = -1  # set by handlers removed during the run
        try:
            signal.set_wakeup_fd(old_fd)
        except (ValueError, OSError):
            pass

    # -- closing ---------------------------------------------------------------------------
    def close_handlers(self) -> None:
        """``Loop.close()``, before libuv closes: give every signal back to its default action."""
        if not self.handlers:
            return
        if sys.is_finalizing():
            warnings.warn(f"Closing the loop {self._loop!r} on interpreter shutdown stage, "
                          "skipping signal handlers removal", ResourceWarning, source=self._loop,
                          stacklevel=1)
            self.handlers.clear()
            return
        for sig in list(self.handlers):
            self.remove(sig)

    def close(self) -> None:
        """``Loop.close()``, after libuv closed every handle: close the wake-up sockets."""
        if self._wakeup is not None:
            self._wakeup.close()  # its libuv handle is closed already: only the sockets


def _check_signal(sig: int) -> None:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")
