"""uvcffi: an asyncio event loop on libuv, bound with cffi, with a pure-Python Task/Future layer.

Public API only: everything here is re-exported from the module that defines it.
"""

from ._binding import libuv_version
from ._version import __version__
from .futures import Future, wrap_future
from .loop import Loop, new_event_loop
from .policy import EventLoopPolicy, install
from .runners import Runner, run
from .taskgroups import TaskGroup
from .tasks import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    Task,
    all_tasks,
    as_completed,
    coroutine,
    create_eager_task_factory,
    create_task,
    current_task,
    eager_task_factory,
    ensure_future,
    gather,
    iscoroutine,
    iscoroutinefunction,
    run_coroutine_threadsafe,
    shield,
    sleep,
    task_factory,
    wait,
    wait_for,
)
from .timeouts import Timeout, timeout, timeout_at

__all__ = [
    "__version__",
    "ALL_COMPLETED",
    "EventLoopPolicy",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "Future",
    "Loop",
    "Runner",
    "Task",
    "TaskGroup",
    "Timeout",
    "all_tasks",
    "as_completed",
    "coroutine",
    "create_eager_task_factory",
    "create_task",
    "current_task",
    "eager_task_factory",
    "ensure_future",
    "gather",
    "install",
    "iscoroutine",
    "iscoroutinefunction",
    "libuv_version",
    "new_event_loop",
    "run",
    "run_coroutine_threadsafe",
    "shield",
    "sleep",
    "task_factory",
    "timeout",
    "timeout_at",
    "wait",
    "wait_for",
    "wrap_future",
]
