"""The Task, and every function of the "Coroutines and Tasks" chapter, in pure Python.

A Task drives one coroutine: it resumes it (``send``/``throw``), looks at what the coroutine
yielded, and arranges to be resumed again. **``Task._step`` is the only place where a coroutine
runs and the only place where a Task gives control back to the loop**: a bare ``yield`` (from
``sleep(0)``) re-schedules the step with ``call_soon``; a yielded Future (from
``Future.__await__``) gets the step as its done callback. Everything else — cancellation, eager
start, waking up on an asyncio Future — funnels into that method (trio's ``_traps.py`` idea: one
door between user code and the scheduler).

A uvcffi Task is an ``asyncio.Task`` by class (``futures.py`` says how the base and our code
agree), so ``isinstance`` checks in libraries hold. Its bookkeeping with asyncio is by
registration: each Task registers itself
with asyncio (``asyncio.tasks._register_task``) and wraps every step in ``_enter_task`` /
``_leave_task``, so ``asyncio.current_task()``, ``asyncio.all_tasks()``, ``asyncio.timeout()``,
``TaskGroup`` and libraries built on them see our tasks. On any asyncio loop the Task uses the
loop's public API only (``call_soon``, ``call_later``, ``create_future``, ``create_task``,
``get_debug``), so it runs on any loop (``loop.set_task_factory``); on uvcffi's own loop it also
appends its step Handle to ``loop._step_ready`` (below). asyncio's Task awaits our Future
while ours awaits theirs: a foreign future is awaited through ``add_done_callback`` +
``result()`` exactly as asyncio does.

Speed: when the awaited Future is one of ours, the Task skips the ``__wakeup`` trampoline that
asyncio's pure-Python Task uses: the step itself is the done callback, resumes the coroutine with
``send(None)``, and ``Future.__await__`` fetches the outcome (result, exception or
cancellation) — the same outcome asyncio gets by calling ``result()`` and throwing, with one Python
call less per switch. The other hot path, ``sleep(0)``, is one bare ``yield`` and one
``call_soon``. On uvcffi's own loop both skip ``call_soon`` too: the Task makes one Handle for all
its steps (``futures._StepHandle``) and it is that Handle which the Future's callbacks list holds
and which goes back into the loop's ready queue on every wake-up — no Handle, bound method or
tuple is made per switch. (Still the loop's queue and its order: only the per-call checks of
``call_soon`` are skipped, and only while the loop is neither in debug mode nor closed.)

Where asyncio changed between versions, the running interpreter's asyncio is the oracle
(each gate names the change): the ``CancelledError`` a cancelled Task raises (3.11), what
``iscoroutine`` says of a generator (3.12), when ``as_completed`` checks its argument and
looks up the loop (3.13), "exception was never retrieved" reported on the last reference. A few
newer features are offered on every supported Python: ``cancelling()``/``uncancel()`` as 3.13
(uncancel to zero clears a pending cancellation), eager tasks (``eager_start=True``,
``eager_task_factory``), ``as_completed`` as both an iterator and an async iterator.
Deprecated parts of the spec keep working with a ``DeprecationWarning``: the
``loop=`` parameter of the combinators, coroutine objects passed to ``wait()``, the
``@coroutine`` decorator, ``Task.all_tasks()``/``Task.current_task()``. ``Task(coro, loop=...)``
is not deprecated: it is how every event loop builds tasks.
"""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import contextvars
import functools
import inspect
import linecache
import math
import sys
import traceback
import types
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Set, Tuple

from ._compat import (
    _enter_task,
    _format_coroutine,
    _is_coroutine,
    _leave_task,
    _register_eager_task,
    _register_task,
    _swap_current_task,
    _task_name_counter,
    _unregister_eager_task,
    extract_stack,
)
from ._future_helpers import set_result_unless_cancelled as _set_result_unless_cancelled
from .futures import (
    _FINISHED,
    _FUTURE_SLOTS,
    _PENDING,
    _PYPY,
    CancelledError,
    Future,
    InvalidStateError,
    _chain,
    _deferral,
    _deferred_reports,
    _defuse,
    _ExceptionLogger,
    _FutureCore,
    _get_loop,
    _install_deferral,
    _schedule_callbacks,
    _StepHandle,
    isfuture,
)

__all__ = (
    "Task",
    "create_task",
    "sleep",
    "gather",
    "shield",
    "wait_for",
    "wait",
    "as_completed",
    "run_coroutine_threadsafe",
    "current_task",
    "all_tasks",
    "ensure_future",
    "iscoroutine",
    "iscoroutinefunction",
    "coroutine",
    "eager_task_factory",
    "create_eager_task_factory",
    "task_factory",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
)

FIRST_COMPLETED = concurrent.futures.FIRST_COMPLETED
FIRST_EXCEPTION = concurrent.futures.FIRST_EXCEPTION
ALL_COMPLETED = concurrent.futures.ALL_COMPLETED

TimeoutError = asyncio.TimeoutError  # the builtin on 3.11+, asyncio's own class before

# -- registration with asyncio -------------------------------------------------------------------
# asyncio keeps "all tasks" and "the current task of each loop" in module state (C or Python).
# We use its functions, so both kinds of tasks share one registry. Python 3.12 added eager tasks
# and _swap_current_task; on older Pythons ``_compat`` builds the same on the current-task dict.

_copy_context = contextvars.copy_context
_FOREIGN = object()  # getattr default: the loop is not a uvcffi loop
_new_step_handle = _StepHandle.__new__
_add_done_callback = _FutureCore.add_done_callback
_CoroutineType = types.CoroutineType
_LOOP_DEPRECATED = ("The loop argument is deprecated since Python 3.8, "
                    "and scheduled for removal in Python 3.10.")


def _warn_loop() -> None:
    warnings.warn(_LOOP_DEPRECATED, DeprecationWarning, stacklevel=3)


def _get_loop_any() -> Any:
    """The running loop, else the current one (for calls allowed outside a coroutine)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


# -- coroutine introspection ---------------------------------------------------------------------

# Generators: until 3.11 asyncio's iscoroutine() is true for every generator (generator-based
# coroutines); from 3.12 (the @coroutine decorator gone) for none. We follow the interpreter,
# and from 3.12 still accept the generators that :func:`coroutine` (types.coroutine) marked,
# so the deprecated decorator of the spec keeps working.
_GENERATORS_ARE_COROUTINES = sys.version_info < (3, 12)
if _GENERATORS_ARE_COROUTINES:
    _COROUTINE_TYPES: Tuple[type, ...] = (types.CoroutineType, types.GeneratorType, collections.abc.Coroutine)
else:
    _COROUTINE_TYPES = (types.CoroutineType, collections.abc.Coroutine)
_CO_ITERABLE_COROUTINE = inspect.CO_ITERABLE_COROUTINE
_coroutine_types_seen: Set[type] = set()


def iscoroutine(obj: Any) -> bool:
    """True if ``obj`` is a coroutine object.

    Generators count as asyncio's of the running Python counts them: all of them before 3.12;
    from 3.12 only those of a :func:`coroutine`-decorated function.
    """
    if type(obj) in _coroutine_types_seen:
        return True
    if isinstance(obj, _COROUTINE_TYPES):
        if len(_coroutine_types_seen) < 100:  # bounded: types can be created dynamically
            _coroutine_types_seen.add(type(obj))
        return True
    if type(obj) is types.GeneratorType:  # 3.12+ only (before, in _COROUTINE_TYPES)
        return bool(obj.gi_code.co_flags & _CO_ITERABLE_COROUTINE)
    return False


def iscoroutinefunction(func: Any) -> bool:
    """True for ``async def`` functions and for functions decorated with :func:`coroutine`."""
    return inspect.iscoroutinefunction(func) or getattr(func, "_is_coroutine", None) is _is_coroutine


def coroutine(func: Any) -> Any:
    """Decorator marking a generator-based coroutine (deprecated: use ``async def``).

    The decorated generator function can ``yield from`` futures and coroutines, and can be
    awaited from ``async def`` code. A plain function is wrapped so that an awaitable it returns
    is awaited.
    """
    warnings.warn(
        '"@coroutine" decorator is deprecated since Python 3.8, use "async def" instead',
        DeprecationWarning,
        stacklevel=2,
    )
    if inspect.iscoroutinefunction(func):
        return func
    if inspect.isgeneratorfunction(func):
        gen_func = func
    else:

        @functools.wraps(func)
        def gen_func(*args: Any, **kwargs: Any) -> Any:
            res = func(*args, **kwargs)
            if isfuture(res) or inspect.isgenerator(res) or inspect.iscoroutine(res):
                res = yield from res  # type: ignore[misc]  # a future, generator or coroutine
            elif isinstance(res, collections.abc.Awaitable):
                res = yield from res.__await__()
            return res

    wrapper = types.coroutine(gen_func)
    wrapper._is_coroutine = _is_coroutine
    return wrapper


# -- the Task ------------------------------------------------------------------------------------


# (not generic for the type checker: asyncio.Task[Any], as futures.Future)
class Task(_FutureCore, asyncio.Task):  # type: ignore[type-arg]
    """A coroutine wrapped in a Future. Not thread-safe.

    The coroutine is scheduled at creation (or started right away with ``eager_start=True`` when
    the loop runs) and every step of it runs in ``context`` (default: a copy of the current
    context). The Task is done when the coroutine returns (result), raises (exception) or lets a
    ``CancelledError`` out (cancelled).
    """

    # While the Task is not done, it is in one of three states:
    #   1. waiting: _fut_waiter is a pending future whose callbacks include our step/wakeup; no
    #      step is scheduled;
    #   2. scheduled: _fut_waiter is None or done, and exactly one step is scheduled on the loop;
    #   3. running: _fut_waiter is None and the coroutine is executing inside _step().
    # 1 -> 2 when _fut_waiter completes (it schedules our callback); 2 -> 3 when the step runs;
    # 3 -> 1 or 2 (or done) when the coroutine yields (or returns/raises).
    #
    # The Task's own fields (the Future's are in _FUTURE_SLOTS), slots set in __init__:
    #   _fut_waiter        the future waited on (state 1), else None.
    #   _coro, _context    the coroutine and the context every step runs in.
    #   _must_cancel       a cancel() arrived while no future was there to cancel: throw
    #                      CancelledError at the next step.
    #   _wake              the step as a Handle (uvcffi loops), else None;
    #   _wake_entry        the (callback, context) entry a future we wait on holds, made at the
    #                      first wait; both cleared when the Task is done.
    # and fields most Tasks never write, class defaults below (an instance dict once written):
    #   _name              None until get_name() makes "Task-<n>" (lazily, as CPython 3.13).
    #   _num_cancels_requested  cancel() increments it, uncancel() decrements it; reaching 0
    #                      clears _must_cancel (3.13).
    #   _log_destroy_pending  False for a Task that never started (bad coroutine) or that
    #                      gather() made: __del__ is quiet.
    # Every slot costs each collector pass over a live Task a visit: of the 17 slots before,
    # these three cost ~1,000 instructions per task in task_create_gather (bench.instructions,
    # CPython 3.11), in the collector's traversals and the stores of __init__.
    __slots__ = _FUTURE_SLOTS + ("_fut_waiter", "_coro", "_context", "_must_cancel", "_wake",
                                 "_wake_entry")
    if TYPE_CHECKING:  # the slots above
        _fut_waiter: Any  # a future: ours, asyncio's or any asyncio-compatible one
        _coro: Any  # a coroutine, or a generator-based one
        _context: contextvars.Context  # (None only before __init__ sets it)
        _must_cancel: bool
        _wake: Optional[_StepHandle]
        _wake_entry: Optional[Tuple[Any, contextvars.Context]]
    _name: Optional[str] = None
    _num_cancels_requested: int = 0
    _log_destroy_pending: bool = True

    def __init__(
        self,
        coro: Any,
        *,
        loop: Any = None,
        name: Any = None,
        context: Any = None,
        eager_start: bool = False,
    ) -> None:
        if loop is None:
            loop = asyncio.get_event_loop()
        # futures._setup inlined, as in Loop.create_future: a call and a frame less per Task
        # (task_create_gather 49,598 -> 48,860 instructions per task, CPython 3.11, bench.instructions).
        self._state = _PENDING
        self._result = None
        if not _PYPY:  # a class default on PyPy (futures._FUTURE_SLOTS)
            self._exception = None
        self._loop = loop
        self._callbacks = []
        self._asyncio_future_blocking = False
        self._fut_waiter = None
        self._must_cancel = False
        self._wake_entry = None
        ready: Any = getattr(loop, "_step_ready", _FOREIGN)  # see below
        if loop.get_debug() if ready is _FOREIGN else loop._debug:
            self._source_traceback = extract_stack(sys._getframe(1))
        if coro.__class__ is not _CoroutineType and not iscoroutine(coro):
            self._coro = self._context = self._wake = None  # type: ignore[assignment]  # a half-built Task still reprs
            self._log_destroy_pending = False
            raise TypeError(f"a coroutine was expected, got {coro!r}")
        if name is not None:
            self._name = str(name)
        self._coro = coro
        if context is None:
            context = _copy_context()
        self._context = context
        # How our steps reach the loop. A uvcffi loop: one Handle for every step (_StepHandle),
        # which futures and _step append to the ready queue themselves while the loop's
        # _step_ready is that queue (None: debug or closed, go through call_soon). Any other
        # loop: call_soon and add_done_callback with the bound _step.
        # (_wake_entry, the (callback, context) pair, is made at the first wait: many tasks never wait.)
        if ready is not _FOREIGN:
            # its fields filled here (see futures._StepHandle): a constructor call costs more
            wake = self._wake = _new_step_handle(_StepHandle)
            wake._context = context
            wake._loop = loop
            wake._callback = self._step
            wake._args = ()
            wake._cancelled = False
            wake._repr = wake._source_traceback = None
        else:
            self._wake = None
        if eager_start and loop.is_running():
            self._eager_start()
        else:
            if ready is None or ready is _FOREIGN:
                loop.call_soon(self._step, context=context)
            else:
                ready.append(self._wake)
            _register_task(self)

    def __del__(self) -> None:
        if self._state is _PENDING:
            if self._log_destroy_pending:
                context = {"task": self, "message": "Task was destroyed but it is pending!"}
                if self._source_traceback:
                    context["source_traceback"] = self._source_traceback
                self._loop.call_exception_handler(context)
        elif self._exception is not None and self._tb_logger is _TASK_ARMED:
            # The exception nobody retrieved (see _task_failed): reported now, on the last
            # reference, as asyncio's Task does; by the futures' logger, which waits for the end
            # of a running collection (the Task may be retrieved in a sibling's __del__).
            logger = self._tb_logger = _ExceptionLogger(self)
            if _deferral[1]:
                _deferred_reports.append(logger)
            else:
                logger.report()

    def _repr_info(self) -> List[str]:
        info = _FutureCore._repr_info(self)
        if self._num_cancels_requested and self._state is _PENDING:
            info[0] = "cancelling"
        info.insert(1, f"name={self.get_name()!r}")
        if self._fut_waiter is not None:
            info.insert(2, f"wait_for={self._fut_waiter!r}")
        if self._coro is not None:
            info.insert(2, f"coro=<{_format_coroutine(self._coro)}>")
        return info

    # -- the public surface ----------------------------------------------------------------------

    def get_coro(self) -> Any:
        """The coroutine object the Task wraps."""
        return self._coro

    def get_context(self) -> Any:
        """The ``contextvars.Context`` every step of the coroutine runs in."""
        return self._context

    def get_name(self) -> str:
        """The Task's name (``Task-<n>`` unless one was given)."""
        name = self._name
        if name is None:
            name = self._name = f"Task-{_task_name_counter()}"
        return name

    def set_name(self, value: Any) -> None:
        """Rename the Task (``value`` is converted with ``str``).

        ``None`` keeps the current name: CPython 3.13.0's ``loop.create_task`` calls
        ``set_name(None)`` on every task a task factory made.
        """
        if value is not None:
            self._name = str(value)

    def set_result(self, result: Any) -> None:
        raise RuntimeError("Task does not support set_result operation")

    def set_exception(self, exception: Any) -> None:
        raise RuntimeError("Task does not support set_exception operation")

    def get_stack(self, *, limit: Optional[int] = None) -> List[types.FrameType]:
        """Frames of the Task: where it is suspended (one frame), else its traceback.

        A pending coroutine gives its newest ``limit`` frames; a Task ended by an exception gives
        the oldest ``limit`` frames of the traceback; otherwise the list is empty.
        """
        coro = self._coro
        frame = None
        for attr in ("cr_frame", "gi_frame", "ag_frame"):
            if hasattr(coro, attr):
                frame = getattr(coro, attr)
                break
        frames: List[types.FrameType] = []
        if frame is not None:
            while frame is not None and (limit is None or len(frames) < limit):
                frames.append(frame)
                frame = frame.f_back
            frames.reverse()
        elif self._exception is not None:
            tb = self._exception_tb
            while tb is not None and (limit is None or len(frames) < limit):
                frames.append(tb.tb_frame)
                tb = tb.tb_next
        return frames

    def print_stack(self, *, limit: Optional[int] = None, file: Any = None) -> None:
        """Print :meth:`get_stack` like the traceback module does, to ``file`` (default stderr)."""
        if file is None:
            file = sys.stderr
        entries = []
        for frame in self.get_stack(limit=limit):
            code = frame.f_code
            lineno = frame.f_lineno
            linecache.checkcache(code.co_filename)
            line = linecache.getline(code.co_filename, lineno, frame.f_globals)
            entries.append((code.co_filename, lineno, code.co_name, line))
        exc = self._exception
        if not entries:
            print(f"No stack for {self!r}", file=file)
        elif exc is not None:
            print(f"Traceback for {self!r} (most recent call last):", file=file)
        else:
            print(f"Stack for {self!r} (most recent call last):", file=file)
        traceback.print_list(traceback.StackSummary.from_list(entries), file=file)
        if exc is not None:
            for text in traceback.format_exception_only(type(exc), exc):
                print(text, file=file, end="")

    def cancel(self, msg: Any = None) -> bool:
        """Request cancellation: a CancelledError(msg) is thrown into the coroutine at its next step.

        Returns False if the Task is already done, True otherwise. The coroutine may catch the
        error, so the Task is not guaranteed to end cancelled. Counts one cancellation request
        (see :meth:`cancelling`).
        """
        if self._state is not _PENDING:
            if self._tb_logger is not None:
                _defuse(self)
            return False
        self._num_cancels_requested += 1
        waiter = self._fut_waiter
        if waiter is not None and waiter.cancel(msg=msg):
            # Keep _fut_waiter: if it is a Task that swallows the cancellation, a later cancel()
            # must reach it again.
            return True
        self._must_cancel = True  # a step is scheduled (state 2) or running (state 3)
        self._cancel_message = msg
        return True

    def cancelling(self) -> int:
        """Number of pending cancellation requests (``cancel()`` calls minus ``uncancel()`` calls)."""
        return self._num_cancels_requested

    def uncancel(self) -> int:
        """Withdraw one cancellation request; return how many remain.

        Reaching zero also drops a cancellation not yet delivered to the coroutine (3.13).
        """
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
            if self._num_cancels_requested == 0:
                self._must_cancel = False
        return self._num_cancels_requested

    @classmethod
    def all_tasks(cls, loop: Any = None) -> Set[asyncio.Task[Any]]:
        """Deprecated: use :func:`asyncio.all_tasks`."""
        warnings.warn(
            "Task.all_tasks() is deprecated, use asyncio.all_tasks() instead", DeprecationWarning,
            stacklevel=2,
        )
        return asyncio.all_tasks(asyncio.get_event_loop() if loop is None else loop)

    @classmethod
    def current_task(cls, loop: Any = None) -> Any:
        """Deprecated: use :func:`asyncio.current_task`."""
        warnings.warn(
            "Task.current_task() is deprecated, use asyncio.current_task() instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return asyncio.current_task(asyncio.get_event_loop() if loop is None else loop)

    # -- driving the coroutine -------------------------------------------------------------------

    def _eager_start(self) -> None:
        # Run the first step now, inside create_task(), as the current task of the loop (3.12).
        loop = self._loop
        prev = _swap_current_task(loop, None)  # _step() enters/leaves the task itself
        try:
            _register_eager_task(self)
            try:
                self._context.run(self._step)
            finally:
                _unregister_eager_task(self)  # defined above if asyncio lacks it
        finally:
            _swap_current_task(loop, prev)
            if self._state is _PENDING:
                _register_task(self)

    def _wakeup(self, future: Any) -> None:
        # Done callback for a foreign (asyncio) future: its outcome decides send or throw.
        try:
            future.result()
        except BaseException as exc:
            future = None  # the exception's traceback keeps this frame: no cycle through it
            self._step(exc)
        else:
            self._step()
        finally:
            self = future = None  # type: ignore[assignment]  # noqa: F841 - break the frame <-> task cycle of a stored traceback

    def _step(self, exc: Any = None) -> None:
        # THE ONLY PLACE where the coroutine runs and where the Task hands control to the loop.
        # ``exc`` is None (go on), an exception to throw in, or one of our Futures that just
        # completed and called us back: then Future.__await__ fetches its outcome on send(None).
        if self._state is not _PENDING:
            raise InvalidStateError(f"_step(): already done: {self!r}, {exc!r}")
        if self._must_cancel:
            if not isinstance(exc, CancelledError):
                exc = self._make_cancelled_error()
            self._must_cancel = False
        elif exc is not None and not isinstance(exc, BaseException):
            exc = None
        self._fut_waiter = None
        loop = self._loop
        _enter_task(loop, self)
        try:
            if exc is None:
                result = self._coro.send(None)
            else:
                result = self._coro.throw(exc)
        # The Task ends in one of the four handlers below; each first drops the step handle
        # (no more steps: breaks the Task <-> _StepHandle cycle).
        except StopIteration as stop:
            self._wake = self._wake_entry = None
            if self._must_cancel:  # cancelled while returning: the cancellation wins
                self._must_cancel = False
                _FutureCore.cancel(self, msg=self._cancel_message)
            else:
                self._result = stop.value
                self._state = _FINISHED
                if self._callbacks:
                    _schedule_callbacks(self)
        except CancelledError as cancelled:
            self._wake = self._wake_entry = None
            self._cancelled_exc = cancelled  # result() re-raises it: the traceback chain survives
            _FutureCore.cancel(self)
        except (KeyboardInterrupt, SystemExit) as fatal:
            self._wake = self._wake_entry = None
            _FutureCore.set_exception(self, fatal)
            raise
        except BaseException as error:
            self._wake = self._wake_entry = None
            _task_failed(self, error)
        else:
            if result is None:  # bare yield (sleep(0)): run again on the next loop iteration
                wake = self._wake
                ready = loop._step_ready if wake is not None else None
                if ready is not None:
                    ready.append(wake)
                else:
                    loop.call_soon(self._step, context=self._context)
            elif (
                isinstance(result, _FutureCore)
                and result._asyncio_future_blocking
                and result._loop is loop
                and result is not self
            ):
                # One of our futures, awaited via Future.__await__: wait for it (state 1).
                result._asyncio_future_blocking = False
                if result._state is _PENDING:
                    entry = self._wake_entry
                    if entry is None:
                        entry = self._wake_entry = (self._wake or self._step, self._context)
                    result._callbacks.append(entry)
                else:
                    loop.call_soon(self._step, result, context=self._context)
                self._fut_waiter = result
                if self._must_cancel and result.cancel(msg=self._cancel_message):
                    self._must_cancel = False
            else:
                self._wait_foreign(result)
        finally:
            _leave_task(loop, self)
            # A raised exception's traceback keeps this frame: drop what would close a cycle
            # through it (the Task, the exception thrown in, which may be the one stored).
            self = exc = None  # type: ignore[assignment]  # noqa: F841

    def _wait_foreign(self, result: Any) -> None:
        # Part of _step: the coroutine yielded something other than None or one of our pending
        # futures of this loop: an asyncio future, or a mistake reported into the coroutine.
        blocking = getattr(result, "_asyncio_future_blocking", None)
        if blocking is not None:
            if _get_loop(result) is not self._loop:
                error = RuntimeError(f"Task {self!r} got Future {result!r} attached to a different loop")
            elif not blocking:
                error = RuntimeError(f"yield was used instead of yield from in task {self!r} with {result!r}")
            elif result is self:
                error = RuntimeError(f"Task cannot await on itself: {self!r}")
            else:
                result._asyncio_future_blocking = False
                result.add_done_callback(self._wakeup, context=self._context)
                self._fut_waiter = result
                if self._must_cancel and result.cancel(msg=self._cancel_message):
                    self._must_cancel = False
                return
        elif inspect.isgenerator(result):
            error = RuntimeError(
                f"yield was used instead of yield from for generator in task {self!r} with {result!r}"
            )
        else:
            error = RuntimeError(f"Task got bad yield: {result!r}")
        self._loop.call_soon(self._step, error, context=self._context)


# A Task ended by an exception arms its "never retrieved" report with this shared stand-in
# instead of a logger of its own: Task.__del__ (which every Task runs anyway) reports, on the
# last reference as asyncio does, with no Task <-> logger cycle that only the collector frees.
# (asyncio 3.12+ runs the exception handler in the Task's context: the report must come while
# the program runs, not at a later collection.) _defuse and _log_traceback treat it as a logger.
_TASK_ARMED = _ExceptionLogger.__new__(_ExceptionLogger)
_TASK_ARMED.future = None


def _task_failed(task: Task, error: BaseException) -> None:
    # Part of Task._step: _FutureCore.set_exception for a coroutine that raised (never a
    # StopIteration, which ends the coroutine), with the report armed by _TASK_ARMED.
    task._exception = error
    task._exception_tb = error.__traceback__
    task._state = _FINISHED
    task._tb_logger = _TASK_ARMED
    if not _deferral[0]:
        _install_deferral()
    _schedule_callbacks(task)


def task_factory(loop: Any, coro: Any, **kwargs: Any) -> Task:
    """A task factory for ``loop.set_task_factory``: uvcffi Tasks on any asyncio loop."""
    return Task(coro, loop=loop, **kwargs)


def create_eager_task_factory(custom_task_constructor: Any) -> Any:
    """A task factory that starts tasks eagerly, built on ``custom_task_constructor``."""

    def factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
        kwargs["eager_start"] = True
        return custom_task_constructor(coro, loop=loop, **kwargs)

    return factory


eager_task_factory = create_eager_task_factory(Task)
eager_task_factory.__doc__ = """Task factory that runs each new Task's first step inside create_task().

A coroutine that finishes without suspending never reaches the loop: the Task is done when
``create_task`` returns. Python 3.12 semantics, on every supported Python.
"""


# -- creating tasks ------------------------------------------------------------------------------


def create_task(coro: Any, *, name: Any = None, context: Any = None, **kwargs: Any) -> Any:
    """Wrap ``coro`` in a Task of the running loop and schedule it; return the Task.

    Raises RuntimeError if no loop is running in this thread. Extra keywords (``eager_start``)
    reach the loop's task factory.
    """
    loop = asyncio.get_running_loop()
    if context is not None:
        kwargs["context"] = context
    if not kwargs:
        return loop.create_task(coro, name=name)
    try:
        return loop.create_task(coro, name=name, **kwargs)
    except TypeError:
        # asyncio's loops before 3.12 do not forward extra keywords: build the Task here.
        factory = loop.get_task_factory()
        if factory is None:
            return Task(coro, loop=loop, name=name, **kwargs)
        task = factory(loop, coro, **kwargs)
        if name is not None:
            task.set_name(name)  # type: ignore[attr-defined]  # a Task, as asyncio assumes
    return task


def ensure_future(coro_or_future: Any, *, loop: Any = None) -> Any:
    """Return a future for ``coro_or_future``: futures as is, coroutines and awaitables as Tasks.

    ValueError if a future of another loop than ``loop`` is given; TypeError for anything
    that is not awaitable.
    """
    if coro_or_future.__class__ is _CoroutineType:  # the common case, decided by one test
        is_coro = True
    elif isfuture(coro_or_future):
        if loop is not None and loop is not _get_loop(coro_or_future):
            raise ValueError("The future belongs to a different loop than "
                             "the one specified as the loop argument")
        return coro_or_future
    else:
        is_coro = iscoroutine(coro_or_future)
        if not is_coro:
            if not inspect.isawaitable(coro_or_future):
                raise TypeError("An asyncio.Future, a coroutine or an awaitable is required")
            coro_or_future = _await_it(coro_or_future)
    if loop is None:
        loop = _get_loop_any()
    try:
        return loop.create_task(coro_or_future)
    except RuntimeError:
        if is_coro:
            coro_or_future.close()
        raise


async def _await_it(awaitable: Any) -> Any:
    return await awaitable


# -- sleeping ------------------------------------------------------------------------------------


@types.coroutine
def _yield_once() -> Any:
    # A bare yield: the Task (in _step) reschedules itself with call_soon.
    yield


async def sleep(delay: float, result: Any = None, *, loop: Any = None) -> Any:
    """Suspend the current task for ``delay`` seconds, then return ``result``.

    ``sleep(0)`` (or a negative delay) yields to the loop exactly once. Cancellation raises
    CancelledError in the caller and removes the timer. ValueError for a NaN delay.
    """
    if loop is not None:
        _warn_loop()
    if delay <= 0:
        await _yield_once()
        return result
    if math.isnan(delay):
        raise ValueError("Invalid delay: NaN (not a number)")
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    handle = loop.call_later(delay, _set_result_unless_cancelled, future, result)
    try:
        return await future
    finally:
        handle.cancel()


# -- gather --------------------------------------------------------------------------------------


def _cancelled_error(fut: Any) -> BaseException:
    """The CancelledError a cancelled future raises (works for any asyncio-style future)."""
    try:
        fut.result()
    except CancelledError as exc:
        return exc
    return CancelledError()  # pragma: no cover - fut was not cancelled


class _GatheringFuture(Future):
    """The outer future of gather(): cancelling it cancels the children instead."""

    __slots__ = ("_children", "_cancel_requested")

    def __init__(self, children: List[Any], *, loop: Any) -> None:
        Future.__init__(self, loop=loop)
        self._children = children
        self._cancel_requested = False  # a cancel() reached a child: end cancelled

    def cancel(self, msg: Any = None) -> bool:
        if self._state is not _PENDING:
            return False
        cancelled = False
        for child in self._children:
            if child.cancel(msg=msg):
                cancelled = True
        if cancelled:
            # The outer future ends cancelled once the children are done, whatever
            # return_exceptions says.
            self._cancel_requested = True
        return cancelled


def gather(*aws: Any, loop: Any = None, return_exceptions: bool = False) -> Any:
    """Run ``aws`` concurrently; return a future of the list of their results, in order.

    Coroutines become Tasks. Without ``return_exceptions``, the first exception (a cancelled
    child counts as raising CancelledError) is propagated at once and the other awaitables keep
    running; with it, exceptions are results. Cancelling the returned future cancels every
    child not yet done, and the future then ends with CancelledError.
    """
    if loop is not None:
        _warn_loop()
    if not aws:
        outer = (loop or _get_loop_any()).create_future()
        outer.set_result([])
        return outer

    children: List[Any] = []
    nchildren = 0
    nfinished = 0
    outer: Any = None  # type: ignore[no-redef]  # (the early return's, above)

    def on_child_done(fut: Any) -> None:
        nonlocal nfinished
        nfinished += 1
        if outer is None or outer._state is not _PENDING:
            if not fut.cancelled():
                fut.exception()  # mark the exception as retrieved: gather saw it
            return
        # Ours and done with a result: read directly (the common case, no future-protocol calls).
        if not return_exceptions and not (
                isinstance(fut, _FutureCore) and fut._state is _FINISHED and fut._exception is None):
            if fut.cancelled():
                outer.set_exception(_cancelled_error(fut))
                return
            exc = fut.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
        if nfinished == nchildren:
            results = []
            for child in children:
                if isinstance(child, _FutureCore) and child._state is _FINISHED \
                        and child._exception is None:
                    res = child._result
                elif child.cancelled():
                    # A new error from the message, as asyncio: result() would consume the
                    # child's own CancelledError, which the cancelled outer raises below.
                    msg = getattr(child, "_cancel_message", None)
                    res = CancelledError("" if msg is None else msg)
                else:
                    res = child.exception()
                    if res is None:
                        res = child.result()
                results.append(res)
            if outer._cancel_requested:
                outer.set_exception(_cancelled_error(fut))
            else:
                outer.set_result(results)

    seen: Dict[Any, Any] = {}
    done_children = []
    fut_loop = loop
    for arg in aws:
        fut = seen.get(arg) if arg.__hash__ is not None else None
        if fut is None:
            if isinstance(arg, _FutureCore) and (fut_loop is None or arg._loop is fut_loop):
                fut = arg  # one of ours: what ensure_future would return, without its checks
            else:
                fut = ensure_future(arg, loop=fut_loop)
            if fut_loop is None:
                fut_loop = _get_loop(fut)
            if fut is not arg:
                fut._log_destroy_pending = False  # type: ignore[union-attr]  # gather owns it
            nchildren += 1
            if arg.__hash__ is not None:
                seen[arg] = fut
            if isinstance(fut, _FutureCore):  # ours: no method lookup (see futures._setup)
                if fut._state is not _PENDING:
                    done_children.append(fut)
                else:
                    _add_done_callback(fut, on_child_done)
            elif fut.done():
                done_children.append(fut)
            else:
                fut.add_done_callback(on_child_done)
        children.append(fut)
    outer = _GatheringFuture(children, loop=fut_loop)
    for fut in done_children:
        on_child_done(fut)
    return outer


# -- shield --------------------------------------------------------------------------------------

_shielded: Set[Any] = set()  # inner tasks of shield() stay alive while their outer future is gone


def shield(arg: Any, *, loop: Any = None) -> Any:
    """Protect ``arg`` from cancellation: return a future that follows it.

    Cancelling the returned future (e.g. the awaiting task is cancelled) leaves ``arg`` running;
    the await still raises CancelledError in the caller. If ``arg`` itself is cancelled, the
    returned future is cancelled too; its result or exception is passed on otherwise.
    """
    if loop is not None:
        _warn_loop()
    inner = ensure_future(arg)
    if inner.done():
        return inner
    inner_loop = _get_loop(inner)
    outer = inner_loop.create_future()
    if isinstance(inner, (Task, asyncio.Task)):
        _shielded.add(inner)
        inner.add_done_callback(_shielded.discard)

    def on_inner_done(inner: Any) -> None:
        if outer.cancelled():
            if not inner.cancelled():
                inner.exception()  # retrieved: the caller went away, nobody else will look
            return
        if inner.cancelled():
            outer.cancel()
        else:
            exc = inner.exception()
            if exc is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(inner.result())

    def on_outer_done(outer: Any) -> None:
        if not inner.done():
            inner.remove_done_callback(on_inner_done)

    inner.add_done_callback(on_inner_done)
    outer.add_done_callback(on_outer_done)
    return outer


# -- timeouts ------------------------------------------------------------------------------------


def _release_waiter(waiter: Any, *args: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _cancel_and_wait(fut: Any) -> None:
    """Cancel ``fut`` and wait until it is done (its coroutine may take time to clean up)."""
    waiter = asyncio.get_running_loop().create_future()
    cb = functools.partial(_release_waiter, waiter)
    fut.add_done_callback(cb)
    try:
        fut.cancel()
        await waiter
    finally:
        fut.remove_done_callback(cb)


async def wait_for(aw: Any, timeout: Optional[float], *, loop: Any = None) -> Any:
    """Await ``aw`` (coroutines become Tasks) for at most ``timeout`` seconds; return its result.

    ``timeout=None`` waits for ever. On timeout ``aw`` is cancelled, and wait_for waits for the
    cancellation to complete, then raises TimeoutError — unless ``aw`` ended otherwise meanwhile:
    an exception raised during the cancellation propagates, a result is returned. If the
    waiting task is cancelled, ``aw`` is cancelled (and awaited) and CancelledError propagates.
    """
    if loop is not None:
        _warn_loop()
    if timeout is None:
        return await aw
    running = asyncio.get_running_loop()
    fut = ensure_future(aw, loop=running)
    if timeout <= 0:
        if fut.done():
            return fut.result()
        await _cancel_and_wait(fut)
        try:
            return fut.result()
        except CancelledError as exc:
            raise TimeoutError() from exc

    waiter = running.create_future()
    timer = running.call_later(timeout, _release_waiter, waiter)
    cb = functools.partial(_release_waiter, waiter)
    fut.add_done_callback(cb)
    try:
        try:
            await waiter
        except CancelledError:
            fut.remove_done_callback(cb)
            await _cancel_and_wait(fut)
            raise
        if fut.done():
            return fut.result()
        fut.remove_done_callback(cb)
        await _cancel_and_wait(fut)
        try:
            return fut.result()
        except CancelledError as exc:
            raise TimeoutError() from exc
    finally:
        timer.cancel()


# -- waiting primitives --------------------------------------------------------------------------


async def wait(
    aws: Any, *, loop: Any = None, timeout: Optional[float] = None, return_when: str = ALL_COMPLETED
) -> Tuple[Set[Any], Set[Any]]:
    """Wait until ``return_when`` holds for the awaitables ``aws``; return ``(done, pending)``.

    Never raises TimeoutError: on timeout the unfinished ones are in ``pending``, not cancelled.
    ValueError for an empty ``aws`` or a bad ``return_when``. Coroutines are wrapped in Tasks
    (deprecated: the Tasks, not the coroutines, are in the returned sets).
    """
    if loop is not None:
        _warn_loop()
    if isfuture(aws) or iscoroutine(aws):
        raise TypeError(f"expect a list of futures, not {type(aws).__name__}")
    if not aws:
        raise ValueError("Set of Tasks/Futures is empty.")
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError(f"Invalid return_when value: {return_when}")
    running = asyncio.get_running_loop()
    aws = set(aws)
    if any(iscoroutine(aw) for aw in aws):
        warnings.warn(
            "The explicit passing of coroutine objects to asyncio.wait() is deprecated since "
            "Python 3.8, and scheduled for removal in Python 3.11.",
            DeprecationWarning,
            stacklevel=2,
        )
    fs = {ensure_future(aw, loop=running) for aw in aws}
    return await _wait(fs, timeout, return_when, running)


async def _wait(fs: Set[Any], timeout: Optional[float], return_when: str,
                loop: Any) -> Tuple[Set[Any], Set[Any]]:
    waiter = loop.create_future()
    timer = None if timeout is None else loop.call_later(timeout, _release_waiter, waiter)
    remaining = len(fs)

    def on_done(f: Any) -> None:
        nonlocal remaining
        remaining -= 1
        if (
            remaining <= 0
            or return_when == FIRST_COMPLETED
            or (return_when == FIRST_EXCEPTION and not f.cancelled() and f.exception() is not None)
        ):
            if timer is not None:
                timer.cancel()
            if not waiter.done():
                waiter.set_result(None)

    for f in fs:
        f.add_done_callback(on_done)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for f in fs:
            f.remove_done_callback(on_done)
    done: Set[Any]
    pending: Set[Any]
    done, pending = set(), set()
    for f in fs:
        (done if f.done() else pending).add(f)
    return done, pending


# 3.13 made as_completed() an object that checks its argument and wraps the awaitables at the
# call; before, a generator function did all of that at the first next().
_AS_COMPLETED_EAGER = sys.version_info >= (3, 13)


class _AsCompleted:
    """What as_completed() returns: an iterator of coroutines and an async iterator of futures."""

    def __init__(self, aws: Any, timeout: Optional[float], loop: Any) -> None:
        self._loop = loop
        self._done: Deque[Any] = deque()  # finished futures in completion order; None = timed out
        self._getters: List[Any] = []  # futures of the coroutines waiting for _done to fill
        self._timer = None
        self._todo: Set[Any] = set()
        self._todo_left = 0
        # Before 3.13 asyncio's as_completed() is a generator: nothing (argument check, loop
        # lookup, wrapping in tasks) happens until the first next(). _lazy holds the arguments
        # until then; None once started.
        self._lazy: Any = (aws, timeout)
        if _AS_COMPLETED_EAGER:
            self._start()

    def _start(self) -> None:
        aws, timeout = self._lazy
        self._lazy = None
        if not _AS_COMPLETED_EAGER and (isfuture(aws) or iscoroutine(aws)):
            raise TypeError(f"expect an iterable of futures, not {type(aws).__name__}")
        loop = self._loop
        if loop is None:
            loop = self._loop = _get_loop_any()
        todo = {ensure_future(aw, loop=loop) for aw in set(aws)}
        for f in todo:
            f.add_done_callback(self._on_done)
        if todo and timeout is not None:
            self._timer = loop.call_later(timeout, self._on_timeout)
        self._todo = todo
        self._todo_left = len(todo)  # items not yet handed out by the iterator

    def __iter__(self) -> _AsCompleted:
        return self

    def __aiter__(self) -> _AsCompleted:
        return self

    def __next__(self) -> Any:
        """A coroutine returning (or raising) the outcome of the next future to finish."""
        if self._lazy is not None:
            self._start()
        if not self._todo_left:
            raise StopIteration
        self._todo_left -= 1
        return self._next_done(True)

    async def __anext__(self) -> Any:
        """The next future to finish (the awaitable given, if it was a future)."""
        if self._lazy is not None:
            self._start()
        if not self._todo_left:
            raise StopAsyncIteration
        self._todo_left -= 1
        return await self._next_done(False)

    def _push(self, item: Any) -> None:
        self._done.append(item)
        getters, self._getters = self._getters, []
        for g in getters:
            if not g.done():
                g.set_result(None)

    def _on_done(self, f: Any) -> None:
        if not self._todo:
            return  # timed out already
        self._todo.remove(f)
        self._push(f)
        if not self._todo and self._timer is not None:
            self._timer.cancel()

    def _on_timeout(self) -> None:
        for f in self._todo:
            f.remove_done_callback(self._on_done)
            self._push(None)
        self._todo.clear()

    async def _next_done(self, resolve: bool) -> Any:
        while not self._done:
            getter = self._loop.create_future()
            self._getters.append(getter)
            await getter
        f = self._done.popleft()
        if f is None:
            raise TimeoutError
        return f.result() if resolve else f


def as_completed(aws: Any, *, loop: Any = None, timeout: Optional[float] = None) -> _AsCompleted:
    """Run ``aws`` concurrently; iterate over their outcomes in completion order.

    ``for c in as_completed(aws): r = await c`` — each ``c`` is a coroutine returning the result
    of (or raising the exception of) the next awaitable to finish. ``async for f in
    as_completed(aws)`` yields the finished futures themselves (the given ones when they are
    futures). Awaiting past ``timeout`` raises TimeoutError.
    """
    if loop is not None:
        _warn_loop()  # and used, as asyncio 3.9 does
    if _AS_COMPLETED_EAGER and inspect.isawaitable(aws):
        raise TypeError(f"expects an iterable of awaitables, not {type(aws).__name__}")
    return _AsCompleted(aws, timeout, loop)


# -- threads -------------------------------------------------------------------------------------


def run_coroutine_threadsafe(coro: Any, loop: Any) -> concurrent.futures.Future[Any]:
    """Submit ``coro`` to ``loop`` from another thread; return a ``concurrent.futures.Future``.

    The returned future gets the coroutine's result or exception; cancelling it cancels the
    Task in the loop. TypeError if ``coro`` is not a coroutine object.
    """
    if not iscoroutine(coro):
        raise TypeError("A coroutine object is required")
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def start() -> None:
        try:
            _chain(ensure_future(coro, loop=loop), future)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
            raise

    loop.call_soon_threadsafe(start)
    return future


# -- introspection -------------------------------------------------------------------------------


def current_task(loop: Any = None) -> Any:
    """The Task running in ``loop`` (default: the running loop), or None."""
    return asyncio.current_task(loop)


def all_tasks(loop: Any = None) -> Set[asyncio.Task[Any]]:
    """The not yet done Tasks of ``loop`` (default: the running loop), ours and asyncio's."""
    return asyncio.all_tasks(loop)

