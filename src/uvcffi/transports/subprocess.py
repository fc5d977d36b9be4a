"""The subprocess transport: a child from ``uv_spawn`` and its stdio pipes as stream transports.

How a child is started (``SubprocessTransport._start``), fastest correct path first:

* **Popen + pidfd** wherever the kernel has pidfds (Linux 5.3+): ``subprocess.Popen`` starts
  the child -- CPython's ``_posixsubprocess`` forks with ``vfork()`` where it can, so the cost
  does not grow with the parent's memory -- and its exit is watched by polling an
  ``os.pidfd_open`` descriptor on a ``uv_poll_t``. This is exactly how asyncio's unix loop
  spawns (same Popen semantics: ``close_fds``, ``restore_signals``, ``preexec_fn``...).
  Measured with ``python -m bench --only subprocess_spawn``: libuv's ``uv_spawn`` uses plain
  ``fork()`` on Linux, which copies the page tables of the whole interpreter and ran at less
  than half of asyncio's spawn rate; this path runs ahead of it.
* **uv_spawn**, where pidfds are unavailable (older kernels), for what it can express; libuv
  watches the exit through its own SIGCHLD handler, so no thread is needed.
* **Popen + a waiting thread**, where neither works (no pidfds and a Popen-only option).

Details of the uv_spawn path:

* stdio: ``PIPE`` is an ``os.pipe()`` per stream, as ``subprocess.Popen`` makes them; the
  child's end goes to ``uv_spawn`` as ``UV_INHERIT_FD`` and is closed in the parent right
  after, the parent's end becomes a ``handles.pipe.Pipe`` wrapped by the streams layer's
  ``ReadPipeTransport``/``WritePipeTransport.from_handle`` (both paths share this). (Pipes made
  here rather than with ``UV_CREATE_PIPE`` because ``stderr=STDOUT`` must share the *child's*
  end of the stdout pipe, which ``UV_CREATE_PIPE`` never exposes.) ``DEVNULL`` is
  ``UV_IGNORE``; ``None``, an fd or a file object is ``UV_INHERIT_FD``.
* ``pass_fds`` extends the stdio array: child fd *n* = parent fd *n*, inheritable in the child.
* ``close_fds`` (Popen's default True): ``uv_spawn`` closes nothing, but every descriptor Python
  creates is close-on-exec (PEP 446), so the child only gets 0-2 and ``pass_fds`` -- unless the
  process holds *inheritable* descriptors. Those are found with one scan of ``/proc/self/fd``;
  if there are any, the spawn goes to Popen, which closes them.
* What ``uv_spawn`` cannot do -- run Python in the child (``preexec_fn``), ``user``/``group``/
  ``extra_groups``, ``umask``, ``process_group``, ``restore_signals=False``, ``pipesize`` --
  goes to Popen too.
* Difference from Popen, documented: ``uv_spawn`` resets *every* signal disposition below 32
  in the child (Popen's ``restore_signals`` resets only SIGPIPE, SIGXFZ, SIGXFSZ), so a signal
  the parent ignores (e.g. SIGHUP under ``nohup``) is not ignored by a uv_spawn'ed child.

The protocol sees asyncio's order: ``connection_made`` after the pipe transports exist,
``pipe_data_received``/``pipe_connection_lost`` per fd, ``process_exited`` at exit, and
``connection_lost`` once the process has exited *and* every pipe is closed; ``_wait()`` (what
``asyncio.subprocess.Process.wait`` awaits) resolves right after that, as in asyncio 3.11.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import warnings
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from .._binding import check, lib
from ..handles.pipe import Pipe
from ..handles.poll import Poll
from ..handles.process import Process
from .stream import ReadPipeTransport, WritePipeTransport

if TYPE_CHECKING:
    from _typeshed import StrOrBytesPath

    from ..loop import Loop

    # what stdin=/stdout=/stderr= take: PIPE, DEVNULL, STDOUT, a descriptor, a file, None
    _Stdio = Union[int, IO[Any], None]
    # a program and its arguments, or a shell command line
    _Args = Union[StrOrBytesPath, Sequence[StrOrBytesPath]]

__all__ = ["SubprocessTransport", "check_popen_args", "open_subprocess"]

_SubprocessProtocolT = TypeVar("_SubprocessProtocolT", bound=asyncio.SubprocessProtocol)

logger = logging.getLogger("asyncio")

PIPE, STDOUT, DEVNULL = subprocess.PIPE, subprocess.STDOUT, subprocess.DEVNULL

# Popen keywords uv_spawn cannot honour, with their "do nothing" value.
_POPEN_ONLY = {"preexec_fn": None, "restore_signals": True, "user": None, "group": None,
               "extra_groups": None, "umask": -1, "process_group": None, "pipesize": -1,
               "startupinfo": None, "creationflags": 0}
_UV_KWARGS = {"cwd", "env", "start_new_session", "pass_fds", "close_fds", "executable"}


class _PipeProto(asyncio.Protocol):
    """Forwards one stdio pipe's events to the subprocess transport (fd = 0, 1 or 2)."""

    def __init__(self, proc: SubprocessTransport, fd: int) -> None:
        self.proc = proc
        self.fd = fd
        self.pipe: Optional[asyncio.BaseTransport] = None
        self.disconnected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pipe = transport

    def data_received(self, data: bytes) -> None:
        self.proc._pipe_data_received(self.fd, data)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.disconnected = True
        self.proc._pipe_connection_lost(self.fd, exc)
        self.proc = None  # type: ignore[assignment]  # no event comes after this one

    def pause_writing(self) -> None:
        self.proc._protocol.pause_writing()

    def resume_writing(self) -> None:
        self.proc._protocol.resume_writing()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>"


class SubprocessTransport(asyncio.SubprocessTransport):
    """``asyncio.SubprocessTransport`` for one child of ``loop.subprocess_exec``/``_shell``."""

    # Class attributes as defaults: a half-built transport still reprs and finalizes.
    # _loop and _protocol: None only in a half-built transport, and after connection_lost
    _loop: Loop = None  # type: ignore[assignment]
    _protocol: asyncio.SubprocessProtocol = None  # type: ignore[assignment]
    _child: Union[Process, _PopenChild, None] = None  # None after connection_lost
    _pid: Optional[int] = None
    _returncode: Optional[int] = None
    _extra: Dict[str, Any]  # asyncio's BaseTransport's: get_extra_info
    _closed = False  # close() called
    _finished = False  # connection_lost scheduled
    # protocol calls held back until connection_made; then None
    _pending_calls: Optional[List[Tuple[Callable[..., object], Tuple[Any, ...]]]] = None

    def __init__(self, loop: Loop, protocol: asyncio.SubprocessProtocol, args: _Args, shell: bool,
                 stdin: _Stdio, stdout: _Stdio, stderr: _Stdio,
                 waiter: Optional[asyncio.Future[None]] = None,
                 extra: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        super().__init__(extra)
        self._exit_ctx = _exit_context()
        self._loop = loop
        self._protocol = protocol
        self._pipes: Dict[int, _PipeProto] = {}
        self._pending_calls = []
        self._exit_waiters: List[asyncio.Future[Optional[int]]] = []
        self._start(args, shell, stdin, stdout, stderr, kwargs)
        if loop.get_debug():
            logger.debug("process %r created: pid %s", args, self._pid)
        loop.call_soon(self._connected, waiter)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._closed:
            info.append("closed")
        if self._pid is not None:
            info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        elif self._pid is not None:
            info.append("running")
        for fd in (0, 1, 2):
            proto = self._pipes.get(fd)
            if proto is not None:
                info.append(f"{('stdin', 'stdout', 'stderr')[fd]}={proto.pipe!r}")
        return f"<{' '.join(info)}>"

    # ------------------------------------------------------------------ spawning
    def _start(self, args: _Args, shell: bool, stdin: _Stdio, stdout: _Stdio, stderr: _Stdio,
               kwargs: Dict[str, Any]) -> None:
        if shell:
            args = ["/bin/sh", "-c", args]  # type: ignore[list-item]  # shell: one command line
        else:
            args = list(args)  # type: ignore[arg-type]  # exec: a sequence
        bargs = [_fsencode_arg(a) for a in args]
        executable = kwargs.get("executable")
        use_popen = any(k not in _UV_KWARGS and (k not in _POPEN_ONLY or v != _POPEN_ONLY[k])
                        for k, v in kwargs.items())
        pass_fds = tuple(kwargs.get("pass_fds") or ())
        close_fds = kwargs.get("close_fds", True)
        if pass_fds and not close_fds:
            warnings.warn("pass_fds overriding close_fds.", RuntimeWarning, stacklevel=4)
            close_fds = True
        if pass_fds:
            for fd in pass_fds:
                if not isinstance(fd, int) or fd < 0:
                    raise ValueError(f"bad value(s) in fds_to_keep: {pass_fds!r}")
        env = kwargs.get("env")
        benv = _encode_env(env) if env is not None else None
        cwd = kwargs.get("cwd")
        bcwd = os.fsencode(cwd) if cwd is not None else None
        if bcwd is not None and b"\0" in bcwd:
            raise ValueError("embedded null byte")

        child_ends: List[int] = []  # our copies of the child's pipe ends: closed after the spawn
        parent_ends: Dict[int, int] = {}  # stdio fd -> the parent's pipe end
        try:
            stdio = self._stdio_fds(stdin, stdout, stderr, child_ends, parent_ends)
            if not use_popen and (_pidfds_work() or (
                    close_fds and _has_inheritable_fds(set(pass_fds) | set(stdio)))):
                use_popen = True
            if use_popen:
                self._child = _PopenChild(self._loop, args, stdin, stdout, stderr, stdio, kwargs,
                                          self._on_child_exit)
            else:
                fds = list(stdio)
                if pass_fds:
                    fds.extend([None] * (max(pass_fds) + 1 - len(fds)))
                    for fd in pass_fds:
                        if fd > 2:
                            fds[fd] = fd
                self._child = Process(
                    self._loop, bargs, executable=_fsencode_arg(executable) if executable else None,
                    env=benv, cwd=bcwd, stdio_fds=fds, detached=bool(kwargs.get("start_new_session")),
                    on_exit=self._on_child_exit)
        except OSError as exc:
            for fd in parent_ends.values():
                os.close(fd)
            if not use_popen:
                exc.filename = executable if executable else args[0]  # as given, like Popen
            if cwd is not None and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES) \
                    and not os.path.isdir(cwd):
                exc.filename = cwd  # Popen names the directory when chdir failed
            raise
        except BaseException:
            for fd in parent_ends.values():
                os.close(fd)
            raise
        finally:
            for fd in child_ends:
                os.close(fd)
        self._pid = self._child.pid
        self._extra["subprocess"] = getattr(self._child, "popen", None)

        for fd, pend in sorted(parent_ends.items()):
            try:
                handle = Pipe(self._loop, fd=pend)
            except BaseException:
                os.close(pend)
                for other in (p for f, p in parent_ends.items() if f > fd):
                    os.close(other)
                self.close()
                raise
            proto = _PipeProto(self, fd)
            cls = WritePipeTransport if fd == 0 else ReadPipeTransport
            proto.pipe = cls.from_handle(self._loop, handle, proto)
            self._pipes[fd] = proto

    @staticmethod
    def _stdio_fds(stdin: _Stdio, stdout: _Stdio, stderr: _Stdio, child_ends: List[int],
                   parent_ends: Dict[int, int]) -> List[Optional[int]]:
        """The parent fds that become the child's 0, 1, 2 (None: /dev/null)."""
        out: List[Optional[int]] = []
        for i, spec in enumerate((stdin, stdout, stderr)):
            if spec == PIPE:
                r, w = os.pipe()
                child, parent = (r, w) if i == 0 else (w, r)
                child_ends.append(child)
                parent_ends[i] = parent
                out.append(child)
            elif spec == DEVNULL:
                out.append(None)
            elif spec is None:
                out.append(i)
            elif spec == STDOUT:
                if i != 2:
                    raise ValueError("STDOUT can only be used for stderr")
                out.append(out[1])
            elif isinstance(spec, int):
                if spec < 0:
                    raise ValueError(f"invalid file descriptor {spec}")
                out.append(spec)
            else:
                out.append(spec.fileno())
        return out

    # ------------------------------------------------------------------ public API
    def get_pid(self) -> int:
        return self._pid  # type: ignore[return-value]  # set by __init__

    def get_returncode(self) -> Optional[int]:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Optional[asyncio.BaseTransport]:
        proto = self._pipes.get(fd)
        return proto.pipe if proto is not None else None

    def is_closing(self) -> bool:
        return self._closed

    def send_signal(self, signal: int) -> None:
        """Send ``signal`` to the child. ``ProcessLookupError`` once the transport finished
        (after ``connection_lost``); a no-op if the child already exited, as Popen."""
        self._check_proc()
        if self._returncode is not None:
            return
        status = self._child.kill(signal)  # type: ignore[union-attr]  # _check_proc
        if status == -errno.ESRCH:
            return  # exited, not yet reaped: as Popen, nothing to signal
        check(status)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Close the pipes; kill the child if it still runs. ``connection_lost`` follows once
        the child has exited and the pipes are closed."""
        if self._closed:
            return
        self._closed = True
        for proto in self._pipes.values():
            if proto is not None and proto.pipe is not None:
                proto.pipe.close()
        child = self._child
        if child is not None and self._returncode is None:
            if self._loop is not None and self._loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            popen = self._extra.get("subprocess")
            if popen is None:
                child.kill(signal.SIGKILL)
            elif popen.poll() is None:
                # through the object get_extra_info('subprocess') hands out, as asyncio's
                # close() does: a wrapper put on its kill() sees the call; not at all once
                # the child has exited, even if its exit was not delivered yet
                try:
                    popen.kill()
                except (ProcessLookupError, PermissionError):
                    pass

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if not self._closed and self._loop is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            if not self._loop.is_closed():
                self.close()

    def _check_proc(self) -> None:
        if self._child is None:
            raise ProcessLookupError()

    # ------------------------------------------------------------------ events
    def _connected(self, waiter: Optional[asyncio.Future[None]]) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon(self._protocol.connection_made, self)
        for cb, data in self._pending_calls:  # type: ignore[union-attr]  # until now
            loop.call_soon(cb, *data)
        self._pending_calls = None
        if waiter is not None and not waiter.cancelled():
            waiter.set_result(None)

    def _call(self, cb: Callable[..., object], *data: Any) -> None:
        if self._pending_calls is not None:
            self._pending_calls.append((cb, data))
        else:
            self._loop.call_soon(cb, *data)

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    def _pipe_connection_lost(self, fd: int, exc: Optional[BaseException]) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _on_child_exit(self, returncode: int) -> None:
        self._exit_ctx.run(self._process_exited, returncode)

    def _process_exited(self, returncode: int) -> None:
        if self._returncode is not None or self._loop is None:
            return
        if self._loop.get_debug():
            logger.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        self._call(self._protocol.process_exited)
        self._try_finish()

    async def _wait(self) -> Optional[int]:
        """The return code, once the child exited and the pipes closed (``Process.wait``)."""
        if self._returncode is not None:
            return self._returncode
        waiter: asyncio.Future[Optional[int]] = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter

    def _try_finish(self) -> None:
        if self._finished or self._returncode is None:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: Optional[Exception]) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            for waiter in self._exit_waiters:
                if not waiter.cancelled():
                    waiter.set_result(self._returncode)
            self._exit_waiters = None  # type: ignore[assignment]
            self._loop = None  # type: ignore[assignment]
            self._child = None
            self._protocol = None  # type: ignore[assignment]


# ---------------------------------------------------------------------- the Popen fallback
class _PopenChild:
    """A child started by ``subprocess.Popen``; its exit is seen through a pidfd (or a thread)."""

    popen: subprocess.Popen[bytes] = None  # type: ignore[assignment]  # None only in a half-built one
    pid: Optional[int] = None
    _poll: Optional[Poll] = None
    _pidfd = -1

    def __init__(self, loop: Loop, args: _Args, stdin: _Stdio, stdout: _Stdio, stderr: _Stdio,
                 stdio: Sequence[Optional[int]], kwargs: Dict[str, Any],
                 on_exit: Callable[[int], None]) -> None:
        specs: List[_Stdio] = []
        for i, spec in enumerate((stdin, stdout, stderr)):
            if spec == PIPE:
                specs.append(stdio[i])  # the child's end of our pipe
            elif spec == STDOUT and stdout == PIPE:
                specs.append(stdio[1])
            else:
                specs.append(spec)
        self._loop = loop
        self._on_exit: Optional[Callable[[int], None]] = on_exit
        self.popen = subprocess.Popen(args, stdin=specs[0], stdout=specs[1], stderr=specs[2],
                                      **kwargs)
        self.pid = self.popen.pid
        try:
            self._pidfd = _pidfd_open(self.pid)
        except OSError:
            self._pidfd = -1
        if self._pidfd >= 0:
            self._poll = Poll(loop, self._pidfd)
            self._poll.start(lib.UV_READABLE, self._on_pidfd)  # readable: the child exited
        else:
            threading.Thread(target=self._wait_thread, daemon=True).start()

    def _on_pidfd(self, status: int, events: int) -> None:
        if self.popen.poll() is None and status == 0:
            return  # spurious
        self._release()
        self._deliver()

    def _wait_thread(self) -> None:
        self.popen.wait()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:
                pass

    def _deliver(self) -> None:
        cb, self._on_exit = self._on_exit, None
        if cb is not None:
            cb(self.popen.returncode)

    def _release(self) -> None:
        poll, self._poll = self._poll, None
        if poll is not None:
            poll.close()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    def kill(self, signum: int) -> int:
        if self.popen.returncode is not None:
            return -errno.ESRCH
        try:
            self.popen.send_signal(signum)
        except ProcessLookupError:
            return -errno.ESRCH
        return 0


def _exit_context() -> contextvars.Context:
    """The context a child's exit is handled in (``process_exited``, and ``connection_lost``
    when the exit comes last), as asyncio's unix loop has it: from 3.12 on, where pidfds work,
    asyncio watches the child with a pidfd reader registered by ``subprocess_exec``, whose
    context is a copy of the caller's; otherwise a thread waits for the child and hands the
    exit over with ``call_soon_threadsafe`` from that thread, whose context is empty."""
    if sys.version_info >= (3, 12) and _pidfds_work():
        return contextvars.copy_context()
    return contextvars.Context()


def _fsencode_arg(arg: StrOrBytesPath) -> bytes:
    b = os.fsencode(arg)
    if b"\0" in b:
        raise ValueError("embedded null byte")
    return b


def _encode_env(env: Mapping[Union[str, bytes], Union[str, bytes]]) -> List[bytes]:
    out: List[bytes] = []
    for k, v in env.items():
        k = os.fsencode(k)
        if b"=" in k or not k:
            raise ValueError("illegal environment variable name")
        v = os.fsencode(v)
        if b"\0" in k or b"\0" in v:
            raise ValueError("embedded null byte")
        out.append(k + b"=" + v)
    return out


_pidfd_state: Optional[bool] = None  # None: not probed yet; then True/False for this process


def _pidfd_open(pid: int) -> int:
    """``os.pidfd_open(pid)``; through the extension where the os module lacks it (PyPy 3.9)."""
    pidfd_open: Optional[Callable[[int], int]] = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        return pidfd_open(pid)
    fd: int = lib.uvcffi_pidfd_open(pid)
    if fd < 0:
        raise OSError(-fd, os.strerror(-fd))
    return fd


def _pidfds_work() -> bool:
    """Whether pidfds work here (probed once, on this process's own pid)."""
    global _pidfd_state
    if _pidfd_state is None:
        try:
            os.close(_pidfd_open(os.getpid()))
            _pidfd_state = True
        except OSError:
            _pidfd_state = False
    return _pidfd_state


def _has_inheritable_fds(allowed: Set[Optional[int]]) -> bool:
    """Whether this process holds an inheritable fd >= 3 outside ``allowed`` (one /proc scan)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return True  # cannot tell: let Popen close them
    for name in names:
        fd = int(name)
        if fd < 3 or fd in allowed:
            continue
        try:
            if os.get_inheritable(fd):
                return True
        except OSError:
            pass  # the directory's own fd, already closed
    return False


def check_popen_args(universal_newlines: object, shell: object, want_shell: bool, bufsize: object,
                     text: object, encoding: object, errors: object) -> None:
    """``ValueError``, as asyncio, for the Popen arguments ``subprocess_exec`` (``want_shell``
    False) and ``subprocess_shell`` (True) refuse, in asyncio's order."""
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bool(shell) != want_shell:
        raise ValueError("shell must be True" if want_shell else "shell must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


async def open_subprocess(loop: Loop, protocol: _SubprocessProtocolT, args: _Args, shell: bool,
                          stdin: _Stdio, stdout: _Stdio, stderr: _Stdio,
                          kwargs: Dict[str, Any]) -> Tuple[SubprocessTransport, _SubprocessProtocolT]:
    """Start the child and wait until its pipes are connected; ``(transport, protocol)``.
    ``OSError`` from a failed spawn, with nothing left open; cancelled while connecting: the
    child is killed and reaped, then ``CancelledError``."""
    loop._check_closed()
    waiter: asyncio.Future[None] = loop.create_future()
    transport = SubprocessTransport(loop, protocol, args, shell, stdin, stdout, stderr,
                                    waiter=waiter, **kwargs)
    try:
        await waiter
    except BaseException:
        transport.close()
        await transport._wait()
        raise
    return transport, protocol
