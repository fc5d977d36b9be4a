"""Unix domain stream sockets: create_unix_server / create_unix_connection, the streams API
over them, and the filesystem side (stale socket files, abstract names, cleanup on close).

Every test runs on asyncio's loop (the oracle) and on uvcffi's (``loop`` fixture). Socket paths
live in a short directory under /tmp: AF_UNIX paths are limited to 107 bytes.
"""

from __future__ import annotations

import asyncio
import errno
import os
import pathlib
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import uuid

import pytest
from _support import Recorder, abort_all, upper_echo

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs AF_UNIX")

# cleanup_socket= is new in Python 3.13; uvcffi follows 3.13 on every version.
HAS_CLEANUP_SOCKET = sys.version_info >= (3, 13)
T = 10  # bound on every wait


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="uvu", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def path(sockdir):
    return os.path.join(sockdir, "s.sock")


class Accepting:
    """A protocol factory that hands out Recorders and lets the test await the n-th one."""

    def __init__(self, loop, **kw):
        self.loop = loop
        self.kw = kw
        self.protos = []
        self._waiters = []

    def __call__(self):
        p = Recorder(self.loop, **self.kw)
        self.protos.append(p)
        for n, fut in self._waiters:
            if len(self.protos) >= n and not fut.done():
                fut.set_result(None)
        return p

    async def nth(self, n):
        """The n-th accepted connection's protocol (1-based), once connection_made ran."""
        if len(self.protos) < n:
            fut = self.loop.create_future()
            self._waiters.append((n, fut))
            await asyncio.wait_for(fut, T)
        p = self.protos[n - 1]
        await asyncio.wait_for(p.made, T)
        return p


async def connect_pair(loop, path, acc):
    """A client ``Recorder`` connected to ``path`` and its accepted peer (``acc``'s first protocol)."""
    cp = Recorder(loop)
    await loop.create_unix_connection(lambda: cp, path)
    return cp, await acc.nth(1)


def connect_raw(path):
    """A blocking client socket connected to ``path`` (outside the loop)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(T)
    s.connect(path)
    return s


# ----------------------------------------------------------------------------- basics
def test_roundtrip_both_ways(loop, path):
    async def main():
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, path)
        assert server.is_serving()
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert server.sockets[0].getsockname() == path
        assert server.sockets[0].family == socket.AF_UNIX
        cp = Recorder(loop)
        t, p = await loop.create_unix_connection(lambda: cp, path)
        assert p is cp and t is cp.transport
        assert isinstance(t, asyncio.Transport)
        sp = await acc.nth(1)
        t.write(b"ping")
        t.writelines([b" ", bytearray(b"pi"), memoryview(b"ng")])
        assert await sp.wait_data(9) == b"ping ping"
        sp.transport.write(b"pong" * 1000)
        assert await cp.wait_data(4000) == b"pong" * 1000
        t.close()
        assert t.is_closing()
        assert await asyncio.wait_for(cp.done, T) is None
        assert await asyncio.wait_for(sp.done, T) is None
        assert cp.events == ["made", ("lost", None)]
        assert sp.events == ["made", "eof", ("lost", None)]
        server.close()
        assert not server.is_serving()
        await asyncio.wait_for(server.wait_closed(), T)

    loop.run_until_complete(main())


def test_pathlike_and_bytes_paths(loop, path):
    async def main():
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, pathlib.Path(path))
        assert server.sockets[0].getsockname() == path
        c1 = Recorder(loop)
        await loop.create_unix_connection(lambda: c1, pathlib.Path(path))
        c2 = Recorder(loop)
        await loop.create_unix_connection(lambda: c2, os.fsencode(path))
        s1, s2 = await acc.nth(1), await acc.nth(2)
        c2.transport.write(b"bytes path")
        assert await s2.wait_data(10) == b"bytes path"
        await abort_all(server, c1, c2, s1, s2)

    loop.run_until_complete(main())


def test_extra_info(loop, path):
    async def main():
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, path)
        cp, sp = await connect_pair(loop, path, acc)
        ct, st = cp.transport, sp.transport
        # the client's socket is unbound: its name is ""; the server end carries the path
        assert ct.get_extra_info("peername") == path
        assert ct.get_extra_info("sockname") == ""
        assert st.get_extra_info("sockname") == path
        assert st.get_extra_info("peername") == ""
        for t in (ct, st):
            sock = t.get_extra_info("socket")
            assert sock.family == socket.AF_UNIX
            assert sock.type == socket.SOCK_STREAM
            assert sock.fileno() >= 0
            assert t.get_extra_info("nope", 42) == 42
            assert t.can_write_eof()
        assert ct.get_extra_info("socket").getpeername() == path
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


MIXED_WRITES = r"""
import asyncio, os, sys, tempfile

loop = asyncio.new_event_loop() if sys.argv[1] == "asyncio" else __import__("uvcffi").new_event_loop()

class Proto(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.made = loop.create_future()
        self.done = loop.create_future()
    def connection_made(self, transport):
        self.transport = transport
        self.made.set_result(None)
    def data_received(self, data):
        self.data += data
    def connection_lost(self, exc):
        self.done.set_result(exc)

async def main():
    path = os.path.join(sys.argv[2], "m.sock")
    sp, cp = Proto(), Proto()
    server = await loop.create_unix_server(lambda: sp, path)
    await loop.create_unix_connection(lambda: cp, path)
    await asyncio.wait_for(sp.made, 10)
    payload = bytes(range(256)) * 16384
    t = cp.transport
    t.write(bytearray(b"[ba]"))
    t.write(memoryview(b"[mv]"))
    t.writelines([b"[l1]", bytearray(b"[l2]")])
    t.write(payload)
    t.write(b"[tail]")
    t.close()
    assert await asyncio.wait_for(cp.done, 10) is None
    assert await asyncio.wait_for(sp.done, 10) is None
    expected = b"[ba][mv][l1][l2]" + payload + b"[tail]"
    assert bytes(sp.data) == expected, (len(sp.data), len(expected))
    server.close()
    await server.wait_closed()

loop.run_until_complete(main())
loop.close()
"""


def test_close_after_mixed_writes_delivers_everything(loop_name, sockdir):
    """bytes-like writes of every kind, a write larger than the socket buffers, close(): the
    peer gets every byte, in order, then EOF. In a child process: the uvcffi bug this meets
    frees a write request libuv still holds (a crash, sometimes)."""
    out = subprocess.run([sys.executable, "-c", MIXED_WRITES, loop_name, sockdir],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_write_eof_half_close(loop, path):
    async def main():
        acc = Accepting(loop, eof_keep_open=True)
        server = await loop.create_unix_server(acc, path)
        cp, sp = await connect_pair(loop, path, acc)
        cp.transport.write(b"request")
        cp.transport.write_eof()
        with pytest.raises(RuntimeError):
            cp.transport.write(b"more")
        await asyncio.wait_for(sp.eof, T)
        assert bytes(sp.data) == b"request"
        # the server kept its side open and can still answer over the half-closed connection
        sp.transport.write(b"response")
        assert await cp.wait_data(8) == b"response"
        sp.transport.close()
        assert await asyncio.wait_for(cp.done, T) is None
        assert await asyncio.wait_for(sp.done, T) is None
        assert cp.events == ["made", "eof", ("lost", None)]
        assert sp.events == ["made", "eof", ("lost", None)]
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)

    loop.run_until_complete(main())


def test_connection_lost_after_peer_close(loop, path):
    async def main():
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, path)
        c1, c2 = Recorder(loop), Recorder(loop)
        await loop.create_unix_connection(lambda: c1, path)
        s1 = await acc.nth(1)
        await loop.create_unix_connection(lambda: c2, path)
        s2 = await acc.nth(2)
        # graceful close from the server: the client sees EOF, then connection_lost(None)
        s1.transport.write(b"bye")
        s1.transport.close()
        assert await asyncio.wait_for(c1.done, T) is None
        assert bytes(c1.data) == b"bye"
        assert c1.events == ["made", "eof", ("lost", None)]
        assert c1.transport.is_closing()
        # abort from the client: the server sees EOF (a unix socket has no RST)
        c2.transport.abort()
        assert await asyncio.wait_for(c2.done, T) is None
        assert await asyncio.wait_for(s2.done, T) is None
        assert s2.events == ["made", "eof", ("lost", None)]
        await asyncio.wait_for(s1.done, T)
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)

    loop.run_until_complete(main())


def test_streams_echo(loop, path):
    async def main():
        async def handle(reader, writer):
            assert writer.get_extra_info("sockname") == path
            await upper_echo(reader, writer)

        server = await asyncio.start_unix_server(handle, path, limit=1 << 20)
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
        assert writer.get_extra_info("peername") == path
        for i in range(50):
            writer.write(b"line %d\n" % i)
            await writer.drain()
            assert await asyncio.wait_for(reader.readline(), T) == b"LINE %d\n" % i
        writer.write(b"x" * 200_000 + b"\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), T) == b"X" * 200_000 + b"\n"
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), T) == b""
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), T)
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)

    loop.run_until_complete(main())


# ----------------------------------------------------------------------------- sock=
def test_server_and_connection_with_sock(loop, path):
    async def main():
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, sock=lsock)
        assert server.sockets[0].fileno() == lsock.fileno()
        assert server.sockets[0].getsockname() == path
        assert lsock.gettimeout() == 0  # made non-blocking
        csock = connect_raw(path)  # connected before the loop sees it
        cp = Recorder(loop)
        t, _ = await loop.create_unix_connection(lambda: cp, sock=csock)
        assert t.get_extra_info("peername") == path
        sp = await acc.nth(1)
        t.write(b"via sock=")
        assert await sp.wait_data(9) == b"via sock="
        sp.transport.write(b"back")
        assert await cp.wait_data(4) == b"back"
        await abort_all(server, cp, sp)
        assert lsock.fileno() == -1  # the server closed the socket it was given

    loop.run_until_complete(main())


def test_unix_socketpair_end_as_connection(loop):
    async def main():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pa, pb = Recorder(loop), Recorder(loop)
        await loop.create_unix_connection(lambda: pa, sock=a)
        await loop.create_unix_connection(lambda: pb, sock=b)
        pa.transport.write(b"left")
        pb.transport.write(b"right")
        assert await pb.wait_data(4) == b"left"
        assert await pa.wait_data(5) == b"right"
        pa.transport.write_eof()
        await asyncio.wait_for(pb.eof, T)
        pb.transport.close()
        assert await asyncio.wait_for(pa.done, T) is None
        assert await asyncio.wait_for(pb.done, T) is None
        assert pa.events == ["made", "eof", ("lost", None)]

    loop.run_until_complete(main())


# ----------------------------------------------------------------------------- server options
def test_backlog(loop, path):
    backlog = 2

    async def main():
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, path, backlog=backlog)
        # No await between the connects: the server cannot accept, so the kernel queues up
        # to backlog + 1 connections (Linux), then refuses a non-blocking connect.
        clients = []
        refused = None
        for _ in range(backlog + 5):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            clients.append(s)
            try:
                s.connect(path)
            except BlockingIOError as exc:
                refused = exc
                break
        assert refused is not None
        if sys.platform.startswith("linux"):
            assert len(clients) == backlog + 2
        queued = len(clients) - 1
        # now the server drains the queue; every queued client gets served
        protos = [await acc.nth(i + 1) for i in range(queued)]
        for s in clients:
            s.close()
        for p in protos:
            assert await asyncio.wait_for(p.done, T) is None
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)

    loop.run_until_complete(main())


def test_start_serving_false(loop, path):
    async def main():
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, path, start_serving=False)
        assert not server.is_serving()
        assert stat.S_ISSOCK(os.stat(path).st_mode)  # bound, not yet listening
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.create_unix_connection(asyncio.Protocol, path), T)
        await server.start_serving()
        assert server.is_serving()
        cp, sp = await connect_pair(loop, path, acc)
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


def test_serve_forever_and_async_with(loop, path):
    async def main():
        acc = Accepting(loop)
        async with await loop.create_unix_server(acc, path) as server:
            task = loop.create_task(server.serve_forever())
            cp, sp = await connect_pair(loop, path, acc)
            assert server.is_serving()
            cp.transport.close()
            await asyncio.wait_for(sp.done, T)
            await asyncio.wait_for(cp.done, T)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, T)
            assert not server.is_serving()

    loop.run_until_complete(main())


def test_ssl(loop, path, contexts):
    import ssl

    server_ctx, client_ctx = contexts

    async def main():
        async def handle(reader, writer):
            data = await reader.readexactly(6)
            writer.write(data[::-1])
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_unix_server(handle, path, ssl=server_ctx)
        reader, writer = await asyncio.open_unix_connection(path, ssl=client_ctx,
                                                            server_hostname="localhost")
        sslobj = writer.get_extra_info("ssl_object")
        assert isinstance(sslobj, ssl.SSLObject)
        assert writer.get_extra_info("peercert")["subject"] == ((("commonName", "localhost"),),)
        assert writer.get_extra_info("peername") == path
        writer.write(b"secret")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(6), T) == b"terces"
        assert await asyncio.wait_for(reader.read(), T) == b""
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), T)
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)

    loop.run_until_complete(main())


def test_ssl_arguments(loop, path, contexts):
    server_ctx, client_ctx = contexts

    async def main():
        with pytest.raises(TypeError):
            await loop.create_unix_server(asyncio.Protocol, path, ssl=True)
        with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
            await loop.create_unix_server(asyncio.Protocol, path, ssl_handshake_timeout=1)
        if sys.version_info >= (3, 11):  # asyncio's ssl_shutdown_timeout= (TypeError before 3.11)
            with pytest.raises(ValueError, match="ssl_shutdown_timeout is only meaningful with ssl"):
                await loop.create_unix_server(asyncio.Protocol, path, ssl_shutdown_timeout=1)
        with pytest.raises(ValueError, match="server_hostname"):
            await loop.create_unix_connection(asyncio.Protocol, path, ssl=client_ctx)
        with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
            await loop.create_unix_connection(asyncio.Protocol, path, server_hostname="localhost")
        with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
            await loop.create_unix_connection(asyncio.Protocol, path, ssl_handshake_timeout=1)
        assert not os.path.exists(path)  # every check comes before the socket is bound

    loop.run_until_complete(main())


# ----------------------------------------------------------------------------- cleanup_socket
def _skip_without_cleanup_socket(loop):
    if not HAS_CLEANUP_SOCKET and not loop.__class__.__module__.startswith("uvcffi"):
        pytest.skip("asyncio's cleanup_socket= is new in Python 3.13")


@pytest.mark.parametrize(
    "kwargs, remove_first, file_left",
    [({}, False, False), ({"cleanup_socket": False}, False, True), ({}, True, False)],
    ids=["default_unlinks_on_close", "false_keeps_the_file", "tolerates_a_removed_file"])
def test_cleanup_socket(loop, path, kwargs, remove_first, file_left):
    _skip_without_cleanup_socket(loop)

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, path, **kwargs)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        if remove_first:
            os.unlink(path)
        server.close()  # no error, nothing logged
        await asyncio.wait_for(server.wait_closed(), T)
        if file_left:
            assert stat.S_ISSOCK(os.stat(path).st_mode)
        else:
            assert not os.path.exists(path)

    loop.run_until_complete(main())


def test_cleanup_socket_with_sock_unlinks_on_close(loop, path):
    _skip_without_cleanup_socket(loop)

    async def main():
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        server = await loop.create_unix_server(asyncio.Protocol, sock=lsock)
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)
        assert not os.path.exists(path)

    loop.run_until_complete(main())


def test_cleanup_socket_leaves_a_replaced_file(loop, path):
    _skip_without_cleanup_socket(loop)

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, path)
        # someone else took the path over while we served: not ours to remove
        os.unlink(path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
            other.bind(path)
        ino = os.stat(path).st_ino
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)
        assert os.stat(path).st_ino == ino

    loop.run_until_complete(main())


def test_asyncio_311_keeps_the_file(loop, path):
    """The oracle's own behaviour before 3.13: the socket file outlives the server."""
    if HAS_CLEANUP_SOCKET or loop.__class__.__module__.startswith("uvcffi"):
        pytest.skip("asyncio < 3.13 only")

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, path)
        server.close()
        await asyncio.wait_for(server.wait_closed(), T)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        with pytest.raises(TypeError):
            await loop.create_unix_server(asyncio.Protocol, path, cleanup_socket=False)

    loop.run_until_complete(main())


# ----------------------------------------------------------------------------- the filesystem
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract namespace is Linux-only")
def test_abstract_namespace(loop, sockdir):
    name = "\0uvcffi-test-" + uuid.uuid4().hex

    async def main():
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, name)
        # Python reports abstract names as bytes
        assert server.sockets[0].getsockname() == name.encode()
        cp = Recorder(loop)
        t, _ = await loop.create_unix_connection(lambda: cp, name)
        assert t.get_extra_info("peername") == name.encode()
        sp = await acc.nth(1)
        assert sp.transport.get_extra_info("sockname") == name.encode()
        t.write(b"abstract")
        assert await sp.wait_data(8) == b"abstract"
        sp.transport.write(b"ok")
        assert await cp.wait_data(2) == b"ok"
        await abort_all(server, cp, sp)
        # nothing appeared on the filesystem, and the name is free again
        assert os.listdir(sockdir) == []
        with pytest.raises(FileNotFoundError):
            os.stat(name[1:])
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.create_unix_connection(asyncio.Protocol, name), T)

    loop.run_until_complete(main())


def test_stale_socket_file_is_replaced(loop, path):
    async def main():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
            stale.bind(path)  # closed without unlinking: a leftover of a dead server
        os.link(path, path + ".old")  # pins the inode, so a new file must get another one
        old_ino = os.stat(path).st_ino
        acc = Accepting(loop)
        server = await loop.create_unix_server(acc, path)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert os.stat(path).st_ino != old_ino
        cp, sp = await connect_pair(loop, path, acc)
        await abort_all(server, cp, sp)

    loop.run_until_complete(main())


def test_path_is_a_regular_file(loop, path):
    async def main():
        with open(path, "w") as f:
            f.write("keep me")
        with pytest.raises(OSError) as info:
            await loop.create_unix_server(asyncio.Protocol, path)
        assert info.value.errno == errno.EADDRINUSE
        assert str(info.value) == f"[Errno {errno.EADDRINUSE}] Address {path!r} is already in use"
        with open(path) as f:
            assert f.read() == "keep me"  # never removed
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.create_unix_connection(asyncio.Protocol, path), T)

    loop.run_until_complete(main())


def test_path_in_use_by_a_live_server_is_taken_over(loop, path):
    """asyncio removes any socket file at the path, even a live server's: the new server
    gets the name, the old one keeps its (now unreachable) socket."""

    async def main():
        acc1, acc2 = Accepting(loop), Accepting(loop)
        first = await loop.create_unix_server(acc1, path)
        second = await loop.create_unix_server(acc2, path)
        cp, sp = await connect_pair(loop, path, acc2)
        assert acc1.protos == []
        await abort_all(second, cp, sp)
        first.close()
        await asyncio.wait_for(first.wait_closed(), T)

    loop.run_until_complete(main())


def test_connect_to_missing_path(loop, sockdir):
    async def main():
        missing = os.path.join(sockdir, "nobody")
        with pytest.raises(FileNotFoundError):
            await asyncio.wait_for(loop.create_unix_connection(asyncio.Protocol, missing), T)
        with pytest.raises(FileNotFoundError):
            await asyncio.wait_for(asyncio.open_unix_connection(missing), T)

    loop.run_until_complete(main())


def test_connect_to_a_socket_file_nobody_listens_on(loop, path):
    async def main():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
            stale.bind(path)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.create_unix_connection(asyncio.Protocol, path), T)

    loop.run_until_complete(main())


def test_path_too_long(loop):
    long_path = "/tmp/" + "x" * 200  # AF_UNIX allows 107 bytes

    async def main():
        with pytest.raises(OSError) as info:
            await loop.create_unix_server(asyncio.Protocol, long_path)
        assert type(info.value) is OSError
        assert "too long" in str(info.value)
        with pytest.raises(OSError) as info:
            await asyncio.wait_for(loop.create_unix_connection(asyncio.Protocol, long_path), T)
        assert type(info.value) is OSError
        assert "too long" in str(info.value)
        assert not os.path.exists(long_path)

    loop.run_until_complete(main())


# ----------------------------------------------------------------------------- bad arguments
def test_bad_argument_combinations(loop, path):
    async def main():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            with pytest.raises(ValueError, match="path and sock can not be specified at the same time"):
                await loop.create_unix_server(asyncio.Protocol, path, sock=s)
            with pytest.raises(ValueError, match="path and sock can not be specified at the same time"):
                await loop.create_unix_connection(asyncio.Protocol, path, sock=s)
            assert s.fileno() >= 0  # the caller's socket is left alone
        assert not os.path.exists(path)
        with pytest.raises(ValueError, match="path was not specified, and no sock specified"):
            await loop.create_unix_server(asyncio.Protocol)
        with pytest.raises(ValueError, match="no path and sock were specified"):
            await loop.create_unix_connection(asyncio.Protocol)
        for family, type_ in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_UNIX, socket.SOCK_DGRAM)):
            with socket.socket(family, type_) as s:
                with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                    await loop.create_unix_server(asyncio.Protocol, sock=s)
                with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                    await loop.create_unix_connection(asyncio.Protocol, sock=s)
                assert s.fileno() >= 0

    loop.run_until_complete(main())


@pytest.mark.parametrize("debug", [False, True])
def test_protocol_factory_error_on_accept(loop, path, handler_calls, debug):
    """A factory that raises: the connection is dropped and the server goes on. As asyncio,
    the exception handler hears of it only in debug mode."""

    async def main():
        calls = []
        good = Recorder(loop)

        def factory():
            calls.append(None)
            if len(calls) == 1:
                raise ZeroDivisionError
            return good

        server = await loop.create_unix_server(factory, path)
        bad_client = Recorder(loop)
        await loop.create_unix_connection(lambda: bad_client, path)
        cp = Recorder(loop)
        await loop.create_unix_connection(lambda: cp, path)
        await asyncio.wait_for(good.made, T)
        assert len(calls) == 2
        # (asyncio leaves the dropped socket to the garbage collector: EOF comes whenever)
        await abort_all(server, cp, good, bad_client)

    loop.set_debug(debug)
    loop.run_until_complete(main())
    if not debug:
        assert handler_calls == []
    else:
        assert len(handler_calls) == 1
        assert handler_calls[0]["message"] == "Error on transport creation for incoming connection"
        assert isinstance(handler_calls[0]["exception"], ZeroDivisionError)
