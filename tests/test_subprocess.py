"""subprocess_exec / subprocess_shell, the subprocess transport and asyncio.subprocess, on both loops."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

TIMEOUT = 30  # a bound, never a synchronization
PY = sys.executable
TRUE = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
SLEEP = "/bin/sleep" if os.path.exists("/bin/sleep") else "/usr/bin/sleep"
# Set by a run on a build several times slower (make test-asan): the spawn-many test makes
# that many times fewer children within the same bound.
SLOWDOWN = max(1.0, float(os.environ.get("UVCFFI_TEST_SLOWDOWN", "1") or 1))


@pytest.fixture(params=["asyncio", "uvcffi", "uvcffi-uv_spawn"])
def loop_name(request, monkeypatch) -> str:
    """Here uvcffi runs twice: on its default spawn path (Popen + pidfd where pidfds work) and
    forced onto uv_spawn, the path taken where the kernel has no pidfds."""
    if request.param == "uvcffi-uv_spawn":
        from uvcffi.transports import subprocess as uvsub

        monkeypatch.setattr(uvsub, "_pidfd_state", False)
        # uv_spawn only runs when no inheritable fd must be closed: the test runner may hold some
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2:
                try:
                    if os.get_inheritable(fd):
                        os.set_inheritable(fd, False)
                        request.addfinalizer(lambda fd=fd: _reinherit(fd))
                except OSError:
                    pass
    return request.param


def _reinherit(fd: int) -> None:
    try:
        os.set_inheritable(fd, True)
    except OSError:
        pass


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_communicate_all_pipes(loop):
    async def main():
        p = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; d = sys.stdin.read(); sys.stdout.write(d.upper()); "
                      "sys.stderr.write('e' * 3); sys.exit(7)",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert isinstance(p.pid, int) and p.pid > 0
        out, err = await p.communicate(b"hello")
        assert (out, err, p.returncode) == (b"HELLO", b"eee", 7)

    run(loop, main())


def test_large_stdin_round_trip(loop):
    async def main():
        data = os.urandom(1 << 20)
        p = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = await p.communicate(data)
        assert out == data and p.returncode == 0

    run(loop, main())


def test_shell_and_exit_status(loop):
    async def main():
        p = await asyncio.create_subprocess_shell("echo hi; echo oops >&2; exit 3",
                                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, err = await p.communicate()
        assert (out, err, p.returncode) == (b"hi\noops\n", None, 3)

    run(loop, main())


def test_devnull_and_inherit_fd_and_file(loop, tmp_path):
    async def main():
        p = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print(repr(sys.stdin.read()))",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert p.stdin is None and p.stderr is None
        out, _ = await p.communicate()
        assert out == b"''\n"
        path = tmp_path / "out.txt"
        with open(path, "wb") as f:
            p = await asyncio.create_subprocess_exec(PY, "-c", "print('to file')", stdout=f)
            assert p.stdout is None
            assert await p.wait() == 0
        assert path.read_bytes() == b"to file\n"
        with open(path, "ab") as f:
            p = await asyncio.create_subprocess_exec(
                PY, "-c", "import sys; print('fd'); print('err', file=sys.stderr)",
                stdout=f.fileno(), stderr=subprocess.STDOUT)
            assert await p.wait() == 0
        assert path.read_bytes() == b"to file\nfd\nerr\n"

    run(loop, main())


def test_cwd_env_and_new_session(loop, tmp_path):
    async def main():
        p = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getcwd()); print(os.environ.get('UVCFFI_T')); "
                      "print(os.getsid(0) == os.getpid())",
            stdout=subprocess.PIPE, cwd=str(tmp_path), env={"UVCFFI_T": "yes", "PATH": os.environ["PATH"]},
            start_new_session=True)
        out, _ = await p.communicate()
        assert out.decode().split() == [os.path.realpath(tmp_path), "yes", "True"]
        p = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getsid(0) == os.getpid())", stdout=subprocess.PIPE)
        assert (await p.communicate())[0] == b"False\n"

    run(loop, main())


def test_pass_fds_and_close_fds(loop):
    r, w = os.pipe()
    inh_r, inh_w = os.pipe()
    os.set_inheritable(inh_w, True)
    probe = ("import os, sys\n"
             "for fd in map(int, sys.argv[1:]):\n"
             "    try:\n"
             "        os.fstat(fd); print(fd, 'open')\n"
             "    except OSError:\n"
             "        print(fd, 'closed')\n"
             f"os.write({w}, b'via pass_fds')\n")

    async def main():
        p = await asyncio.create_subprocess_exec(PY, "-c", probe, str(w), str(inh_w),
                                                 stdout=subprocess.PIPE, pass_fds=(w,))
        out, _ = await p.communicate()
        assert out.decode().splitlines() == [f"{w} open", f"{inh_w} closed"]
        assert os.read(r, 100) == b"via pass_fds"
        p = await asyncio.create_subprocess_exec(
            PY, "-c", f"import os; os.fstat({inh_w}); print('inherited')", stdout=subprocess.PIPE,
            close_fds=False)
        assert (await p.communicate())[0] == b"inherited\n"

    try:
        run(loop, main())
    finally:
        for fd in (r, w, inh_r, inh_w):
            os.close(fd)


def test_preexec_fn_runs_in_child(loop):
    r, w = os.pipe()

    async def main():
        p = await asyncio.create_subprocess_exec(TRUE, preexec_fn=lambda: os.write(w, b"in child"))
        assert await p.wait() == 0
        assert os.read(r, 100) == b"in child"

    try:
        run(loop, main())
    finally:
        os.close(r)
        os.close(w)


def test_missing_executable_raises_and_leaks_nothing(loop):
    async def main():
        p = await asyncio.create_subprocess_exec(TRUE, stdout=subprocess.PIPE)  # per-loop setup
        await p.communicate()
        before = fd_count()
        handles = loop._debug_live_handles() if hasattr(loop, "_debug_live_handles") else None
        for _ in range(20):
            with pytest.raises(FileNotFoundError) as info:
                await asyncio.create_subprocess_exec("/nonexistent/uvcffi-test", "x",
                                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE)
            assert info.value.filename == "/nonexistent/uvcffi-test"
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec(TRUE, cwd="/nonexistent/dir")
        await asyncio.sleep(0)
        assert fd_count() == before
        if handles is not None:
            assert loop._debug_live_handles() == handles

    run(loop, main())


def test_thousand_spawns_no_zombies_no_fd_leak(loop):
    # 1000 children; 1000 / UVCFFI_TEST_SLOWDOWN under ASan, where each child starts the
    # preloaded ASan runtime (1000 took 32 s on the uv_spawn path there, past the bound)
    total = max(25, int(1000 / SLOWDOWN) // 25 * 25)

    async def one():
        p = await asyncio.create_subprocess_exec(TRUE, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        await p.communicate()
        assert p.returncode == 0
        return p.pid

    async def main():
        await one()  # per-loop setup first: libuv's SIGCHLD pipe, its EMFILE reserve fd
        before = fd_count()
        pids = []
        for _ in range(total // 25):
            pids += await asyncio.gather(*[one() for _ in range(25)])
        assert len(pids) == total
        assert fd_count() == before
        for pid in pids:  # every child reaped: none is still our (zombie) child
            with pytest.raises(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)

    run(loop, main())


class Recorder(asyncio.SubprocessProtocol):
    def __init__(self):
        self.log = []
        self.data = {1: b"", 2: b""}
        self.exited = asyncio.get_event_loop().create_future()
        self.lost = asyncio.get_event_loop().create_future()

    def connection_made(self, transport):
        self.log.append("made")

    def pipe_data_received(self, fd, data):
        self.data[fd] += data

    def pipe_connection_lost(self, fd, exc):
        self.log.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.log.append("exited")
        self.exited.set_result(None)

    def connection_lost(self, exc):
        self.log.append(("lost", exc))
        self.lost.set_result(exc)


def test_child_exits_before_pipes_are_read_loses_nothing(loop):
    async def main():
        tr, pr = await loop.subprocess_exec(
            Recorder, PY, "-c", "import os; os.write(1, b'o' * 60000); os.write(2, b'e' * 30000)",
            stdin=subprocess.DEVNULL)
        tr.get_pipe_transport(1).pause_reading()
        tr.get_pipe_transport(2).pause_reading()
        await pr.exited  # the child is gone; its output waits in the pipes
        assert tr.get_returncode() == 0
        assert pr.data == {1: b"", 2: b""}
        tr.get_pipe_transport(1).resume_reading()
        tr.get_pipe_transport(2).resume_reading()
        assert await pr.lost is None
        assert pr.data == {1: b"o" * 60000, 2: b"e" * 30000}
        assert pr.log[0] == "made" and pr.log[-1] == ("lost", None)
        assert sorted(x for x in pr.log if isinstance(x, tuple) and x[0] == "pipe_lost") == \
            [("pipe_lost", 1, None), ("pipe_lost", 2, None)]
        assert await tr._wait() == 0
        tr.close()

    run(loop, main())


def test_transport_api_and_signals(loop):
    async def main():
        tr, pr = await loop.subprocess_exec(Recorder, SLEEP, "30")
        assert isinstance(tr, asyncio.SubprocessTransport)
        assert isinstance(tr.get_pid(), int) and tr.get_returncode() is None
        assert tr.get_pipe_transport(0) is not None and tr.get_pipe_transport(1) is not None
        assert tr.get_pipe_transport(3) is None
        tr.send_signal(signal.SIGTERM)
        await pr.exited
        assert tr.get_returncode() == -signal.SIGTERM
        tr.close()
        assert await pr.lost is None
        with pytest.raises(ProcessLookupError):
            tr.send_signal(signal.SIGTERM)

        p = await asyncio.create_subprocess_exec(SLEEP, "30")
        p.kill()
        assert await p.wait() == -signal.SIGKILL
        p = await asyncio.create_subprocess_exec(SLEEP, "30")
        p.terminate()
        assert await p.wait() == -signal.SIGTERM

    run(loop, main())


def test_close_kills_running_child(loop):
    async def main():
        tr, pr = await loop.subprocess_exec(Recorder, SLEEP, "30")
        tr.close()
        tr.close()
        assert await pr.lost is None
        assert tr.get_returncode() == -signal.SIGKILL

    run(loop, main())


def test_close_kills_through_the_extra_info_popen(loop, loop_name):
    """close() on a running child calls kill() on the object get_extra_info('subprocess')
    returns, as asyncio does: a wrapper put on it sees the call (CPython's
    test_close_kill_running)."""
    async def main():
        tr, pr = await loop.subprocess_exec(Recorder, SLEEP, "30")
        proc = tr.get_extra_info("subprocess")
        if proc is None and loop_name == "uvcffi-uv_spawn":
            tr.close()
            await pr.lost
            pytest.skip("uv_spawn path: no Popen to hand out")
        calls = []
        orig_kill = proc.kill

        def kill():
            calls.append("kill")
            orig_kill()

        proc.kill = kill
        assert tr.get_returncode() is None
        tr.close()
        assert await pr.lost is None
        assert calls == ["kill"]
        assert tr.get_returncode() == -signal.SIGKILL

    run(loop, main())


def test_close_does_not_kill_an_exited_child(loop, loop_name):
    """A child that exited (reaped by the test through the Popen, the transport not told yet):
    close() does not call kill() on it, as asyncio's (CPython's test_close_dont_kill_finished)."""
    async def main():
        tr, pr = await loop.subprocess_exec(Recorder, SLEEP, "30")
        proc = tr.get_extra_info("subprocess")
        if proc is None and loop_name == "uvcffi-uv_spawn":
            tr.close()
            await pr.lost
            pytest.skip("uv_spawn path: no Popen to hand out")
        proc.kill()
        proc.wait()
        calls = []
        proc.kill = lambda: calls.append("kill")
        assert tr.get_returncode() is None
        tr.close()
        assert calls == []

    run(loop, main())
    for _ in range(5):  # let the transport see the exit
        loop.run_until_complete(asyncio.sleep(0))


@pytest.mark.parametrize("kwargs", [
    dict(universal_newlines=True), dict(shell=True), dict(bufsize=1), dict(text=True),
    dict(encoding="utf-8"), dict(errors="strict"),
])
def test_exec_rejects_text_and_buffering(loop, kwargs):
    async def main():
        with pytest.raises(ValueError):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, TRUE, **kwargs)

    run(loop, main())


def test_shell_argument_errors(loop):
    async def main():
        with pytest.raises(ValueError):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, ["true"])
        with pytest.raises(ValueError):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, "true", shell=False)
        before = fd_count()
        with pytest.raises(ValueError):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, TRUE, "a\0b")
        with pytest.raises(ValueError):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, TRUE, env={"A=B": "1"})
        assert fd_count() == before

    run(loop, main())


def test_spawn_path_taken(loop, loop_name):
    """The uvcffi runs of this module really cover both spawn paths (see ``loop_name``)."""
    if loop_name == "asyncio":
        pytest.skip("uvcffi's spawn paths")
    from uvcffi.handles.process import Process
    from uvcffi.transports.subprocess import _pidfds_work, _PopenChild
    if loop_name == "uvcffi" and not _pidfds_work():
        pytest.skip("no pidfds here: the default path is uv_spawn, or Popen when fds must be closed")

    async def main():
        exited = loop.create_future()

        class Proto(asyncio.SubprocessProtocol):
            def process_exited(self):
                exited.set_result(None)

        transport, _ = await loop.subprocess_exec(Proto, TRUE)
        child = transport._child
        await exited
        transport.close()
        return child

    child = run(loop, main())
    assert isinstance(child, Process if loop_name == "uvcffi-uv_spawn" else _PopenChild)
