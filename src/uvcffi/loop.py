"""The uvcffi event loop: asyncio's scheduling model on top of ``uv_run``.

How a turn works (``_run_once``, the only place where scheduled callbacks are called):

1. Pick the turn's timeout: zero if callbacks are ready or the loop is stopping, else until
   the earliest deadline of the timer heap, else forever.
2. One FFI crossing, ``uvcffi_run_turn``: arm the loop's single libuv timer for that timeout
   and ``uv_run(UV_RUN_ONCE or UV_RUN_NOWAIT)``. I/O callbacks run inside it, through
   ``_callbacks.py``; the timer's and the wake-up's callbacks are C no-ops. Stream reads and
   IPv4/IPv6 datagrams are the exception: C only records them during ``uv_run`` and they
   reach the protocols in one Python loop after it returns (``read_engine.py``,
   ``ReadEngine``): at once, or -- when callbacks were ready before the poll -- from a marker
   queued behind those, as asyncio runs its I/O callbacks after them.
3. Move every timer whose deadline has passed (by ``loop.time()``, never early) from the heap
   to the ready deque, then run the deque's callbacks present at that moment, a fixed
   snapshot: callbacks they schedule wait for the next turn, as in asyncio.

Timers. ``call_later``/``call_at`` append ``(when, seq, handle)`` to an inbox; at the start of
the next turn the inbox's live entries are pushed onto a Python heap (tuples compare in C, and
``seq`` keeps equal deadlines in scheduling order), and entries cancelled in the meantime --
a timeout that did not expire -- never touch the heap. Cancelling only marks the handle;
cancelled heap entries are dropped when they reach the top, or all at once when they are more
than half of a large heap (asyncio's rule). A batch that arrives already in deadline order
(many timers of one delay) while no timer is pending skips the heap: it is kept as a sorted
list, latest first, and due timers are popped off its end, one comparison each instead of a
heap's ~2 log n; the next batch puts it back in the heap (ascending, it is a valid heap), so
there is one structure at a time. libuv sees one ``uv_timer_t`` per loop. A timer
per ``call_later`` (uvloop's way) costs an allocation and several C calls per timer and rounds
every deadline to libuv's millisecond clock; here a timer costs a list append.

Odd deadlines, as asyncio treats them. An infinite (or huge) deadline is never due: the turn
sleeps as long as libuv can be asked to, until something wakes it (``asyncio.sleep(math.inf)``).
A NaN deadline compares false with everything, in the heap as in asyncio's: it never moves ahead
of a timer already there, and it is never "later than now", so it runs in the turn it reaches
the head of the heap -- except that from Python 3.13 asyncio, when such a deadline heads the
heap and nothing is ready, passes its selector a NaN timeout, and ``run_forever`` raises
``ValueError``; so does this loop there. The deadline stays as given (``when()`` of
``call_at(Fraction(...))`` is a ``Fraction``); ``call_at`` compares it with a float once, so a
deadline that cannot be ordered (``str``, ``complex``) raises ``TypeError`` there, as asyncio's
heap push does. A ``Decimal``
orders with floats but cannot be subtracted from one: it fails when the loop computes how
long to sleep, on every run until it is cancelled -- asyncio's behaviour too.

Threads. ``call_soon_threadsafe`` appends to the ready deque and sends the loop's
``uv_async_t``, whose C callback does nothing: waking ``uv_run`` is all it has to do.

Signals. Python's C-level signal handler writes each signal's number to the loop's wake-up
socket (``signal.set_wakeup_fd``), which libuv watches: ``uv_run`` returns, the interpreter runs
its Python-level handlers, and the loop reads the numbers to run its own signal handlers
(``signals.py``). While a run lasts in the main thread the wake-up fd points at the socket
even without handlers, so Ctrl-C raises ``KeyboardInterrupt`` promptly while libuv sleeps in
``epoll_wait``.

Starting a run. Whatever fails while ``run_forever`` sets itself up (the wake-up fd, the hooks)
is undone by the same ``finally`` that ends a run: the loop is never left marked running.

Components. ``Loop.__init__`` builds the parts it owns, each a class in its own module with
its state and a ``close()``: ``_reads`` (``read_engine.py``, the reads of a turn), ``_resolver``
(``dns.py``), ``_fds`` (``fds.py``, ``add_reader`` and the fd watches), ``_signals``
(``signals.py``), plus the timer heap and the ready deque kept here. The asyncio methods stay
on ``Loop`` (here, and the stream and socket ones in ``net.py``/``sock.py``) and reach a
component in one attribute hop. ``close()`` closes them in one written order.

Errors from C callbacks reach ``_callback_error``: ``KeyboardInterrupt``/``SystemExit`` stop
``uv_run`` and are re-raised by ``_run_once``; anything else goes to the exception handler.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import heapq
import itertools
import logging
import operator
import os
import subprocess
import sys
import threading
import time
import traceback
import warnings
import weakref
from asyncio import events
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    AsyncGenerator,
    Awaitable,
    Callable,
    Coroutine,
    Dict,
    Generator,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _callbacks  # noqa: F401  (registers the extern "Python" callbacks)
from ._binding import check, ffi, lib
from ._compat import (
    DEBUG_STACK_DEPTH,
    _format_callback_source,
    extract_stack,
    running_loop,
    set_running_loop,
)
from .dns import Resolver
from .fds import FdWatches
from .futures import _PENDING, _PYPY
from .futures import Future as _Future
from .handles.async_ import Async
from .handles.timer import LoopTimer
from .net import NetMixin
from .read_engine import ReadEngine
from .signals import Signals
from .tasks import Task as _Task
from .transports import datagram as _datagram
from .transports import started as _started
from .transports import subprocess as _subprocess
from .transports.stream import ReadPipeTransport, WritePipeTransport

if TYPE_CHECKING:
    import socket
    from contextvars import Context

    from typing_extensions import TypeVarTuple, Unpack

    from ._binding import CData
    from .dns import AddrInfo, Sockaddr
    from .handles.base import UVHandle

    _Ts = TypeVarTuple("_Ts")
    # a timer as the loop's heap holds it: (deadline, sequence number, handle)
    _Entry = Tuple[float, int, "TimerHandle"]
    # a custom exception handler, as set_exception_handler takes it
    _ExceptionHandler = Callable[[asyncio.AbstractEventLoop, Dict[str, Any]], object]
    # what stdin=/stdout=/stderr= of subprocess_exec/_shell take
    _Stdio = Union[int, IO[Any], None]

_T = TypeVar("_T")
_ProtocolT = TypeVar("_ProtocolT", bound="asyncio.BaseProtocol")
_PipeT = TypeVar("_PipeT", "ReadPipeTransport", "WritePipeTransport")

__all__ = ["Loop", "Handle", "TimerHandle", "new_event_loop"]

logger = logging.getLogger("asyncio")

_RUN_ONCE = lib.UV_RUN_ONCE
_RUN_NOWAIT = lib.UV_RUN_NOWAIT
_run_turn = lib.uvcffi_run_turn  # looked up once: an attribute of cffi's lib is a dict lookup
_MIN_CANCELLED_TO_CLEAN = 100  # heap size from which cancelled entries are swept in bulk
_MAX_TIMEOUT_US = 2**62
_MAX_TIMEOUT_S = _MAX_TIMEOUT_US / 1e6  # below it, a delay in µs fits the C int64

# call_at(None): asyncio 3.11+ raises TypeError; before, TimerHandle's assert did
_WhenNoneError = TypeError if sys.version_info >= (3, 11) else AssertionError
# asyncio 3.13 hands its selector the NaN timeout of a NaN deadline at the heap's head
_NAN_HEAD_RAISES = sys.version_info >= (3, 13)

_monotonic = time.monotonic
_UNSET = object()  # create_datagram_endpoint's reuse_address when not given
_new_future = _Future.__new__
_heappush = heapq.heappush
_heappop = heapq.heappop
_copy_context = contextvars.copy_context
_lt = operator.lt
_islice = itertools.islice


if TYPE_CHECKING:
    _EntryBase = Tuple[float, int, "TimerHandle"]
else:
    _EntryBase = tuple


class _TimerEntry(_EntryBase):
    """PyPy's heap entry: ``(when, seq, handle)`` ordered by a Python ``__lt__``.

    PyPy's ``heapq`` is pure Python and its JIT does not inline tuple comparison (a call into
    the runtime per compare): sifting plain tuples took 70% of ``call_later_fire`` there (vmprof).
    This ``__lt__`` orders as a tuple does: ``seq`` breaks ties of equal (or identical) deadlines.
    CPython keeps plain tuples, compared in C.
    """

    __slots__ = ()

    def __lt__(self, other: _TimerEntry) -> bool:  # type: ignore[override]  # a tuple of its kind
        a = self[0]
        b = other[0]
        if a is b or a == b:
            return self[1] < other[1]
        return a < b


def _in_order_c(entries: List[_Entry]) -> bool:
    """Whether ``(when, seq, handle)`` entries are in heap order, compared in C (CPython)."""
    return all(map(_lt, entries, _islice(entries, 1, None)))


def _in_order_jit(entries: List[_Entry]) -> bool:
    """The same test for PyPy's JIT: deadlines compared inline, as a tuple compares them (an
    inbox is in ``seq`` order, so equal or identical deadlines are in order)."""
    a = entries[0][0]
    for entry in entries:
        b = entry[0]
        if not (a is b or a == b or a < b):
            return False
        a = b
    return True


# the entry type of the heap, or None for plain tuples (CPython); how to test a batch's order
_entry_type: Optional[Type[_TimerEntry]]
_in_order: Callable[[List[_Entry]], bool]
if sys.implementation.name == "pypy":
    _entry_type, _in_order = _TimerEntry, _in_order_jit
else:
    _entry_type, _in_order = None, _in_order_c


def _is_debug_mode() -> bool:
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG")))


class Handle(events.Handle):
    """asyncio's ``Handle`` (same class hierarchy, repr, ``cancel``), built without a method call."""

    __slots__ = ()
    # asyncio's slots, which typeshed leaves out (declarations only: no class attributes)
    _context: Context
    _loop: Loop
    _callback: Optional[Callable[..., object]]
    _repr: Optional[str]
    _source_traceback: Optional[traceback.StackSummary]

    def __init__(self, callback: Callable[..., object], args: Tuple[Any, ...], loop: Loop,
                 context: Optional[Context] = None) -> None:
        self._context = _copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        # In debug mode: where the call_soon* caller stands (two frames up).
        self._source_traceback = extract_stack(sys._getframe(2)) if loop._debug else None

    def cancel(self) -> None:
        # asyncio's, reading the loop's flag instead of calling get_debug().
        if not self._cancelled:
            self._cancelled = True
            if self._loop._debug:
                self._repr = repr(self)  # keeps the callback's description for slow-callback logs
            self._callback = None
            self._args = None  # type: ignore[assignment]  # as asyncio's


class TimerHandle(events.TimerHandle):
    """asyncio's ``TimerHandle``; the loop's heap holds it inside a ``(when, seq, handle)`` tuple."""

    __slots__ = ()
    # asyncio's slots, which typeshed leaves out (declarations only: no class attributes)
    _context: Context
    _loop: Loop
    _callback: Optional[Callable[..., object]]
    _repr: Optional[str]
    _source_traceback: Optional[traceback.StackSummary]
    _when: float
    _scheduled: bool

    def __init__(self, when: float, callback: Callable[..., object], args: Tuple[Any, ...], loop: Loop,
                 context: Optional[Context] = None) -> None:
        self._context = _copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        if loop._debug:
            self._source_traceback = extract_stack(sys._getframe(2))
        else:
            self._source_traceback = None
        self._when = when
        self._scheduled = True

    def cancel(self) -> None:
        if not self._cancelled:
            loop = self._loop
            if self._scheduled:
                loop._timer_cancelled_count += 1
            self._cancelled = True
            if loop._debug:
                self._repr = repr(self)
            self._callback = None
            self._args = None  # type: ignore[assignment]  # as asyncio's


_new_handle = Handle.__new__
_new_timer_handle = TimerHandle.__new__


# create_server/create_unix_server return uvcffi's Server (an asyncio.AbstractServer), not
# asyncio.base_events.Server as typeshed says: the one incompatibility with AbstractEventLoop.
class Loop(NetMixin, asyncio.AbstractEventLoop):  # type: ignore[misc]
    """An asyncio event loop running on libuv. Create it with ``uvcffi.new_event_loop()``."""

    # Class attributes as defaults: a half-built loop still reprs and finalizes.
    # (the components and _uv: None only in a half-built loop, and after close())
    _uv: CData = None
    _closed = False
    _stopping = False
    _thread_id: Optional[int] = None
    _debug = False
    _timer: LoopTimer = None  # type: ignore[assignment]
    _async: Async = None  # type: ignore[assignment]
    _resolver: Resolver = None  # type: ignore[assignment]  # dns.Resolver
    _signals: Signals = None  # type: ignore[assignment]  # signals.Signals
    _fds: FdWatches = None  # type: ignore[assignment]  # fds.FdWatches
    _pending_exc: Optional[BaseException] = None
    _current_handle: Optional[events.Handle] = None
    # True from just before the loop looks at its ready queue to decide whether uv_run may
    # block, until uv_run returns. call_soon_threadsafe appends first and reads this after,
    # so either the loop sees the new callback (and does not block) or the thread sees the
    # flag (and wakes the loop): no lost wake-up, and no uv_async_send (a GIL hand-off
    # under cffi) while the loop is busy anyway. Relies on the GIL ordering both sides.
    # The first sender clears it: on PyPy a loop woken from its poll waits for the GIL
    # (0.1 ms polls) while the sending thread runs on, and every later send (a lock, an
    # eventfd write, a GIL release) was wasted: 0.3-1.0 sends per call in call_soon_threadsafe.
    _may_block = True
    # closed or debug: the one flag the hot scheduling paths test (see _update_guarded)
    _guarded = False
    _reads: ReadEngine = None  # type: ignore[assignment]  # read_engine.ReadEngine

    def __init__(self) -> None:
        self._live_handles: Set[UVHandle] = set()  # UVHandles between uv_*_init and their close callback
        self._uv = ffi.new("uv_loop_t*")
        check(lib.uv_loop_init(self._uv))
        self._ready: collections.deque[events.Handle] = collections.deque()
        self._scheduled: List[_Entry] = []  # heap of (when, seq, TimerHandle)
        self._timer_inbox: List[_Entry] = []  # (when, seq, TimerHandle) scheduled during this turn
        self._timer_cancelled_count = 0
        self._next_seq = itertools.count().__next__  # tie-breaker: FIFO among equal deadlines
        self._exception_handler: Optional[_ExceptionHandler] = None
        self._task_factory: Optional[Callable[..., asyncio.Future[Any]]] = None
        self._default_executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self.slow_callback_duration = 0.1
        self._debug = _is_debug_mode()
        self._update_guarded()
        # the components (each its own module, state and close(); closed in close()'s order)
        # read_engine.py: the reads of a turn, dispatched after uv_run (C finds it in uv.data)
        self._reads = ReadEngine(self)
        self._resolver = Resolver(self)  # dns.py: getaddrinfo/getnameinfo, the requests in flight
        self._timer = LoopTimer(self)
        self._async = Async(self)
        # Every attribute is made here (or in _update_guarded, called above), and there are at
        # most 29 of them: CPython 3.11 keeps an object's attributes inline (the fastest
        # lookups, LOAD_ATTR_INSTANCE_VALUE) only while they share one key set of at most 30
        # names, and the 30th already costs (test_loop.py checks 29 and says what it cost).
        self._closed = self._stopping = False
        self._thread_id = None
        self._pending_exc = self._current_handle = None
        self._may_block = True
        self._fds = FdWatches(self)  # fds.py: add_reader/add_writer, the descriptors watched
        # its wake-up socket is made with the loop, as asyncio's self-pipe: never a descriptor
        # number that a watch of a user's closed socket still holds (fds.py)
        self._signals = Signals(self)  # signals.py: add_signal_handler, the wake-up socket

    # ------------------------------------------------------------------ representation, state
    def __repr__(self) -> str:
        return (f"<{type(self).__name__} running={self.is_running()} "
                f"closed={self._closed} debug={self._debug}>")

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = bool(enabled)
        self._update_guarded()
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, self._debug)

    def time(self) -> float:
        """Monotonic float seconds (``time.monotonic``: nanosecond resolution on Linux)."""
        return _monotonic()

    def _update_guarded(self) -> None:
        self._guarded = self._closed or self._debug
        # where uvcffi Tasks append their _StepHandle themselves (futures.py): the ready queue,
        # or None while every call_soon must be checked, and in a subclass with its own
        # call_soon (which then sees every wake-up, as it would with asyncio's Task)
        own = type(self).call_soon is Loop.call_soon
        self._step_ready = self._ready if own and not self._guarded else None

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_callback(self, callback: object, method: str) -> None:
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_thread(self) -> None:
        if self._thread_id is None:
            return
        if threading.get_ident() != self._thread_id:
            raise RuntimeError("Non-thread-safe operation invoked on an event loop other "
                               "than the current one")

    # ------------------------------------------------------------------ scheduling
    def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts],
                  context: Optional[Context] = None) -> Handle:
        """Schedule ``callback(*args)`` for the next turn of the loop (FIFO)."""
        if self._guarded:  # closed or debug
            self._check_closed()
            self._check_thread()
            self._check_callback(callback, "call_soon")
            handle = Handle(callback, args, self, context)
        else:  # Handle.__init__ inlined: the hottest call of all
            handle = _new_handle(Handle)
            handle._context = _copy_context() if context is None else context
            handle._loop = self
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts],
                             context: Optional[Context] = None) -> Handle:
        """Like ``call_soon``, from any thread: wakes the loop through its ``uv_async_t``."""
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        handle = Handle(callback, args, self, context)
        self._ready.append(handle)
        if self._may_block:
            # One send per blocking poll: the threads that append after it need none (the
            # loop wakes and runs the whole queue). Clearing the flag first cannot lose a
            # wake-up: whoever clears it sends afterwards, so after the loop set it.
            self._may_block = False
            self._async.send()
        return handle

    def call_later(self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts],
                   context: Optional[Context] = None) -> TimerHandle:
        """Schedule ``callback(*args)`` to run ``delay`` seconds from now, never earlier."""
        if delay is None:
            raise TypeError("delay must not be None")
        # call_at inlined: this is a hot path (every timeout, every sleep).
        if self._guarded:  # closed or debug: the checks and the traceback
            self._check_closed()
            self._check_thread()
            self._check_callback(callback, "call_later")
            tb = extract_stack(sys._getframe(1))
        else:
            tb = None
        when = _monotonic() + delay
        # TimerHandle.__init__ inlined (one frame less); keep the two in step.
        handle = _new_timer_handle(TimerHandle)
        handle._context = _copy_context() if context is None else context
        handle._loop = self
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = tb
        handle._when = when
        handle._scheduled = True
        self._timer_inbox.append((when, self._next_seq(), handle))
        return handle

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts],
                context: Optional[Context] = None) -> TimerHandle:
        """Schedule ``callback(*args)`` to run when ``loop.time()`` reaches ``when``."""
        if when is None:
            raise _WhenNoneError("when cannot be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        when < 0.0  # noqa: B015 - TypeError for a deadline that cannot be ordered (see "Odd deadlines")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        handle = TimerHandle(when, callback, args, self, context)
        self._timer_inbox.append((when, self._next_seq(), handle))
        return handle

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        if handle._scheduled:
            self._timer_cancelled_count += 1

    # ------------------------------------------------------------------ running
    def run_forever(self) -> None:
        """Run until ``stop()`` is called. Raises ``RuntimeError`` if the loop is closed or
        already running, or another loop runs in this thread."""
        self._check_closed()
        self._check_running()
        old_agen_hooks = sys.get_asyncgen_hooks()
        old_wakeup_fd: Optional[int] = None
        self._thread_id = threading.get_ident()
        try:  # from here on, the finally below undoes whatever the start did
            self._set_coroutine_origin_tracking(self._debug)
            old_wakeup_fd = self._signals.run_starts()
            set_running_loop(self)
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            run_once = self._run_once
            while True:
                run_once()
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._thread_id = None
            set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)
            self._signals.run_ends(old_wakeup_fd)

    def run_until_complete(self, future: Union[Awaitable[_T], Generator[Any, None, _T]]) -> _T:
        """Run until ``future`` (a future, task or coroutine) is done; return its result or
        raise its exception. ``RuntimeError`` if the loop stopped before it was done."""
        self._check_closed()
        self._check_running()
        new_task = not asyncio.isfuture(future)
        future = asyncio.ensure_future(future, loop=self)  # type: ignore[arg-type]  # a generator too
        if new_task:
            # The task is ours: an exception in it is reported by raising here, not logged.
            future._log_destroy_pending = False  # type: ignore[attr-defined]
        future.add_done_callback(_stop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # mark it retrieved: the caller gets the original error
            raise
        finally:
            future.remove_done_callback(_stop_when_done)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def stop(self) -> None:
        """Stop after the current turn: callbacks already ready still run once."""
        self._stopping = True

    def _run_once(self) -> None:
        ready = self._ready
        heap = self._scheduled
        run = self._timer.run  # a sorted batch, latest first: empty unless the heap is ("Timers")

        # One test for a turn without timers (most turns of a busy server): the timer work below
        # is skipped whole (future_set_await, CPython 3.11: 27,347 -> 26,835 instructions per
        # op with the flag below). ``timers`` is the heap or the batch itself where one holds a
        # timer, so it turns false as they empty; the inbox's moves set it again.
        timers = heap or run or self._timer_inbox
        if timers:
            if self._timer_cancelled_count > _MIN_CANCELLED_TO_CLEAN and \
                    self._timer_cancelled_count * 2 > len(heap) + len(run):
                self._sweep_cancelled_timers()

            inbox = self._timer_inbox
            if inbox:
                # Timers scheduled since the last turn enter the heap now; those already
                # cancelled (a timeout that did not expire) never touch it. A large batch goes
                # in with one C-level heapify instead of a push per timer.
                live = [entry for entry in inbox if not entry[2]._cancelled]
                self._timer_cancelled_count -= len(inbox) - len(live)
                inbox.clear()
                if not heap and not run and len(live) > 16 and _in_order(live):
                    # already in deadline order (the same delay each time): no heap at all
                    live.reverse()
                    run += live
                    live = None  # type: ignore[assignment]
                elif run:  # ascending again, a valid heap: the heap takes over (it was empty)
                    run.reverse()
                    heap += run if _entry_type is None else map(_entry_type, run)
                    run.clear()
                if live is None:
                    pass
                elif _entry_type is not None and len(live) > 16 and len(live) * 4 > len(heap):
                    heap += map(_entry_type, live)  # PyPy
                    heapq.heapify(heap)
                elif _entry_type is not None:
                    for entry in live:
                        _heappush(heap, _entry_type(entry))
                elif len(live) > 16 and len(live) * 4 > len(heap):
                    heap.extend(live)
                    heapq.heapify(heap)
                else:
                    for entry in live:
                        _heappush(heap, entry)
                timers = heap or run

            while heap and heap[0][2]._cancelled:
                _heappop(heap)
                self._timer_cancelled_count -= 1
            while run and run[-1][2]._cancelled:
                run.pop()
                self._timer_cancelled_count -= 1

        n_before = len(ready)  # the callbacks ready before this turn's poll
        if n_before or self._stopping:
            timeout_us, mode = -1, _RUN_NOWAIT
        else:
            # The poll may block: from here another thread's call_soon_threadsafe sends the
            # wake-up (and clears the flag). One it made between len(ready) and the flag sent
            # none, so the queue is looked at again after the flag is set.
            self._may_block = True
            timeout_us, mode = -1, _RUN_ONCE
            if ready:
                mode = _RUN_NOWAIT
            elif timers:
                delay = (heap[0] if heap else run[-1])[0] - _monotonic()
                if delay > 0:
                    # as long as the head's deadline, capped: an infinite one (sleep(math.inf))
                    # sleeps until something wakes the loop
                    timeout_us = int(delay * 1e6) + 1 if delay < _MAX_TIMEOUT_S else _MAX_TIMEOUT_US
                else:  # due, or a NaN deadline (see "Odd deadlines" above)
                    if _NAN_HEAD_RAISES and delay != delay:
                        self._may_block = False
                        raise ValueError("cannot convert float NaN to integer")
                    mode = _RUN_NOWAIT
        if self._fds.fresh:  # polls started since the last turn (fds.py)
            self._fds.check_fresh()
        nreads = _run_turn(self._uv, self._timer._ptr, timeout_us, mode)
        self._may_block = False

        if heap:
            now = _monotonic()
            # "not later than now", not "<= now": a NaN deadline is due once it heads the heap
            while heap and not heap[0][0] > now:
                handle = _heappop(heap)[2]
                if handle._cancelled:
                    self._timer_cancelled_count -= 1
                else:
                    ready.append(handle)
                handle._scheduled = False
        elif run:
            now = _monotonic()
            while run and not run[-1][0] > now:
                handle = run.pop()[2]
                if handle._cancelled:
                    self._timer_cancelled_count -= 1
                else:
                    ready.append(handle)
                handle._scheduled = False

        if nreads:
            # The stream reads of this turn (ReadEngine, in the order libuv made them) take the
            # place of asyncio's I/O callbacks: after the callbacks ready before the poll, before
            # the timers due now. With callbacks waiting from before the poll, the batch's
            # marker handle goes in behind them and dispatches the reads from there.
            if n_before and self._pending_exc is None:
                ready.insert(n_before, self._reads.marker)
            else:
                escaped = self._reads.dispatch()
                if escaped is not None and self._pending_exc is None:
                    self._pending_exc = escaped
        exc = self._pending_exc
        if exc is not None:
            self._pending_exc = None
            raise exc

        ntodo = len(ready)
        if self._debug:
            self._run_ready_debug(ntodo)
            return
        # Handle._run inlined: one Python frame less per callback. A countdown, not range():
        # making a range costs more than the one or two callbacks of a typical server turn.
        while ntodo:
            ntodo -= 1
            handle = ready.popleft()  # type: ignore[assignment]  # no bound method kept: one turn often runs one callback
            if handle._cancelled:
                continue
            try:
                handle._context.run(handle._callback, *handle._args)  # type: ignore[arg-type]  # not cancelled
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._report_callback_error(handle, exc)  # type: ignore[arg-type]
        handle = None  # type: ignore[assignment]  # no reference to the last callback between turns

    def _report_callback_error(self, handle: events.Handle, exc: BaseException) -> None:
        # What asyncio's Handle._run reports for a failing callback.
        cb = _format_callback_source(handle._callback, handle._args)  # type: ignore[attr-defined]
        context: Dict[str, Any] = {"message": f"Exception in callback {cb}", "exception": exc,
                                   "handle": handle}
        if handle._source_traceback:  # type: ignore[attr-defined]  # asyncio's private slot
            context["source_traceback"] = handle._source_traceback  # type: ignore[attr-defined]
        self.call_exception_handler(context)

    def _run_ready_debug(self, ntodo: int) -> None:
        ready = self._ready
        for _ in range(ntodo):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            self._current_handle = handle
            try:
                t0 = _monotonic()
                handle._run()
                dt = _monotonic() - t0
                if dt >= self.slow_callback_duration:
                    logger.warning("Executing %s took %.3f seconds", _format_handle(handle), dt)
            finally:
                self._current_handle = None

    def _sweep_cancelled_timers(self) -> None:
        # A swept handle keeps _scheduled set: it is cancelled already, so nothing reads it.
        kept = [entry for entry in self._scheduled if not entry[2]._cancelled]
        heapq.heapify(kept)
        self._scheduled[:] = kept  # in place: _run_once holds a reference to the list
        run = self._timer.run
        run[:] = [entry for entry in run if not entry[2]._cancelled]
        self._timer_cancelled_count = 0

    def _callback_error(self, exc: BaseException, owner: object) -> None:
        """An exception escaped Python code called from a libuv callback (``_callbacks.py``)."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            if self._pending_exc is None:
                self._pending_exc = exc
            lib.uv_stop(self._uv)
            return
        self.call_exception_handler({
            "message": f"Unhandled exception in a libuv callback of {owner!r}",
            "exception": exc,
        })

    # ------------------------------------------------------------------ signals (signals.py)
    def add_signal_handler(self, sig: int, callback: Callable[[Unpack[_Ts]], object],
                           *args: Unpack[_Ts]) -> None:
        """Run ``callback(*args)`` as a loop callback whenever signal ``sig`` arrives.

        Replaces a previous handler for ``sig``. ``TypeError`` for a coroutine (function) or a
        non-int ``sig``; ``ValueError`` for an invalid signal number; ``RuntimeError`` if the
        loop is closed, if called outside the main thread, or if ``sig`` cannot be caught."""
        self._signals.add(sig, callback, args)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for ``sig``; ``True`` if there was one. The signal goes back to
        its default action (``SIGINT``: ``KeyboardInterrupt``). ``TypeError``/``ValueError``
        for a bad ``sig``, as ``add_signal_handler``."""
        return self._signals.remove(sig)

    @property
    def _read_batch(self) -> ReadEngine:
        """The read engine under its former name: tests/transports/test_read_order.py probes
        for it to tell this loop from asyncio's."""
        return self._reads

    @property
    def _signal_handlers(self) -> Dict[int, events.Handle]:
        """sig -> Handle: asyncio's unix loop's name for its table (read by tests on both loops)."""
        return self._signals.handlers

    # ------------------------------------------------------------------ pipes (transports/stream.py)
    async def connect_read_pipe(self, protocol_factory: Callable[[], _ProtocolT],
                                pipe: Any) -> Tuple[asyncio.ReadTransport, _ProtocolT]:
        """Read from the file object ``pipe`` (a pipe, socket or character device; a regular
        file raises ``ValueError``); returns ``(transport, protocol)``. The transport closes
        ``pipe`` when it closes."""
        return await self._connect_pipe(ReadPipeTransport, protocol_factory, pipe)

    async def connect_write_pipe(self, protocol_factory: Callable[[], _ProtocolT],
                                 pipe: Any) -> Tuple[asyncio.WriteTransport, _ProtocolT]:
        """Write to the file object ``pipe``; returns ``(transport, protocol)``."""
        return await self._connect_pipe(WritePipeTransport, protocol_factory, pipe)

    async def _connect_pipe(self, transport_class: Type[_PipeT], protocol_factory: Callable[[], _ProtocolT],
                            pipe: Any) -> Tuple[_PipeT, _ProtocolT]:
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = transport_class.open(self, pipe, protocol, waiter)
        await _started(transport, waiter)
        return transport, protocol

    # ------------------------------------------------------------------ datagrams
    async def create_datagram_endpoint(
            self, protocol_factory: Callable[[], _ProtocolT],
            local_addr: Union[Tuple[str, int], str, None] = None,
            remote_addr: Union[Tuple[str, int], str, None] = None, *, family: int = 0, proto: int = 0,
            flags: int = 0, reuse_address: Optional[bool] = _UNSET,  # type: ignore[assignment]  # not given
            reuse_port: Optional[bool] = None, allow_broadcast: Optional[bool] = None,
            sock: Optional[socket.socket] = None,
    ) -> Tuple[asyncio.DatagramTransport, _ProtocolT]:
        """Create a datagram endpoint; returns ``(transport, protocol)``.

        As asyncio: ``sock`` excludes every other socket argument (``ValueError``) and must be a
        ``SOCK_DGRAM`` socket; ``family=AF_UNIX`` takes path strings (a stale socket file at
        ``local_addr`` is removed); host addresses are resolved and each ``(family, proto)``
        tried in turn, the first failure raised if all fail. ``reuse_address`` is rejected:
        ``TypeError`` on Python 3.11+ (where asyncio removed it), ``ValueError`` if true on
        older versions. Cancellation while resolving leaves nothing open."""
        if reuse_address is not _UNSET:
            if sys.version_info >= (3, 11):
                raise TypeError("create_datagram_endpoint() got an unexpected keyword argument "
                                "'reuse_address'")
            if reuse_address:
                raise ValueError("Passing `reuse_address=True` is no longer supported, as the usage "
                                 "of SO_REUSEPORT in UDP poses a significant security concern.")
            warnings.warn("The *reuse_address* parameter has been deprecated as of 3.5.10 and "
                          "is scheduled for removal in 3.11.", DeprecationWarning, stacklevel=2)
        return await _datagram.open_endpoint(self, protocol_factory, local_addr, remote_addr, family,
                                             proto, flags, reuse_port, allow_broadcast, sock)

    # ------------------------------------------------------------------ subprocesses
    async def subprocess_exec(
            self, protocol_factory: Callable[[], _ProtocolT], program: Any, *args: Any,
            stdin: _Stdio = subprocess.PIPE, stdout: _Stdio = subprocess.PIPE,
            stderr: _Stdio = subprocess.PIPE,
            universal_newlines: bool = False, shell: bool = False, bufsize: int = 0,
            encoding: Optional[str] = None, errors: Optional[str] = None, text: Optional[bool] = None,
            **kwargs: Any,
    ) -> Tuple[asyncio.SubprocessTransport, _ProtocolT]:
        """Run ``program`` with ``args`` (no shell); returns ``(transport, protocol)`` once the
        pipes are connected. ``ValueError`` for text-mode/buffering/shell arguments, as
        asyncio; ``OSError`` (``FileNotFoundError``, ``PermissionError``) from a failed spawn,
        with nothing left open. Cancelled while connecting: the child is killed and reaped."""
        _subprocess.check_popen_args(universal_newlines, shell, False, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        # (the protocol: a SubprocessProtocol, as asyncio assumes)
        return await _subprocess.open_subprocess(  # type: ignore[type-var]
            self, protocol, (program,) + args, False, stdin, stdout, stderr, kwargs)

    async def subprocess_shell(
            self, protocol_factory: Callable[[], _ProtocolT], cmd: Union[bytes, str], *,
            stdin: _Stdio = subprocess.PIPE, stdout: _Stdio = subprocess.PIPE,
            stderr: _Stdio = subprocess.PIPE,
            universal_newlines: bool = False, shell: bool = True, bufsize: int = 0,
            encoding: Optional[str] = None, errors: Optional[str] = None, text: Optional[bool] = None,
            **kwargs: Any,
    ) -> Tuple[asyncio.SubprocessTransport, _ProtocolT]:
        """Run ``cmd`` with ``/bin/sh -c``; as ``subprocess_exec`` otherwise."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        _subprocess.check_popen_args(universal_newlines, shell, True, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        return await _subprocess.open_subprocess(  # type: ignore[type-var]
            self, protocol, cmd, True, stdin, stdout, stderr, kwargs)

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close the loop: every libuv handle is closed and its memory released; pending
        callbacks are dropped; the default executor is shut down without waiting.
        ``RuntimeError`` if the loop is running; idempotent otherwise."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._closed = True
        self._update_guarded()
        self._ready.clear()
        self._scheduled.clear()
        self._timer_inbox.clear()
        if self._timer is not None:  # None in a half-built loop
            self._timer.run.clear()
        self._timer_cancelled_count = 0
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        # The components, in this order: what must be undone while libuv still runs, then
        # libuv itself (every handle closed, its close callback run), then what outlives it.
        # (A component is None only in a loop whose __init__ failed.)
        signals, resolver, reads = self._signals, self._resolver, self._reads
        if signals is not None:
            signals.close_handlers()  # signals.py: every signal back to its default action
        if resolver is not None:
            resolver.close()  # dns.py: cancel the requests still in libuv's threadpool
        self._close_uv()  # every handle (stream handles forget their read-engine keys)
        if reads is not None:
            reads.close()  # read_engine.py: no events, no registrations left
        if self._fds is not None:
            self._fds.close()  # fds.py: no watches (their polls are closed), no transports
        if signals is not None:
            signals.close()  # signals.py: the wake-up sockets (their libuv handle is closed)
        self._timer = self._async = None  # type: ignore[assignment]

    def _close_uv(self) -> None:
        uv = self._uv
        if uv is None:
            return
        for h in list(self._live_handles):
            h.close()
        lib.uvcffi_close_all(uv, lib._uvcffi_on_close)  # anything not tracked (never expected)
        for _ in range(1000):
            if lib.uvcffi_run(uv, lib.UV_RUN_NOWAIT) == 0 and not self._live_handles:
                break
        else:  # pragma: no cover - a libuv request that never completes
            lib.uvcffi_run(uv, lib.UV_RUN_DEFAULT)
        status = lib.uv_loop_close(uv)
        if status < 0:  # pragma: no cover - see _debug_live_handles
            raise RuntimeError(f"libuv loop still busy after closing all handles ({status})")
        self._uv = None  # the uv_loop_t memory goes with the last reference

    def _debug_live_handles(self) -> int:
        """Handles libuv still holds: Python-tracked ones plus any found by ``uv_walk``."""
        n = len(self._live_handles)
        if self._uv is not None:
            n = max(n, lib.uvcffi_count_handles(self._uv))
        return n

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if not self._closed and self._uv is not None:
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # ------------------------------------------------------------------ futures and tasks
    def create_future(self) -> _Future:
        """A uvcffi Future of this loop."""
        if self._debug:
            return _Future(loop=self)  # records where it was created
        # _FutureCore._setup inlined (a call and a frame less on a path every awaited I/O
        # operation takes: 4,081 -> 3,185 instructions per future made and freed, CPython 3.11).
        fut = _new_future(_Future)
        fut._state = _PENDING
        fut._result = None
        if not _PYPY:  # a class default on PyPy (futures._FUTURE_SLOTS)
            fut._exception = None
        fut._loop = self
        fut._callbacks = []
        fut._asyncio_future_blocking = False
        return fut

    def create_task(self, coro: Union[Coroutine[Any, Any, _T], Generator[Any, None, _T]], *,
                    name: Optional[str] = None, context: Optional[Context] = None,
                    **kwargs: Any) -> asyncio.Task[_T]:
        """Schedule a coroutine as a task; a task factory gets ``(loop, coro, **kwargs)``."""
        if self._closed:
            self._check_closed()  # raises
        if self._task_factory is None:
            if context is not None:
                kwargs["context"] = context
            task = _Task(coro, loop=self, name=name, **kwargs)
            # A Task records a traceback in debug mode only; _debug, a loop attribute, is read
            # faster than the Task's class default when there is none.
            if self._debug and task._source_traceback:
                del task._source_traceback[-1]
        else:
            if context is not None:
                kwargs["context"] = context
            task = self._task_factory(self, coro, **kwargs)  # type: ignore[assignment]  # a Task, as asyncio assumes
            if name is not None:
                try:
                    task.set_name(name)
                except AttributeError:
                    pass
        return task

    def set_task_factory(self, factory: Optional[Callable[..., asyncio.Future[Any]]]) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Optional[Callable[..., asyncio.Future[Any]]]:
        return self._task_factory

    # ------------------------------------------------------------------ exception handling
    def get_exception_handler(self) -> Optional[_ExceptionHandler]:
        return self._exception_handler

    def set_exception_handler(self, handler: Optional[_ExceptionHandler]) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: Dict[str, Any]) -> None:
        """Log ``context`` on the ``asyncio`` logger, as asyncio's default handler does."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info = (type(exception), exception, exception.__traceback__) if exception is not None else False
        if ("source_traceback" not in context and self._current_handle is not None
                and self._current_handle._source_traceback):  # type: ignore[attr-defined]
            context["handle_traceback"] = self._current_handle._source_traceback  # type: ignore[attr-defined]
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key == "source_traceback":
                value = "Object created at (most recent call last):\n" + \
                    "".join(traceback.format_list(value)).rstrip()
            elif key == "handle_traceback":
                value = "Handle created at (most recent call last):\n" + \
                    "".join(traceback.format_list(value)).rstrip()
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: Dict[str, Any]) -> None:
        """Send ``context`` to the handler set by ``set_exception_handler`` (or the default);
        an error in a custom handler is logged through the default handler."""
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            ctx = _handler_context(context) if _HANDLER_IN_CONTEXT else None
            if ctx is None:
                handler(self, context)
            else:
                ctx.run(handler, self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    "message": "Unhandled error in exception handler",
                    "exception": exc,
                    "context": context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler while handling an "
                             "unexpected error in custom exception handler", exc_info=True)

    # ------------------------------------------------------------------ resolver (dns.py)
    async def getaddrinfo(self, host: Union[bytes, str, None], port: Union[bytes, str, int, None], *,
                          family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> List[AddrInfo]:
        """``socket.getaddrinfo`` on libuv's threadpool (``Resolver.getaddrinfo``: every
        way it ends)."""
        return await self._resolver.getaddrinfo(host, port, family=family, type=type,
                                                proto=proto, flags=flags)

    async def getnameinfo(self, sockaddr: Sockaddr, flags: int = 0) -> Tuple[str, str]:
        """``socket.getnameinfo`` on libuv's threadpool (``Resolver.getnameinfo``)."""
        return await self._resolver.getnameinfo(sockaddr, flags)

    # ------------------------------------------------------------------ executor
    def run_in_executor(self, executor: Optional[concurrent.futures.Executor],
                        func: Callable[[Unpack[_Ts]], _T], *args: Unpack[_Ts]) -> asyncio.Future[_T]:
        """Run ``func(*args)`` in ``executor`` (the default thread pool if None); returns an
        awaitable asyncio future. ``RuntimeError`` once the default executor is shut down."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="uvcffi")
                self._default_executor = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: Optional[float] = None) -> None:
        """Wait for the default executor's threads to finish (at most ``timeout`` seconds,
        then warn and stop waiting). Later ``run_in_executor(None, ...)`` raises."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._do_shutdown, args=(executor, future))
        thread.start()
        try:
            if timeout is None:
                await future
            else:
                await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            warnings.warn("The executor did not finishing joining its threads within "
                          f"{timeout} seconds.", RuntimeWarning, stacklevel=2)
            executor.shutdown(wait=False)
        else:
            thread.join()

    def _do_shutdown(self, executor: concurrent.futures.Executor, future: asyncio.Future[None]) -> None:
        try:
            executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(_set_result_unless_done, future, None)
        except Exception as exc:
            if not self.is_closed():
                self.call_soon_threadsafe(_set_exception_unless_done, future, exc)

    # ------------------------------------------------------------------ async generators
    def _asyncgen_finalizer_hook(self, agen: AsyncGenerator[Any, Any]) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(f"asynchronous generator {agen!r} was scheduled after "
                          "loop.shutdown_asyncgens() call", ResourceWarning, source=self, stacklevel=1)
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator still alive that this loop saw start."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[ag.aclose() for ag in closing], return_exceptions=True)
        for result, agen in zip(results, closing):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                    "exception": result,
                    "asyncgen": agen,
                })

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if not hasattr(sys, "set_coroutine_origin_tracking_depth"):
            return
        if enabled:
            sys.set_coroutine_origin_tracking_depth(DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(0)


# 3.12+: a custom exception handler runs in the context of what the report is about.
_HANDLER_IN_CONTEXT = sys.version_info >= (3, 12)


def _handler_context(context: Dict[str, Any]) -> Optional[Context]:
    """The context of the report's task, else future, else handle (asyncio 3.12's order)."""
    for key in ("task", "future", "handle"):
        thing = context.get(key)
        if thing is not None:
            get_context = getattr(thing, "get_context", None)
            ctx = get_context() if get_context is not None else None
            return ctx if hasattr(ctx, "run") else None
    return None


def _format_handle(handle: events.Handle) -> str:
    cb = handle._callback  # type: ignore[attr-defined]  # asyncio's private slot
    if isinstance(getattr(cb, "__self__", None), asyncio.Task):
        return repr(cb.__self__)
    return str(handle)


def _stop_when_done(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None and \
            isinstance(fut.exception(), (SystemExit, KeyboardInterrupt)):
        return  # run_forever is about to raise it anyway
    fut.get_loop().stop()


def _set_result_unless_done(fut: asyncio.Future[_T], result: _T) -> None:
    if not fut.done():
        fut.set_result(result)


def _set_exception_unless_done(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def new_event_loop() -> Loop:
    """A new uvcffi event loop (``asyncio.run(main(), loop_factory=uvcffi.new_event_loop)``)."""
    return Loop()
