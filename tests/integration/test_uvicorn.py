"""uvicorn serving Starlette and FastAPI apps, on h11 and httptools, with httpx as the client.

Each scenario starts ``uvicorn.Server(...).serve(sockets=[...])`` as a task of the test's loop
(uvicorn's own startup, lifespan, protocols and shutdown), talks to it over a real loopback
socket, and asserts the outcome a user sees: status, body bytes, order of lifespan events,
websocket messages, the value of a contextvar set before ``serve()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib

import pytest

uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("fastapi")
ws_client = pytest.importorskip("websockets.asyncio.client")

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.background import BackgroundTask  # noqa: E402
from starlette.responses import PlainTextResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402

from ._helpers import bound_socket, payload, run, until  # noqa: E402

# Set before serve(): the app must see the value (the context of the server's callbacks).
deployment = contextvars.ContextVar("deployment", default="unset")

CHUNKS = [b"chunk-%d;" % i * 100 for i in range(20)]
BIG = payload(3 * 1024 * 1024 + 17)


class Gate:
    """Holds a request inside the app until the test opens it (a request in flight)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


async def endless_body(events: list):
    """Streams until the client goes away; records how the generator was finished."""
    try:
        while True:
            yield b"y" * 65536
            await asyncio.sleep(0)
    finally:
        events.append("stream closed")


def starlette_app(events: list, gate: Gate) -> Starlette:
    async def plain(request):
        return PlainTextResponse("hello")

    async def echo(request):
        body = await request.body()
        return Response(body, media_type="application/octet-stream",
                        headers={"x-sha256": hashlib.sha256(body).hexdigest()})

    async def stream(request):
        async def gen():
            for c in CHUNKS:
                yield c
                await asyncio.sleep(0)
        return StreamingResponse(gen(), media_type="text/plain")

    async def context(request):
        return PlainTextResponse(deployment.get())

    async def background(request):
        return PlainTextResponse("queued", background=BackgroundTask(events.append, "background"))

    async def slow(request):
        gate.entered.set()
        await gate.release.wait()
        return PlainTextResponse("finished")

    async def endless(request):
        return StreamingResponse(endless_body(events), media_type="application/octet-stream")

    async def ws(websocket):
        await websocket.accept()
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                await websocket.send_text(msg["text"].upper())
            else:
                await websocket.send_bytes(msg["bytes"][::-1])

    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("startup")
        yield
        events.append("shutdown")

    return Starlette(routes=[
        Route("/", plain), Route("/echo", echo, methods=["POST"]), Route("/stream", stream),
        Route("/context", context), Route("/background", background), Route("/slow", slow),
        Route("/endless", endless), WebSocketRoute("/ws", ws),
    ], lifespan=lifespan)


def fastapi_app(events: list, gate: Gate) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/", response_class=PlainTextResponse)
    async def plain():
        return "hello"

    @app.post("/echo")
    async def echo(request: Request):
        body = await request.body()
        return Response(body, media_type="application/octet-stream",
                        headers={"x-sha256": hashlib.sha256(body).hexdigest()})

    @app.get("/stream")
    async def stream():
        async def gen():
            for c in CHUNKS:
                yield c
                await asyncio.sleep(0)
        return StreamingResponse(gen(), media_type="text/plain")

    @app.get("/context", response_class=PlainTextResponse)
    async def context():
        return deployment.get()

    @app.get("/background", response_class=PlainTextResponse)
    async def background(tasks: BackgroundTasks):
        tasks.add_task(events.append, "background")
        return "queued"

    @app.get("/slow", response_class=PlainTextResponse)
    async def slow():
        gate.entered.set()
        await gate.release.wait()
        return "finished"

    @app.get("/endless")
    async def endless():
        return StreamingResponse(endless_body(events), media_type="application/octet-stream")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket):
        await websocket.accept()
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                await websocket.send_text(msg["text"].upper())
            else:
                await websocket.send_bytes(msg["bytes"][::-1])

    return app


APPS = {"starlette": starlette_app, "fastapi": fastapi_app}


@pytest.fixture(params=["starlette", "fastapi"])
def app_kind(request):
    return request.param


@pytest.fixture(params=["h11", "httptools"])
def http_impl(request):
    if request.param == "httptools":
        pytest.importorskip("httptools")  # a C extension without PyPy wheels
    return request.param


@contextlib.asynccontextmanager
async def serving(app, http: str):
    """Serve ``app`` with uvicorn on a free loopback port; yield ``(server, base_url)``."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=http, ws="websockets-sansio", lifespan="on", log_level="warning",
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started or task.done(), "uvicorn startup")
        if task.done():
            task.result()
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


def scenario(loop, app_kind, http_impl, body):
    """Run ``body(client, server, base, events, gate)`` against a served app; return (result, events)."""
    events: list = []
    gate = Gate.__new__(Gate)

    async def main():
        gate.__init__()
        deployment.set("production")  # before serve(): the app's requests must see it
        app = APPS[app_kind](events, gate)
        async with serving(app, http_impl) as (server, base):
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                result = await body(client, server, base, events, gate)
        return result

    return run(loop, main()), events


def test_plain_response(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        r = await client.get("/")
        return r.status_code, r.text, r.headers["content-type"]

    result, events = scenario(loop, app_kind, http_impl, body)
    assert result == (200, "hello", "text/plain; charset=utf-8")
    assert events == ["startup", "shutdown"]


def test_request_body_of_megabytes_round_trips(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        sent = await client.post("/echo", content=BIG)

        async def chunked():  # no content-length: a chunked upload
            for i in range(0, len(BIG), 65536):
                yield BIG[i:i + 65536]
        streamed = await client.post("/echo", content=chunked())
        return [(r.status_code, r.headers["x-sha256"], r.content == BIG) for r in (sent, streamed)]

    result, _ = scenario(loop, app_kind, http_impl, body)
    assert result == [(200, hashlib.sha256(BIG).hexdigest(), True)] * 2


def test_streaming_response(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        got = []
        async with client.stream("GET", "/stream") as r:
            async for part in r.aiter_bytes():
                got.append(part)
            return r.status_code, r.headers.get("transfer-encoding"), b"".join(got)

    result, _ = scenario(loop, app_kind, http_impl, body)
    assert result == (200, "chunked", b"".join(CHUNKS))


def test_contextvar_set_before_serve_reaches_the_app(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        return [(await client.get("/context")).text for _ in range(3)]

    result, _ = scenario(loop, app_kind, http_impl, body)
    # uvicorn before reset_contextvars (0.40) ran every request in an empty Context, by design
    expected = "production" if hasattr(uvicorn.Config(app=None), "reset_contextvars") else "unset"
    assert result == [expected] * 3


def test_background_task_and_lifespan_order(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        r = await client.get("/background")
        await until(lambda: "background" in events, "the background task")
        return r.text

    result, events = scenario(loop, app_kind, http_impl, body)
    assert result == "queued"
    assert events == ["startup", "background", "shutdown"]


def test_websocket_text_and_binary(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        url = base.replace("http://", "ws://") + "/ws"
        async with ws_client.connect(url, max_size=None) as ws:
            await ws.send("hello")
            text = await ws.recv()
            blob = payload(1024 * 1024 + 3)
            await ws.send(blob)
            back = await ws.recv()
        return text, back == blob[::-1]

    result, _ = scenario(loop, app_kind, http_impl, body)
    assert result == ("HELLO", True)


def test_graceful_shutdown_finishes_the_request_in_flight(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        pending = asyncio.ensure_future(client.get("/slow"))
        await asyncio.wait_for(gate.entered.wait(), 10)
        server.should_exit = True  # what uvicorn's SIGTERM/SIGINT handler sets
        # the listener closes first: a new connection is refused while the request finishes
        await until(lambda: not any(s.is_serving() for s in server.servers), "listener closed")
        refused = False
        try:
            async with httpx.AsyncClient(timeout=5) as other:
                await other.get(base + "/")
        except httpx.ConnectError:
            refused = True
        gate.release.set()
        r = await pending
        return r.status_code, r.text, refused

    result, events = scenario(loop, app_kind, http_impl, body)
    assert result == (200, "finished", True)
    assert events == ["startup", "shutdown"]


def test_concurrent_requests_on_a_connection_pool(loop, app_kind, http_impl):
    bodies = [payload(65536 + i, seed=i) for i in range(100)]

    async def body(client, server, base, events, gate):
        limits = httpx.Limits(max_connections=10)
        async with httpx.AsyncClient(base_url=base, timeout=20, limits=limits) as pooled:
            rs = await asyncio.gather(*(pooled.post("/echo", content=b) for b in bodies))
        return [r.content == b for r, b in zip(rs, bodies)]

    result, _ = scenario(loop, app_kind, http_impl, body)
    assert result == [True] * 100


def test_client_disconnect_during_streaming_response(loop, app_kind, http_impl):
    async def body(client, server, base, events, gate):
        async with client.stream("GET", "/endless") as r:
            async for part in r.aiter_raw():
                if part:
                    break
        # the connection is closed with the body unread: the app's generator must be finished
        await until(lambda: "stream closed" in events, "the streaming generator to be closed")
        return (await client.get("/")).text

    result, events = scenario(loop, app_kind, http_impl, body)
    assert result == "hello"
    assert events == ["startup", "stream closed", "shutdown"]
