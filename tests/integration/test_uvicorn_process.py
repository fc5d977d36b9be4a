"""uvicorn as users start it, in a subprocess: the CLI with ``--loop uvcffi:new_event_loop`` (and
``--loop asyncio`` as the oracle), a script with ``uvicorn.Config(loop=...)``, and gunicorn with a
uvicorn worker class that names uvcffi's loop. Graceful shutdown on SIGTERM and SIGINT with a
request in flight: the request completes, lifespan shutdown runs, the process ends as on asyncio.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

pytest.importorskip("uvicorn")

# A bare ASGI app: / answers the module of the running loop's class; /slow stays in flight until
# the test creates RELEASE_FILE (after it has signalled the server); lifespan events are printed.
APP = textwrap.dedent("""
    import asyncio, os

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    print("lifespan shutdown", flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/slow":
            print("entered", flush=True)
            for _ in range(3000):  # bounded: 30 s
                if os.path.exists(os.environ["RELEASE_FILE"]):
                    break
                await asyncio.sleep(0.01)
            body = b"finished"
        else:
            body = type(asyncio.get_running_loop()).__module__.split(".")[0].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
""")

LOOP_OPTION = {"asyncio": "asyncio", "uvcffi": "uvcffi:new_event_loop"}


class Proc:
    """A server subprocess whose stdout and stderr lines are read by threads into one queue."""

    def __init__(self, args, cwd, env):
        self.popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list = []
        for stream in (self.popen.stdout, self.popen.stderr):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def expect(self, text, timeout=20.0):
        """Wait for an output line containing ``text``; fail with everything seen so far."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {timeout} s; seen: {self.seen!r}") from None
            self.seen.append(line)
            if text in line:
                return line

    def finish(self, timeout=20.0):
        try:
            return self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait()
            rest = []
            while not self.lines.empty():
                rest.append(self.lines.get())
            self.seen.extend(rest)


def http_get(path, uds, path_timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(path_timeout)
    s.connect(uds)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    return s


def read_response(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


@pytest.fixture
def appdir(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def env_for(appdir):
    return dict(os.environ, RELEASE_FILE=str(appdir / "release"), PYTHONDONTWRITEBYTECODE="1",
                PYTHONPATH=os.pathsep.join([str(appdir), *sys.path]))


def graceful_shutdown(proc, appdir, uds, sig):
    """The loop kind the app saw, the in-flight response, and the process's exit status."""
    status, kind = read_response(http_get("/", uds))
    assert status == "HTTP/1.1 200 OK", status
    pending = http_get("/slow", uds)
    proc.expect("entered")
    proc.popen.send_signal(sig)
    proc.expect("Shutting down")
    (appdir / "release").write_text("")
    in_flight = read_response(pending)
    proc.expect("lifespan shutdown")
    return kind.decode(), in_flight, proc.finish()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_cli_graceful_shutdown_with_request_in_flight(loop_name, appdir, sig, http):
    if http == "httptools":
        pytest.importorskip("httptools")  # a C extension without PyPy wheels
    uds = str(appdir / "s.sock")
    proc = Proc([sys.executable, "-m", "uvicorn", "app:app", "--uds", uds, "--http", http,
                 "--loop", LOOP_OPTION[loop_name], "--log-level", "info"], appdir, env_for(appdir))
    try:
        proc.expect("Uvicorn running on unix socket")
        kind, in_flight, code = graceful_shutdown(proc, appdir, uds, sig)
    finally:
        proc.finish()
    assert kind == loop_name
    assert in_flight == ("HTTP/1.1 200 OK", b"finished")
    # uvicorn re-raises the captured signal once it has shut down: SIGTERM then ends the process
    # by the signal; SIGINT raises KeyboardInterrupt, which uvicorn's CLI turns into status 0.
    assert code == {signal.SIGTERM: -signal.SIGTERM, signal.SIGINT: 0}[sig], proc.seen


WORKERS = textwrap.dedent("""
    from uvicorn_worker import UvicornWorker

    class UvcffiWorker(UvicornWorker):
        CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "loop": "uvcffi:new_event_loop"}

    class AsyncioWorker(UvicornWorker):
        CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "loop": "asyncio"}
""")


def test_gunicorn_with_uvicorn_worker_on_sigterm(loop_name, appdir):
    pytest.importorskip("gunicorn")
    pytest.importorskip("uvicorn_worker")
    (appdir / "workers.py").write_text(WORKERS)
    uds = str(appdir / "g.sock")
    worker = {"asyncio": "workers.AsyncioWorker", "uvcffi": "workers.UvcffiWorker"}[loop_name]
    proc = Proc([sys.executable, "-m", "gunicorn", "app:app", "-k", worker, "-w", "1", "-b", f"unix:{uds}",
                 "--graceful-timeout", "20", "--log-level", "info"], appdir, env_for(appdir))
    try:
        proc.expect("Application startup complete")
        kind, in_flight, code = graceful_shutdown(proc, appdir, uds, signal.SIGTERM)
    finally:
        proc.finish()
    assert (kind, in_flight, code) == (loop_name, ("HTTP/1.1 200 OK", b"finished"), 0), proc.seen


SCRIPT = textwrap.dedent('''
    import asyncio, os, signal, sys
    import uvicorn
    from app import app

    seen = []

    async def main():
        # a handler of the loop's own, registered before uvicorn installs its Python-level ones
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, seen.append, "loop handler")
        config = uvicorn.Config(app, uds=sys.argv[2], loop=sys.argv[1], log_level="info")
        await uvicorn.Server(config).serve()

    factory = uvicorn.Config(app, loop=sys.argv[1]).get_loop_factory()
    asyncio.run(main(), loop_factory=factory) if sys.version_info >= (3, 12) else \\
        __import__("uvcffi").run(main(), loop_factory=factory)
    print("after serve:", seen, flush=True)
''')


def test_config_loop_and_the_loops_own_signal_handler(loop_name, appdir):
    """uvicorn's signal.signal handlers sit on top of the loop's: both see SIGTERM."""
    (appdir / "serve.py").write_text(SCRIPT)
    uds = str(appdir / "c.sock")
    proc = Proc([sys.executable, "serve.py", LOOP_OPTION[loop_name], uds], appdir, env_for(appdir))
    try:
        proc.expect("Uvicorn running on unix socket")
        kind, in_flight, code = graceful_shutdown(proc, appdir, uds, signal.SIGTERM)
    finally:
        proc.finish()
    assert (kind, in_flight) == (loop_name, ("HTTP/1.1 200 OK", b"finished"))
    # uvicorn re-raises SIGTERM after shutdown: the loop's handler (still installed) takes it again
    assert "after serve: ['loop handler', 'loop handler']" in proc.seen, proc.seen
    assert code == 0, proc.seen


RUN_SCRIPT = textwrap.dedent('''
    import sys
    import uvicorn

    if __name__ == "__main__":
        uvicorn.run("app:app", uds=sys.argv[2], loop=sys.argv[1], log_level="info")
''')


def test_uvicorn_run_with_loop_import_string(loop_name, appdir):
    """The README's snippet: uvicorn.run("app:app", loop="uvcffi:new_event_loop")."""
    (appdir / "main.py").write_text(RUN_SCRIPT)
    uds = str(appdir / "r.sock")
    proc = Proc([sys.executable, "main.py", LOOP_OPTION[loop_name], uds], appdir, env_for(appdir))
    try:
        proc.expect("Uvicorn running on unix socket")
        kind, in_flight, code = graceful_shutdown(proc, appdir, uds, signal.SIGINT)
    finally:
        proc.finish()
    assert (kind, in_flight) == (loop_name, ("HTTP/1.1 200 OK", b"finished"))
    assert code == 0, proc.seen  # uvicorn.run ends quietly on SIGINT


def test_cli_workers_share_the_socket(loop_name, appdir):
    """uvicorn --workers 2: the supervisor binds, each spawned worker serves the inherited socket
    on its own loop (create_server(sock=...)); SIGTERM stops all of them."""
    uds = str(appdir / "w.sock")
    proc = Proc([sys.executable, "-m", "uvicorn", "app:app", "--uds", uds, "--workers", "2",
                 "--loop", LOOP_OPTION[loop_name], "--log-level", "info"], appdir, env_for(appdir))
    try:
        proc.expect("Application startup complete")
        proc.expect("Application startup complete")
        kinds = {read_response(http_get("/", uds))[1].decode() for _ in range(20)}
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.finish()
    finally:
        proc.finish()
    assert kinds == {loop_name}
    assert code == 0, proc.seen
    assert sum("Finished server process" in line for line in proc.seen) == 2, proc.seen
