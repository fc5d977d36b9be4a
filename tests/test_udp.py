"""create_datagram_endpoint and the datagram transport, on both loops."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys

import pytest
from _support import wait


class Recorder(asyncio.DatagramProtocol):
    def __init__(self, echo=False):
        self.echo = echo
        self.transport = None
        self.events = []
        self.datagrams = asyncio.Queue()
        self.errors = asyncio.Queue()
        self.lost = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.lost = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        if self.echo:
            self.transport.sendto(data, addr)
        self.datagrams.put_nowait((data, addr))

    def error_received(self, exc):
        self.errors.put_nowait(exc)

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


async def close(*transports):
    for tr in transports:
        tr.close()
    for tr in transports:
        proto = tr.get_protocol()
        if proto is not None and getattr(proto, "lost", None) is not None:
            await wait(proto.lost)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_echo_loopback(loop, host):
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")

    async def main():
        st, sp = await loop.create_datagram_endpoint(lambda: Recorder(echo=True), local_addr=(host, 0))
        addr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(Recorder, remote_addr=addr[:2])
        if not isinstance(loop, asyncio.BaseEventLoop):  # asyncio 3.11's own is not one
            assert isinstance(st, asyncio.DatagramTransport) and isinstance(ct, asyncio.DatagramTransport)
        assert ct.get_extra_info("peername")[:2] == addr[:2]
        assert st.get_extra_info("peername") is None
        assert ct.get_extra_info("socket").family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
        assert st.get_write_buffer_size() == 0
        for i in range(200):
            ct.sendto(b"ping %d" % i)
            data, frm = await wait(cp.datagrams.get())
            assert data == b"ping %d" % i
            assert frm[:2] == addr[:2]
        assert cp.events == ["made"] and not ct.is_closing()
        await close(st, ct)
        assert ct.is_closing()
        assert cp.events == ["made", ("lost", None)]
        assert ct.get_extra_info("socket").fileno() == -1

    loop.run_until_complete(main())


def test_unconnected_sendto_and_address_rules(loop):
    async def main():
        st, sp = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        addr = st.get_extra_info("sockname")
        ut, up = await loop.create_datagram_endpoint(Recorder, family=socket.AF_INET)
        ut.sendto(b"hello", addr)
        assert (await wait(sp.datagrams.get()))[0] == b"hello"
        ut.sendto(b"")  # empty: a no-op, as asyncio
        ut.sendto(bytearray(b"ba"), addr)
        ut.sendto(memoryview(b"mv"), addr)
        assert [(await wait(sp.datagrams.get()))[0] for _ in range(2)] == [b"ba", b"mv"]
        with pytest.raises(TypeError):
            ut.sendto("text", addr)

        ct, cp = await loop.create_datagram_endpoint(Recorder, remote_addr=addr)
        with pytest.raises(ValueError):
            ct.sendto(b"x", ("127.0.0.1", 1))
        ct.sendto(b"explicit", addr)  # the connected address itself is allowed
        assert (await wait(sp.datagrams.get()))[0] == b"explicit"
        await close(st, ut, ct)

    loop.run_until_complete(main())


def test_hostname_is_resolved(loop):
    async def main():
        st, sp = await loop.create_datagram_endpoint(Recorder, local_addr=("localhost", 0),
                                                     family=socket.AF_INET)
        assert st.get_extra_info("sockname")[0] == "127.0.0.1"
        await close(st)

    loop.run_until_complete(main())


def test_icmp_error_on_connected_socket_goes_to_error_received(loop):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()
    probe.close()

    async def main():
        ct, cp = await loop.create_datagram_endpoint(Recorder, remote_addr=closed_port)
        ct.sendto(b"anyone?")
        exc = await wait(cp.errors.get())
        assert isinstance(exc, ConnectionRefusedError)
        assert not ct.is_closing()  # an ICMP error is not fatal
        # the transport keeps working afterwards
        st, sp = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        ut, _ = await loop.create_datagram_endpoint(Recorder, family=socket.AF_INET)
        ut.sendto(b"still alive", st.get_extra_info("sockname"))
        assert (await wait(sp.datagrams.get()))[0] == b"still alive"
        await close(ct, st, ut)
        assert cp.events == ["made", ("lost", None)]

    loop.run_until_complete(main())


def test_oversized_datagram_reported_as_asyncio(loop):
    async def main():
        st, sp = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        ut, up = await loop.create_datagram_endpoint(Recorder, family=socket.AF_INET)
        ut.sendto(b"x" * 70000, st.get_extra_info("sockname"))  # > 65507: EMSGSIZE
        exc = await wait(up.errors.get())
        assert isinstance(exc, OSError) and exc.errno == errno.EMSGSIZE
        assert not ut.is_closing() and ut.get_write_buffer_size() == 0
        ut.sendto(b"x" * 65507, st.get_extra_info("sockname"))  # the largest IPv4 datagram
        data, _ = await wait(sp.datagrams.get())
        assert len(data) == 65507
        await close(st, ut)

    loop.run_until_complete(main())


def test_unix_datagram_echo(loop, tmp_path):
    async def main():
        spath, cpath = str(tmp_path / "s.sock"), str(tmp_path / "c.sock")
        st, sp = await loop.create_datagram_endpoint(lambda: Recorder(echo=True), local_addr=spath,
                                                     family=socket.AF_UNIX)
        ct, cp = await loop.create_datagram_endpoint(Recorder, local_addr=cpath, remote_addr=spath,
                                                     family=socket.AF_UNIX)
        assert st.get_extra_info("sockname") == spath
        assert ct.get_extra_info("peername") == spath
        for i in range(50):
            ct.sendto(b"u%d" % i)
            data, frm = await wait(cp.datagrams.get())
            assert data == b"u%d" % i and frm == spath
        await close(st, ct)
        # a stale socket file at local_addr is replaced, as asyncio does
        st2, _ = await loop.create_datagram_endpoint(Recorder, local_addr=spath, family=socket.AF_UNIX)
        await close(st2)
        with pytest.raises(TypeError):
            await loop.create_datagram_endpoint(Recorder, local_addr=("x", 1), family=socket.AF_UNIX)

    loop.run_until_complete(main())


def _unix_receiver(tmp_path):
    b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "r.sock")
    b.bind(path)
    b.setblocking(False)
    return b, path


def test_write_buffer_flow_control_and_close_flushes(loop, tmp_path):
    # A unix datagram socket blocks the sender once the receiver's queue is full: the
    # transport queues, pauses the protocol, flushes on POLLOUT and resumes it.
    b, path = _unix_receiver(tmp_path)

    class Flow(Recorder):
        def __init__(self):
            super().__init__()
            self.paused = 0
            self.resumed = 0

        def pause_writing(self):
            self.paused += 1

        def resume_writing(self):
            self.resumed += 1

    async def main():
        tr, pr = await loop.create_datagram_endpoint(Flow, remote_addr=path, family=socket.AF_UNIX)
        tr.set_write_buffer_limits(high=4096, low=0)
        sent = 0
        while tr.get_write_buffer_size() == 0 and sent < 100000:
            tr.sendto(b"d" * 1024)
            sent += 1
        assert tr.get_write_buffer_size() == 1024
        for _ in range(8):
            tr.sendto(b"d" * 1024)
            sent += 1
        assert tr.get_write_buffer_size() == 9 * 1024
        assert pr.paused == 1
        tr.close()  # must flush what is queued before connection_lost
        assert tr.is_closing()
        received = 0
        while received < sent:
            try:
                assert b.recv(2048) == b"d" * 1024
                received += 1
            except BlockingIOError:
                await asyncio.sleep(0)  # let the loop flush on POLLOUT
        await wait(pr.lost)
        assert pr.resumed == 1 and tr.get_write_buffer_size() == 0
        assert pr.events == ["made", ("lost", None)]
        assert tr.get_extra_info("socket").fileno() == -1  # the transport owned the socket

    try:
        loop.run_until_complete(main())
    finally:
        b.close()


def test_abort_drops_queue(loop, tmp_path):
    b, path = _unix_receiver(tmp_path)

    async def main():
        tr, pr = await loop.create_datagram_endpoint(Recorder, remote_addr=path, family=socket.AF_UNIX)
        n = 0
        while tr.get_write_buffer_size() == 0 and n < 100000:
            tr.sendto(b"d" * 1024)
            n += 1
        tr.abort()
        if not isinstance(loop, asyncio.BaseEventLoop):  # asyncio 3.11 forgets to reset its count
            assert tr.get_write_buffer_size() == 0
        assert await wait(pr.lost) is None
        tr.abort()
        tr.close()  # idempotent after abort

    try:
        loop.run_until_complete(main())
    finally:
        b.close()


def test_sock_argument_rules(loop):
    async def main():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(Recorder, sock=s)
        s.close()
        d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        d.bind(("127.0.0.1", 0))
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(Recorder, sock=d, local_addr=("127.0.0.1", 0))
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(Recorder, sock=d, allow_broadcast=True)
        tr, pr = await loop.create_datagram_endpoint(Recorder, sock=d)
        assert tr.get_extra_info("sockname") == d.getsockname()
        await close(tr)
        assert d.fileno() == -1

    loop.run_until_complete(main())


def test_bad_arguments(loop):
    async def main():
        with pytest.raises(ValueError):
            await loop.create_datagram_endpoint(Recorder)  # no address, no family
        with pytest.raises(TypeError):
            await loop.create_datagram_endpoint(Recorder, local_addr="127.0.0.1")
        with pytest.raises(TypeError):
            await loop.create_datagram_endpoint(Recorder, remote_addr=("127.0.0.1", 1, 2))
        with pytest.raises(OSError):  # nothing listens there, but binding a foreign address fails
            await loop.create_datagram_endpoint(Recorder, local_addr=("192.0.2.1", 0))
        if sys.version_info >= (3, 11):
            with pytest.raises(TypeError):
                await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0),
                                                    reuse_address=True)

    loop.run_until_complete(main())


def test_reuse_port_and_broadcast(loop):
    async def main():
        t1, _ = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0), reuse_port=True)
        port = t1.get_extra_info("sockname")[1]
        t2, _ = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", port), reuse_port=True)
        assert t2.get_extra_info("sockname")[1] == port
        t3, _ = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0),
                                                    allow_broadcast=True)
        assert t3.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 1
        await close(t1, t2, t3)

    loop.run_until_complete(main())


def test_protocol_error_in_callback_goes_to_handler(loop, handler_calls):
    class Boom(Recorder):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            raise ZeroDivisionError

    async def main():
        st, sp = await loop.create_datagram_endpoint(Boom, local_addr=("127.0.0.1", 0))
        ut, _ = await loop.create_datagram_endpoint(Recorder, family=socket.AF_INET)
        ut.sendto(b"1", st.get_extra_info("sockname"))
        await wait(sp.datagrams.get())
        await asyncio.sleep(0)
        await close(st, ut)

    loop.run_until_complete(main())
    assert len(handler_calls) == 1
    assert isinstance(handler_calls[0]["exception"], ZeroDivisionError)


def test_many_endpoints_leave_nothing(loop):
    async def main():
        for _ in range(100):
            tr, pr = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
            await close(tr)

    loop.run_until_complete(main())
