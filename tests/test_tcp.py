"""The TCP, DNS and server API of the loop: create_connection, create_server and its Server,
connect_accepted_socket, getaddrinfo/getnameinfo, and their faults.

Every test body runs on asyncio's loop (the oracle) and on uvcffi's (``loop`` fixture), with real
sockets on 127.0.0.1 / ::1 only. APIs that asyncio gained after the running Python (all_errors,
keep_alive, close_clients/abort_clients, wait_closed waiting for clients) run on uvcffi's loop
only; the asyncio side is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import os
import resource
import socket
import sys
from asyncio import base_events, constants

import pytest
from _support import HAS_IPV6, needs_ipv6, wait

# features asyncio gained after 3.11: (what, since, present in the running Python's asyncio)
NEWER_ASYNCIO = {
    "all_errors": ("create_connection(all_errors=)", "3.12",
                   "all_errors" in inspect.signature(base_events.BaseEventLoop.create_connection).parameters),
    "keep_alive": ("create_server(keep_alive=)", "3.13",
                   "keep_alive" in inspect.signature(base_events.BaseEventLoop.create_server).parameters),
    "close_clients": ("Server.close_clients()/abort_clients()", "3.13",
                      hasattr(base_events.Server, "close_clients")),
    # gh-79033: before 3.12.1, wait_closed() after close() returned at once
    "wait_closed_clients": ("Server.wait_closed() waiting for connected clients", "3.12.1",
                            sys.version_info >= (3, 12, 1)),
}

# asyncio takes ssl_shutdown_timeout= from 3.11 (TypeError before): those cases run where it does
SSL_SHUTDOWN_TIMEOUT = ("ssl_shutdown_timeout"
                        in inspect.signature(base_events.BaseEventLoop.create_server).parameters)


def skip_on_old_asyncio(loop, feature: str) -> None:
    """Skip the asyncio side of a test of a feature this Python's asyncio lacks."""
    what, since, present = NEWER_ASYNCIO[feature]
    if isinstance(loop, asyncio.BaseEventLoop) and not present:
        pytest.skip(f"asyncio {sys.version_info.major}.{sys.version_info.minor} lacks {what} "
                    f"(new in {since}); the uvcffi side runs")


class Proto(asyncio.Protocol):
    """Records the connection; ``made``/``lost`` futures, ``data`` waited on with ``wait_data``."""

    def __init__(self, echo=False):
        loop = asyncio.get_running_loop()
        self.echo = echo
        self.transport = None
        self.data = bytearray()
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self._more = None

    def connection_made(self, transport):
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data):
        self.data += data
        if self.echo:
            self.transport.write(data)
        if self._more is not None and not self._more.done():
            self._more.set_result(None)

    def connection_lost(self, exc):
        self.lost.set_result(exc)

    async def wait_data(self, n):
        while len(self.data) < n:
            self._more = asyncio.get_running_loop().create_future()
            await wait(self._more)
        return bytes(self.data)


class Accepted:
    """A protocol factory for servers: every protocol it made, and a queue of them as they connect."""

    def __init__(self, echo=False):
        self.echo = echo
        self.protos = []
        self.queue = asyncio.Queue()

    def __call__(self):
        p = Proto(self.echo)
        self.protos.append(p)
        p.made.add_done_callback(lambda _: self.queue.put_nowait(p))
        return p

    async def next(self) -> Proto:
        return await wait(self.queue.get())

    async def close_all(self):
        for p in self.protos:
            if p.transport is not None:
                p.transport.close()
        for p in self.protos:
            if p.transport is not None:
                await wait(p.lost)


async def close_conn(*protos):
    for p in protos:
        p.transport.close()
    for p in protos:
        await wait(p.lost)


async def close_server(server, accepted=None):
    if accepted is not None:
        await accepted.close_all()
    server.close()
    await wait(server.wait_closed())


def port_of(server, family=socket.AF_INET):
    return next(s.getsockname()[1] for s in server.sockets if s.family == family)


def refusing_socket(host="127.0.0.1"):
    """A bound, not listening socket: its port refuses connections while it stays open."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, 0))
    return s


async def roundtrip(cp, accepted, payload=b"ping"):
    """The client ``cp`` is connected to an echo server of ``accepted``: one echo."""
    cp.transport.write(payload)
    assert await cp.wait_data(len(payload)) == payload


# -- create_connection ---------------------------------------------------------------------------

def test_create_connection_host_port(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)
        tr, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port))
        assert isinstance(tr, asyncio.Transport)
        assert cp.transport is tr and cp.made.done()
        sp = await acc.next()
        await roundtrip(cp, acc)
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert tr.get_extra_info("sockname") == sp.transport.get_extra_info("peername")
        assert tr.get_extra_info("socket").family == socket.AF_INET
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


@needs_ipv6
def test_create_connection_ipv6(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "::1", 0)
        port = port_of(server, socket.AF_INET6)
        tr, cp = await wait(loop.create_connection(Proto, "::1", port))
        await roundtrip(cp, acc)
        assert tr.get_extra_info("socket").family == socket.AF_INET6
        assert tr.get_extra_info("peername")[:2] == ("::1", port)
        assert len(tr.get_extra_info("peername")) == 4
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_create_connection_string_port_and_localhost(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)
        tr1, cp1 = await wait(loop.create_connection(Proto, "127.0.0.1", str(port)))
        tr2, cp2 = await wait(loop.create_connection(Proto, "localhost", port, family=socket.AF_INET))
        await roundtrip(cp1, acc)
        await roundtrip(cp2, acc)
        assert tr2.get_extra_info("peername") == ("127.0.0.1", port)
        await close_conn(cp1, cp2)
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_create_connection_sock(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        sock = socket.socket()
        sock.setblocking(False)
        await wait(loop.sock_connect(sock, ("127.0.0.1", port_of(server))))
        tr, cp = await wait(loop.create_connection(Proto, sock=sock))
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        await roundtrip(cp, acc)
        await close_conn(cp)
        assert sock.fileno() == -1  # the transport closed it
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_create_connection_local_addr(loop):
    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        with socket.socket() as probe:  # a free local port
            probe.bind(("127.0.0.1", 0))
            local = probe.getsockname()
        tr, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server), local_addr=local))
        sp = await acc.next()
        assert tr.get_extra_info("sockname") == local
        assert sp.transport.get_extra_info("peername") == local
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


def bind_error_text(addr, err: int) -> str:
    """asyncio's message for a failed bind: the lowered strerror, and from 3.13 the lowered
    str() of the OSError ("[errno 98] address already in use")."""
    reason = str(OSError(err, os.strerror(err))) if sys.version_info >= (3, 13) else os.strerror(err)
    return f"[Errno {err}] error while attempting to bind on address {addr!r}: {reason.lower()}"


def test_create_connection_local_addr_in_use(loop, request):
    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            local = taken.getsockname()
            with pytest.raises(OSError) as ei:
                await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server), local_addr=local))
        assert ei.value.errno == errno.EADDRINUSE
        assert str(ei.value) == bind_error_text(local, errno.EADDRINUSE)
        await close_server(server, acc)

    loop.run_until_complete(main())


@needs_ipv6
def test_create_connection_local_addr_family_mismatch(loop, request):
    # asyncio skips local addresses of another family from 3.10; 3.9 binds them, and the
    # socket module refuses the IPv6 tuple for an AF_INET socket (CPython: TypeError, PyPy: ValueError)
    old = sys.version_info < (3, 10)
    if old and not isinstance(loop, asyncio.BaseEventLoop):
        request.applymarker(pytest.mark.xfail(strict=True, reason="uvcffi follows 3.10+ on 3.9 (net.py)"))
    with socket.socket() as s, pytest.raises(Exception) as refused:
        s.bind(("::1", 0, 0, 0))

    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        with pytest.raises(refused.type if old else OSError) as ei:
            await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server), local_addr=("::1", 0)))
        assert str(ei.value) == (str(refused.value) if old else
                                 f"no matching local address with family={socket.AF_INET!r} found")
        await close_server(server, acc)

    loop.run_until_complete(main())


@needs_ipv6
def test_create_connection_family(loop):
    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)
        tr, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port, family=socket.AF_INET))
        assert tr.get_extra_info("socket").family == socket.AF_INET
        await close_conn(cp)
        # an IPv4 literal asked for as IPv6: the resolver's "address family" error
        with pytest.raises(socket.gaierror) as ei:
            await wait(loop.create_connection(Proto, "127.0.0.1", port, family=socket.AF_INET6))
        assert ei.value.errno == socket.EAI_ADDRFAMILY
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_create_connection_flags_and_proto(loop):
    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)
        # flags go to the resolver: a name is not a numeric host
        with pytest.raises(socket.gaierror) as ei:
            await wait(loop.create_connection(Proto, "localhost", port, flags=socket.AI_NUMERICHOST))
        assert ei.value.errno == socket.EAI_NONAME
        with pytest.raises(socket.gaierror) as direct:
            socket.getaddrinfo("localhost", port, flags=socket.AI_NUMERICHOST)
        assert ei.value.args == direct.value.args  # the C library's message, as asyncio's
        tr, cp = await wait(loop.create_connection(Proto, "localhost", port, family=socket.AF_INET,
                                                   proto=socket.IPPROTO_TCP))
        assert tr.get_extra_info("socket").proto == socket.IPPROTO_TCP
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_create_connection_happy_eyeballs_localhost(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        tr, cp = await wait(loop.create_connection(Proto, "localhost", port_of(server), family=socket.AF_INET,
                                                   happy_eyeballs_delay=0.25))
        await roundtrip(cp, acc)
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


def fake_resolver(loop, monkeypatch, infos, calls=None):
    """Make ``loop.getaddrinfo`` answer ``infos`` (both loops resolve names through it)."""

    async def getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
        if calls is not None:
            calls.append((host, port, family, type, proto, flags))
        return list(infos)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo, raising=False)


def ai(host, port):
    if ":" in host:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


@needs_ipv6
@pytest.mark.parametrize("delay", [None, 0.25])
def test_create_connection_first_address_refuses(loop, monkeypatch, delay):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)
        with refusing_socket("::1") as r6:
            calls = []
            fake_resolver(loop, monkeypatch, [ai("::1", r6.getsockname()[1]), ai("127.0.0.1", port)], calls)
            tr, cp = await wait(loop.create_connection(Proto, "example.test", 80, happy_eyeballs_delay=delay))
        assert calls == [("example.test", 80, 0, socket.SOCK_STREAM, 0, 0)]
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        await roundtrip(cp, acc)
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


@needs_ipv6
@pytest.mark.parametrize("delay", [None, 0.25])
@pytest.mark.parametrize("interleave, order", [(None, "aab"), (1, "aba"), (2, "aab")])
def test_create_connection_interleave_order(loop, monkeypatch, delay, interleave, order):
    # every address refuses; the combined error lists the attempts in the order they were made
    async def main():
        with refusing_socket("::1") as a1, refusing_socket("::1") as a2, refusing_socket() as b1:
            addrs = {"a": [("::1", a1.getsockname()[1]), ("::1", a2.getsockname()[1])],
                     "b": [("127.0.0.1", b1.getsockname()[1])]}
            fake_resolver(loop, monkeypatch, [ai(*addrs["a"][0]), ai(*addrs["a"][1]), ai(*addrs["b"][0])])
            with pytest.raises(OSError) as ei:
                await wait(loop.create_connection(Proto, "example.test", 80, happy_eyeballs_delay=delay,
                                                  interleave=interleave))
        if delay is not None and interleave is None:
            expected_order = "aba"  # happy eyeballs interleaves by default
        else:
            expected_order = order
        seq = iter(addrs["a"]), iter(addrs["b"])
        attempted = [next(seq[0] if c == "a" else seq[1]) for c in expected_order]
        msg = str(ei.value)
        assert type(ei.value) is OSError and msg.startswith("Multiple exceptions: ")
        positions = [msg.index(f"Connect call failed {(h, p, 0, 0) if ':' in h else (h, p)}")
                     for h, p in attempted]
        assert positions == sorted(positions), msg

    loop.run_until_complete(main())


@needs_ipv6
def test_create_connection_all_errors(loop, monkeypatch):
    skip_on_old_asyncio(loop, "all_errors")
    if sys.version_info >= (3, 11):
        group = ExceptionGroup  # noqa: F821
    else:  # pragma: no cover
        group = pytest.importorskip("exceptiongroup", reason="ExceptionGroup is 3.11+").ExceptionGroup

    async def main():
        with refusing_socket("::1") as a, refusing_socket() as b:
            infos = [ai("::1", a.getsockname()[1]), ai("127.0.0.1", b.getsockname()[1])]
            fake_resolver(loop, monkeypatch, infos)
            with pytest.raises(group) as ei:
                await wait(loop.create_connection(Proto, "example.test", 80, all_errors=True))
            excs = ei.value.exceptions
            assert [type(e) for e in excs] == [ConnectionRefusedError, ConnectionRefusedError]
            assert [e.errno for e in excs] == [errno.ECONNREFUSED] * 2
            # one address: still a group with all_errors
            with pytest.raises(group) as ei:
                await wait(loop.create_connection(Proto, "127.0.0.1", b.getsockname()[1], all_errors=True))
            assert [type(e) for e in ei.value.exceptions] == [ConnectionRefusedError]

    loop.run_until_complete(main())


def test_create_connection_refused(loop):
    async def main():
        with refusing_socket() as r:
            port = r.getsockname()[1]
            with pytest.raises(ConnectionRefusedError) as ei:
                await wait(loop.create_connection(Proto, "127.0.0.1", port))
        assert ei.value.errno == errno.ECONNREFUSED
        assert str(ei.value) == f"[Errno {errno.ECONNREFUSED}] Connect call failed ('127.0.0.1', {port})"

    loop.run_until_complete(main())


@needs_ipv6
def test_create_connection_refused_ipv6(loop):
    async def main():
        with refusing_socket("::1") as r:
            with pytest.raises(ConnectionRefusedError):
                await wait(loop.create_connection(Proto, "::1", r.getsockname()[1]))

    loop.run_until_complete(main())


def test_create_connection_bad_arguments(loop):
    async def main():
        with socket.socket() as s, socket.socket(type=socket.SOCK_DGRAM) as d:
            cases = [
                (dict(host="127.0.0.1", port=80, ssl_handshake_timeout=1.0),
                 "ssl_handshake_timeout is only meaningful with ssl"),
                (dict(host="127.0.0.1", port=80, ssl_shutdown_timeout=1.0),
                 "ssl_shutdown_timeout is only meaningful with ssl"),
                (dict(host="127.0.0.1", port=80, server_hostname="example.test"),
                 "server_hostname is only meaningful with ssl"),
                (dict(host="127.0.0.1", port=80, sock=s),
                 "host/port and sock can not be specified at the same time"),
                (dict(port=80, sock=s), "host/port and sock can not be specified at the same time"),
                (dict(), "host and port was not specified and no sock specified"),
                (dict(sock=d), f"A Stream Socket was expected, got {d!r}"),
                (dict(port=80, ssl=True), "You must set server_hostname when using ssl without a host"),
            ]
            cases = [c for c in cases if SSL_SHUTDOWN_TIMEOUT or "ssl_shutdown_timeout" not in c[0]]
            for kwargs, message in cases:
                with pytest.raises(ValueError) as ei:
                    await wait(loop.create_connection(Proto, **kwargs))
                assert str(ei.value) == message, kwargs
            assert s.fileno() >= 0 and d.fileno() >= 0  # refused, not taken over

    loop.run_until_complete(main())


def test_create_connection_bad_port(loop):
    async def main():
        with refusing_socket() as r:
            # a service name the resolver does not know
            with pytest.raises(socket.gaierror) as ei:
                await wait(loop.create_connection(Proto, "127.0.0.1", "no-such-service"))
            assert ei.value.errno == socket.EAI_SERVICE
            # not an int nor a string: the socket module's complaint (CPython's OSError, PyPy's TypeError)
            with pytest.raises(Exception) as expected:
                socket.getaddrinfo("127.0.0.1", [80])
            with pytest.raises(Exception) as ei:
                await wait(loop.create_connection(Proto, "127.0.0.1", [80]))
            assert type(ei.value) is type(expected.value) and ei.value.args == expected.value.args
            # a numeric host is not resolved: the port reaches connect() as given
            with pytest.raises(OverflowError):
                await wait(loop.create_connection(Proto, "127.0.0.1", 70000))
            # a float port is int()-ed (asyncio's rule): refused, like the int
            with pytest.raises(ConnectionRefusedError):
                await wait(loop.create_connection(Proto, "127.0.0.1", float(r.getsockname()[1])))

    loop.run_until_complete(main())


def test_create_connection_protocol_factory_not_callable(loop):
    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        with socket.socket() as sock:
            sock.setblocking(False)
            await wait(loop.sock_connect(sock, ("127.0.0.1", port_of(server))))
            with pytest.raises(TypeError):
                await wait(loop.create_connection(42, sock=sock))
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_create_connection_unresolvable_host(loop):
    async def main():
        with pytest.raises(socket.gaierror) as ei:
            await wait(loop.create_connection(Proto, "nonexistent.invalid", 80))
        assert ei.value.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
                                  socket.EAI_AGAIN)

    loop.run_until_complete(main())


def test_tcp_nodelay_on_both_ends(loop):
    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        tr, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
        sp = await acc.next()
        for t in (tr, sp.transport):
            assert t.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_tcp_nodelay_only_on_ipproto_tcp_sockets(loop):
    # asyncio sets TCP_NODELAY only when sock.proto is IPPROTO_TCP: a socket made with
    # socket.socket() (proto 0) and handed over with sock= keeps Nagle's algorithm

    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        sock = socket.socket()  # proto 0
        sock.setblocking(False)
        await wait(loop.sock_connect(sock, ("127.0.0.1", port_of(server))))
        try:
            tr, cp = await wait(loop.create_connection(Proto, sock=sock))
            await acc.next()
            nodelay = tr.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            await close_conn(cp)
        finally:
            sock.close()
            await close_server(server, acc)
        assert not nodelay

    loop.run_until_complete(main())


def test_create_connection_cancelled_while_connecting(loop, monkeypatch):
    # cancelled while resolving: nothing left open, CancelledError out
    async def main():
        started = loop.create_future()

        async def slow_getaddrinfo(*args, **kwargs):
            started.set_result(None)
            await asyncio.Future()

        monkeypatch.setattr(loop, "getaddrinfo", slow_getaddrinfo, raising=False)
        task = loop.create_task(loop.create_connection(Proto, "example.test", 80))
        await wait(started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait(task)

    loop.run_until_complete(main())


# -- create_server -------------------------------------------------------------------------------

@pytest.mark.parametrize("host", [None, ""])
def test_create_server_all_interfaces(loop, host):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, host, 0)
        families = sorted(s.family for s in server.sockets)
        expected = [socket.AF_INET, socket.AF_INET6] if HAS_IPV6 else [socket.AF_INET]
        assert families == expected
        for s in server.sockets:
            assert s.getsockname()[0] in ("0.0.0.0", "::")
            if s.family == socket.AF_INET6:  # no dual stack: each family has its own socket
                assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
        await roundtrip(cp, acc)
        await close_conn(cp)
        if HAS_IPV6:
            _, cp = await wait(loop.create_connection(Proto, "::1", port_of(server, socket.AF_INET6)))
            await roundtrip(cp, acc)
            await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


@needs_ipv6
def test_create_server_list_of_hosts(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, ["127.0.0.1", "::1"], 0)
        assert sorted(s.getsockname()[0] for s in server.sockets) == ["127.0.0.1", "::1"]
        for host, fam in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
            _, cp = await wait(loop.create_connection(Proto, host, port_of(server, fam)))
            await roundtrip(cp, acc)
            await close_conn(cp)
        await close_server(server, acc)
        # a host named twice (or resolving to the same address) is bound once
        server = await loop.create_server(acc, ["127.0.0.1", "127.0.0.1"], 0)
        assert len(server.sockets) == 1
        await close_server(server)

    loop.run_until_complete(main())


@needs_ipv6
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_create_server_family(loop, family):
    async def main():
        server = await loop.create_server(Accepted(), None, 0, family=family)
        assert [s.family for s in server.sockets] == [family]
        await close_server(server)
        # a literal of the other family: the resolver's "address family" error
        other = "::1" if family == socket.AF_INET else "127.0.0.1"
        with pytest.raises(socket.gaierror) as ei:
            await wait(loop.create_server(Accepted(), other, 0, family=family))
        assert ei.value.errno == socket.EAI_ADDRFAMILY

    loop.run_until_complete(main())


def test_create_server_localhost(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "localhost", 0, family=socket.AF_INET)
        assert [s.getsockname()[0] for s in server.sockets] == ["127.0.0.1"]
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
        await roundtrip(cp, acc)
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


@needs_ipv6
def test_create_server_bind_failure_closes_every_socket(loop):
    async def main():
        with socket.socket(socket.AF_INET6) as taken:
            taken.bind(("::1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    pytest.skip("the IPv4 side of the port is taken by someone else")
            with pytest.raises(OSError) as ei:
                await wait(loop.create_server(Accepted(), ["127.0.0.1", "::1"], port))
            assert ei.value.errno == errno.EADDRINUSE
        # the IPv4 socket the server may have bound first was closed: the port is free
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
            probe.listen()

    loop.run_until_complete(main())


def test_create_server_flags(loop):
    # without AI_PASSIVE, host None means the loopback addresses, not the wildcard
    async def main():
        server = await loop.create_server(Accepted(), None, 0, flags=0)
        names = sorted(s.getsockname()[0] for s in server.sockets)
        assert names == (["127.0.0.1", "::1"] if HAS_IPV6 else ["127.0.0.1"])
        await close_server(server)

    loop.run_until_complete(main())


class RecordingSocket(socket.socket):
    """A socket that records the arguments of every listen() call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.backlogs = []

    def listen(self, *args):
        self.backlogs.append(args)
        super().listen(*args)


def test_create_server_sock(loop):
    async def main():
        sock = RecordingSocket()
        sock.bind(("127.0.0.1", 0))
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, sock=sock, backlog=7)
        assert sock.backlogs == [(7,)]
        assert [s.fileno() for s in server.sockets] == [sock.fileno()]
        assert sock.gettimeout() == 0  # made non-blocking
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", sock.getsockname()[1]))
        await roundtrip(cp, acc)
        await close_conn(cp)
        await close_server(server, acc)
        assert sock.fileno() == -1  # the server closed it

    loop.run_until_complete(main())


def test_create_server_default_backlog(loop):
    async def main():
        sock = RecordingSocket()
        sock.bind(("127.0.0.1", 0))
        server = await loop.create_server(Accepted(), sock=sock)
        assert sock.backlogs == [(100,)]
        await close_server(server)

    loop.run_until_complete(main())


def test_create_server_bad_arguments(loop):
    async def main():
        with socket.socket() as s, socket.socket(type=socket.SOCK_DGRAM) as d:
            cases = [
                (dict(host="127.0.0.1", port=0, sock=s), ValueError,
                 "host/port and sock can not be specified at the same time"),
                (dict(), ValueError, "Neither host/port nor sock were specified"),
                (dict(sock=d), ValueError, f"A Stream Socket was expected, got {d!r}"),
                (dict(host="127.0.0.1", port=0, ssl=True), TypeError,
                 "ssl argument must be an SSLContext or None"),
                (dict(host="127.0.0.1", port=0, ssl_handshake_timeout=1.0), ValueError,
                 "ssl_handshake_timeout is only meaningful with ssl"),
                (dict(host="127.0.0.1", port=0, ssl_shutdown_timeout=1.0), ValueError,
                 "ssl_shutdown_timeout is only meaningful with ssl"),
            ]
            cases = [c for c in cases if SSL_SHUTDOWN_TIMEOUT or "ssl_shutdown_timeout" not in c[0]]
            for kwargs, exc_type, message in cases:
                with pytest.raises(exc_type) as ei:
                    await wait(loop.create_server(Accepted(), **kwargs))
                assert str(ei.value) == message, kwargs
            assert s.fileno() >= 0 and d.fileno() >= 0
            with pytest.raises(socket.gaierror) as ei:
                await wait(loop.create_server(Accepted(), "127.0.0.1", "no-such-service"))
            assert ei.value.errno == socket.EAI_SERVICE

    loop.run_until_complete(main())


def test_create_server_address_in_use(loop, request):
    async def main():
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            addr = taken.getsockname()
            with pytest.raises(OSError) as ei:
                await wait(loop.create_server(Accepted(), *addr))
        assert ei.value.errno == errno.EADDRINUSE
        assert str(ei.value) == bind_error_text(addr, errno.EADDRINUSE)

    loop.run_until_complete(main())


def test_create_server_reuse_address(loop):
    async def main():
        server = await loop.create_server(Accepted(), "127.0.0.1", 0)
        assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        await close_server(server)
        server = await loop.create_server(Accepted(), "127.0.0.1", 0, reuse_address=False)
        assert not server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        await close_server(server)

    loop.run_until_complete(main())


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_create_server_reuse_port(loop):
    async def main():
        s1 = await loop.create_server(Accepted(), "127.0.0.1", 0, reuse_port=True)
        assert s1.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        port = port_of(s1)
        s2 = await loop.create_server(Accepted(), "127.0.0.1", port, reuse_port=True)
        assert port_of(s2) == port
        await close_server(s2)
        plain = await loop.create_server(Accepted(), "127.0.0.1", 0)
        assert not plain.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        with pytest.raises(OSError) as ei:
            await wait(loop.create_server(Accepted(), "127.0.0.1", port))
        assert ei.value.errno == errno.EADDRINUSE
        await close_server(plain)
        await close_server(s1)

    loop.run_until_complete(main())


def test_create_server_keep_alive(loop):
    skip_on_old_asyncio(loop, "keep_alive")

    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0, keep_alive=True)
        assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
        sp = await acc.next()
        assert sp.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        await close_conn(cp)
        await close_server(server, acc)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        assert not server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        await close_server(server)

    loop.run_until_complete(main())


def test_create_server_start_serving_false(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0, start_serving=False)
        port = port_of(server)
        assert not server.is_serving()
        # not listening yet: refused
        with pytest.raises(ConnectionRefusedError):
            await wait(loop.create_connection(Proto, "127.0.0.1", port))
        await server.start_serving()
        assert server.is_serving()
        await server.start_serving()  # no-op the second time
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port))
        await roundtrip(cp, acc)
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_server_many_concurrent_clients(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)

        async def client(i):
            _, cp = await loop.create_connection(Proto, "127.0.0.1", port)
            payload = b"client %d" % i
            await roundtrip(cp, acc, payload)
            await close_conn(cp)

        await wait(asyncio.gather(*(client(i) for i in range(50))))
        assert len(acc.protos) == 50
        await close_server(server, acc)

    loop.run_until_complete(main())


def test_server_object(loop):
    async def main():
        server = await loop.create_server(Accepted(), "127.0.0.1", 0)
        assert isinstance(server, asyncio.AbstractServer)
        assert server.get_loop() is loop
        assert server.is_serving()
        (s,) = server.sockets
        assert isinstance(s, asyncio.trsock.TransportSocket)
        assert s.family == socket.AF_INET and s.type == socket.SOCK_STREAM
        assert s.getsockname()[0] == "127.0.0.1"
        assert repr(server).startswith("<Server sockets=(")
        server.close()
        assert not server.is_serving()
        assert server.sockets == ()
        server.close()  # idempotent
        await wait(server.wait_closed())
        await wait(server.wait_closed())  # again: returns at once
        with pytest.raises(RuntimeError, match="is closed"):
            await server.serve_forever()

    loop.run_until_complete(main())


def test_server_close_stops_listening_keeps_clients(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port))
        await acc.next()
        server.close()
        with pytest.raises(ConnectionRefusedError):
            await wait(loop.create_connection(Proto, "127.0.0.1", port))
        await roundtrip(cp, acc)  # the accepted connection lives on
        await close_conn(cp)
        await acc.close_all()
        await wait(server.wait_closed())

    loop.run_until_complete(main())


def test_server_wait_closed_blocks_until_close(loop):
    async def main():
        server = await loop.create_server(Accepted(), "127.0.0.1", 0)
        waiter = loop.create_task(server.wait_closed())
        for _ in range(5):
            await asyncio.sleep(0)  # let the waiter run: it must still be waiting
        assert not waiter.done()
        server.close()
        await wait(waiter)

    loop.run_until_complete(main())


def test_server_wait_closed_waits_for_clients(loop):
    skip_on_old_asyncio(loop, "wait_closed_clients")

    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
        await acc.next()
        server.close()
        waiter = loop.create_task(server.wait_closed())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiter.done()  # a client is still connected
        await close_conn(cp)
        await acc.close_all()
        await wait(waiter)

    loop.run_until_complete(main())


def test_server_serve_forever_cancelled_closes(loop):
    async def main():
        acc = Accepted(echo=True)
        server = await loop.create_server(acc, "127.0.0.1", 0, start_serving=False)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        with pytest.raises(RuntimeError, match="already being awaited"):
            await server.serve_forever()
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
        await roundtrip(cp, acc)
        await close_conn(cp)
        await acc.close_all()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait(task)
        assert not server.is_serving()
        assert server.sockets == ()
        await wait(server.wait_closed())

    loop.run_until_complete(main())


def test_server_close_ends_serve_forever(loop):
    async def main():
        server = await loop.create_server(Accepted(), "127.0.0.1", 0)
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await wait(task)
        await wait(server.wait_closed())

    loop.run_until_complete(main())


def test_server_async_with(loop):
    async def main():
        acc = Accepted(echo=True)
        async with await loop.create_server(acc, "127.0.0.1", 0) as server:
            assert server.is_serving()
            _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
            await roundtrip(cp, acc)
            await close_conn(cp)
            await acc.close_all()
        assert not server.is_serving()
        assert server.sockets == ()

    loop.run_until_complete(main())


@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_server_close_abort_clients(loop, how):
    skip_on_old_asyncio(loop, "close_clients")

    async def main():
        acc = Accepted()
        server = await loop.create_server(acc, "127.0.0.1", 0)
        port = port_of(server)
        clients = []
        for _ in range(3):
            clients.append((await wait(loop.create_connection(Proto, "127.0.0.1", port)))[1])
            await acc.next()
        for p in acc.protos:
            p.transport.write(b"x" * 10)
        server.close()
        getattr(server, how)()
        for p in acc.protos:
            exc = await wait(p.lost)
            assert exc is None
        for cp in clients:
            await wait(cp.lost)
        if how == "close_clients":  # queued data was flushed before closing
            for cp in clients:
                assert bytes(cp.data) == b"x" * 10
        await wait(server.wait_closed())

    loop.run_until_complete(main())


def test_server_protocol_factory_error(loop, handler_calls):
    # asyncio reports a failed protocol_factory for an incoming connection only in debug mode;
    # the server keeps serving either way
    async def main():
        accepted = Accepted(echo=True)
        fail = [True]

        def factory():
            if fail:
                fail.pop()
                raise ZeroDivisionError("no protocol")
            return accepted()

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = port_of(server)
        _, cp1 = await wait(loop.create_connection(Proto, "127.0.0.1", port))
        _, cp2 = await wait(loop.create_connection(Proto, "127.0.0.1", port))
        await roundtrip(cp2, accepted)
        assert len(accepted.protos) == 1
        assert handler_calls == []
        await close_conn(cp2)
        cp1.transport.abort()
        await wait(cp1.lost)
        await close_server(server, accepted)

    loop.run_until_complete(main())


def watch_exception_handler(loop):
    """A future that resolves once the loop's exception handler (kept in place) is first called."""
    reported = loop.create_future()
    handler = loop.get_exception_handler()

    def watch(lp, context):
        handler(lp, context)
        if not reported.done():
            reported.set_result(None)

    loop.set_exception_handler(watch)
    return reported


def test_server_protocol_factory_error_debug(loop, handler_calls):
    async def main():
        def factory():
            raise ZeroDivisionError("no protocol")

        loop.set_debug(True)
        server = await loop.create_server(factory, "127.0.0.1", 0)
        reported = watch_exception_handler(loop)
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port_of(server)))
        await wait(reported)
        (ctx,) = handler_calls
        assert ctx["message"] == "Error on transport creation for incoming connection"
        assert isinstance(ctx["exception"], ZeroDivisionError)
        cp.transport.abort()
        await wait(cp.lost)
        await close_server(server)
        loop.set_debug(False)

    loop.run_until_complete(main())


def test_server_accept_emfile(loop, handler_calls, monkeypatch):
    # accept() failing with EMFILE is reported to the exception handler and accepting pauses
    # for ACCEPT_RETRY_DELAY; once descriptors are free again the pending connection is accepted
    monkeypatch.setattr(constants, "ACCEPT_RETRY_DELAY", 0.05)

    async def main():
        acc = Accepted(echo=True)
        # backlog=1: one accept() per wake-up, so asyncio reports once per attempt too
        server = await loop.create_server(acc, "127.0.0.1", 0, backlog=1)
        port = port_of(server)
        reported = watch_exception_handler(loop)
        client = socket.socket()
        client.setblocking(False)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        fillers = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(client.fileno() + 64, soft), hard))
            while True:
                try:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError as exc:
                    assert exc.errno == errno.EMFILE
                    break
            assert client.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
            await wait(reported)
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        sp = await acc.next()  # accepted after the pause
        assert server.is_serving()
        assert handler_calls
        for ctx in handler_calls:
            assert ctx["message"] == "socket.accept() out of system resource"
            assert isinstance(ctx["exception"], OSError) and ctx["exception"].errno == errno.EMFILE
            assert isinstance(ctx["socket"], asyncio.trsock.TransportSocket)
            assert ctx["socket"].getsockname() == ("127.0.0.1", port)
        sp.transport.write(b"after")
        data = b""
        while len(data) < 5:
            data += await wait(loop.sock_recv(client, 5))
        assert data == b"after"
        client.close()
        # and new connections are accepted as usual
        _, cp = await wait(loop.create_connection(Proto, "127.0.0.1", port))
        await roundtrip(cp, acc)
        await close_conn(cp)
        await close_server(server, acc)

    loop.run_until_complete(main())


# -- connect_accepted_socket ---------------------------------------------------------------------

def test_connect_accepted_socket(loop):
    async def main():
        with socket.socket() as lsock:
            lsock.bind(("127.0.0.1", 0))
            lsock.listen()
            lsock.setblocking(False)
            _, cp = await wait(loop.create_connection(Proto, *lsock.getsockname()))
            conn, peer = await wait(loop.sock_accept(lsock))
        tr, sp = await wait(loop.connect_accepted_socket(lambda: Proto(echo=True), conn))
        assert isinstance(tr, asyncio.Transport) and sp.transport is tr
        assert tr.get_extra_info("peername") == peer
        cp.transport.write(b"hello")
        assert await cp.wait_data(5) == b"hello"
        await close_conn(cp)
        await wait(sp.lost)
        assert conn.fileno() == -1

    loop.run_until_complete(main())


def test_connect_accepted_socket_bad_arguments(loop):
    async def main():
        with socket.socket(type=socket.SOCK_DGRAM) as d, socket.socket() as s:
            with pytest.raises(ValueError, match="A Stream Socket was expected"):
                await wait(loop.connect_accepted_socket(Proto, d))
            with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
                await wait(loop.connect_accepted_socket(Proto, s, ssl_handshake_timeout=1.0))
            if SSL_SHUTDOWN_TIMEOUT:
                with pytest.raises(ValueError, match="ssl_shutdown_timeout is only meaningful with ssl"):
                    await wait(loop.connect_accepted_socket(Proto, s, ssl_shutdown_timeout=1.0))
            assert s.fileno() >= 0

    loop.run_until_complete(main())


# -- getaddrinfo / getnameinfo -------------------------------------------------------------------

GAI_CASES = [
    (("127.0.0.1", 80), {}),
    (("127.0.0.1", "80"), {}),
    (("127.0.0.1", b"80"), {}),
    (("127.0.0.1", None), {}),
    (("127.0.0.1", ""), {}),
    (("127.0.0.1", 80), dict(type=socket.SOCK_STREAM)),
    (("127.0.0.1", 80), dict(type=socket.SOCK_DGRAM)),
    (("127.0.0.1", 80), dict(proto=socket.IPPROTO_TCP)),
    (("127.0.0.1", 80), dict(proto=socket.IPPROTO_UDP)),
    (("127.0.0.1", 80), dict(family=socket.AF_INET)),
    (("127.0.0.1", 80), dict(flags=socket.AI_CANONNAME)),
    (("127.0.0.1", 80), dict(flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)),
    (("127.0.0.1", 80), dict(flags=socket.AI_PASSIVE, type=socket.SOCK_STREAM)),
    (("127.0.0.1", 70000), dict(type=socket.SOCK_STREAM)),
    ((b"127.0.0.1", 80), dict(type=socket.SOCK_STREAM)),
    (("127.0.0.1", "http"), dict(type=socket.SOCK_STREAM)),
    (("127.1", 80), dict(type=socket.SOCK_STREAM)),
    (("::1", 80), {}),
    (("::1", 80), dict(type=socket.SOCK_STREAM, family=socket.AF_INET6)),
    (("0:0::1", 80), dict(type=socket.SOCK_STREAM)),
    (("::ffff:127.0.0.1", 80), dict(type=socket.SOCK_STREAM)),
    (("127.0.0.1", 80), dict(type=socket.SOCK_STREAM, family=socket.AF_INET6, flags=socket.AI_V4MAPPED)),
    (("fe80::1%lo", 80), dict(type=socket.SOCK_STREAM)),
    (("fe80::1%1", 80), dict(type=socket.SOCK_STREAM)),
    (("localhost", 80), dict(type=socket.SOCK_STREAM)),
    (("localhost", 80), dict(type=socket.SOCK_STREAM, family=socket.AF_INET, flags=socket.AI_CANONNAME)),
    (("localhost", "http"), dict(type=socket.SOCK_STREAM, family=socket.AF_INET)),
    ((None, 80), dict(type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)),
    ((None, 80), dict(type=socket.SOCK_STREAM)),
]


@pytest.mark.parametrize("args, kwargs", GAI_CASES, ids=[f"{a!r}-{k!r}" for a, k in GAI_CASES])
def test_getaddrinfo_matches_socket_module(loop, args, kwargs):
    if not HAS_IPV6 and ":" in str(args[0]) or "%lo" in str(args[0]) and not _has_lo():
        pytest.skip("no IPv6 loopback")

    async def main():
        expected = socket.getaddrinfo(*args, **kwargs)
        got = await wait(loop.getaddrinfo(*args, **kwargs))
        assert got == expected
        assert [type(x[0]) for x in got] == [type(x[0]) for x in expected]  # AddressFamily enums

    loop.run_until_complete(main())


def _has_lo() -> bool:
    try:
        socket.if_nametoindex("lo")
        return True
    except OSError:
        return False
    except AttributeError:  # PyPy's socket module has no if_nametoindex
        return os.path.exists("/sys/class/net/lo")


GAI_ERRORS = [
    # (args, kwargs): the error socket.getaddrinfo raises, checked by type and errno
    (("localhost", 80), dict(flags=socket.AI_NUMERICHOST)),
    (("127.0.0.1", "no-such-service"), dict(type=socket.SOCK_STREAM)),
    (("127.0.0.1", "http"), dict(flags=socket.AI_NUMERICSERV)),
    (("127.0.0.1", 80), dict(family=socket.AF_INET6)),
    (("::1", 80), dict(family=socket.AF_INET)),
    (("127.0.0.1", 80), dict(type=socket.SOCK_STREAM, proto=socket.IPPROTO_UDP)),
    (("127.0.0.1", 80), dict(type=socket.SOCK_RAW)),
    (("127.0.0.1", 80), dict(family=999)),
    (("127.0.0.1", 80), dict(type=999)),
    (("127.0.0.1", 80), dict(flags=-1)),
    (("", 80), dict(type=socket.SOCK_STREAM)),
    (("127.0.0.1", 1.5), {}),
    (("localhost", [80]), {}),
    ((123, 80), {}),
    (("127.0.0.1", 80), dict(family="x")),
    (("127.0.0.1", 80), dict(flags=None)),
    ((None, None), {}),
    (("localhost", 1 << 70), {}),
    ((bytearray(b"localhost"), 80), {}),
    (("localhost", bytearray(b"80")), {}),
]


@pytest.mark.parametrize("args, kwargs", GAI_ERRORS, ids=[f"{a!r}-{k!r}" for a, k in GAI_ERRORS])
def test_getaddrinfo_errors_match_socket_module(loop, args, kwargs):
    async def main():
        with pytest.raises(Exception) as expected:
            socket.getaddrinfo(*args, **kwargs)
        with pytest.raises(Exception) as got:
            await wait(loop.getaddrinfo(*args, **kwargs))
        assert type(got.value) is type(expected.value)
        if isinstance(expected.value, socket.gaierror):
            assert got.value.errno == expected.value.errno
        else:
            assert got.value.args == expected.value.args

    loop.run_until_complete(main())


def test_getaddrinfo_unresolvable(loop):
    async def main():
        with pytest.raises(socket.gaierror) as ei:
            await wait(loop.getaddrinfo("nonexistent.invalid", 80, type=socket.SOCK_STREAM))
        assert ei.value.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
                                  socket.EAI_AGAIN)

    loop.run_until_complete(main())


def test_getaddrinfo_concurrent_and_cancelled(loop):
    async def main():
        results = await wait(asyncio.gather(*(loop.getaddrinfo("localhost", p, type=socket.SOCK_STREAM)
                                              for p in range(1000, 1020))))
        assert [r[0][4][1] for r in results] == list(range(1000, 1020))
        task = loop.create_task(loop.getaddrinfo("localhost", 80))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait(task)

    loop.run_until_complete(main())


GNI_CASES = [
    (("127.0.0.1", 80), 0),
    (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", 53), socket.NI_DGRAM),
    (("127.0.0.1", 80), socket.NI_NAMEREQD),
    (("127.0.0.1", 70000), 0),
    (("::1", 80), socket.NI_NUMERICHOST),
    (("::1", 80, 0, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("fe80::1", 80, 0, 1), socket.NI_NUMERICHOST),
    (("fe80::1%lo", 80), socket.NI_NUMERICHOST),
]


@pytest.mark.parametrize("sockaddr, flags", GNI_CASES, ids=[f"{a!r}-{f}" for a, f in GNI_CASES])
def test_getnameinfo_matches_socket_module(loop, sockaddr, flags):
    if not HAS_IPV6 and ":" in sockaddr[0] or "%lo" in sockaddr[0] and not _has_lo():
        pytest.skip("no IPv6 loopback")

    async def main():
        try:
            expected = socket.getnameinfo(sockaddr, flags)
        except OverflowError as exc:  # PyPy refuses a port past 65535; CPython wraps it
            with pytest.raises(OverflowError) as ei:
                await wait(loop.getnameinfo(sockaddr, flags))
            assert ei.value.args == exc.args
            return
        assert await wait(loop.getnameinfo(sockaddr, flags)) == expected

    loop.run_until_complete(main())


GNI_ERRORS = [
    ("127.0.0.1", 0),
    (("127.0.0.1",), 0),
    (("127.0.0.1", "80"), 0),
    ((80, 80), 0),
    (("127.0.0.1", 80, 0, 0), 0),
    (("::1", 80, 1 << 20, 0), 0),
    (("localhost", 80), 0),
    (("nonexistent.invalid", 80), 0),  # not looked up: getnameinfo takes numeric hosts only
    (("127.0.0.1", 80), "x"),
    (("127.0.0.1", 1 << 40), 0),
    (("127.0.0.1", -(1 << 40)), 0),
]


@pytest.mark.parametrize("sockaddr, flags", GNI_ERRORS, ids=[f"{a!r}-{f!r}" for a, f in GNI_ERRORS])
def test_getnameinfo_errors_match_socket_module(loop, sockaddr, flags):
    async def main():
        with pytest.raises(Exception) as expected:
            socket.getnameinfo(sockaddr, flags)
        with pytest.raises(Exception) as got:
            await wait(loop.getnameinfo(sockaddr, flags))
        assert type(got.value) is type(expected.value)
        assert got.value.args == expected.value.args

    loop.run_until_complete(main())


# -- a closed loop -------------------------------------------------------------------------------

def test_closed_loop(loop):
    loop.close()
    # each coroutine fails at its first step that needs the loop, before any await
    for coro in (loop.create_connection(Proto, "localhost", 80),
                 loop.create_server(Proto, "localhost", 0),
                 loop.getaddrinfo("localhost", 80),
                 loop.getaddrinfo("127.0.0.1", 80)):
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            coro.send(None)
