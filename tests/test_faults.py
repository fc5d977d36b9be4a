"""Faults from outside the loop (issue 17): peers that reset or half-close, running out of file
descriptors, broken pipes, signals to children and to the process, threads racing close() and
stop(). Each test runs on asyncio's loop (the oracle) and on uvcffi's.

Faults that other modules already cover are not repeated here: a reset during large reads
(transports/test_large_reads.py, transports/test_stream.py), EMFILE while accepting
(test_tcp.py), EPIPE on a write pipe (test_pipes.py, test_transport_faults.py), Ctrl-C during
``run()`` (test_signals.py).
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading

import pytest
from _support import CTRL_C_WHEN_POLLING, Recorder, default_sigint, wait

PY = sys.executable


def linger_zero(sock) -> None:
    """close() of this socket sends a reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def tcp_pair(loop, sp, cp):
    server = await loop.create_server(lambda: sp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await wait(loop.create_connection(lambda: cp, "127.0.0.1", port))
    await wait(sp.made)
    return server


def test_peer_reset_mid_write(loop):
    # The server has megabytes queued for a client that reads nothing and then resets: the
    # server's protocol loses the connection with a reset/broken pipe error, the queue is dropped,
    # and later writes are ignored.
    async def main():
        sp, cp = Recorder(loop), Recorder(loop)
        server = await tcp_pair(loop, sp, cp)
        cp.transport.pause_reading()
        sp.transport.write(b"x" * (16 << 20))
        assert sp.transport.get_write_buffer_size() > 0  # the kernel took only part of it
        sock = cp.transport.get_extra_info("socket")
        linger_zero(sock)
        cp.transport.abort()
        exc = await wait(sp.done)
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), exc
        assert sp.transport.is_closing()
        assert sp.transport.get_write_buffer_size() == 0
        sp.transport.write(b"ignored")
        await wait(cp.done)
        server.close()
        await wait(server.wait_closed())

    loop.run_until_complete(main())


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_half_close_both_ways(loop, family, tmp_path):
    # Each end writes, then write_eof(); each eof_received keeps the transport open, and data sent
    # after the other side's EOF still arrives. connection_lost comes only with close().
    async def main():
        sp, cp = Recorder(loop, eof_keep_open=True), Recorder(loop, eof_keep_open=True)
        if family == "tcp":
            server = await tcp_pair(loop, sp, cp)
        else:
            path = str(tmp_path / "s.sock")
            server = await loop.create_unix_server(lambda: sp, path)
            await wait(loop.create_unix_connection(lambda: cp, path))
            await wait(sp.made)
        cp.transport.write(b"ping")
        cp.transport.write_eof()
        assert await sp.wait_data(4) == b"ping"
        await wait(sp.eof)
        sp.transport.write(b"pong after your eof")
        assert await cp.wait_data(19) == b"pong after your eof"
        sp.transport.write_eof()
        await wait(cp.eof)
        for p in (sp, cp):
            assert not p.transport.is_closing()
            assert not p.done.done()
            assert p.events == ["made", "eof"]
        cp.transport.close()
        sp.transport.close()
        assert await wait(cp.done) is None
        assert await wait(sp.done) is None
        server.close()
        await wait(server.wait_closed())

    loop.run_until_complete(main())


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_write_after_peer_closed_is_a_broken_pipe(loop, family, tmp_path):
    # The peer closed both ways; this end kept its transport open on EOF and writes: the
    # connection is lost with EPIPE (or the reset the kernel answered the first write with).
    async def main():
        sp, cp = Recorder(loop, eof_keep_open=True), Recorder(loop)
        if family == "tcp":
            server = await tcp_pair(loop, sp, cp)
        else:
            path = str(tmp_path / "s.sock")
            server = await loop.create_unix_server(lambda: sp, path)
            await wait(loop.create_unix_connection(lambda: cp, path))
            await wait(sp.made)
        cp.transport.close()
        await wait(cp.done)
        await wait(sp.eof)
        for _ in range(100):  # bounded: each write is one attempt; the loss comes within a few
            if sp.done.done():
                break
            sp.transport.write(b"into the void")
            await asyncio.sleep(0)
        exc = await wait(sp.done)
        assert isinstance(exc, (BrokenPipeError, ConnectionResetError)), exc
        if family == "unix":
            assert isinstance(exc, BrokenPipeError)
        server.close()
        await wait(server.wait_closed())

    loop.run_until_complete(main())


def test_connect_emfile_then_recovers(loop):
    # create_connection() when the process has no descriptor left raises EMFILE and leaks
    # nothing; once descriptors are free again, connecting works.
    async def main():
        # the peer is a plain listening socket that accepts nothing: the kernel completes the
        # connections in its backlog, and no accept() competes for the last descriptor
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        fillers = []
        probe = os.open(os.devnull, os.O_RDONLY)
        os.close(probe)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(probe + 64, soft), hard))
            while True:
                try:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError as exc:
                    assert exc.errno == errno.EMFILE
                    break
            with pytest.raises(OSError) as info:
                await wait(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
            assert info.value.errno == errno.EMFILE
            os.close(fillers.pop())
            # one descriptor free: the connection's socket takes it
            t, _ = await wait(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
            t.close()
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        t, _ = await wait(loop.create_connection(asyncio.Protocol, "127.0.0.1", port))
        t.close()
        listener.close()

    loop.run_until_complete(main())


class ChildRecorder(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.out = bytearray()
        self.events = []
        self.first = loop.create_future()
        self.exited = loop.create_future()
        self.lost = loop.create_future()

    def pipe_data_received(self, fd, data):
        self.out += data
        if not self.first.done():
            self.first.set_result(None)

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")
        self.exited.set_result(None)

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


# The child writes lines forever; SIGUSR1 makes it write "usr1" and go on; SIGTERM ends it.
CHATTY_CHILD = textwrap.dedent("""
    import os, signal, sys
    signal.signal(signal.SIGUSR1, lambda *a: os.write(1, b"usr1\\n"))
    os.write(1, b"ready\\n")
    while True:
        os.write(1, b"." * 4096 + b"\\n")
""")


def test_signals_to_a_child_while_its_pipe_is_read(loop):
    async def main():
        t, p = await wait(loop.subprocess_exec(lambda: ChildRecorder(loop), PY, "-c", CHATTY_CHILD,
                                               stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        await wait(p.first)
        for _ in range(3):
            t.send_signal(signal.SIGUSR1)
            # wait (bounded) for the child's answer while the stream goes on
            while p.out.count(b"usr1") < _ + 1:
                await wait(asyncio.sleep(0.001))
        t.send_signal(signal.SIGTERM)
        await wait(p.exited)
        await wait(p.lost)
        assert t.get_returncode() == -signal.SIGTERM
        assert p.out.startswith(b"ready\n")
        assert ("pipe_lost", 1, None) in p.events
        assert p.events[-1] == ("lost", None)
        t.close()

    loop.run_until_complete(main())


def _run_script(loop_name, body):
    script = textwrap.dedent("""
        import asyncio, signal, sys
        if sys.argv[1] == "uvcffi":
            import uvcffi
            factory = uvcffi.new_event_loop
        else:
            factory = asyncio.new_event_loop
    """) + CTRL_C_WHEN_POLLING + textwrap.dedent(body)
    return subprocess.run([PY, "-c", script, loop_name], capture_output=True, text=True, timeout=60,
                          preexec_fn=default_sigint)


def test_sigint_during_run_until_complete(loop_name):
    # KeyboardInterrupt comes out of run_until_complete; the loop stays usable and closes clean.
    proc = _run_script(loop_name, """
        loop = factory()
        ctrl_c_when_polling()
        main = loop.create_task(asyncio.sleep(30))
        try:
            loop.run_until_complete(main)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", loop.is_running(), main.done())
        print(loop.run_until_complete(asyncio.sleep(0, "again")))
        main.cancel()
        try:
            loop.run_until_complete(main)
        except asyncio.CancelledError:
            print("cancelled")
        loop.close()
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:-1] == ["KeyboardInterrupt False False", "again", "cancelled"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in 3.11")
def test_sigint_during_runner(loop_name):
    # Runner.run(): Ctrl-C cancels the main task, which may clean up; KeyboardInterrupt comes out
    # of run() and the same Runner runs again.
    proc = _run_script(loop_name, """
        async def main():
            ctrl_c_when_polling()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await asyncio.sleep(0)
                print("cleaned up")
                raise

        async def again():
            return "again"

        with asyncio.Runner(loop_factory=factory) as runner:
            try:
                runner.run(main())
            except KeyboardInterrupt:
                print("KeyboardInterrupt")
            print(runner.run(again()))
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cleaned", "up", "KeyboardInterrupt", "again", "True"]


def test_call_soon_threadsafe_from_16_threads_while_the_loop_closes(loop):
    # 16 threads schedule callbacks without pause (up to 20000 each: unbounded producers would
    # outrun any loop's turns) while the loop runs, stops and closes: each thread ends with
    # RuntimeError('... closed'), or its last call made, and nothing else; every callback that
    # ran was scheduled; nothing hangs or crashes.
    ran = []
    errors = []
    counts = [0] * 16
    go = threading.Event()

    def hammer(i):
        go.wait()
        try:
            for _ in range(20000):
                loop.call_soon_threadsafe(ran.append, i)
                counts[i] += 1
            errors.append((True, "finished"))
        except RuntimeError as exc:
            errors.append(("closed" in str(exc), None))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append((False, exc))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(16)]
    for th in threads:
        th.start()

    async def main():
        go.set()
        while len(ran) < 1000:
            await asyncio.sleep(0)

    loop.run_until_complete(wait(main()))
    loop.close()
    for th in threads:
        th.join(10)
    assert not any(th.is_alive() for th in threads)
    assert all(ok for ok, _ in errors) and len(errors) == 16, errors
    for i in range(16):
        assert ran.count(i) <= counts[i] + 1  # +1: the call that was counting when it ran


def test_run_coroutine_threadsafe_racing_stop(loop):
    # The loop runs in a thread; this thread submits coroutines while stop() is requested
    # between them. Nothing submitted is lost: what the stopped run did not finish, the next
    # run does; every future gets its coroutine's result.
    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    def run_in_thread():
        th = threading.Thread(target=loop.run_forever)
        th.start()
        return th

    futures = []
    th = run_in_thread()
    for i in range(300):
        futures.append(asyncio.run_coroutine_threadsafe(double(i), loop))
        if i % 50 == 25:
            loop.call_soon_threadsafe(loop.stop)
            th.join(10)
            assert not th.is_alive()
            th = run_in_thread()
    results = [f.result(10) for f in futures]
    loop.call_soon_threadsafe(loop.stop)
    th.join(10)
    assert not th.is_alive()
    assert results == [2 * i for i in range(300)]
