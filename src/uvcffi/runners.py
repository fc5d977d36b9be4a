"""``uvcffi.run`` and ``uvcffi.Runner``: asyncio.run's semantics on a uvcffi loop, on Python 3.9+.

On 3.11+ ``asyncio.Runner(loop_factory=uvcffi.new_event_loop)`` works as well; this module
exists so that 3.9 and 3.10 (and PyPy 3.9) get the same behaviour: one loop per runner, the
main task cancelled on the first Ctrl-C (``KeyboardInterrupt`` after it finishes), leftover
tasks cancelled, async generators and the default executor shut down, the loop closed.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, Callable, Coroutine, Optional, Type, TypeVar

from ._compat import running_loop
from .loop import Loop, new_event_loop

__all__ = ["Runner", "run"]

_T = TypeVar("_T")

# How long close() waits for the default executor's threads (asyncio 3.12's constant).
EXECUTOR_SHUTDOWN_TIMEOUT = 300


class _State(enum.Enum):
    CREATED = "created"
    INITIALIZED = "initialized"
    CLOSED = "closed"


class Runner:
    """A context manager that runs coroutines on one uvcffi loop (``loop_factory`` to change)."""

    def __init__(self, *, debug: Optional[bool] = None,
                 loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None) -> None:
        self._state = _State.CREATED
        self._debug = debug
        self._loop_factory: Callable[[], asyncio.AbstractEventLoop] = loop_factory or new_event_loop
        # None until the first use, and after close() (_state tells)
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._context: Optional[contextvars.Context] = None
        self._interrupt_count = 0

    def __enter__(self) -> Runner:
        self._lazy_init()
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc_val: Optional[BaseException],
                 exc_tb: Optional[TracebackType]) -> None:
        self.close()

    def close(self) -> None:
        """Cancel leftover tasks, shut down async generators and the executor, close the loop."""
        if self._state is not _State.INITIALIZED:
            return
        try:
            loop = self._loop
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            try:
                loop.run_until_complete(loop.shutdown_default_executor(EXECUTOR_SHUTDOWN_TIMEOUT))  # type: ignore[call-arg]  # 3.12+
            except TypeError:  # a loop whose shutdown_default_executor takes no timeout
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            self._loop = None  # type: ignore[assignment]
            self._state = _State.CLOSED

    def get_loop(self) -> asyncio.AbstractEventLoop:
        self._lazy_init()
        return self._loop

    def run(self, coro: Coroutine[Any, Any, _T], *, context: Optional[contextvars.Context] = None) -> _T:
        """Run ``coro`` to completion on the runner's loop and return its result."""
        if not asyncio.iscoroutine(coro):
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        if running_loop() is not None:
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        self._lazy_init()
        if context is None:
            context = self._context
        if context is None:
            task = self._loop.create_task(coro)
        elif sys.version_info >= (3, 11) or isinstance(self._loop, Loop):
            task = self._loop.create_task(coro, context=context)  # type: ignore[call-arg]  # 3.11+, or ours
        else:  # asyncio's loops before 3.11 take no context=: the task starts from a copy of it
            task = context.run(self._loop.create_task, coro)

        sigint_handler = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            sigint_handler = functools.partial(self._on_sigint, main_task=task)
            try:
                signal.signal(signal.SIGINT, sigint_handler)
            except ValueError:
                sigint_handler = None

        self._interrupt_count = 0
        try:
            return self._loop.run_until_complete(task)
        except asyncio.CancelledError:
            if self._interrupt_count > 0:
                uncancel = getattr(task, "uncancel", None)
                if uncancel is None or uncancel() == 0:
                    raise KeyboardInterrupt()  # noqa: B904  (as asyncio: the CancelledError is its context)
            raise
        finally:
            if sigint_handler is not None and signal.getsignal(signal.SIGINT) is sigint_handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _lazy_init(self) -> None:
        if self._state is _State.CLOSED:
            raise RuntimeError("Runner is closed")
        if self._state is _State.INITIALIZED:
            return
        self._loop = self._loop_factory()
        if self._debug is not None:
            self._loop.set_debug(self._debug)
        asyncio.set_event_loop(self._loop)
        self._context = contextvars.copy_context()
        self._state = _State.INITIALIZED

    def _on_sigint(self, signum: int, frame: Optional[FrameType], main_task: asyncio.Task[Any]) -> None:
        self._interrupt_count += 1
        if self._interrupt_count == 1 and not main_task.done():
            main_task.cancel()
            self._loop.call_soon_threadsafe(lambda: None)
            return
        raise KeyboardInterrupt()


def run(main: Coroutine[Any, Any, _T], *, debug: Optional[bool] = None,
        loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None) -> _T:
    """Run coroutine ``main`` on a new uvcffi loop and return its result, as ``asyncio.run``.

    ``RuntimeError`` if called while a loop is running in this thread; ``KeyboardInterrupt``
    on Ctrl-C after the main task was cancelled; leftover tasks are cancelled before the
    loop closes.
    """
    if running_loop() is not None:
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    with Runner(debug=debug, loop_factory=loop_factory) as runner:
        return runner.run(main)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    to_cancel = asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during asyncio.run() shutdown",
                "exception": task.exception(),
                "task": task,
            })
