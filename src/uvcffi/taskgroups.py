"""``TaskGroup``: structured concurrency with Python 3.13's semantics, on every supported Python.

A TaskGroup owns the tasks created through it: ``async with`` does not end before every one of
them has ended. The first child to fail aborts the group: the other children are cancelled, and
so is the *parent* (the task that entered the group), so that the body of the ``async with``
stops at its next ``await`` instead of running on beside a dead group. On the way out the group
collects every child's error, and the body's own, into one ``BaseExceptionGroup``.

Cancelling the parent is a request the group must take back, or a caller that catches the group
error would find its task still cancelled. It is done with the task's cancellation count
(``cancelling()``/``uncancel()``, which ``timeouts.py`` explains): the group calls ``cancel()``
at most once, remembers it, and calls ``uncancel()`` once on exit; a ``CancelledError`` then
propagates out of the group only if somebody else's cancellation is still counted. That is
what lets a group sit inside a ``timeout()`` and the reverse, uvcffi's or asyncio's (3.11+), in
any nesting, on any loop: each keeps its account on the same counter. A task without the counter
(asyncio's Task before 3.11) cannot host a group: entering raises RuntimeError.

3.13 behaviours kept on every Python: ``KeyboardInterrupt``/``SystemExit`` (from the body or a
child) aborts the group and propagates as itself, not inside a group; ``create_task`` on a group
not entered, finished or shutting down raises RuntimeError and closes the coroutine (no "never
awaited" warning); an external cancellation that meets the group's own keeps the parent's
count stable (the parent is cancelled again; not on asyncio's Task before 3.13, whose
``uncancel()`` cannot take that back); once the group has raised, it keeps no reference to
the errors, the parent or the exception (an error's traceback would otherwise hold the frames
alive in a reference cycle).
``create_task(name=, context=)`` work on every loop (the context on asyncio's loops before 3.11
through a uvcffi Task, see ``tasks.create_task``).

What the parent's Task decides: uvcffi's Task has 3.13's ``uncancel()`` on every Python (down to
zero it also drops a cancellation not yet delivered). asyncio's Task of 3.11/3.12 keeps that
cancellation: a child that fails *eagerly*, inside ``create_task()``, cancels the running parent,
and if the body has no ``await`` after it the cancellation arrives after the group, at the
parent's next ``await`` (asyncio's own TaskGroup of those versions does the same).

Before 3.11 there is no builtin ``BaseExceptionGroup``; the group is the ``exceptiongroup``
backport's (the one anyio, trio and pytest use, so their ``catch()`` and reporting work).

Fields, with their invariants::

    _entered      __aenter__ succeeded (a group is entered once)
    _exiting      __aexit__ began: no new child once no child is left ("finished")
    _aborting     the children are being cancelled: no new child ("shutting down")
    _cancelled_parent  we called parent.cancel() (at most once): __aexit__ owes one uncancel()
    _tasks        the children not yet done (a child leaves it in its done callback)
    _errors       the children's exceptions (and the body's), in arrival order; None once raised
    _fatal        the first KeyboardInterrupt/SystemExit seen: it ends the group as itself
    _all_done     while __aexit__ waits for children: the future the last child's end resolves

Prior art: Python 3.11's ``asyncio.taskgroups`` (the semantics, read for facts), trio's nurseries.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Any, List, Optional, Set, Type

from . import tasks
from .timeouts import _check_counting

__all__ = ("TaskGroup",)

CancelledError = asyncio.CancelledError
_NEW_UNCANCEL = sys.version_info >= (3, 13)
_FATAL = (KeyboardInterrupt, SystemExit)

if sys.version_info >= (3, 11):
    import builtins

    _BaseExceptionGroup: Any = builtins.BaseExceptionGroup
else:
    try:
        from exceptiongroup import BaseExceptionGroup as _BaseExceptionGroup
    except ImportError:  # TaskGroup() says what to install
        _BaseExceptionGroup = None  # type: ignore[misc, assignment]


def _uncancel_drops_pending(task: Any) -> bool:
    # Does uncancel() down to zero also drop a cancellation not yet delivered (3.13)? asyncio's
    # Task before 3.13 keeps it: re-cancelling such a parent would leave a stray CancelledError
    # behind a timeout that takes its own request back, so there the group does not re-cancel
    # (what asyncio's own TaskGroup of those versions does).
    return _NEW_UNCANCEL or isinstance(task, tasks.Task) or not isinstance(task, asyncio.Task)


def _refuse(coro: Any, message: str) -> RuntimeError:
    # create_task() will not take ``coro``: close it, so it never warns "was never awaited".
    close = getattr(coro, "close", None)
    if close is not None:
        close()
    return RuntimeError(message)


class TaskGroup:
    """An asynchronous context manager that runs tasks and waits for all of them on exit.

    ``async with uvcffi.TaskGroup() as tg: tg.create_task(work())``. The ``async with`` ends:

    * normally, when the body and every child returned or were cancelled by the group itself;
    * with ``BaseExceptionGroup`` (``ExceptionGroup`` when all are ``Exception``) holding every
      child's exception and the body's, after the first of them cancelled the rest;
    * with ``KeyboardInterrupt``/``SystemExit`` itself, when one came from the body or a child
      (the other children are cancelled and awaited first);
    * with ``CancelledError`` when the parent task was cancelled from outside (and no child failed):
      the children are cancelled and awaited first;
    * with RuntimeError on entry when the group was entered before, when no task is running, or
      when the task cannot count cancellations (asyncio's Task before 3.11).
    """

    # Class defaults: a half-built group still reprs. The fields are described in the module doc.
    _entered = False
    _exiting = False
    _aborting = False
    _cancelled_parent = False
    _loop: Any = None
    _parent: Any = None
    _fatal: Optional[BaseException] = None
    _all_done: Any = None
    _errors: Optional[List[BaseException]] = None
    _tasks: Any = frozenset()

    def __init__(self) -> None:
        if _BaseExceptionGroup is None:
            raise RuntimeError("uvcffi.TaskGroup needs the exceptiongroup package before Python 3.11: "
                               "pip install exceptiongroup")
        self._tasks: Set[asyncio.Task[Any]] = set()
        self._errors = []

    def __repr__(self) -> str:
        parts = ["<TaskGroup"]
        if self._tasks:
            parts.append(f"tasks={len(self._tasks)}")
        if self._errors:
            parts.append(f"errors={len(self._errors)}")
        if self._aborting:
            parts.append("cancelling")
        elif self._entered:
            parts.append("entered")
        return " ".join(parts) + ">"

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError(f"TaskGroup {self!r} has already been entered")
        loop = asyncio.get_running_loop()
        parent = asyncio.current_task(loop)
        if parent is None:
            raise RuntimeError(f"TaskGroup {self!r} cannot determine the parent task")
        _check_counting(parent, "TaskGroup")
        self._loop = loop
        self._parent = parent
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._exiting = True
        if isinstance(exc, _FATAL) and self._fatal is None:
            self._fatal = exc
        # The cancellation to propagate once the children are done, if nothing outranks it.
        cancelled = exc if exc_type is not None and issubclass(exc_type, CancelledError) else None
        errors = group = None
        try:
            if exc_type is not None and not self._aborting:
                self._abort()  # the body failed or was cancelled: the children go too
            while self._tasks:
                self._all_done = self._loop.create_future()
                try:
                    await self._all_done
                except CancelledError as error:
                    # The parent was cancelled while waiting. If the group had not aborted yet,
                    # that came from outside: it aborts the group and propagates at the end.
                    if not self._aborting:
                        cancelled = error
                        self._abort()
                finally:
                    self._all_done = None
            if self._fatal is not None:
                raise self._fatal
            if self._cancelled_parent and self._parent.uncancel() == 0:
                cancelled = None  # the only cancellation was ours
            errors = self._errors
            if cancelled is not None and not errors:
                raise cancelled
            if exc_type is not None and not issubclass(exc_type, CancelledError):
                errors.append(exc)  # type: ignore[union-attr, arg-type]  # a list until this exit ends; exc set with exc_type
            if errors:
                if self._parent.cancelling() and _uncancel_drops_pending(self._parent):
                    # Cancelled from outside as well: the errors win here, but the outer request
                    # must survive with the same count (take ours back, ask again).
                    self._parent.uncancel()
                    self._parent.cancel()
                group = _BaseExceptionGroup("unhandled errors in a TaskGroup", errors)
                raise group from None
        finally:
            # A raised error's traceback holds this frame: keep nothing that leads back to it.
            self._parent = self._errors = self._fatal = None
            exc = tb = cancelled = errors = group = None  # noqa: F841

    def create_task(self, coro: Any, *, name: Any = None, context: Any = None) -> Any:
        """Start ``coro`` as a child task of the group and return the task (``asyncio.create_task``).

        RuntimeError (and the coroutine is closed) if the group was not entered yet, has
        finished, or is shutting down after a failure or a cancellation.
        """
        if not self._entered:
            raise _refuse(coro, f"TaskGroup {self!r} has not been entered")
        if self._exiting and not self._tasks:
            raise _refuse(coro, f"TaskGroup {self!r} is finished")
        if self._aborting:
            raise _refuse(coro, f"TaskGroup {self!r} is shutting down")
        if context is None:
            task = self._loop.create_task(coro, name=name)
        else:
            task = tasks.create_task(coro, name=name, context=context)
        if task.done():  # an eager task that already ended: no callback to wait for
            self._on_task_done(task)
        else:
            self._tasks.add(task)
            task.add_done_callback(self._on_task_done)
        return task

    def _abort(self) -> None:
        self._aborting = True
        for task in self._tasks:
            if not task.done():
                task.cancel()

    def _on_task_done(self, task: Any) -> None:
        self._tasks.discard(task)
        waiter = self._all_done
        if waiter is not None and not self._tasks and not waiter.done():
            waiter.set_result(None)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        parent = self._parent
        if parent is None or parent.done():  # the group's exit was cut short: nobody to tell
            self._loop.call_exception_handler({
                "message": f"Task {task!r} has errored out but its parent task {parent!r} is already done",
                "exception": error,
                "task": task,
            })
            return
        self._errors.append(error)  # type: ignore[union-attr]  # a list until __aexit__ ends, and the parent runs
        if isinstance(error, _FATAL) and self._fatal is None:
            self._fatal = error
        if not self._aborting and not self._cancelled_parent:
            # The first failure: stop the children, and the body by cancelling the parent (a
            # request __aexit__ takes back with uncancel()).
            self._abort()
            self._cancelled_parent = True
            parent.cancel()
