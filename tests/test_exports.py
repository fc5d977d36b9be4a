"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import re

import uvcffi
from uvcffi import _binding
from uvcffi._version import __version__

EXPECTED = {
    "__version__", "ALL_COMPLETED", "EventLoopPolicy", "FIRST_COMPLETED", "FIRST_EXCEPTION",
    "Future", "Loop", "Runner", "Task", "TaskGroup", "Timeout", "all_tasks", "as_completed", "coroutine",
    "create_eager_task_factory", "create_task", "current_task", "eager_task_factory",
    "ensure_future", "gather", "install", "iscoroutine", "iscoroutinefunction", "libuv_version",
    "new_event_loop", "run", "run_coroutine_threadsafe", "shield", "sleep", "task_factory",
    "timeout", "timeout_at", "wait", "wait_for", "wrap_future",
}


def test_exports_are_pinned():
    assert set(uvcffi.__all__) == EXPECTED
    for name in uvcffi.__all__:
        assert hasattr(uvcffi, name), name


def test_libuv_version():
    v = uvcffi.libuv_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+(-\w+)?", v)
    major, minor = map(int, v.split(".")[:2])
    assert (major, minor) >= (1, 44)


def test_build_version_matches_package():
    built = _binding.ffi.string(_binding.lib.UVCFFI_BUILD_VERSION).decode()
    assert built == __version__ == uvcffi.__version__


def test_convert_error_types():
    import errno
    import socket

    lib = _binding.lib
    err = _binding.convert_error(-errno.ECONNREFUSED)
    assert isinstance(err, ConnectionRefusedError) and err.errno == errno.ECONNREFUSED
    assert isinstance(_binding.convert_error(-errno.EPIPE), BrokenPipeError)
    gai = _binding.convert_error(lib.UV_EAI_NONAME) if hasattr(lib, "UV_EAI_NONAME") else None
    if gai is not None:
        assert isinstance(gai, socket.gaierror)
