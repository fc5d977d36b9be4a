"""TLS: asyncio's SSLProtocol over uvcffi's transports (ssl= on both sides, start_tls,
streams), with a certificate the tests generate (``openssl`` CLI; the ``certs``/``contexts``
fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import ssl

import pytest

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


async def settle():
    """Wait (bounded) until the other tasks of the loop are done, e.g. a server-side handshake
    that fails after the client gave up."""
    me = asyncio.current_task()
    for _ in range(5000):
        if not [t for t in asyncio.all_tasks() if t is not me and not t.done()]:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("tasks did not finish")


async def echo_handler(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_tls_streams_roundtrip_and_extra_info(loop, contexts):
    server_ctx, client_ctx = contexts

    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        assert writer.get_extra_info("peercert")["subject"] == ((("commonName", "localhost"),),)
        assert writer.get_extra_info("cipher") is not None
        assert writer.get_extra_info("peername") == ("127.0.0.1", port)
        writer.write(b"secret hello")
        await writer.drain()
        assert await reader.readexactly(12) == b"secret hello"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_bad_certificate_fails_handshake(loop, certs):
    cert, key = certs
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    untrusting = ssl.create_default_context()  # system CAs: our self-signed cert is unknown

    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=untrusting, server_hostname="localhost")
        await settle()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


@pytest.mark.skipif(not hasattr(asyncio.StreamWriter, "start_tls"),
                    reason="asyncio.StreamWriter.start_tls() is new in Python 3.11")
def test_start_tls_both_sides(loop, contexts):
    server_ctx, client_ctx = contexts

    async def main():
        upgraded = loop.create_future()

        async def handle(reader, writer):
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"OK\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            upgraded.set_result(writer.get_extra_info("ssl_object") is not None)
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        writer.write(b"over tls\n")
        assert await reader.readline() == b"OVER TLS\n"
        assert await asyncio.wait_for(upgraded, 10)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_start_tls_rejects_bad_arguments(loop, contexts):
    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, protocol = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        with pytest.raises(TypeError):
            await loop.start_tls(transport, protocol, "not a context")
        transport.close()
        with pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, server_hostname="x")
        with pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl_handshake_timeout=1)
        with pytest.raises(TypeError):
            await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True)
        await settle()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_tls_10mb_integrity(loop, contexts):
    server_ctx, client_ctx = contexts
    total = 10 * 1024 * 1024

    async def main():
        server = await asyncio.start_server(echo_handler, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname="localhost")
        rng = random.Random(99)
        block = rng.randbytes(1 << 18)
        out_hash = hashlib.sha256()

        async def send():
            sent = 0
            while sent < total:
                n = min(rng.randint(1, 100_000), total - sent)
                start = rng.randrange(0, len(block) - n + 1)
                chunk = block[start:start + n]
                out_hash.update(chunk)
                writer.write(chunk)
                sent += n
                await writer.drain()
            writer.write_eof() if writer.can_write_eof() else None

        async def receive():
            h = hashlib.sha256()
            got = 0
            while got < total:
                data = await reader.read(rng.randint(1, 300_000))
                assert data
                h.update(data)
                got += len(data)
                if rng.random() < 0.05:
                    writer.transport.pause_reading()
                    await asyncio.sleep(0)
                    writer.transport.resume_reading()
            return h.hexdigest()

        sender = asyncio.ensure_future(send())
        digest = await asyncio.wait_for(receive(), 60)
        await sender
        assert digest == out_hash.hexdigest()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
