"""Shared machinery of the network workloads: C tools, CPU pinning, load clients, CPU accounting.

A network workload is a server running on the loop under test, in the worker process that the
runner started for that loop, loaded by a separate client process (the C ``echo_client``, or
``wrk`` for HTTP). On a machine with two or more cores the server's thread is pinned to one core
and the client to another, so the two never steal each other's time slices; the server's CPU time
is read from ``getrusage`` around the load, which makes "requests per server CPU-second"
meaningful even when the client, not the server, is the bottleneck.

Every load is bounded twice: by a count (the workload's ``n``) and by a time limit (``duration()``,
set by the runner per mode); the client gives up by itself when the server stops answering, and
the wait for it has its own hard timeout. Servers bind 127.0.0.1 or a unix socket in a private
temporary directory, never anything reachable from outside.

This module is the only place that spawns load clients and measures server CPU, so every
workload's numbers mean the same thing.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "Skip",
    "lacks",
    "build_tools",
    "tool",
    "duration",
    "set_duration",
    "cpus",
    "cpu_capacity",
    "server_cpu",
    "client_cpu",
    "run_load",
    "echo_client_argv",
    "parse_echo_client",
    "run_reference_echo",
    "unix_socket_path",
]

BENCH_DIR = Path(__file__).resolve().parent
C_DIR = BENCH_DIR / "c"
BIN_DIR = BENCH_DIR / "bin"

#: The C tools the runner compiles: name -> source file.
C_TOOLS = {"echo_client": "echo_client.c", "epoll_echo": "epoll_echo.c", "http_client": "http_client.c"}

#: How long a load client may run past its own time limit before it is killed.
HARD_TIMEOUT_SLACK = 10.0


class Skip(Exception):
    """Raised by a workload that cannot run here (a tool is missing, the loop lacks an API).

    The runner reports the reason once and does not try that workload again on that loop."""


def lacks(api: str, exc: BaseException) -> Skip:
    """The Skip for a loop whose ``api`` raised NotImplementedError (not written yet)."""
    return Skip(f"the loop lacks {api}" + (f": {exc}" if str(exc) else ""))


# -- the time bound the runner sets ---------------------------------------------------------------

_duration = 0.5


def duration() -> float:
    """Seconds one network measurement may load the server (set by the runner per mode)."""
    return _duration


def set_duration(seconds: float) -> None:
    global _duration
    _duration = float(seconds)


# -- C tools --------------------------------------------------------------------------------------


def build_tools(cc: Optional[str] = None) -> Dict[str, str]:
    """Compiles bench/c/*.c into bench/bin/ when missing or stale; returns {tool: error} failures."""
    cc = cc or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    failures: Dict[str, str] = {}
    if not cc:
        return {name: "no C compiler (cc) found: run bash bench/setup.sh" for name in C_TOOLS}
    BIN_DIR.mkdir(exist_ok=True)
    for name, source in C_TOOLS.items():
        src = C_DIR / source
        out = BIN_DIR / name
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        tmp = out.with_name(f"{name}.{os.getpid()}.tmp")  # concurrent runners never share it
        proc = subprocess.run(
            [cc, "-O2", "-Wall", "-o", str(tmp), str(src)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            failures[name] = f"{cc} failed on {source}: {proc.stderr.strip()[:300]}"
        else:
            os.replace(tmp, out)
    return failures


def tool(name: str) -> str:
    """Path of a compiled C tool or of a system tool (wrk); raises Skip when it is missing."""
    if name in C_TOOLS:
        path = BIN_DIR / name
        if not path.exists():
            raise Skip(f"{name} is not built (the runner compiles bench/c/{C_TOOLS[name]} with cc)")
        return str(path)
    found = shutil.which(name)
    if not found:
        raise Skip(f"{name} is not installed: run bash bench/setup.sh")
    return found


# -- CPU placement --------------------------------------------------------------------------------


def _usable_cpus() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


# Taken once, at import: inside ``_Pinned`` this thread may run on the server core only, and a
# client spawned there must still be told the other core (asking again there gave one CPU, so the
# client stayed on the server's core).
_CPUS = _usable_cpus()


def cpus() -> List[int]:
    """The CPUs this process could run on when the harness was imported, sorted."""
    return list(_CPUS)


def server_cpu() -> Optional[int]:
    """The core the server is pinned to, or None on a one-core machine."""
    c = cpus()
    return c[0] if len(c) >= 2 else None


def client_cpu() -> Optional[int]:
    """The core the load client is pinned to, or None on a one-core machine."""
    c = cpus()
    return c[1] if len(c) >= 2 else None


def _pin(pid: int, cpu: Optional[int]) -> None:
    if cpu is None:
        return
    try:
        os.sched_setaffinity(pid, {cpu})
    except (AttributeError, OSError):
        pass


class _Pinned:
    """Pins the calling thread to the server core for the duration of a ``with`` block."""

    def __enter__(self) -> _Pinned:
        self.saved = None
        cpu = server_cpu()
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            self.saved = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {cpu})
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            os.sched_setaffinity(0, self.saved)


_SPIN = (
    "import sys, time\n"
    "end = time.perf_counter() + float(sys.argv[1]); n = 0\n"
    "while time.perf_counter() < end: n += 1\n"
    "print(n)\n"
)


def cpu_capacity(seconds: float = 0.4) -> Optional[float]:
    """How many cores' worth of work the server and client cores give when both are busy at once:
    a spin loop's count on both at once over its count alone. 2.0 on dedicated cores; less on a
    virtual machine whose host caps its CPU time, or on SMT siblings. None on one core."""
    s, c = server_cpu(), client_cpu()
    if s is None or c is None:
        return None

    def spin(where: List[int]) -> List[int]:
        procs = []
        for cpu in where:
            p = subprocess.Popen([sys.executable, "-c", _SPIN, str(seconds)], stdout=subprocess.PIPE)
            _pin(p.pid, cpu)
            procs.append(p)
        return [int(p.communicate()[0]) for p in procs]

    alone = spin([s])[0]
    both = sum(spin([s, c]))
    return both / alone if alone else None


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


class Load(NamedTuple):
    """What ``run_load`` measured: the client's output and the CPU seconds of both sides."""

    out: str
    cpu: float          # the server's (this process's) CPU seconds over the load
    client_cpu: float   # the load client's CPU seconds

    def result(self, ops: int, seconds: float) -> Dict[str, Any]:
        """The server-workload result dict of the runner protocol."""
        return {"ops": ops, "seconds": seconds, "cpu": self.cpu, "client_cpu": self.client_cpu}


# -- running a load client against a server on the loop -------------------------------------------


def _spawn_client(argv: Sequence[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _pin(proc.pid, client_cpu())  # before it has finished connecting; its timing starts later
    return proc


def run_load(loop: asyncio.AbstractEventLoop, argv: Sequence[str], timeout: float) -> Load:
    """Runs the load client ``argv`` to completion while ``loop`` serves.

    The loop runs (``run_until_complete``) until a helper thread sees the client exit and wakes
    it with ``call_soon_threadsafe``, so any loop that implements the scheduling API can be
    measured. Returns the client's stdout and the CPU seconds of server and client (the client's
    from RUSAGE_CHILDREN: it is the only child reaped meanwhile). Raises RuntimeError when the
    client fails, or is killed after ``timeout`` seconds."""
    with _Pinned():
        done = loop.create_future()

        def finished(result: Tuple[int, str, str]) -> None:
            if not done.done():
                done.set_result(result)

        cpu0 = _cpu_seconds()
        children0 = _cpu_seconds(resource.RUSAGE_CHILDREN)
        proc = _spawn_client(argv)

        def wait() -> None:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                err = b"killed after %.0f s\n" % timeout + err
            loop.call_soon_threadsafe(finished, (proc.returncode, out.decode(), err.decode()))

        waiter = threading.Thread(target=wait, name="bench-load-client", daemon=True)
        waiter.start()
        try:
            rc, out, err = loop.run_until_complete(done)
        finally:
            if proc.poll() is None:
                proc.kill()
            waiter.join(5)
        cpu = _cpu_seconds() - cpu0
        client_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - children0
    if rc != 0:
        raise RuntimeError(f"{os.path.basename(argv[0])} exited with {rc}: {err.strip()[-400:]}")
    return Load(out, cpu, client_cpu)


def echo_client_argv(target: str, *, kind: str = "tcp", size: int, conns: int, count: int) -> List[str]:
    """The echo_client command line for one measurement (time-bounded by ``duration()``)."""
    flag = {"tcp": "-t", "unix": "-u", "udp": "-U"}[kind]
    return [
        tool("echo_client"), flag, target, "-c", str(conns), "-s", str(size),
        "-n", str(max(1, int(count))), "-d", f"{duration():.3f}",
    ]


_ECHO_RE = re.compile(r"requests=(\d+) seconds=([0-9.]+) lost=(\d+)")


def parse_echo_client(out: str) -> Tuple[int, float]:
    """(requests done, seconds) from echo_client's last line."""
    m = _ECHO_RE.search(out)
    if not m:
        raise RuntimeError(f"unexpected echo_client output: {out!r}")
    return int(m.group(1)), float(m.group(2))


def wait_until(loop: asyncio.AbstractEventLoop, predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Runs the loop until ``predicate()`` holds or ``timeout`` passes; returns the predicate."""

    async def poll() -> None:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    loop.run_until_complete(poll())
    return predicate()


def unix_socket_path(tag: str) -> str:
    """A fresh unix socket path in a private temporary directory (removed by the caller's rmtree)."""
    d = tempfile.mkdtemp(prefix="uvcffi-bench-")
    return os.path.join(d, f"{tag}.sock")


# -- the C reference server -----------------------------------------------------------------------


def run_reference_echo(kind: str, size: int, conns: int, count: int) -> Dict[str, float]:
    """The same echo load against bench/c/epoll_echo: the reference row (no loop involved).

    Returns the server-workload result dict (ops, seconds, cpu); CPU from the server's rusage."""
    server_argv = [tool("epoll_echo")]
    path = None
    if kind == "unix":
        path = unix_socket_path("ref")
        server_argv += ["-u", path]
    else:
        server_argv += ["-t", "0"]
    server_argv += ["-d", str(duration() + HARD_TIMEOUT_SLACK)]
    server = subprocess.Popen(server_argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        _pin(server.pid, server_cpu())
        line = server.stdout.readline().decode().strip()  # type: ignore[union-attr]
        if kind == "unix":
            target = path
        else:
            target = "127.0.0.1:" + line.partition("=")[2]
        children0 = _cpu_seconds(resource.RUSAGE_CHILDREN)
        client = _spawn_client(echo_client_argv(target, kind=kind, size=size, conns=conns, count=count))
        try:
            out, err = client.communicate(timeout=duration() + HARD_TIMEOUT_SLACK)
            client_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN) - children0
        except subprocess.TimeoutExpired:
            client.kill()
            client.communicate()
            raise RuntimeError("echo_client did not finish against epoll_echo") from None
        if client.returncode != 0:
            raise RuntimeError(f"echo_client failed against epoll_echo: {err.decode().strip()}")
        server.send_signal(signal.SIGTERM)
        _, status, ru = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status) if sys.version_info >= (3, 9) else status
        ops, seconds = parse_echo_client(out.decode())
        return {"ops": ops, "seconds": seconds, "cpu": ru.ru_utime + ru.ru_stime, "client_cpu": client_cpu}
    finally:
        if server.returncode is None and server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()
        if path:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
