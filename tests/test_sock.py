"""The low-level socket API: ``sock_*`` coroutines and ``add_reader``/``add_writer``.

Every test runs on asyncio's loop (the oracle) and on uvcffi's (``loop`` fixture). Real sockets
only: TCP and UDP on 127.0.0.1 / ::1, unix sockets in ``tmp_path``. Waits are bounded by
``wait``; ``asyncio.sleep(0)`` appears only to let a task just created take its first step.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import socket
import ssl

import pytest
from _support import first_step, needs_ipv6, pattern, wait


def nb(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    return sock


def tcp_pair(host: str = "127.0.0.1", bufsize: int | None = None):
    """Two connected non-blocking TCP sockets (set up with blocking calls on loopback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as lsock:
        lsock.bind((host, 0))
        lsock.listen(1)
        a = socket.socket(family, socket.SOCK_STREAM)
        if bufsize:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        a.connect(lsock.getsockname())
        b, _ = lsock.accept()
        if bufsize:
            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
    return nb(a), nb(b)


def udp_socket(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    return nb(s)


def listener(family=socket.AF_INET, addr=("127.0.0.1", 0)) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind(addr)
    s.listen(8)
    return nb(s)


async def read_through_add_reader(loop, a, b, payload, remove=None):
    """Watch ``b`` with add_reader, send ``payload`` from ``a``: the callback reads it. Then the
    reader is removed (through ``remove``, ``b`` itself by default), which must find it."""
    got = loop.create_future()
    loop.add_reader(b, lambda: got.done() or got.set_result(b.recv(10)))
    a.send(payload)
    assert await wait(got) == payload
    assert loop.remove_reader(b if remove is None else remove) is True


# ------------------------------------------------------------------------------ sock_recv
def test_sock_recv_waits_then_returns_data_and_eof(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            task = asyncio.ensure_future(loop.sock_recv(b, 100))
            await first_step()
            assert not task.done()
            await loop.sock_sendall(a, b"hello")
            assert await wait(task) == b"hello"
            # data already there: returned without waiting; at most n bytes
            await loop.sock_sendall(a, b"0123456789")
            got = await wait(loop.sock_recv(b, 4))
            assert got == b"0123"
            rest = b""
            while len(rest) < 6:
                rest += await wait(loop.sock_recv(b, 100))
            assert rest == b"456789"
            a.shutdown(socket.SHUT_WR)
            assert await wait(loop.sock_recv(b, 100)) == b""
            assert await wait(loop.sock_recv(b, 100)) == b""  # EOF again

    loop.run_until_complete(main())


def test_sock_recv_into(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            buf = bytearray(16)
            task = asyncio.ensure_future(loop.sock_recv_into(b, buf))
            await first_step()
            assert not task.done()
            await loop.sock_sendall(a, b"abcdef")
            assert await wait(task) == 6
            assert bytes(buf[:6]) == b"abcdef"
            # into a slice of a memoryview
            await loop.sock_sendall(a, b"XY")
            view = memoryview(buf)[10:12]
            n = 0
            while n < 2:
                n += await wait(loop.sock_recv_into(b, view[n:]))
            assert bytes(buf) == b"abcdef\0\0\0\0XY\0\0\0\0"
            a.close()
            assert await wait(loop.sock_recv_into(b, buf)) == 0

    loop.run_until_complete(main())


def test_sock_recv_connection_reset(loop):
    async def main():
        a, b = tcp_pair()
        with b:
            task = asyncio.ensure_future(loop.sock_recv(b, 100))
            await first_step()
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")  # l_onoff=1, l_linger=0
            a.close()  # RST
            with pytest.raises(ConnectionResetError):
                await wait(task)

    loop.run_until_complete(main())


# ---------------------------------------------------------------------------- sock_sendall
def test_sock_sendall_bytes_like_and_empty(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            assert await wait(loop.sock_sendall(a, b"")) is None
            assert await wait(loop.sock_sendall(a, b"by")) is None
            await wait(loop.sock_sendall(a, bytearray(b"te")))
            await wait(loop.sock_sendall(a, memoryview(b"xxsviewxx")[2:7]))
            got = b""
            while len(got) < 9:
                got += await wait(loop.sock_recv(b, 100))
            assert got == b"bytesview"

    loop.run_until_complete(main())


def test_sock_sendall_large_blocks_and_completes_byte_exact(loop):
    size = 8 * 1024 * 1024

    async def main():
        a, b = tcp_pair(bufsize=64 * 1024)
        with a, b:
            data = pattern(size)
            sender = asyncio.ensure_future(loop.sock_sendall(a, data))
            await first_step()
            assert not sender.done(), "8 MB fitted into the socket buffers: the test proves nothing"
            received = bytearray()
            buf = bytearray(256 * 1024)
            while len(received) < size:
                n = await wait(loop.sock_recv_into(b, buf))
                assert n > 0
                received += buf[:n]
            assert await wait(sender) is None
            assert len(received) == size
            assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
            assert received == data

    loop.run_until_complete(main())


def test_sock_sendall_and_sock_recv_pending_on_one_socket(loop):
    """A pending write and a pending read share the socket's one registration (a reader and a
    writer); each completes on its own event."""
    size = 4 * 1024 * 1024

    async def main():
        a, b = tcp_pair(bufsize=64 * 1024)
        with a, b:
            data = pattern(size)
            reader = asyncio.ensure_future(loop.sock_recv(a, 100))
            sender = asyncio.ensure_future(loop.sock_sendall(a, data))
            await first_step()
            assert not reader.done() and not sender.done()
            await loop.sock_sendall(b, b"reply")
            assert await wait(reader) == b"reply"
            assert not sender.done()
            received = bytearray()
            while len(received) < size:
                chunk = await wait(loop.sock_recv(b, 256 * 1024))
                assert chunk
                received += chunk
            assert await wait(sender) is None
            assert received == data
            # both registrations are gone
            assert loop.remove_reader(a) is False
            assert loop.remove_writer(a) is False

    loop.run_until_complete(main())


def test_sock_sendall_to_reset_peer_raises(loop):
    async def main():
        a, b = tcp_pair(bufsize=64 * 1024)
        with a:
            sender = asyncio.ensure_future(loop.sock_sendall(a, b"x" * (8 * 1024 * 1024)))
            await first_step()
            assert not sender.done()
            b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            b.close()  # RST while sendall waits for room
            with pytest.raises((ConnectionResetError, BrokenPipeError)):
                await wait(sender)

    loop.run_until_complete(main())


# ---------------------------------------------------------------------------- sock_connect
def _connect_params(kind, tmp_path):
    if kind == "ipv4":
        return socket.AF_INET, ("127.0.0.1", 0)
    if kind == "ipv6":
        return socket.AF_INET6, ("::1", 0)
    return socket.AF_UNIX, str(tmp_path / "s.sock")


@pytest.mark.parametrize("kind", ["ipv4", pytest.param("ipv6", marks=needs_ipv6), "unix"])
def test_sock_connect_and_sock_accept(loop, kind, tmp_path):
    family, addr = _connect_params(kind, tmp_path)

    async def main():
        with listener(family, addr) as lsock:
            server_addr = lsock.getsockname()
            accept = asyncio.ensure_future(loop.sock_accept(lsock))
            await first_step()
            assert not accept.done()
            with nb(socket.socket(family, socket.SOCK_STREAM)) as client:
                assert await wait(loop.sock_connect(client, server_addr)) is None
                conn, peer = await wait(accept)
                with conn:
                    assert conn.gettimeout() == 0  # non-blocking, like asyncio
                    if family != socket.AF_UNIX:
                        assert peer == client.getsockname()
                        assert client.getpeername() == server_addr
                    await wait(loop.sock_sendall(client, b"ping"))
                    assert await wait(loop.sock_recv(conn, 10)) == b"ping"
                    await wait(loop.sock_sendall(conn, b"pong"))
                    assert await wait(loop.sock_recv(client, 10)) == b"pong"

    loop.run_until_complete(main())


def test_sock_accept_already_pending_connection(loop):
    async def main():
        with listener() as lsock:
            with socket.create_connection(lsock.getsockname()) as client:
                conn, peer = await wait(loop.sock_accept(lsock))
                with conn:
                    assert peer == client.getsockname()
                    assert conn.gettimeout() == 0

    loop.run_until_complete(main())


def test_sock_connect_resolves_host_name(loop):
    async def main():
        with listener() as lsock:
            port = lsock.getsockname()[1]
            with nb(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as client:
                await wait(loop.sock_connect(client, ("localhost", port)))
                conn, _ = await wait(loop.sock_accept(lsock))
                conn.close()
                assert client.getpeername() == ("127.0.0.1", port)

    loop.run_until_complete(main())


@pytest.mark.parametrize("kind", ["ipv4", pytest.param("ipv6", marks=needs_ipv6), "unix"])
def test_sock_connect_refused(loop, kind, tmp_path):
    family, addr = _connect_params(kind, tmp_path)

    async def main():
        # bound and not listening: nobody else can take the port/path meanwhile
        with socket.socket(family, socket.SOCK_STREAM) as closed_port:
            closed_port.bind(addr)
            target = closed_port.getsockname()
            with nb(socket.socket(family, socket.SOCK_STREAM)) as client:
                with pytest.raises(ConnectionRefusedError):
                    await wait(loop.sock_connect(client, target))
            # the loop still works: a later connect on another socket succeeds
            with listener(family, addr if family != socket.AF_UNIX else str(tmp_path / "t.sock")) as lsock:
                with nb(socket.socket(family, socket.SOCK_STREAM)) as client:
                    await wait(loop.sock_connect(client, lsock.getsockname()))
                    conn, _ = await wait(loop.sock_accept(lsock))
                    conn.close()

    loop.run_until_complete(main())


def test_sock_connect_already_connected(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            with pytest.raises(OSError) as info:
                await wait(loop.sock_connect(a, b.getsockname()))
            assert info.value.errno == errno.EISCONN

    loop.run_until_complete(main())


def test_sock_connect_unix_missing_path(loop, tmp_path):
    async def main():
        with nb(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as client:
            with pytest.raises(FileNotFoundError):
                await wait(loop.sock_connect(client, str(tmp_path / "nope.sock")))

    loop.run_until_complete(main())


# ------------------------------------------------------------------------------------ UDP
def _needs_udp_sock_methods(loop) -> None:
    if not hasattr(loop, "sock_sendto"):
        pytest.skip("asyncio lacks loop.sock_recvfrom()/sock_recvfrom_into()/sock_sendto() "
                    "before Python 3.11; the uvcffi side runs")


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def test_udp_sendto_recvfrom(loop, host):
    _needs_udp_sock_methods(loop)

    async def main():
        with udp_socket(host) as a, udp_socket(host) as b:
            b_addr = b.getsockname()
            task = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
            await first_step()
            assert not task.done()
            assert await wait(loop.sock_sendto(a, b"dgram", b_addr)) == 5
            data, addr = await wait(task)
            assert data == b"dgram"
            assert addr == a.getsockname()
            # bufsize truncates a datagram; the rest of it is dropped
            await wait(loop.sock_sendto(a, b"0123456789", b_addr))
            await wait(loop.sock_sendto(a, b"next", b_addr))
            assert (await wait(loop.sock_recvfrom(b, 4)))[0] == b"0123"
            assert (await wait(loop.sock_recvfrom(b, 100)))[0] == b"next"
            # a bytes-like payload, an empty datagram
            assert await wait(loop.sock_sendto(a, memoryview(bytearray(b"mv")), b_addr)) == 2
            assert await wait(loop.sock_sendto(a, b"", b_addr)) == 0
            assert (await wait(loop.sock_recvfrom(b, 100)))[0] == b"mv"
            assert (await wait(loop.sock_recvfrom(b, 100)))[0] == b""

    loop.run_until_complete(main())


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def test_udp_recvfrom_into(loop, host):
    _needs_udp_sock_methods(loop)

    async def main():
        with udp_socket(host) as a, udp_socket(host) as b:
            b_addr = b.getsockname()
            buf = bytearray(8)
            task = asyncio.ensure_future(loop.sock_recvfrom_into(b, buf))
            await first_step()
            assert not task.done()
            await wait(loop.sock_sendto(a, b"abc", b_addr))
            n, addr = await wait(task)
            assert (n, addr) == (3, a.getsockname())
            assert bytes(buf[:3]) == b"abc"
            # nbytes limits what is written into the buffer
            buf = bytearray(b"........")
            await wait(loop.sock_sendto(a, b"ABCDEFGH", b_addr))
            n, _ = await wait(loop.sock_recvfrom_into(b, buf, 5))
            assert n == 5
            assert bytes(buf) == b"ABCDE..."
            # nbytes larger than the buffer: the socket module refuses
            await wait(loop.sock_sendto(a, b"z", b_addr))
            with pytest.raises(ValueError):
                await wait(loop.sock_recvfrom_into(b, bytearray(2), 10))

    loop.run_until_complete(main())


def test_udp_bad_addresses_raise_the_socket_modules_errors(loop):
    _needs_udp_sock_methods(loop)

    async def main():
        with udp_socket() as a:
            for data, address in [(b"x", ("::1", 9, 0, 0)),  # not an AF_INET address
                                  (b"x", "not an address"), ("text", a.getsockname())]:
                # CPython's socket module raises TypeError for each, PyPy's ValueError for the first
                with pytest.raises(Exception) as expected:
                    a.sendto(data, address)
                with pytest.raises(expected.type) as got:
                    await wait(loop.sock_sendto(a, data, address))
                assert got.value.args == expected.value.args

    loop.run_until_complete(main())


# ------------------------------------------------------------------- argument checks
def test_blocking_socket_rejected_in_debug_mode(loop, tmp_path):
    async def main():
        a, b = tcp_pair()
        u = udp_socket()
        with a, b, u, listener() as lsock:
            for s in (a, b, u, lsock):
                s.setblocking(True)
            calls = [
                lambda: loop.sock_recv(b, 1),
                lambda: loop.sock_recv_into(b, bytearray(1)),
                lambda: loop.sock_sendall(a, b"x"),
                lambda: loop.sock_connect(a, ("127.0.0.1", 1)),
                lambda: loop.sock_accept(lsock),
                lambda: loop.sock_recvfrom(u, 1),
                lambda: loop.sock_recvfrom_into(u, bytearray(1)),
                lambda: loop.sock_sendto(u, b"x", u.getsockname()),
            ]
            if not hasattr(loop, "sock_sendto"):  # asyncio has the UDP calls from Python 3.11
                del calls[-3:]
            for call in calls:
                with pytest.raises(ValueError, match="non-blocking"):
                    await wait(call())
            # a timeout is not non-blocking either
            b.settimeout(5)
            with pytest.raises(ValueError):
                await wait(loop.sock_recv(b, 1))

    loop.set_debug(True)
    loop.slow_callback_duration = 60  # the debug-mode slow-callback report is not under test
    loop.run_until_complete(main())


def test_blocking_socket_accepted_outside_debug_mode(loop):
    """asyncio checks the blocking flag only in debug mode; a call that need not wait works."""
    async def main():
        a, b = tcp_pair()
        with a, b, listener() as lsock:
            a.setblocking(True)
            b.setblocking(True)
            await wait(loop.sock_sendall(a, b"data"))
            got = b""
            while len(got) < 4:
                got += await wait(loop.sock_recv(b, 10))
            assert got == b"data"
            lsock.setblocking(True)
            with socket.create_connection(lsock.getsockname()):
                conn, _ = await wait(loop.sock_accept(lsock))
                conn.close()

    assert not loop.get_debug()
    loop.run_until_complete(main())


def test_ssl_socket_rejected(loop):
    async def main():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with ctx.wrap_socket(socket.socket(), server_hostname="localhost",
                              do_handshake_on_connect=False) as s:
            s.setblocking(False)
            for call in (lambda: loop.sock_recv(s, 1), lambda: loop.sock_sendall(s, b"x"),
                         lambda: loop.sock_recv_into(s, bytearray(1)), lambda: loop.sock_accept(s),
                         lambda: loop.sock_connect(s, ("127.0.0.1", 1))):
                with pytest.raises(TypeError, match="SSLSocket"):
                    await wait(call())

    loop.run_until_complete(main())


# ------------------------------------------------------------------- cancellation
def test_cancel_pending_sock_recv_then_recv_again(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            task = asyncio.ensure_future(loop.sock_recv(b, 100))
            await first_step()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait(task)
            # the registration went with the cancelled call
            assert loop.remove_reader(b.fileno()) is False
            await loop.sock_sendall(a, b"after")
            assert await wait(loop.sock_recv(b, 100)) == b"after"
            # and once more with recv_into, a wait cancelled by wait_for's timeout
            with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError from Python 3.11
                await asyncio.wait_for(loop.sock_recv_into(b, bytearray(4)), 0.001)
            assert loop.remove_reader(b.fileno()) is False
            await loop.sock_sendall(a, b"more")
            buf = bytearray(4)
            assert await wait(loop.sock_recv_into(b, buf)) == 4
            assert buf == b"more"

    loop.run_until_complete(main())


def test_cancel_pending_sock_accept_then_accept_again(loop):
    async def main():
        with listener() as lsock:
            task = asyncio.ensure_future(loop.sock_accept(lsock))
            await first_step()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait(task)
            assert loop.remove_reader(lsock.fileno()) is False
            with socket.create_connection(lsock.getsockname()) as client:
                conn, peer = await wait(loop.sock_accept(lsock))
                conn.close()
                assert peer == client.getsockname()

    loop.run_until_complete(main())


def test_cancel_pending_sock_sendall(loop):
    async def main():
        a, b = tcp_pair(bufsize=64 * 1024)
        with a, b:
            task = asyncio.ensure_future(loop.sock_sendall(a, b"x" * (8 * 1024 * 1024)))
            await first_step()
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait(task)
            assert loop.remove_writer(a.fileno()) is False
            # the socket is usable from the loop again
            assert await wait(loop.sock_recv(b, 1)) == b"x"

    loop.run_until_complete(main())


def test_cancel_pending_recvfrom_then_recvfrom_again(loop):
    _needs_udp_sock_methods(loop)

    async def main():
        with udp_socket() as a, udp_socket() as b:
            task = asyncio.ensure_future(loop.sock_recvfrom(b, 10))
            await first_step()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait(task)
            assert loop.remove_reader(b.fileno()) is False
            await wait(loop.sock_sendto(a, b"d", b.getsockname()))
            assert await wait(loop.sock_recvfrom(b, 10)) == (b"d", a.getsockname())

    loop.run_until_complete(main())


def test_two_concurrent_sock_recv_on_one_socket(loop):
    """As asyncio: the second call's reader replaces the first's, so the second gets the data
    and the first waits until it is cancelled."""
    async def main():
        a, b = tcp_pair()
        with a, b:
            first = asyncio.ensure_future(loop.sock_recv(b, 100))
            await first_step()
            second = asyncio.ensure_future(loop.sock_recv(b, 100))
            await first_step()
            await loop.sock_sendall(a, b"one")
            assert await wait(second) == b"one"
            # the first did not take the next data either: a fresh call gets it
            await loop.sock_sendall(a, b"two")
            assert await wait(loop.sock_recv(b, 100)) == b"two"
            assert not first.done()
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await wait(first)
            assert loop.remove_reader(b.fileno()) is False
            await loop.sock_sendall(a, b"three")
            assert await wait(loop.sock_recv(b, 100)) == b"three"

    loop.run_until_complete(main())


# ------------------------------------------------------------- add_reader / add_writer
def test_add_reader_callback_with_args_and_remove(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            got = loop.create_future()

            def on_readable(sock, tag):
                data = sock.recv(100)
                if not got.done():
                    got.set_result((tag, data))

            assert loop.add_reader(b.fileno(), on_readable, b, "tag") is None
            a.send(b"hi")
            assert await wait(got) == ("tag", b"hi")
            assert loop.remove_reader(b.fileno()) is True
            assert loop.remove_reader(b.fileno()) is False
            assert loop.remove_writer(b.fileno()) is False

    loop.run_until_complete(main())


def test_add_reader_accepts_file_objects(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            # removed by number: the same registration
            await read_through_add_reader(loop, a, b, b"obj", remove=b.fileno())
            loop.add_writer(b.fileno(), lambda: None)
            assert loop.remove_writer(b) is True  # by object
            assert loop.remove_writer(b) is False

    loop.run_until_complete(main())


def test_add_reader_replaces_previous_reader(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            calls = []
            got = loop.create_future()

            def old():
                calls.append("old")

            def new(arg):
                calls.append(arg)
                b.recv(100)
                loop.remove_reader(b)
                got.set_result(None)

            loop.add_reader(b, old)
            loop.add_reader(b, new, "new")
            a.send(b"x")
            await wait(got)
            assert calls == ["new"]
            assert loop.remove_reader(b) is False

    loop.run_until_complete(main())


def test_add_reader_replaced_while_ready_in_same_turn(loop):
    """Both descriptors become readable in one turn; the first callback replaces the second
    descriptor's reader: the old one must not run (its handle is cancelled)."""
    async def main():
        a1, b1 = tcp_pair()
        a2, b2 = tcp_pair()
        with a1, b1, a2, b2:
            calls = []
            done = loop.create_future()

            def second_old():
                calls.append("second_old")  # leaves the data: the new reader must get it

            def second_new():
                calls.append("second_new")
                b2.recv(10)
                loop.remove_reader(b2)
                done.set_result(None)

            def first():
                calls.append("first")
                b1.recv(10)
                loop.remove_reader(b1)
                loop.add_reader(b2, second_new)

            loop.add_reader(b1, first)
            loop.add_reader(b2, second_old)
            a1.send(b"1")
            a2.send(b"2")
            await wait(done)
            # the order within a turn is the poller's; the replaced reader never runs after
            # the replacement, and at most once before it (in the same turn)
            assert calls in (["first", "second_new"], ["second_old", "first", "second_new"])

    loop.run_until_complete(main())


def test_add_writer_callback_with_args_and_remove(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            got = loop.create_future()

            def on_writable(*args):
                loop.remove_writer(a)
                got.set_result(args)

            assert loop.add_writer(a.fileno(), on_writable, 1, "two") is None
            assert await wait(got) == (1, "two")
            assert loop.remove_writer(a.fileno()) is False
            # replacing a writer: only the latest runs
            calls = []
            got2 = loop.create_future()
            loop.add_writer(a, calls.append, "old")

            def latest():
                calls.append("new")
                loop.remove_writer(a)
                got2.set_result(None)

            loop.add_writer(a, latest)
            await wait(got2)
            assert calls == ["new"]

    loop.run_until_complete(main())


def test_reader_and_writer_on_one_fd_are_independent(loop):
    async def main():
        a, b = tcp_pair()
        with a, b:
            wrote = loop.create_future()
            read = loop.create_future()
            writes = []

            def on_writable():
                writes.append(1)
                if not wrote.done():
                    wrote.set_result(None)

            def on_readable():
                data = b.recv(100)
                if not read.done():
                    read.set_result(data)

            loop.add_writer(b, on_writable)
            loop.add_reader(b, on_readable)
            await wait(wrote)
            assert loop.remove_writer(b) is True
            a.send(b"r")
            assert await wait(read) == b"r"  # the reader survived the writer's removal
            n = len(writes)
            read2 = loop.create_future()
            loop.add_reader(b, lambda: read2.done() or read2.set_result(b.recv(100)))
            a.send(b"s")
            assert await wait(read2) == b"s"
            assert len(writes) == n  # the removed writer never ran again
            assert loop.remove_reader(b) is True
            assert loop.remove_writer(b) is False

    loop.run_until_complete(main())


def test_reader_on_a_transport_socket_raises(loop):
    async def main():
        made = loop.create_future()

        class P(asyncio.Protocol):
            def connection_made(self, transport):
                made.set_result(transport)

        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        transport, _ = await wait(loop.create_connection(P, *server.sockets[0].getsockname()))
        try:
            fd = transport.get_extra_info("socket").fileno()
            for call in (lambda: loop.add_reader(fd, lambda: None),
                         lambda: loop.add_writer(fd, lambda: None),
                         lambda: loop.remove_reader(fd),
                         lambda: loop.remove_writer(fd)):
                with pytest.raises(RuntimeError, match="used by transport"):
                    call()
            # the transport's socket object, as a file object
            with pytest.raises(RuntimeError, match="used by transport"):
                loop.add_reader(transport.get_extra_info("socket"), lambda: None)
            # the sock_* calls refuse it when they would have to wait (nothing to read here)
            alias = socket.socket(fileno=fd)  # borrowed: detached below, never closed
            alias.setblocking(False)  # as the fd is (PyPy's socket(fileno=) does not read O_NONBLOCK)
            try:
                with pytest.raises(RuntimeError, match="used by transport"):
                    await wait(loop.sock_recv(alias, 1))
            finally:
                alias.detach()
        finally:
            transport.close()
            server.close()
            await server.wait_closed()
        await wait(made)

    loop.run_until_complete(main())


def test_bad_file_descriptors(loop):
    async def main():
        for add in (loop.add_reader, loop.add_writer):
            with pytest.raises(ValueError):
                add(-1, lambda: None)
            with pytest.raises(ValueError):
                add(object(), lambda: None)
            with pytest.raises(ValueError):
                add("3", lambda: None)
            closed_sock = socket.socket()
            closed_sock.close()
            with pytest.raises(ValueError):  # fileno() is -1
                add(closed_sock, lambda: None)
            r, w = os.pipe()
            os.close(r)
            os.close(w)
            with pytest.raises(OSError) as info:
                add(r, lambda: None)
            assert info.type is OSError and info.value.errno == 9  # EBADF
        for remove in (loop.remove_reader, loop.remove_writer):
            with pytest.raises(ValueError):
                remove(-1)
            with pytest.raises(ValueError):
                remove(object())
            r, w = os.pipe()
            os.close(r)
            os.close(w)
            assert remove(r) is False
        # the failed registrations left nothing behind: a fresh descriptor works
        a, b = tcp_pair()
        with a, b:
            await read_through_add_reader(loop, a, b, b"ok")

    loop.run_until_complete(main())


def test_reader_removed_when_fd_closed_then_reused(loop):
    """remove_reader, close the descriptor, a new socket gets the same number: watching it works."""
    async def main():
        a, b = tcp_pair()
        with a:
            loop.add_reader(b, lambda: None)
            fd = b.fileno()
            assert loop.remove_reader(b) is True
            b.close()
        a2, b2 = tcp_pair()
        with a2, b2:
            # POSIX hands out the lowest free number: the new pair reuses the old one
            assert fd in (a2.fileno(), b2.fileno())
            await read_through_add_reader(loop, a2, b2, b"re")

    loop.run_until_complete(main())


def test_remove_on_closed_loop(loop):
    a, b = tcp_pair()
    with a, b:
        loop.add_reader(b, lambda: None)
        loop.add_writer(a, lambda: None)
        loop.close()
        assert loop.remove_reader(b) is False
        assert loop.remove_writer(a) is False
        assert loop.remove_reader(b.fileno()) is False
        assert loop.remove_reader(-1) is False
        with pytest.raises(RuntimeError, match="closed"):
            loop.add_reader(b, lambda: None)
        with pytest.raises(RuntimeError, match="closed"):
            loop.add_writer(a, lambda: None)


def test_reader_callback_exception_goes_to_handler(loop, handler_calls):
    async def main():
        a, b = tcp_pair()
        with a, b:
            ran = loop.create_future()

            def boom():
                b.recv(10)
                loop.remove_reader(b)
                ran.set_result(None)
                raise ZeroDivisionError("in reader")

            loop.add_reader(b, boom)
            a.send(b"x")
            await wait(ran)
            await first_step()  # the handler ran in the same turn as the callback

    loop.run_until_complete(main())
    assert len(handler_calls) == 1
    assert isinstance(handler_calls[0]["exception"], ZeroDivisionError)

