"""Protocol callbacks run in the contextvars context asyncio runs them in.

asyncio gives no transport a context of its own: each callback runs in the context of the
``Handle`` that calls it, and a ``Handle`` copies the current context when it is made. So:

* ``connection_made`` (``call_soon`` from the transport's constructor) sees a copy of the
  context the transport was made in: ``create_connection``'s caller's, or for a server's
  connection a copy of the server's (``create_server``'s caller's), one per connection, in
  which the protocol factory ran too;
* the read callbacks (``data_received``, ``get_buffer``/``buffer_updated``, ``eof_received``,
  ``datagram_received``) run in the reader handle's context: one copy per transport, so what
  one of them sets the next one sees, while ``connection_made``'s settings stay out; a
  ``resume_reading()`` registers a new reader, in a copy of its caller's context;
* ``pause_writing`` runs in ``write()``'s caller; ``resume_writing`` in the writer handle's
  context, a copy of the caller of the ``write()`` that left bytes behind;
* ``connection_lost`` runs in a copy of the context of whoever closed the transport;
* a subprocess's ``process_exited`` comes from the child watcher: a pidfd reader registered by
  ``subprocess_exec`` (3.12+ where pidfds work) or a waiting thread, whose context is empty.

Each test records, per callback, the value of ``cv`` (set by the test before the transport is
made) and of ``trail`` (every callback appends its name to it), and asserts asyncio's record:
the same body runs on both loops, so uvcffi must record what asyncio does.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import sys

import pytest
from _support import wait

cv: contextvars.ContextVar = contextvars.ContextVar("cv")
trail: contextvars.ContextVar = contextvars.ContextVar("trail", default=())

# asyncio's child watcher on this interpreter: a pidfd reader (the context of subprocess_exec's
# caller) or a thread (an empty context), see the module docstring
_PIDFD_WATCHER = sys.version_info >= (3, 12) and hasattr(os, "pidfd_open")
if _PIDFD_WATCHER:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        _PIDFD_WATCHER = False


def run(loop, coro):
    """``loop.run_until_complete(coro)`` in a fresh context where ``cv`` is "outside": no test
    sees another's settings, even where a loop leaked them into the context it ran in, and a
    callback run in the loop's own context (not asyncio's) shows "outside"."""
    ctx = contextvars.Context()
    ctx.run(cv.set, "outside")
    return ctx.run(loop.run_until_complete, coro)


class Log:
    """What each callback saw: ``(name, cv, trail)`` in call order; futures per name."""

    def __init__(self, loop):
        self.loop = loop
        self.seen = []
        self._waiting = {}

    def note(self, name, *, mark=True):
        t = trail.get()
        self.seen.append((name, cv.get(None), t))
        if mark:
            trail.set(t + (name,))
        for (want, n), fut in list(self._waiting.items()):
            if want == name and self.count(name) >= n and not fut.done():
                fut.set_result(None)

    def count(self, name):
        return sum(1 for e in self.seen if e[0] == name)

    async def until(self, name, n=1):
        if self.count(name) < n:
            fut = self._waiting.setdefault((name, n), self.loop.create_future())
            await wait(fut)


class StreamProbe(asyncio.Protocol):
    def __init__(self, log, echo_first=False):
        self.log = log
        self.echo_first = echo_first
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.log.note("made")

    def data_received(self, data):
        self.log.note("data")
        if self.echo_first and self.log.count("data") == 1:
            self.transport.write(data)

    def eof_received(self):
        self.log.note("eof")

    def pause_writing(self):
        self.log.note("pause")

    def resume_writing(self):
        self.log.note("resume")

    def connection_lost(self, exc):
        self.log.note("lost")


class BufferedProbe(StreamProbe, asyncio.BufferedProtocol):
    def __init__(self, log):
        super().__init__(log)
        self.buf = bytearray(64 * 1024)

    def get_buffer(self, sizehint):
        self.log.note("get_buffer", mark=False)  # called a varying number of times
        return self.buf

    def buffer_updated(self, nbytes):
        self.log.note("updated")


# What asyncio records for a connection that is made, receives two messages (the server
# answers the first), gets EOF and closes: connection_made's setting is not seen by the reads;
# each read sees the ones before; connection_lost is scheduled by the close() that
# eof_received's answer made, so it sees the reads' context.
def _reads(cv_value, start=()):
    return [
        ("made", cv_value, start),
        ("data", cv_value, start),
        ("data", cv_value, start + ("data",)),
        ("eof", cv_value, start + ("data", "data")),
        ("lost", cv_value, start + ("data", "data", "eof")),
    ]


async def _serve_two_messages(loop, create_server, connect):
    """Two connections to one server; each client sends two messages and EOF."""
    server_logs = []

    def factory():
        # the factory runs in the connection's own context: what it sets, that connection sees
        trail.set(trail.get() + (f"factory{len(server_logs)}",))
        log = Log(loop)
        server_logs.append(log)
        return StreamProbe(log, echo_first=True)

    cv.set("server")
    server = await create_server(factory)
    client_logs = []
    for i in range(2):
        cv.set(f"client{i}")
        log = Log(loop)
        client_logs.append(log)
        transport, _ = await connect(server, lambda log=log: StreamProbe(log))
        cv.set("main")
        transport.write(b"one")
        await log.until("data")
        await server_logs[i].until("data")
        transport.write(b"two")
        await server_logs[i].until("data", 2)
        transport.write_eof()
        await server_logs[i].until("lost")
        await log.until("lost")
    server.close()
    await wait(server.wait_closed())
    return server_logs, client_logs


def _tcp_server(loop):
    async def create(factory):
        return await loop.create_server(factory, "127.0.0.1", 0)

    async def connect(server, factory):
        return await loop.create_connection(factory, *server.sockets[0].getsockname())

    return create, connect


def _unix_server(loop, path):
    async def create(factory):
        return await loop.create_unix_server(factory, path)

    async def connect(server, factory):
        return await loop.create_unix_connection(factory, path)

    return create, connect


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_stream_callbacks_see_their_transports_context(loop, family, tmp_path):
    if family == "tcp":
        create, connect = _tcp_server(loop)
    else:
        create, connect = _unix_server(loop, str(tmp_path / "s.sock"))
    servers, clients = run(loop, _serve_two_messages(loop, create, connect))
    # the server's side answers its first message, the client's sees that answer as "data"
    for i in range(2):
        assert servers[i].seen == _reads("server", (f"factory{i}",))
        assert clients[i].seen == [
            ("made", f"client{i}", ()),
            ("data", f"client{i}", ()),
            ("eof", f"client{i}", ("data",)),
            ("lost", f"client{i}", ("data", "eof")),
        ]


def test_buffered_protocol_callbacks(loop):
    async def main():
        log = Log(loop)
        cv.set("server")
        server = await loop.create_server(lambda: BufferedProbe(log), "127.0.0.1", 0)
        cv.set("client")
        transport, _ = await loop.create_connection(asyncio.Protocol, *server.sockets[0].getsockname())
        cv.set("main")
        transport.write(b"one")
        await log.until("updated")
        transport.write(b"two")
        await log.until("updated", 2)
        transport.write_eof()
        await log.until("lost")
        transport.close()
        server.close()
        await wait(server.wait_closed())
        return log.seen

    seen = run(loop, main())
    assert [e for e in seen if e[0] != "get_buffer"] == [
        ("made", "server", ()),
        ("updated", "server", ()),
        ("updated", "server", ("updated",)),
        ("eof", "server", ("updated", "updated")),
        ("lost", "server", ("updated", "updated", "eof")),
    ]
    gets = [e for e in seen if e[0] == "get_buffer"]
    assert gets and all(e[1] == "server" for e in gets)


def test_resume_reading_reads_in_the_resumers_context(loop):
    server_transport: list = []

    class Pausing(StreamProbe):
        def connection_made(self, transport):
            server_transport.append(transport)
            super().connection_made(transport)

        def data_received(self, data):
            super().data_received(data)
            if self.log.count("data") == 1:
                self.transport.pause_reading()

    async def scenario():
        log = Log(loop)
        cv.set("server")
        server = await loop.create_server(lambda: Pausing(log), "127.0.0.1", 0)
        cv.set("client")
        transport, _ = await loop.create_connection(asyncio.Protocol, *server.sockets[0].getsockname())
        transport.write(b"one")
        await log.until("data")
        transport.write(b"two")  # waits in the kernel (or the transport) until resumed
        await asyncio.sleep(0)
        cv.set("resumer")
        trail.set(("resumer",))
        server_transport[0].resume_reading()
        await log.until("data", 2)
        transport.close()
        await log.until("lost")
        server.close()
        await wait(server.wait_closed())
        return log.seen

    assert run(loop, scenario()) == [
        ("made", "server", ()),
        ("data", "server", ()),
        ("data", "resumer", ("resumer",)),
        ("eof", "resumer", ("resumer", "data")),
        ("lost", "resumer", ("resumer", "data", "eof")),
    ]


def test_write_flow_control_callbacks(loop):
    """pause_writing in write()'s caller; resume_writing in a copy of the context of the write
    that left bytes behind."""
    payload = b"x" * (8 * 1024 * 1024)

    server_transports: list = []

    class Paused(StreamProbe):
        def connection_made(self, transport):
            super().connection_made(transport)
            server_transports.append(transport)
            transport.pause_reading()

    async def main():
        server_log, log = Log(loop), Log(loop)
        server = await loop.create_server(lambda: Paused(server_log), "127.0.0.1", 0)
        cv.set("client")
        transport, _ = await loop.create_connection(lambda: StreamProbe(log),
                                                    *server.sockets[0].getsockname())
        await server_log.until("made")
        cv.set("writer")
        transport.write(payload)  # more than the socket buffers take: pause_writing here
        assert log.count("pause") == 1
        cv.set("later")
        transport.write(b"y")  # queued behind: no new writer
        server_transports[0].resume_reading()
        await log.until("resume")
        transport.close()
        await log.until("lost")
        await server_log.until("lost")
        server.close()
        await wait(server.wait_closed())
        return log.seen

    assert run(loop, main()) == [
        ("made", "client", ()),
        ("pause", "writer", ()),
        ("resume", "writer", ()),
        ("lost", "later", ("pause",)),
    ]


def test_tls_callbacks(loop, contexts):
    server_ctx, client_ctx = contexts

    async def main():
        server_log, client_log = Log(loop), Log(loop)
        cv.set("server")
        server = await loop.create_server(lambda: StreamProbe(server_log, echo_first=True),
                                          "127.0.0.1", 0, ssl=server_ctx)
        cv.set("client")
        transport, _ = await loop.create_connection(
            lambda: StreamProbe(client_log), *server.sockets[0].getsockname(), ssl=client_ctx,
            server_hostname="localhost")
        cv.set("main")
        transport.write(b"one")
        await client_log.until("data")
        transport.write(b"two")
        await server_log.until("data", 2)
        transport.close()
        await client_log.until("lost")
        await server_log.until("lost")
        server.close()
        await wait(server.wait_closed())
        return server_log.seen, client_log.seen

    server_seen, client_seen = run(loop, main())
    # asyncio's SSLProtocol runs over the transport: the app's callbacks see the read context
    assert {e[1] for e in server_seen} == {"server"}
    assert {e[1] for e in client_seen} == {"client"}
    assert [e[0] for e in server_seen][:3] == ["made", "data", "data"]
    assert server_seen[2][2][-1:] == ("data",)
    assert client_seen[0][0] == "made" and client_seen[1][0] == "data"


class DatagramProbe(asyncio.DatagramProtocol):
    def __init__(self, log):
        self.log = log

    def connection_made(self, transport):
        self.transport = transport
        self.log.note("made")

    def datagram_received(self, data, addr):
        self.log.note("datagram")

    def error_received(self, exc):
        self.log.note("error")

    def connection_lost(self, exc):
        self.log.note("lost")


def test_datagram_callbacks(loop):
    async def main():
        server_log, client_log = Log(loop), Log(loop)
        cv.set("server")
        st, _ = await loop.create_datagram_endpoint(lambda: DatagramProbe(server_log),
                                                    local_addr=("127.0.0.1", 0))
        addr = st.get_extra_info("sockname")
        cv.set("client")
        ct, _ = await loop.create_datagram_endpoint(lambda: DatagramProbe(client_log),
                                                    remote_addr=addr)
        cv.set("main")
        ct.sendto(b"one")
        await server_log.until("datagram")
        ct.sendto(b"two")
        await server_log.until("datagram", 2)
        st.close()
        await server_log.until("lost")
        # the server is gone: the ICMP error reaches the connected client's reader
        ct.sendto(b"three")
        await client_log.until("error")
        ct.close()
        await client_log.until("lost")
        return server_log.seen, client_log.seen

    server_seen, client_seen = run(loop, main())
    assert server_seen == [
        ("made", "server", ()),
        ("datagram", "server", ()),
        ("datagram", "server", ("datagram",)),
        ("lost", "main", ()),
    ]
    assert client_seen == [
        ("made", "client", ()),
        ("error", "client", ()),
        ("lost", "main", ()),
    ]


def test_read_and_write_pipe_callbacks(loop):
    async def main():
        read_log, write_log = Log(loop), Log(loop)
        r, w = os.pipe()
        cv.set("reader")
        rt, _ = await loop.connect_read_pipe(lambda: StreamProbe(read_log), os.fdopen(r, "rb", 0))
        cv.set("writer")
        wt, _ = await loop.connect_write_pipe(lambda: StreamProbe(write_log), os.fdopen(w, "wb", 0))
        await write_log.until("made")
        cv.set("main")
        rt.pause_reading()
        cv.set("big write")
        wt.write(b"x" * (1024 * 1024))  # more than the pipe holds: pause_writing here
        cv.set("resumer")
        rt.resume_reading()
        await write_log.until("resume")
        cv.set("closer")
        wt.close()
        await write_log.until("lost")
        await read_log.until("lost")
        return read_log.seen, write_log.seen

    read_seen, write_seen = run(loop, main())
    assert write_seen == [
        ("made", "writer", ()),
        ("pause", "big write", ()),
        ("resume", "big write", ()),
        ("lost", "closer", ("pause",)),
    ]
    n = sum(1 for e in read_seen if e[0] == "data")
    assert n >= 1
    assert read_seen[0] == ("made", "reader", ())
    # read in a copy of the resumer's context (which pause_writing had marked)
    assert read_seen[1:1 + n] == [("data", "resumer", ("pause",) + ("data",) * i) for i in range(n)]
    # a pipe's EOF: eof_received and connection_lost are scheduled by the reader
    assert read_seen[1 + n:] == [
        ("eof", "resumer", ("pause",) + ("data",) * n),
        ("lost", "resumer", ("pause",) + ("data",) * n),
    ]


class SubprocessProbe(asyncio.SubprocessProtocol):
    def __init__(self, log):
        self.log = log

    def connection_made(self, transport):
        self.log.note("made")

    def pipe_data_received(self, fd, data):
        self.log.note(f"data{fd}")

    def pipe_connection_lost(self, fd, exc):
        self.log.note(f"pipe_lost{fd}")

    def process_exited(self):
        self.log.note("exited")

    def connection_lost(self, exc):
        self.log.note("lost")


_EXIT_CV = "spawner" if _PIDFD_WATCHER else None


def test_subprocess_callbacks(loop):
    async def main():
        log = Log(loop)
        cv.set("spawner")
        transport, _ = await loop.subprocess_exec(
            lambda: SubprocessProbe(log), sys.executable, "-c",
            "import sys; sys.stdout.write(sys.stdin.read())")
        cv.set("main")
        transport.get_pipe_transport(0).write(b"hello")
        transport.get_pipe_transport(0).close()
        await log.until("exited")
        await log.until("lost")
        transport.close()
        return log.seen

    seen = run(loop, main())
    by_name = {}
    for name, value, _ in seen:
        by_name.setdefault(name, set()).add(value)
    assert seen[0] == ("made", "spawner", ())
    assert by_name["data1"] == {"spawner"}
    assert by_name["pipe_lost0"] == {"main"}  # stdin closed by main
    assert by_name["pipe_lost1"] == by_name["pipe_lost2"] == {"spawner"}  # EOF, read by the pipe
    assert by_name["exited"] == {_EXIT_CV}
    # every callback runs in a copy of its own: none sees another's setting
    assert all(t == () for _, _, t in seen)


def test_subprocess_without_pipes_exit_context(loop):
    async def main():
        log = Log(loop)
        cv.set("spawner")
        transport, _ = await loop.subprocess_exec(
            lambda: SubprocessProbe(log), sys.executable, "-c", "pass",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        cv.set("main")
        await log.until("lost")
        transport.close()
        return log.seen

    assert run(loop, main()) == [
        ("made", "spawner", ()),
        ("exited", _EXIT_CV, ()),
        ("lost", _EXIT_CV, ()),
    ]


def test_reads_do_not_touch_the_callers_context(loop):
    """What a read callback sets stays in its transport's context: the code around
    run_until_complete never sees it."""
    async def main():
        log = Log(loop)
        server = await loop.create_server(lambda: StreamProbe(log), "127.0.0.1", 0)
        transport, _ = await loop.create_connection(asyncio.Protocol, *server.sockets[0].getsockname())
        transport.write(b"x")
        await log.until("data")
        transport.close()
        await log.until("lost")
        server.close()
        await wait(server.wait_closed())

    ctx = contextvars.Context()
    ctx.run(loop.run_until_complete, main())
    assert trail not in ctx


def test_socket_pair_transport_context(loop):
    """connect_accepted_socket / create_connection(sock=): the transport is made in the
    caller's context."""
    async def main():
        log = Log(loop)
        a, b = socket.socketpair()
        cv.set("accepted")
        transport, _ = await loop.connect_accepted_socket(lambda: StreamProbe(log), a)
        cv.set("main")
        b.sendall(b"one")
        await log.until("data")
        b.close()
        await log.until("lost")
        return log.seen

    assert run(loop, main()) == [
        ("made", "accepted", ()),
        ("data", "accepted", ()),
        ("eof", "accepted", ("data",)),
        ("lost", "accepted", ("data", "eof")),
    ]
