"""The one door to asyncio's internals: every private asyncio name uvcffi uses, imported here once.

uvcffi is an asyncio loop with its own Future/Task layer; to look like asyncio from the inside
(``current_task()``, ``all_tasks()``, reprs, TLS, sendfile, flow control) it uses names that
asyncio does not promise to keep: the ``_``-prefixed ones and those of its non-public submodules
(``constants``, ``format_helpers``, ``coroutines``, ``base_events``, ``sslproto``, ``staggered``,
``trsock`` ...). They are all taken here, and no other module of ``src/`` imports one
(``tests/test_compat.py`` parses every module and fails otherwise). So a CPython release that moves
a name breaks this file, in one place, not several files in several ways.

Each entry says what uvcffi uses it for and which versions differ (checked: CPython 3.9-3.13 and
PyPy 3.9 by running them; 3.14 by reading its sources). Where asyncio may lack a name, the entry
has a fallback, defined below as ``_fallback_*`` so that the tests exercise it on every
interpreter; :data:`ORIGINS` and :data:`FALLBACKS` say where each name comes from, and the tests
check that asyncio's own object is used wherever the running interpreter has it. A name with no
possible fallback (uvcffi cannot work without it) fails the import here, naming what is missing.

Hot paths (``_enter_task``/``_leave_task`` per Task step, ``_swap_current_task`` per eager start)
bind the object itself: an importer's ``from ._compat import _enter_task`` is a module global of
the importer, as the old ``from asyncio.tasks import ...`` was -- no attribute hop is added.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import itertools
import sys
import traceback
import types
import warnings
from asyncio import events, protocols, transports
from asyncio import tasks as _atasks
from typing import Any, Callable, Optional

__all__ = [
    "running_loop",
    "set_running_loop",
    "_DefaultEventLoopPolicy",
    "HANDLE_FIELDS",
    "TIMER_HANDLE_FIELDS",
    "_format_callback_source",
    "extract_stack",
    "_format_coroutine",
    "_is_coroutine",
    "DEBUG_STACK_DEPTH",
    "_SendfileMode",
    "ACCEPT_RETRY_DELAY",
    "LOG_THRESHOLD_FOR_CONNLOST_WRITES",
    "SENDFILE_FALLBACK_READBUFFER_SIZE",
    "_SendfileFallbackProtocol",
    "SSLProtocol",
    "staggered_race",
    "TransportSocket",
    "_FlowControlMixin",
    "_register_task",
    "_enter_task",
    "_leave_task",
    "_register_eager_task",
    "_unregister_eager_task",
    "_swap_current_task",
    "_task_name_counter",
]

# name here -> (asyncio module, attribute) it is taken from when the running asyncio has it
ORIGINS: dict[str, tuple[str, str]] = {}
# name here -> what stands in for it when the running asyncio lacks it
FALLBACKS: dict[str, Any] = {}
_REQUIRED = object()


def _take(name: str, module: Any, fallback: Any = _REQUIRED, attr: Optional[str] = None) -> Any:
    """``module.attr`` (``attr`` defaults to ``name``), else ``fallback``; recorded for the tests."""
    attr = attr or name
    ORIGINS[name] = (module.__name__, attr)
    if fallback is not _REQUIRED:
        FALLBACKS[name] = fallback
    try:
        return getattr(module, attr)
    except AttributeError:
        if fallback is _REQUIRED:
            raise ImportError(f"uvcffi needs {module.__name__}.{attr}, which this Python's asyncio "
                              f"({sys.version.split()[0]}) does not have") from None
        return fallback


def _module(name: str) -> Any:
    """asyncio's submodule ``name``; an empty module where a Python no longer has it (every name
    then takes its fallback)."""
    try:
        return importlib.import_module(f"asyncio.{name}")
    except ImportError:  # pragma: no cover - no supported Python lacks one
        return types.ModuleType(f"asyncio.{name}")


_constants = _module("constants")
_format_helpers = _module("format_helpers")
_coroutines = _module("coroutines")
_base_events = _module("base_events")
_sslproto = _module("sslproto")
_staggered = _module("staggered")
_trsock = _module("trsock")


# -- events: the running loop, the policy base, Handle's fields ----------------------------------

def _fallback_get_running_loop() -> Any:
    try:
        return events.get_running_loop()
    except RuntimeError:
        return None


# The running loop: events' two functions are looked up at each call (running_loop and
# set_running_loop below), never bound at import: CPython's own tests (test_events.
# TestPyGetEventLoop) swap them for the pure-Python ones, and what uvcffi sets and reads must then
# be those. Cold paths only (a run's start and end, Runner, run). Recorded and checked here:
# 3.9-3.14 have both; _get_running_loop falls back to the public get_running_loop(), and
# _set_running_loop has no fallback (there is no public way to set the running loop).
PER_CALL = ("_get_running_loop", "_set_running_loop")
_take("_get_running_loop", events, _fallback_get_running_loop)
_take("_set_running_loop", events)


def running_loop() -> Any:
    """``events._get_running_loop()`` as events has it now: "is a loop already running in this
    thread?" without raising (Loop._check_running, runners.run/Runner)."""
    return getattr(events, "_get_running_loop", _fallback_get_running_loop)()


def set_running_loop(loop: Any) -> None:
    """``events._set_running_loop(loop)`` as events has it now (Loop.run_forever)."""
    events._set_running_loop(loop)

# policy.EventLoopPolicy's base. 3.9-3.13: the public asyncio.DefaultEventLoopPolicy (unix's);
# 3.14 deprecates the policy system: the public name warns (removal planned for 3.16), the class
# lives on as unix_events._DefaultEventLoopPolicy (events._BaseDefaultEventLoopPolicy its base).
if sys.version_info >= (3, 14):  # pragma: no cover - read from 3.14's sources
    _unix_events = _module("unix_events")
    _DefaultEventLoopPolicy = _take("_DefaultEventLoopPolicy", _unix_events,
                                    getattr(events, "_BaseDefaultEventLoopPolicy", None))
else:
    _DefaultEventLoopPolicy = _take("_DefaultEventLoopPolicy", asyncio, events.BaseDefaultEventLoopPolicy,
                                    attr="DefaultEventLoopPolicy")

# The slots of asyncio's Handle and TimerHandle that uvcffi fills by hand instead of calling their
# __init__ (loop.Handle/TimerHandle and the call_soon/call_later inlines, Task's _StepHandle,
# fds/signals build plain Handles). 3.9-3.14: these slots (plus __weakref__); 3.14 adds
# _ThreadSafeHandle, a subclass uvcffi does not use. A Python that changes them gets a
# RuntimeWarning here and a failing test_compat, not silently half-built handles.
HANDLE_FIELDS = ("_callback", "_args", "_cancelled", "_loop", "_source_traceback", "_repr", "_context")
TIMER_HANDLE_FIELDS = ("_scheduled", "_when")


def _handle_fields_match() -> bool:
    handle = set(events.Handle.__slots__) - {"__weakref__"}
    timer = set(events.TimerHandle.__slots__)
    return handle == set(HANDLE_FIELDS) and timer == set(TIMER_HANDLE_FIELDS)


if not _handle_fields_match():  # pragma: no cover - no supported Python
    warnings.warn("asyncio's Handle/TimerHandle slots are not the ones uvcffi fills "
                  f"({HANDLE_FIELDS}, {TIMER_HANDLE_FIELDS}): its handles may be half-built",
                  RuntimeWarning, stacklevel=2)


# -- format_helpers and coroutines: reprs and debug tracebacks -----------------------------------

def _fallback_format_callback_source(func: Any, args: Any) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    code = getattr(func, "__code__", None)
    return f"{name}() at {code.co_filename}:{code.co_firstlineno}" if code is not None else f"{name}()"


def _fallback_extract_stack(f: Any = None, limit: Any = None) -> Any:
    if f is None:
        f = sys._getframe(1)
    stack = traceback.StackSummary.extract(traceback.walk_stack(f), limit=limit or DEBUG_STACK_DEPTH,
                                           lookup_lines=False)
    stack.reverse()
    return stack


def _fallback_format_coroutine(coro: Any) -> str:
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None) or type(coro).__name__
    return f"{name}()"


# loop.set_debug: coroutine origin tracking depth; extract_stack's default limit. asyncio's
# constants.DEBUG_STACK_DEPTH on 3.9-3.14 (coroutines._DEBUG_STACK_DEPTH, which uvcffi used to
# look for, exists on none of them). 10 on all.
DEBUG_STACK_DEPTH = _take("DEBUG_STACK_DEPTH", _constants, 10)

# Future/Task reprs, "Exception in callback ..." reports (loop, read pipes): how asyncio names a
# callback. 3.13 added a keyword-only ``debug`` (arguments shown only with debug=True); uvcffi
# passes (func, args) as on every version.
_format_callback_source = _take("_format_callback_source", _format_helpers, _fallback_format_callback_source)

# Debug mode's source tracebacks of handles, futures and tasks. 3.9-3.14: the same.
extract_stack = _take("extract_stack", _format_helpers, _fallback_extract_stack)

# Task repr: "coro=<name() running at file:line>". 3.9-3.14: the same.
_format_coroutine = _take("_format_coroutine", _coroutines, _fallback_format_coroutine)

# tasks.coroutine/iscoroutinefunction: the marker of @coroutine-decorated functions, shared with
# asyncio's iscoroutinefunction. 3.9-3.14: present (the decorator itself is gone from 3.11).
_is_coroutine = _take("_is_coroutine", _coroutines, object())


# -- constants: sendfile modes, retry delays, thresholds -----------------------------------------

class _FallbackSendfileMode(enum.Enum):
    UNSUPPORTED = enum.auto()
    TRY_NATIVE = enum.auto()
    FALLBACK = enum.auto()


# StreamTransport._sendfile_compatible and Loop.sendfile's dispatch, compared with asyncio's own
# transports' (TLS: FALLBACK). 3.9-3.14: the same enum in constants.
_SendfileMode = _take("_SendfileMode", _constants, _FallbackSendfileMode)

# server.py: the pause after accept() fails for lack of descriptors. 1 s on 3.9-3.14.
ACCEPT_RETRY_DELAY = _take("ACCEPT_RETRY_DELAY", _constants, 1)

# transports/stream.py: writes after connection loss before "socket.send() raised exception."
# is logged. 5 on 3.9-3.14.
LOG_THRESHOLD_FOR_CONNLOST_WRITES = _take("LOG_THRESHOLD_FOR_CONNLOST_WRITES", _constants, 5)

# net.py: the read-and-send fallback's block size (sock_sendfile, sendfile). 256 KiB on 3.9-3.14.
SENDFILE_FALLBACK_READBUFFER_SIZE = _take("SENDFILE_FALLBACK_READBUFFER_SIZE", _constants, 256 * 1024)


# -- base_events, sslproto, staggered, trsock, transports: machinery uvcffi reuses -----------------

class _fallback_SendfileFallbackProtocol(protocols.Protocol):
    """Stands in for a transport's protocol while Loop.sendfile writes a file through it: reading
    paused, the writer waits for resume_writing (drain), restore() gives the transport back."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._proto = transport.get_protocol()
        self._was_reading = transport.is_reading()
        self._was_paused = bool(getattr(transport, "_protocol_paused", False))
        transport.pause_reading()
        transport.set_protocol(self)
        self._ready: Any = None
        if self._was_paused:  # writing is paused already: wait for the transport to drain
            self._ready = transport._loop.create_future()

    async def drain(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._ready is not None:
            await self._ready

    def connection_made(self, transport: Any) -> None:
        raise RuntimeError("a new connection during sendfile")

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            if exc is None:
                ready.set_result(None)
            else:
                ready.set_exception(exc)
        self._proto.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._ready is None:
            self._ready = self._transport._loop.create_future()

    def resume_writing(self) -> None:
        ready, self._ready = self._ready, None
        if ready is not None and not ready.done():
            ready.set_result(False)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("data received during sendfile")

    def eof_received(self) -> bool:
        raise RuntimeError("EOF received during sendfile")

    async def restore(self) -> None:
        self._transport.set_protocol(self._proto)
        if self._was_reading:
            self._transport.resume_reading()
        if self._ready is not None:
            self._ready.cancel()
        if self._was_paused:
            self._proto.resume_writing()


class _fallback_SSLProtocol:
    """Where asyncio has no SSLProtocol, TLS is unavailable: creating one says so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("TLS needs asyncio.sslproto.SSLProtocol, which this Python lacks")


async def _fallback_staggered_race(
    coro_fns: Any, delay: Any, *, loop: Any = None
) -> tuple[Any, Optional[int], list[Optional[BaseException]]]:
    """The coroutines one after another (no overlap, ``delay`` unused): the first to return wins."""
    errors: list[Optional[BaseException]] = []
    for index, coro_fn in enumerate(coro_fns):
        errors.append(None)
        try:
            return await coro_fn(), index, errors
        except Exception as exc:
            errors[index] = exc
    return None, None, errors


def _fallback_TransportSocket(sock: Any) -> Any:
    return sock  # extra_info("socket") is then the socket itself, as before 3.8


class _fallback_FlowControlMixin(transports.Transport):
    """Write flow control: pause_writing() above the high-water mark, resume_writing() at or
    below the low one (asyncio's defaults: 64 KiB high, a quarter of it low)."""

    __slots__ = ("_loop", "_protocol_paused", "_high_water", "_low_water")
    _protocol: Any  # the concrete transport's

    def __init__(self, extra: Any = None, loop: Any = None) -> None:
        super().__init__(extra)
        self._loop = loop
        self._protocol_paused = False
        self._set_write_buffer_limits()

    def _call_protocol(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({"message": f"protocol.{name}() failed", "exception": exc,
                                               "transport": self, "protocol": self._protocol})

    def _maybe_pause_protocol(self) -> None:
        if not self._protocol_paused and self.get_write_buffer_size() > self._high_water:
            self._protocol_paused = True
            self._call_protocol("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self.get_write_buffer_size() <= self._low_water:
            self._protocol_paused = False
            self._call_protocol("resume_writing")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def _set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        self._set_write_buffer_limits(high=high, low=low)
        self._maybe_pause_protocol()

    def get_write_buffer_size(self) -> int:
        raise NotImplementedError


# Loop.sendfile's read-and-write fallback over a transport (net.py). base_events, 3.9-3.14.
_SendfileFallbackProtocol = _take("_SendfileFallbackProtocol", _base_events,
                                  _fallback_SendfileFallbackProtocol)

# TLS: asyncio's own SSLProtocol runs over uvcffi's transports (create_connection, start_tls,
# servers). 3.9-3.10: the legacy _SSLPipe-based one; 3.11+: the rewrite (ssl_shutdown_timeout).
SSLProtocol = _take("SSLProtocol", _sslproto, _fallback_SSLProtocol)

# create_connection's happy eyeballs (happy_eyeballs_delay / interleave). 3.9-3.11: ``loop``
# keyword; 3.12+ also awaits its tasks on exit; 3.14 records awaited-by links. Fallback: sequential.
staggered_race = _take("staggered_race", _staggered, _fallback_staggered_race)

# transport.get_extra_info("socket") and Server.sockets: asyncio's read-only socket view.
# trsock, 3.8-3.14 (3.14 dropped its deprecated socket methods).
TransportSocket = _take("TransportSocket", _trsock, _fallback_TransportSocket)

# Base of StreamTransport, WritePipeTransport, DatagramTransport: write buffer limits and
# pause/resume_writing. transports, 3.9-3.14: the same.
_FlowControlMixin = _take("_FlowControlMixin", transports, _fallback_FlowControlMixin)


# -- tasks: one registry of tasks and current tasks with asyncio ---------------------------------

_current_tasks = getattr(_atasks, "_current_tasks", None)


def _fallback_swap_current_task(loop: Any, task: Any) -> Any:
    """Make ``task`` (or None) the current task of ``loop``; returns the previous one."""
    prev = _current_tasks.get(loop)  # type: ignore[union-attr]
    if task is None:
        _current_tasks.pop(loop, None)  # type: ignore[union-attr]
    else:
        _current_tasks[loop] = task  # type: ignore[index]
    return prev


def _fallback_enter_task(loop: Any, task: Any) -> None:
    prev = _swap_current_task(loop, task)
    if prev is not None:
        _swap_current_task(loop, prev)
        raise RuntimeError(f"Cannot enter into task {task!r} while another task {prev!r} is being executed.")


def _fallback_leave_task(loop: Any, task: Any) -> None:
    prev = _swap_current_task(loop, None)
    if prev is not task:
        _swap_current_task(loop, prev)
        raise RuntimeError(f"Leaving task {task!r} does not match the current task {prev!r}.")


def _fallback_unregister_eager_task(task: Any) -> None:
    pass  # before 3.12 an eager task sits in the (weak) all-tasks set like any other


# Eager starts: switch the current task without the enter/leave checks. 3.12+ (C on CPython);
# 3.9-3.11: built on the current-task dict (the C module's own dict there, exported as
# tasks._current_tasks). 3.14 keeps the current task in the thread state: only the function works.
_swap_current_task = _take("_swap_current_task", _atasks,
                           _fallback_swap_current_task if _current_tasks is not None else _REQUIRED)

# Task.__init__: the task joins asyncio's all-tasks registry (all_tasks(), TaskGroup, anyio).
# 3.9-3.11 a WeakSet, 3.12-3.13 _scheduled_tasks, 3.14 C's per-thread list for C tasks; the
# function is the stable part. No fallback: all_tasks() would not see uvcffi's tasks.
_register_task = _take("_register_task", _atasks)

# Task._step, per step (hot path): current_task() while the coroutine runs. 3.9-3.14 (C on
# CPython, Python on PyPy); fallback built on _swap_current_task.
_enter_task = _take("_enter_task", _atasks, _fallback_enter_task)
_leave_task = _take("_leave_task", _atasks, _fallback_leave_task)

# Eager tasks (Task(eager_start=True), eager_task_factory): registry of tasks running their first
# step synchronously. 3.12+; before, eager tasks go to the all-tasks registry.
_register_eager_task = _take("_register_eager_task", _atasks, _register_task)
_unregister_eager_task = _take("_unregister_eager_task", _atasks, _fallback_unregister_eager_task)

# Default task names "Task-N", numbered with asyncio's own tasks. 3.9-3.14: the same.
_task_name_counter: Callable[[], int] = _take("_task_name_counter", _atasks, itertools.count(1).__next__)
