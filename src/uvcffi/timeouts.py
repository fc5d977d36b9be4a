"""``timeout()``, ``timeout_at()`` and ``Timeout``: Python 3.13's semantics on every supported Python.

A Timeout is a deadline on a block of code inside one Task. When the deadline passes, the
Timeout cancels the Task; when the resulting ``CancelledError`` comes out of the block, the
Timeout turns it into a ``TimeoutError``. The hard part is telling *its* cancellation from
anyone else's: a Task may be cancelled from outside in the same loop iteration as the deadline
fires, and that outer cancellation must go on propagating. Python 3.11 solved it with a counter on
the Task: ``cancel()`` increments ``cancelling()``, ``uncancel()`` decrements it. A Timeout
remembers the count when it is entered; on the way out it withdraws its own request, and only if
the count is then back where it was is the ``CancelledError`` its own, to be converted. Nested
timeouts, ``TaskGroup`` (``taskgroups.py``) and asyncio's own ``timeout``/``TaskGroup`` (3.11+)
all keep their accounts on that same counter, which is why they compose in any nesting, ours in
theirs and theirs in ours, on any loop.

So the Task must have the counter. Every uvcffi Task has it, on every Python (``tasks.py``), and
asyncio's Task has it from 3.11. asyncio's Task before 3.11 (the C one and the pure-Python one)
has not, and its count cannot be kept from outside: an outer ``cancel()`` on it leaves no trace
we could read. Guessing would make a lost outer cancellation a silent bug, so entering a Timeout
or TaskGroup in such a task raises ``RuntimeError`` at once, with the fix (uvcffi's loop, or
``loop.set_task_factory(uvcffi.task_factory)`` on another loop).

The error raised on expiry: from 3.11 ``asyncio.TimeoutError`` *is* the builtin ``TimeoutError``.
Before 3.11 they are two classes; code written for 3.11 catches the builtin, older code catches
asyncio's, so there the error is an instance of a class derived from both.

States of a Timeout, each transition guarded where it happens::

    created --__aenter__--> active --deadline--> expiring --__aexit__--> expired
                              \\--------------__aexit__-----------------> finished

``reschedule()`` is allowed only while active. Prior art: Python 3.11's ``asyncio.timeouts``
(the semantics, read for facts), the ``async-timeout`` package, trio's cancel scopes.
"""

from __future__ import annotations

import asyncio
import builtins
import sys
from types import TracebackType
from typing import Any, Optional, Type

__all__ = ("Timeout", "timeout", "timeout_at")

CancelledError = asyncio.CancelledError

if sys.version_info >= (3, 11):
    _TimeoutError: Type[BaseException] = builtins.TimeoutError
    _ExceptionGroup: Any = builtins.ExceptionGroup
else:

    class _TimeoutError(asyncio.TimeoutError, builtins.TimeoutError):
        """The deadline of a uvcffi Timeout passed (both ``asyncio.TimeoutError`` and ``TimeoutError``)."""

    _TimeoutError.__name__ = _TimeoutError.__qualname__ = "TimeoutError"
    try:
        from exceptiongroup import ExceptionGroup as _ExceptionGroup
    except ImportError:  # then no TaskGroup error group can reach a Timeout
        _ExceptionGroup = None  # type: ignore[misc, assignment]

# The states (see the module docstring); the strings are what repr() shows, as asyncio's.
_CREATED = "created"
_ACTIVE = "active"
_EXPIRING = "expiring"
_EXPIRED = "expired"
_FINISHED = "finished"


def _check_counting(task: Any, what: str) -> None:
    """Raise RuntimeError unless ``task`` keeps the cancellation count (see the module docstring)."""
    if not (callable(getattr(task, "cancelling", None)) and callable(getattr(task, "uncancel", None))):
        raise RuntimeError(
            f"{what} needs a task with cancelling() and uncancel() to tell its own cancellation "
            f"from others' (asyncio's Task has them from Python 3.11, uvcffi's Task on every Python); "
            f"{task!r} has not: run it on uvcffi's loop, or call "
            f"loop.set_task_factory(uvcffi.task_factory) on this one"
        )


class Timeout:
    """An asynchronous context manager that cancels the current task at a deadline (``when()``,
    in ``loop.time()``'s clock) and then raises ``TimeoutError`` out of the block.

    Make one with :func:`timeout` or :func:`timeout_at`. A deadline of None never fires; one already
    past fires on the next loop iteration. ``async with`` raises:

    * ``RuntimeError`` on entry when the Timeout was entered before (it is single-use), when no
      task is running, or when the task cannot count cancellations (asyncio's Task before 3.11);
    * ``TimeoutError`` on exit when the deadline passed and the cancellation it caused is what
      ends the block; an exception raised while handling that cancellation propagates instead,
      with a ``TimeoutError`` put before the ``CancelledError`` in its context chain;
    * ``CancelledError`` when the task was also cancelled by someone else: that cancellation wins.
    """

    # Class defaults: a half-built Timeout still reprs.
    _state = _CREATED
    _when: Optional[float] = None
    _handle: Any = None  # the loop's timer for the deadline while active; None when there is none
    _task: Any = None  # the task entered in, from __aenter__ on
    _cancelling = 0  # the task's cancelling() count at entry

    def __init__(self, when: Optional[float]) -> None:
        """Prefer :func:`timeout`/:func:`timeout_at`. ``when``: loop time of the deadline, or None."""
        self._when = when

    def when(self) -> Optional[float]:
        """The deadline in loop time, or None for none."""
        return self._when

    def expired(self) -> bool:
        """True once the deadline has passed while the block ran (the task was cancelled for it)."""
        return self._state is _EXPIRING or self._state is _EXPIRED

    def reschedule(self, when: Optional[float]) -> None:
        """Move the deadline to ``when`` (loop time; None: no deadline; past: the next iteration).

        RuntimeError unless the Timeout is active (entered, not expired, not exited).
        """
        if self._state is not _ACTIVE:
            if self._state is _CREATED:
                raise RuntimeError("Timeout has not been entered")
            raise RuntimeError(f"Cannot change state of {self._state} Timeout")
        self._when = when
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if when is not None:
            loop = asyncio.get_running_loop()
            if when <= loop.time():
                self._handle = loop.call_soon(self._expire)
            else:
                self._handle = loop.call_at(when, self._expire)

    def __repr__(self) -> str:
        if self._state is _ACTIVE:
            when = None if self._when is None else round(self._when, 3)
            return f"<Timeout [{self._state}] when={when}>"
        return f"<Timeout [{self._state}]>"

    async def __aenter__(self) -> Timeout:
        if self._state is not _CREATED:
            raise RuntimeError("Timeout has already been entered")
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        _check_counting(task, "Timeout")
        self._task = task
        self._cancelling = task.cancelling()  # type: ignore[attr-defined]  # checked just above
        self._state = _ACTIVE
        self.reschedule(self._when)
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        state = self._state
        if state is not _ACTIVE and state is not _EXPIRING:
            raise RuntimeError(f"Timeout exited in state {state!r}: it was never entered or exited twice")
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if state is _ACTIVE:
            self._state = _FINISHED
            return
        self._state = _EXPIRED
        # Withdraw our cancellation request; any left beyond the count at entry are others'.
        if self._task.uncancel() > self._cancelling or exc_type is None:
            return
        if issubclass(exc_type, CancelledError):
            raise _TimeoutError() from exc
        if exc is not None:
            _insert_timeout(exc)
            if _ExceptionGroup is not None and isinstance(exc, _ExceptionGroup):
                for inner in exc.exceptions:
                    _insert_timeout(inner)

    def _expire(self) -> None:
        # The deadline's timer callback: cancel the task, once.
        if self._state is not _ACTIVE:
            raise RuntimeError(f"Timeout expired in state {self._state!r}")
        self._handle = None
        self._state = _EXPIRING
        self._task.cancel()


def _insert_timeout(exc: BaseException) -> None:
    # ``exc`` was raised while our cancellation was being handled: find the CancelledError in its
    # context chain and put a TimeoutError in front of it, so the traceback shows the deadline.
    while exc.__context__ is not None:
        context = exc.__context__
        if isinstance(context, CancelledError):
            error = _TimeoutError()
            error.__context__ = error.__cause__ = context
            exc.__context__ = error
            return
        exc = context


def timeout(delay: Optional[float]) -> Timeout:
    """A :class:`Timeout` whose deadline is ``delay`` seconds from now (None: no deadline).

    ``async with uvcffi.timeout(10): await work()`` cancels ``work()`` after 10 s and raises
    ``TimeoutError``. RuntimeError if no loop is running.
    """
    loop = asyncio.get_running_loop()
    return Timeout(None if delay is None else loop.time() + delay)


def timeout_at(when: Optional[float]) -> Timeout:
    """A :class:`Timeout` with the deadline ``when`` in ``loop.time()``'s clock (None: no deadline)."""
    return Timeout(when)
