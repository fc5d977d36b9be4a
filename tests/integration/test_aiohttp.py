"""aiohttp's server and client on both loops: static files, chunked bodies, websockets, keep-alive,
connection pooling, ``web.run_app`` on a unix socket, TLS.

``web.static`` answers through ``FileResponse``, which sends the file with ``loop.sendfile``;
``run_app`` installs SIGINT/SIGTERM handlers with ``loop.add_signal_handler`` and leaves on the
``GracefulExit`` they raise, so a SIGTERM the app sends itself ends ``run_app`` cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from ._helpers import payload, run  # noqa: E402

BIG = payload(2 * 1024 * 1024 + 5)
PEERS = web.AppKey("peers", list)
CLIENT = web.AppKey("client", asyncio.Task)


def make_app() -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    peers: list = []
    app[PEERS] = peers

    async def hello(request):
        peer = request.transport.get_extra_info("peername")
        peers.append(peer[1] if isinstance(peer, tuple) else peer)
        return web.json_response({"hello": "world"})

    async def upload(request):
        h = hashlib.sha256()
        n = 0
        async for chunk in request.content.iter_chunked(65536):
            h.update(chunk)
            n += len(chunk)
        return web.json_response({"size": n, "sha256": h.hexdigest(), "chunked": request.headers.get(
            "Transfer-Encoding") == "chunked"})

    async def download(request):
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(BIG), 100_000):
            await resp.write(BIG[i:i + 100_000])
        await resp.write_eof()
        return resp

    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "close":
                    await sock.close(code=4001, message=b"bye")
                else:
                    await sock.send_str(msg.data[::-1])
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await sock.send_bytes(hashlib.sha256(msg.data).digest())
        return sock

    app.router.add_get("/", hello)
    app.router.add_post("/upload", upload)
    app.router.add_get("/download", download)
    app.router.add_get("/ws", ws)
    return app


@contextlib.asynccontextmanager
async def serving(app, ssl_context=None, **runner_kw):
    runner = web.AppRunner(app, **runner_kw)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        await runner.cleanup()


def test_static_file_through_sendfile(loop, tmp_path):
    (tmp_path / "blob.bin").write_bytes(BIG)

    async def main():
        app = make_app()
        app.router.add_static("/static", tmp_path)
        async with serving(app) as port, aiohttp.ClientSession() as s:
            url = f"http://127.0.0.1:{port}/static/blob.bin"
            async with s.get(url) as r:
                whole = (r.status, await r.read() == BIG)
            async with s.get(url, headers={"Range": "bytes=1000-99999"}) as r:
                part = (r.status, await r.read() == BIG[1000:100000])
            async with s.get(f"http://127.0.0.1:{port}/static/missing") as r:
                missing = r.status
        return whole, part, missing

    assert run(loop, main()) == ((200, True), (206, True), 404)


def test_chunked_upload_and_download(loop):
    async def main():
        async def body():
            for i in range(0, len(BIG), 50_000):
                yield BIG[i:i + 50_000]

        async with serving(make_app()) as port, aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{port}/upload", data=body()) as r:
                up = await r.json()
            async with s.get(f"http://127.0.0.1:{port}/download") as r:
                down = (r.headers.get("Transfer-Encoding"), await r.read() == BIG)
        return up, down

    up, down = run(loop, main())
    assert up == {"size": len(BIG), "sha256": hashlib.sha256(BIG).hexdigest(), "chunked": True}
    assert down == ("chunked", True)


def test_websocket_messages_and_close_code(loop):
    async def main():
        async with serving(make_app()) as port, aiohttp.ClientSession() as s:
            async with s.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                await ws.send_str("abc")
                text = await ws.receive_str()
                await ws.send_bytes(BIG)
                digest = await ws.receive_bytes()
                await ws.send_str("close")
                msg = await ws.receive()
                return text, digest, msg.type, ws.close_code

    text, digest, kind, code = run(loop, main())
    assert (text, digest, kind, code) == ("cba", hashlib.sha256(BIG).digest(), aiohttp.WSMsgType.CLOSE, 4001)


def test_keepalive_reuse_and_expiry(loop):
    async def main():
        app = make_app()
        async with serving(app, keepalive_timeout=0.2) as port, aiohttp.ClientSession() as s:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(3):
                async with s.get(url) as r:
                    await r.read()
            await asyncio.sleep(0.6)  # the timeout under test: the server closes the idle connection
            async with s.get(url) as r:
                status = r.status
        peers = app[PEERS]
        return len(set(peers[:3])), peers[3] != peers[0], status

    assert run(loop, main()) == (1, True, 200)


def test_client_pool_limit_against_own_server(loop):
    async def main():
        app = make_app()
        async with serving(app) as port:
            conn = aiohttp.TCPConnector(limit=3)
            async with aiohttp.ClientSession(connector=conn) as s:
                async def one():
                    async with s.get(f"http://127.0.0.1:{port}/") as r:
                        return await r.json()
                bodies = await asyncio.gather(*(one() for _ in range(50)))
        return bodies, len(set(app[PEERS]))

    bodies, connections = run(loop, main())
    assert bodies == [{"hello": "world"}] * 50
    assert 1 <= connections <= 3


def test_tls_server_and_client(loop, contexts):
    server_ctx, client_ctx = contexts

    async def main():
        async with serving(make_app(), ssl_context=server_ctx) as port, aiohttp.ClientSession() as s:
            async with s.get(f"https://localhost:{port}/", ssl=client_ctx) as r:
                hello = await r.json()
            async with s.get(f"https://localhost:{port}/download", ssl=client_ctx) as r:
                big = await r.read() == BIG
            failed = None
            try:  # the default context does not trust the test certificate
                async with s.get(f"https://localhost:{port}/") as r:
                    pass
            except aiohttp.ClientConnectorCertificateError as exc:
                failed = type(exc.certificate_error).__name__
        return hello, big, failed

    assert run(loop, main()) == ({"hello": "world"}, True, "SSLCertVerificationError")


def test_run_app_on_unix_socket_until_sigterm(loop, tmp_path):
    path = str(tmp_path / "app.sock")
    seen = {}

    async def client(app):
        conn = aiohttp.UnixConnector(path=path)
        async with aiohttp.ClientSession(connector=conn) as s:
            async with s.get("http://localhost/") as r:
                seen["body"] = await r.json()
        os.kill(os.getpid(), signal.SIGTERM)  # run_app's handler raises GracefulExit

    async def on_startup(app):
        app[CLIENT] = asyncio.get_running_loop().create_task(client(app))

    async def on_cleanup(app):
        await app[CLIENT]
        seen["cleanup"] = True

    app = make_app()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    web.run_app(app, path=path, loop=loop, print=None, handle_signals=True, shutdown_timeout=5)
    assert seen == {"body": {"hello": "world"}, "cleanup": True}
    assert loop.is_closed()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_slow_reader_gets_every_byte(loop):
    """A 8 MiB download read 4 KiB at a time: the server's writes pause and resume (flow control)."""
    blob = payload(8 * 1024 * 1024)

    async def main():
        app = web.Application()

        async def big(request):
            resp = web.StreamResponse()
            await resp.prepare(request)
            for i in range(0, len(blob), 1 << 20):
                await resp.write(blob[i:i + (1 << 20)])  # drains: waits while the client lags
            await resp.write_eof()
            return resp

        app.router.add_get("/big", big)
        async with serving(app) as port, aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/big") as r:
                got = bytearray()
                while True:
                    part = await r.content.read(4096)
                    if not part:
                        break
                    got += part
                    if len(got) % (1 << 20) < 4096:
                        await asyncio.sleep(0.01)  # lag behind now and then
        return hashlib.sha256(got).hexdigest()

    assert run(loop, main()) == hashlib.sha256(blob).hexdigest()


def test_tls_upload_and_websocket(loop, contexts):
    server_ctx, client_ctx = contexts

    async def main():
        async def body():
            for i in range(0, len(BIG), 70_000):
                yield BIG[i:i + 70_000]

        async with serving(make_app(), ssl_context=server_ctx) as port, aiohttp.ClientSession() as s:
            async with s.post(f"https://localhost:{port}/upload", data=body(), ssl=client_ctx) as r:
                up = await r.json()
            async with s.ws_connect(f"wss://localhost:{port}/ws", ssl=client_ctx) as ws:
                await ws.send_bytes(BIG)
                digest = await ws.receive_bytes()
        return up["sha256"], digest

    assert run(loop, main()) == (hashlib.sha256(BIG).hexdigest(), hashlib.sha256(BIG).digest())


def test_client_disconnect_mid_stream_leaves_server_healthy(loop):
    async def main():
        app = web.Application()
        events = []
        started = asyncio.Event()

        async def endless(request):
            resp = web.StreamResponse()
            await resp.prepare(request)
            try:
                while True:
                    await resp.write(b"x" * 65536)
                    started.set()
            except BaseException as exc:  # aiohttp: ConnectionError, writing to a closing transport
                events.append(isinstance(exc, ConnectionError))
                raise

        async def ok(request):
            return web.Response(text="ok")

        app.router.add_get("/endless", endless)
        app.router.add_get("/ok", ok)
        async with serving(app) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            await reader.read(100_000)
            await asyncio.wait_for(started.wait(), 10)
            writer.transport.abort()  # the client goes away mid-response
            for _ in range(200):  # bounded: until the handler has noticed
                if events:
                    break
                await asyncio.sleep(0.01)
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/ok") as r:
                after = await r.text()
        return events, after

    assert run(loop, main()) == ([True], "ok")
