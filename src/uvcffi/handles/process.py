"""``uv_process_t``: one child process, spawned with ``uv_spawn`` and reaped by libuv.

What ``uv_spawn`` does for us: fork, set up the child's stdio from an array of containers
(``UV_INHERIT_FD`` maps a parent fd to child fd *i*, ``UV_IGNORE`` gives fds 0-2 ``/dev/null``),
``setsid`` for ``UV_PROCESS_DETACHED``, ``chdir``, reset every signal disposition and the
signal mask, ``execvp``; it waits until the exec succeeded or failed and returns the child's
``errno`` (``UV_ENOENT`` for a missing executable) synchronously. Reaping is libuv's: its
``SIGCHLD`` watcher calls ``waitpid`` for the pids it spawned and then our exit callback
(``_callbacks._uvcffi_on_exit`` -> ``_on_exit``). So there is no child watcher to install
and no thread.

Lifetime rules on top of ``handles/base.py``:

1. ``uv_spawn`` initializes the handle *before* it can fail, so a failed spawn still has a
   handle in the loop: it is registered and closed either way (a failed spawn leaks nothing).
2. The request memory (options, argv, envp, stdio containers) only has to live during the
   ``uv_spawn`` call: libuv copies nothing after the exec, and the child has its own copy.
3. The handle closes itself in its exit callback. If it must close before the child exited
   (``Loop.close()``), libuv stops reaping that pid; a daemon thread then ``waitpid``s it so
   it never stays a zombie.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence

from .._binding import CData, ffi, lib
from .base import UVHandle

if TYPE_CHECKING:
    from ..loop import Loop

__all__ = ["Process", "spawn_error"]

INHERIT = lib.UV_INHERIT_FD
IGNORE = lib.UV_IGNORE
DETACHED = lib.UV_PROCESS_DETACHED


def spawn_error(status: int, filename: bytes) -> OSError:
    """``OSError`` for a failed ``uv_spawn`` as ``subprocess.Popen`` raises it (errno, filename)."""
    err = -status
    return OSError(err, os.strerror(err), filename)


class Process(UVHandle):
    """Spawn one child; ``on_exit(returncode)`` is called once, from libuv's exit callback.

    ``returncode`` follows ``subprocess``: the exit status, or ``-signum`` if a signal killed it.
    """

    CTYPE = "uv_process_t*"
    pid: Optional[int] = None
    returncode: Optional[int] = None  # set by _on_exit
    _on_exit_cb: Optional[Callable[[int], object]] = None

    def __init__(self, loop: Loop, args: Sequence[bytes], *, executable: Optional[bytes] = None,
                 env: Optional[Sequence[bytes]] = None, cwd: Optional[bytes] = None,
                 stdio_fds: Sequence[Optional[int]] = (), detached: bool = False,
                 on_exit: Optional[Callable[[int], object]] = None) -> None:
        """Spawn at once. ``args`` and ``env`` items are bytes (``env`` None: inherit);
        ``stdio_fds[i]`` is the parent fd that becomes the child's fd *i*, or None for
        ``/dev/null`` (fds 0-2) / nothing (3+). Raises ``OSError`` from the child's
        ``execvp``/``chdir`` (``FileNotFoundError``, ``PermissionError``) with the handle
        already closing."""
        super().__init__(loop)
        self._on_exit_cb = on_exit
        keep: List[CData] = []  # cdata that must outlive the uv_spawn call

        def cstr(b: bytes) -> CData:
            c = ffi.new("char[]", b)
            keep.append(c)
            return c

        opts = ffi.new("uv_process_options_t*")
        argv = ffi.new("char*[]", len(args) + 1)
        for i, a in enumerate(args):
            argv[i] = cstr(a)
        opts.args = argv
        opts.file = cstr(executable) if executable is not None else argv[0]
        envp = ffi.NULL
        if env is not None:
            envp = ffi.new("char*[]", len(env) + 1)
            for i, e in enumerate(env):
                envp[i] = cstr(e)
        opts.env = envp
        opts.cwd = cstr(cwd) if cwd is not None else ffi.NULL
        opts.flags = DETACHED if detached else 0
        stdio = ffi.new("uv_stdio_container_t[]", max(len(stdio_fds), 1))
        for i, fd in enumerate(stdio_fds):
            if fd is None:
                stdio[i].flags = IGNORE
            else:
                stdio[i].flags = INHERIT
                stdio[i].data.fd = fd
        opts.stdio = stdio
        opts.stdio_count = len(stdio_fds)
        opts.exit_cb = lib._uvcffi_on_exit

        status = lib.uv_spawn(loop._uv, self._ptr, opts)
        # The handle is initialized even when the spawn failed (rule 1).
        loop._live_handles.add(self)
        if status < 0:
            self._on_exit_cb = None
            self.close()
            raise spawn_error(status, args[0] if executable is None else executable)
        self.pid = self._ptr.pid

    def _on_exit(self, exit_status: int, term_signal: int) -> None:
        self.returncode = returncode = -term_signal if term_signal else exit_status
        cb, self._on_exit_cb = self._on_exit_cb, None
        self.close()
        if cb is not None:
            cb(returncode)

    def kill(self, signum: int) -> int:
        """Send ``signum``; returns libuv's status (0, or ``UV_ESRCH`` when already gone)."""
        if self._closing:
            return -errno.ESRCH  # reaped, or no longer ours to signal
        status: int = lib.uv_process_kill(self._ptr, signum)
        return status

    def close(self) -> None:
        if self._closing:
            return
        if self.pid is not None and self.returncode is None:
            self._on_exit_cb = None
            threading.Thread(target=_reap, args=(self.pid,), daemon=True).start()
        super().close()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except OSError:
        pass
