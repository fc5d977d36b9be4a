"""The Future: asyncio's class, uvcffi's code, built for speed and for mixing with asyncio.

Why our own Future at all?  The C ``_asyncio.Future`` is fast on CPython but does not exist on
PyPy, and asyncio's pure-Python ``_PyFuture`` pays for generality on every operation.  The Task
layer of uvcffi creates, completes and awaits a future on almost every switch, so this class is on
the hot path: ``__await__`` finishes without a method call when the result is ready, callbacks are a
plain list of ``(callback, context)`` pairs.

Identity: a uvcffi Future *is* an ``asyncio.Future`` (and a uvcffi Task an ``asyncio.Task``), by
class, because libraries check exactly that (anyio tests ``isinstance(waiter, asyncio.Future)``
before it cancels a task, and loses a value handed over when the check fails). The base gives
the identity only; the behaviour is this module's. How the two agree:

* The base is whatever ``asyncio.Future`` is: the C ``_asyncio.Future`` on CPython, the Python
  ``asyncio.futures.Future`` on PyPy. Its ``__init__`` is never called.
* The C type keeps its state in C fields behind data descriptors (``_state``, ``_result``,
  ``_loop``, ``_callbacks``, ``_asyncio_future_blocking`` ...), and it gives its instances a
  ``__dict__`` of its own, which CPython's attribute specialization cannot use (every access
  would take the generic path, ~20% more instructions per task step). So our fields are
  ``__slots__`` of the concrete classes: the slot descriptors sit in our class, before the
  base's descriptors in the MRO, and shadow them; access specializes as a slot load. Every
  other name asyncio's classes define is defined by ours too (a test checks the MRO), so no C
  method runs on a base whose C fields were never initialized.
* The methods live in ``_FutureCore``, a mixin without state, combined with ``asyncio.Future``
  here and with ``asyncio.Task`` in ``tasks.py``: CPython cannot lay out a class deriving from
  both a slotted Future and the C Task, so ``uvcffi.Task`` is an ``asyncio.Task`` but not a
  ``uvcffi.Future``; inside uvcffi, "one of ours" is ``isinstance(x, _FutureCore)``.
* The base's finalizer stays on CPython: the C one reads only its own ``fut_log_tb`` field
  (never set here) and returns, and every future pays that call at deallocation. On PyPy the
  class is made over a stand-in (``_StandIn``, below) so that its instances get no finalizer
  at all; the report of an unretrieved exception is ours on both (below).
* asyncio's C Task recognizes a future by ``_asyncio_future_blocking``, ``get_loop()`` and
  ``add_done_callback()`` unless its type is exactly the C Future: our subclass takes that
  generic path, so asyncio's Task awaits our Future and ours awaits theirs.
* On paper for 3.14 (no 3.14 interpreter here to check): its C Task keeps a per-thread list
  of tasks (``asyncio ps``, ``capture_call_graph``) that the C ``__init__`` fills; a task that
  skips that ``__init__`` has to reach ``all_tasks()`` through ``_register_task``, which is
  what we call, and the call-graph helpers read ``_fut_waiter``/``_coro``, names we keep. To
  verify, with CPython's own suite, the day a 3.14 interpreter is on these machines.

The state names are asyncio's strings (``'PENDING'``...), the errors are asyncio's classes
(``asyncio.CancelledError``, ``asyncio.InvalidStateError``). Callbacks are scheduled with
``loop.call_soon(callback, future, context=ctx)``: the only loop API used, so the Future runs on
any asyncio loop. One exception, on uvcffi's own loop only: a uvcffi Task waiting on the Future
registers its wake-up Handle (``_StepHandle``, one per Task), and that Handle goes straight into
the loop's ready queue, with no ``call_soon`` and no new Handle per wake-up.

No reference cycles through a raised exception: ``result()`` and ``__await__`` drop their
locals as the exception leaves them (the traceback keeps their frames), so a failed future that
was looked at, and its exception, are freed by reference counting, as asyncio's C Future is.
(On PyPy, which frees by tracing, ``__await__`` keeps no such ``try``: see there why.)

"Exception was never retrieved" costs nothing until an exception is set. A Python-level
``__del__`` on the Future would run on every deallocation (a finalizer call per future, the
most frequent object of the layer); instead ``set_exception`` creates a small ``_ExceptionLogger``
(asyncio 3.3's ``_TracebackLogger`` idea) and ``result()``/``exception()``/``cancel()`` defuse it.
Unlike asyncio 3.3's, ours keeps a reference to the Future, so the report still carries
``'future'`` as asyncio's does: the Future and its logger form a cycle that is broken when the
exception is retrieved; an unretrieved one is reported when the garbage collector frees the pair
(asyncio reports on the last reference, which for a future holding a traceback is usually the
collector as well). ``_log_traceback`` stays readable and settable to False, as asyncio's
``_PyFuture`` has it (``asyncio.subprocess`` writes it on our futures).

Cancellation: ``cancel(msg)`` keeps the message for the ``CancelledError`` that ``result()``
raises, and a Task that ended because its coroutine raised ``CancelledError`` re-raises that very
exception (``_cancelled_exc``), so the traceback chain is kept (3.11+; on 3.9/3.10 a new
``CancelledError(msg)`` is raised with that one as its ``__context__``, as their asyncio does).

Prior art: asyncio's ``futures.py`` (the state machine and its errors), its ``_asynciomodule.c``
(the "finish ``__await__`` without a call" shortcut), trio's ``Outcome`` (state stored once).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import gc
import reprlib
import sys
from types import GenericAlias
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Optional, Tuple

if TYPE_CHECKING:
    from contextvars import Context
    from traceback import StackSummary

from ._compat import _format_callback_source, extract_stack

__all__ = ("Future", "wrap_future", "isfuture")


CancelledError = asyncio.CancelledError
InvalidStateError = asyncio.InvalidStateError
isfuture = asyncio.isfuture

# The three states. A Future goes PENDING -> CANCELLED or PENDING -> FINISHED, once; every
# transition is guarded where it happens (``InvalidStateError`` otherwise). The strings are
# asyncio's, and they are compared with ``is`` internally (we only ever store these objects).
_PENDING = "PENDING"
_CANCELLED = "CANCELLED"
_FINISHED = "FINISHED"

_copy_context = contextvars.copy_context

# Where asyncio changed between versions, the running interpreter's asyncio is followed:
# - 3.11: a Task cancelled by its coroutine's CancelledError re-raises
#   that very error; before, a new CancelledError(msg) is made with it as __context__.
_REUSE_CANCELLED_EXC = sys.version_info >= (3, 11)
# - 3.13: set_exception(StopIteration) stores a RuntimeError caused by it; before,
#   it raises TypeError (exactly StopIteration, not its subclasses).
_WRAP_STOPITERATION = sys.version_info >= (3, 13)

_PYPY = sys.implementation.name == "pypy"


class _StepHandle(asyncio.events.Handle):
    """A uvcffi Task's wake-up on a uvcffi loop: made once per Task, reused for every step.

    Its callback is the Task's ``_step`` (no arguments). It sits in the ``_callbacks`` of the
    Future the Task waits on, where ``_schedule_callbacks`` recognizes it and appends it to the
    loop's ready queue as it is (the loop runs it as any Handle). A Task has at most one step
    scheduled at a time (see the states in ``Task``), so the Handle is never queued twice.
    ``Task.__init__`` fills asyncio's Handle fields itself (``_callback`` the step, ``_args``
    empty, the Task's loop and context): no constructor call per Task.
    """

    __slots__ = ()
    # asyncio's slots, which typeshed leaves out (declarations only: no class attributes)
    _context: Context
    _loop: Any
    _callback: Callable[[], None]
    _repr: Optional[str]
    _source_traceback: Optional[StackSummary]


class _ExceptionLogger:
    """Reports a Future's exception that nobody retrieved, when the Future is freed.

    Created only by ``set_exception``; ``future`` is the Future while the report is armed, None
    once defused. The only place where "exception was never retrieved" is reported.

    An armed logger and its Future form a cycle, so only the garbage collector frees them, and
    it runs the finalizers of one batch of garbage in no particular order: the owner of the
    Future may retrieve the exception in its own ``__del__`` (asyncio's StreamReaderProtocol
    does) after ours ran. So a logger finalized during a collection waits for the end of that
    collection (``_gc_phase``) and reports only if it is still armed then. Where the collector
    calls no ``gc.callbacks`` (PyPy; CPython's last collection at exit, which ``_at_exit``
    forestalls with a collection of its own) it reports at once.
    """

    __slots__ = ("future",)

    def __init__(self, future: _FutureCore) -> None:
        self.future: Optional[_FutureCore] = future
        if not _deferral[0]:
            _install_deferral()

    def __del__(self) -> None:
        if self.future is None:
            return
        if _deferral[1]:
            _deferred_reports.append(self)  # keeps the Future alive until the collection ends
            return
        self.report()

    def report(self) -> None:
        fut = self.future
        if fut is None:
            return
        self.future = None
        fut._tb_logger = None
        context: Dict[str, Any] = {
            "message": f"{fut.__class__.__name__} exception was never retrieved",
            "exception": fut._exception,
            "future": fut,
        }
        if fut._source_traceback:
            context["source_traceback"] = fut._source_traceback
        fut._loop.call_exception_handler(context)


# [installed, a collection is running]; the loggers finalized during the running collection.
_deferral = [False, False]
_deferred_reports: List[_ExceptionLogger] = []


def _gc_phase(phase: str, info: Any) -> None:
    # A gc callback. The collector does not nest collections, so one flag serves every thread.
    if phase == "start":
        _deferral[1] = True
        return
    _deferral[1] = False
    if _deferred_reports:
        loggers = _deferred_reports[:]
        del _deferred_reports[:]
        for logger in loggers:
            logger.report()


def _at_exit() -> None:
    # Collect while modules are intact and gc callbacks still run, so the cycles left at exit
    # are reported (or not) as during the program. Registered by _install_deferral only.
    if gc.isenabled():
        gc.collect()


def _install_deferral() -> None:
    # On the first exception set: programs that never set one pay nothing per collection.
    _deferral[0] = True
    callbacks = getattr(gc, "callbacks", None)
    if callbacks is not None:
        callbacks.append(_gc_phase)
        atexit.register(_at_exit)


# The fields of every uvcffi future (Future and Task) and their invariants. The ones every
# future uses are slots (set for each new future by _setup); the ones only a failure, a
# cancellation or debug mode writes live in the instance's __dict__ once written, with their
# default on _FutureCore (a store less per future each, and a visit less in each collector pass
# over a live future; they are read on those paths only).
#   _state            _PENDING -> _CANCELLED or _PENDING -> _FINISHED, once.
#   _result           the result once _FINISHED without an exception; else None.
#   _exception        the exception once _FINISHED with one; else None.
#   _loop             the loop; never changes.
#   _callbacks        a list of (callback, context) while PENDING; [] once done.
#   _asyncio_future_blocking  True between "awaited by a Task" (__await__) and "the Task saw
#                     it" (the Task resets it); never None (None means "not a future" to asyncio).
#   (__dict__) _source_traceback where the future was made (debug mode), else None.
#   (__dict__) _tb_logger an armed _ExceptionLogger while an exception nobody looked at is set.
#   (__dict__) _exception_tb   the exception's traceback as set_exception found it.
#   (__dict__) _cancel_message the message given to cancel(), for the CancelledError raised later.
#   (__dict__) _cancelled_exc  the CancelledError a Task's coroutine raised, re-raised as is.
_FUTURE_SLOTS = ("_state", "_result", "_exception", "_loop", "_callbacks", "_asyncio_future_blocking")
if _PYPY:
    # PyPy keeps five attributes in the instance and puts a sixth in an extra array made with
    # every future: there _exception, set only on failure, is a class default (_FutureCore) and
    # never written for a new future. gather_1k_futures: 3.3-3.8% fewer PyPy instructions.
    _FUTURE_SLOTS = tuple(name for name in _FUTURE_SLOTS if name != "_exception")  # type: ignore[assignment]


class _FutureCore:
    """The code of uvcffi's futures, shared by :class:`Future` and :class:`~uvcffi.Task`.

    A mixin without state: each concrete class combines it with its asyncio base and declares
    the slots (``_FUTURE_SLOTS``, and the Task's own). Only the fields are per class; every
    method lives here once.
    """

    if TYPE_CHECKING:
        # The fields, as the concrete classes hold them (slots and __dict__): the checker reads
        # them here, with no __slots__ of the mixin's own to hold them to.
        _state: str
        _result: Any
        _exception: Optional[BaseException]
        _loop: Any  # the loop (uvcffi's, or any asyncio loop)
        _callbacks: List[Tuple[Any, Context]]  # (callback, context), or (_StepHandle, context)
        _asyncio_future_blocking: bool

    # Defaults of the fields kept in __dict__ (see _FUTURE_SLOTS); as class attributes here
    # they also shadow the C base's descriptors of the same names.
    _source_traceback: Optional[StackSummary] = None
    _tb_logger: Any = None
    _exception_tb: Any = None
    _cancel_message: Any = None
    _cancelled_exc: Optional[BaseException] = None
    if _PYPY and not TYPE_CHECKING:
        _exception = None  # a slot elsewhere: see _FUTURE_SLOTS
    if not TYPE_CHECKING:  # (the checker: see the fields above)
        __slots__ = ()

    def _setup(self, loop: Any) -> None:
        # The initial value of every slot: the one place they are written for a new future
        # (and its copies in Loop.create_future and Task.__init__, which say why).
        self._state = _PENDING
        self._result = None
        if not _PYPY:
            self._exception = None
        self._loop = loop
        self._callbacks = []
        self._asyncio_future_blocking = False

    @property
    def _log_traceback(self) -> bool:
        """True while an exception is set and nobody has retrieved it (asyncio's flag)."""
        return self._tb_logger is not None

    @_log_traceback.setter
    def _log_traceback(self, value: bool) -> None:
        if value:
            raise ValueError("_log_traceback can only be set to False")
        _defuse(self)

    def _defuse(self) -> None:
        # The exception was seen: nothing to report (breaks the Future <-> logger cycle).
        logger = self._tb_logger
        if logger is not None:
            logger.future = None
            self._tb_logger = None

    __class_getitem__ = classmethod(GenericAlias)  # type: ignore[var-annotated]  # Future[int] in annotations

    # -- repr ------------------------------------------------------------------------------------

    def _repr_info(self) -> List[str]:
        info = [self._state.lower()]
        if self._state is _FINISHED:
            if self._exception is not None:
                info.append(f"exception={self._exception!r}")
            else:
                info.append(f"result={reprlib.repr(self._result)}")
        cbs = self._callbacks
        if cbs:
            names = [
                _format_callback_source(cb._callback if type(cb) is _StepHandle else cb, ())
                for cb, _ in cbs
            ]
            if len(names) > 2:
                names = [names[0], f"<{len(names) - 2} more>", names[-1]]
            info.append(f"cb=[{', '.join(names)}]")
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {' '.join(self._repr_info())}>"

    # -- state queries ---------------------------------------------------------------------------

    # A future whose __init__ never ran (``cls.__new__(cls)``, a subclass that skips
    # ``super().__init__()``) has its slots unset: reading one raises AttributeError. The queries
    # that asyncio answers on such a future answer the same here (pending; "Future object is not
    # initialized."), by catching that error: a ``try`` costs nothing on the normal path (3.11+
    # zero-cost exceptions; a block setup before), whereas class defaults or a ``__new__`` cannot
    # coexist with slots / would cost every new future a call.

    def get_loop(self) -> Any:
        """Return the event loop the Future is bound to.

        RuntimeError if the Future's ``__init__`` never ran.
        """
        try:
            return self._loop
        except AttributeError:
            raise RuntimeError("Future object is not initialized.") from None

    def done(self) -> bool:
        """True once the Future has a result, an exception, or was cancelled."""
        try:
            return self._state is not _PENDING
        except AttributeError:  # never initialized: pending, as asyncio's
            return False

    def cancelled(self) -> bool:
        """True if the Future was cancelled."""
        try:
            return self._state is _CANCELLED
        except AttributeError:  # never initialized: pending, as asyncio's
            return False

    def _make_cancelled_error(self) -> BaseException:
        """The CancelledError to raise for a cancelled Future (consumes ``_cancelled_exc``)."""
        exc = self._cancelled_exc
        if exc is not None:
            self._cancelled_exc = None
            if _REUSE_CANCELLED_EXC:
                return exc
        if self._cancel_message is None:
            new_exc = CancelledError()
        else:
            new_exc = CancelledError(self._cancel_message)
        if exc is not None:  # < 3.11: a new error, the coroutine's one as its context
            new_exc.__context__ = exc
        return new_exc

    def result(self) -> Any:
        """Return the result.

        Raises the Future's exception if one was set, ``CancelledError`` if it was cancelled
        (carrying the message given to ``cancel()``), ``InvalidStateError`` if not done yet.
        """
        try:
            state = self._state
        except AttributeError:  # never initialized (see get_loop): pending, as asyncio's
            state = _PENDING
        if state is _FINISHED:
            exc = self._exception
            if exc is not None:
                if self._tb_logger is not None:
                    _defuse(self)
                try:
                    raise exc.with_traceback(self._exception_tb)
                finally:
                    # The traceback keeps this frame: without its locals, no cycle
                    # exception -> frame -> Future -> exception (asyncio's C Future has no frame).
                    exc = self = None  # type: ignore[assignment]  # noqa: F841
            return self._result
        if state is _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("Result is not ready.")

    def exception(self) -> Optional[BaseException]:
        """Return the exception set, or None if a result was set.

        Raises ``CancelledError`` if the Future was cancelled, ``InvalidStateError`` if not done.
        """
        try:
            state = self._state
        except AttributeError:  # never initialized (see get_loop): pending, as asyncio's
            state = _PENDING
        if state is _FINISHED:
            if self._tb_logger is not None:
                _defuse(self)
            return self._exception
        if state is _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("Exception is not set.")

    # -- callbacks -------------------------------------------------------------------------------

    def add_done_callback(self, fn: Callable[[Any], Any], *, context: Any = None) -> None:
        """Call ``fn(future)`` through the loop once done (right away if already done).

        The callback runs in ``context`` (default: a copy of the current context).
        """
        if context is None:
            context = _copy_context()
        if self._state is _PENDING:
            self._callbacks.append((fn, context))
        else:
            self._loop.call_soon(fn, self, context=context)

    def remove_done_callback(self, fn: Callable[[Any], Any]) -> int:
        """Remove every registration of ``fn``; return how many were removed."""
        cbs = self._callbacks
        kept = [pair for pair in cbs if pair[0] != fn]
        removed = len(cbs) - len(kept)
        if removed:
            cbs[:] = kept
        return removed

    def _schedule_callbacks(self) -> None:
        # The only place where done callbacks are handed to the loop.
        cbs = self._callbacks
        if cbs:
            self._callbacks = []
            loop = self._loop
            for fn, ctx in cbs:
                if type(fn) is _StepHandle:
                    # A uvcffi Task of this uvcffi loop waits on us: its own Handle goes to the
                    # ready queue, unless the loop checks every call (debug, closed).
                    ready = loop._step_ready
                    if ready is not None:
                        ready.append(fn)
                    else:
                        loop.call_soon(fn._callback, context=ctx)
                else:
                    loop.call_soon(fn, self, context=ctx)

    # -- transitions -----------------------------------------------------------------------------

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the Future and schedule its callbacks.

        Returns False if it was already done (nothing changes), True otherwise.
        """
        if self._state is not _PENDING:
            if self._tb_logger is not None:
                _defuse(self)  # as asyncio: cancel() on a failed future counts as looking at it
            return False
        self._state = _CANCELLED
        self._cancel_message = msg
        _schedule_callbacks(self)
        return True

    def set_result(self, result: Any) -> None:
        """Mark the Future done with ``result``; ``InvalidStateError`` if already done."""
        if self._state is not _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        self._result = result
        self._state = _FINISHED
        if self._callbacks:
            _schedule_callbacks(self)

    def set_exception(self, exception: Any) -> None:
        """Mark the Future done with an exception (a class is instantiated).

        ``InvalidStateError`` if already done. ``StopIteration`` cannot travel through
        generators: it is replaced by a RuntimeError (its cause) from Python 3.13 on, and refused
        with TypeError before, as the running interpreter's asyncio does.
        """
        if self._state is not _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        if isinstance(exception, type):
            exception = exception()
        if not _WRAP_STOPITERATION:
            if type(exception) is StopIteration:
                raise TypeError(
                    "StopIteration interacts badly with generators and cannot be raised into a Future"
                )
        elif isinstance(exception, StopIteration):
            new_exc = RuntimeError(
                "StopIteration interacts badly with generators and cannot be raised into a Future"
            )
            new_exc.__cause__ = exception
            new_exc.__context__ = exception
            exception = new_exc
        self._exception = exception
        self._exception_tb = exception.__traceback__
        self._state = _FINISHED
        self._tb_logger = _ExceptionLogger(self)
        _schedule_callbacks(self)

    # -- awaiting --------------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Any]:
        # The one ``yield`` through which a Task waits for a Future: the Task receives the Future,
        # sees ``_asyncio_future_blocking`` and resumes us when the Future is done.
        if self._state is _PENDING:
            self._asyncio_future_blocking = True
            try:
                yield self
            except BaseException:  # thrown in by a Task that woke up with an exception
                self = None  # type: ignore[assignment]  # noqa: F841 - as in result(): the traceback keeps this frame
                raise
        if self._state is _FINISHED and self._exception is None:
            return self._result
        if self._state is _PENDING:
            raise RuntimeError("await wasn't used with future")
        try:
            return self.result()  # raises: the exception, or CancelledError
        finally:
            self = None  # type: ignore[assignment]  # noqa: F841 - as in result(): the traceback keeps this frame

    if _PYPY:
        # The same without the ``try`` around the ``yield``: PyPy gives every generator whose
        # code yields inside a ``try`` (its CO_YIELD_INSIDE_TRY flag) a GC finalizer, so that
        # version costs a register_finalizer call per await of a pending future (seen in the
        # traces, PYPYLOG=jit-log-opt), and the collector's finalizer queue a visit per future
        # awaited. The cycle the ``try`` breaks is nothing to PyPy's tracing collector.
        def __await__(self) -> Generator[Any, None, Any]:  # noqa: F811
            if self._state is _PENDING:
                self._asyncio_future_blocking = True
                yield self
            if self._state is _FINISHED and self._exception is None:
                return self._result
            if self._state is _PENDING:
                raise RuntimeError("await wasn't used with future")
            return self.result()

    __iter__ = __await__  # for ``yield from future`` in generator-based coroutines


# The methods the layer calls on its own futures, as plain functions: CPython 3.11 does not
# specialize a method lookup on a subclass of the C Future (its instances' lazy __dict__), so
# ``self._schedule_callbacks()`` would take the generic path on every completion; a module global
# call does not. (3.12+ specializes both.)
_setup = _FutureCore._setup
_defuse = _FutureCore._defuse
_schedule_callbacks = _FutureCore._schedule_callbacks


if _PYPY:
    # PyPy decides once, when a class is created, whether its instances get a finalizer: any
    # __del__ in the MRO (asyncio's pure-Python Future has one, which does nothing for ours) puts
    # every instance in the GC's finalizer queue, ~1.5 µs per future, and gather_1k_futures
    # 2.4x slower. So Future is created over a stand-in of the same layout and asyncio.Future
    # takes its place right after: the same MRO, isinstance holds, and no finalizer.
    class _StandIn:
        pass

    _FutureBase: Any = _StandIn
else:
    _FutureBase = asyncio.Future


# (not generic for the type checker: asyncio.Future[Any]; the class itself takes Future[int])
class Future(_FutureCore, _FutureBase):  # type: ignore[misc]  # asyncio.Future on every Python
    """An eventual result, awaitable by any asyncio Task; not thread-safe.

    Same API, states and errors as :class:`asyncio.Future`, and an instance of it.
    """

    __slots__ = _FUTURE_SLOTS

    def __init__(self, *, loop: Any = None) -> None:
        if loop is None:
            loop = asyncio.get_event_loop()
        _setup(self, loop)
        if loop.get_debug():
            self._source_traceback = extract_stack(sys._getframe(1))


if _FutureBase is not asyncio.Future:
    Future.__bases__ = (_FutureCore, asyncio.Future)



# -- chaining with concurrent.futures ------------------------------------------------------------


def _get_loop(fut: Any) -> Any:
    get_loop = getattr(fut, "get_loop", None)
    if get_loop is not None:
        return get_loop()
    return fut._loop


def _copy_state(source: Any, dest: Any) -> None:
    """Copy the outcome of the done ``source`` into ``dest`` (asyncio-style or concurrent)."""
    if isinstance(dest, concurrent.futures.Future):
        if source.cancelled():
            dest.cancel()
        if not dest.set_running_or_notify_cancel():
            return
        if source.cancelled():  # pragma: no cover - dest.cancel() above made this unreachable
            return
        exc = source.exception()
        if exc is not None:
            dest.set_exception(_to_concurrent_exc(exc))
        else:
            dest.set_result(source.result())
        return
    if dest.cancelled():
        return
    if source.cancelled():
        dest.cancel()
        return
    exc = source.exception()
    if exc is not None:
        if isinstance(exc, concurrent.futures.CancelledError) and not isinstance(exc, CancelledError):
            exc = CancelledError(*exc.args)
        dest.set_exception(exc)
    else:
        dest.set_result(source.result())


def _to_concurrent_exc(exc: BaseException) -> BaseException:
    if isinstance(exc, CancelledError) and not isinstance(exc, concurrent.futures.CancelledError):
        return concurrent.futures.CancelledError(*exc.args)
    return exc


def _chain(source: Any, dest: Any) -> None:
    """Make ``dest`` follow ``source``; cancelling ``dest`` cancels ``source``.

    Either side may be an asyncio-style future (ours or asyncio's) or a
    ``concurrent.futures.Future``; each side is touched only from its own loop's thread.
    """
    src_conc = isinstance(source, concurrent.futures.Future)
    dst_conc = isinstance(dest, concurrent.futures.Future)
    if not src_conc and not isfuture(source):
        raise TypeError("A future is required for source argument")
    if not dst_conc and not isfuture(dest):
        raise TypeError("A future is required for destination argument")
    source_loop = None if src_conc else _get_loop(source)
    dest_loop = None if dst_conc else _get_loop(dest)

    def on_dest_done(dest: Any) -> None:
        if dest.cancelled():
            if source_loop is None or source_loop is dest_loop:
                source.cancel()
            else:
                source_loop.call_soon_threadsafe(source.cancel)

    def on_source_done(source: Any) -> None:
        if dest_loop is None or dest_loop is source_loop:
            _copy_state(source, dest)
        elif not dest_loop.is_closed():
            dest_loop.call_soon_threadsafe(_copy_state, source, dest)

    dest.add_done_callback(on_dest_done)
    source.add_done_callback(on_source_done)


def wrap_future(future: Any, *, loop: Any = None) -> Any:
    """Wrap a ``concurrent.futures.Future`` into a Future of ``loop``; futures pass through.

    The new Future gets the outcome of ``future``; cancelling it cancels ``future``.
    """
    if isfuture(future):
        return future
    if not isinstance(future, concurrent.futures.Future):
        raise TypeError(f"concurrent.futures.Future is expected, got {future!r}")
    if loop is None:
        # asyncio.get_event_loop, looked up where asyncio's wrap_future finds it (CPython 3.9's
        # test_wrap_future_use_global_loop patches it there).
        loop = asyncio.futures.events.get_event_loop()  # type: ignore[attr-defined]
    new_future = loop.create_future()
    _chain(future, new_future)
    return new_future
