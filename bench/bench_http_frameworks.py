"""The framework rows (issue 18): a real framework's "hello" app on the loop under test, answering
a 1 KiB JSON body, loaded by ``wrk`` (one thread, 10 keep-alive connections) pinned to the other
core: the number users of uvicorn + Starlette and of aiohttp choose a loop by.

* ``http_uvicorn_starlette``: ``uvicorn.Server`` (httptools parser, no access log, no lifespan)
  serving a Starlette app whose route returns ``JSONResponse(PAYLOAD)``.
* ``http_aiohttp``: an ``aiohttp.web`` app (``AppRunner`` without access log) whose handler
  returns ``web.json_response(PAYLOAD)``.

Both serialize the payload per request, as apps do. The runner calls them with ``n == 1``: wrk,
bounded by time. ``python -m bench.instructions`` calls them with a request count ``n > 1``: the
load is then bench/c/http_client (the same keep-alive GETs on 10 connections), which stops after
exactly ``n`` answers, as a server slowed some 50 times by callgrind needs. A workload whose
framework is not installed is skipped with the reason (``pip install -r
tests/integration/requirements.txt``, or the bench extra, brings them).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
from typing import Any, Dict

from . import _harness

__all__ = ["PAYLOAD", "WORKLOADS"]

#: A JSON object that serializes (json.dumps, default separators) to exactly 1024 bytes.
PAYLOAD: Dict[str, Any] = {"message": "Hello, world!", "items": [{"id": i, "name": f"item-{i}"}
                                                                  for i in range(24)]}
_pad = 1024 - len(json.dumps(PAYLOAD))
PAYLOAD["pad"] = "x" * (_pad - len(', "pad": ""'))
assert len(json.dumps(PAYLOAD)) == 1024, len(json.dumps(PAYLOAD))

_REQUESTS = re.compile(r"(\d+) requests in")
_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_COUNTED = re.compile(r"requests=(\d+) seconds=([0-9.]+)")


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise _harness.Skip(f"{module} is not installed ({e}): pip install -r "
                            "tests/integration/requirements.txt") from None


def _wrk(loop: asyncio.AbstractEventLoop, port: int, n: int) -> Dict[str, Any]:
    if n > 1:  # bench.instructions: exactly n requests, no clock
        argv = [_harness.tool("http_client"), "-t", f"127.0.0.1:{port}", "-c", "10", "-n", str(n)]
        load = _harness.run_load(loop, argv, _harness.duration() + _harness.HARD_TIMEOUT_SLACK)
        counted = _COUNTED.search(load.out)
        if not counted or int(counted.group(1)) != n:
            raise RuntimeError(f"http_client did not finish {n} requests: {load.out.strip()[-300:]}")
        return load.result(n, float(counted.group(2)))
    wrk = _harness.tool("wrk")
    seconds = max(1, math.ceil(_harness.duration() - 0.05))
    argv = [wrk, "-t1", "-c10", f"-d{seconds}s", "--timeout", "5s", f"http://127.0.0.1:{port}/"]
    load = _harness.run_load(loop, argv, seconds + _harness.HARD_TIMEOUT_SLACK)
    m, r, bad = _REQUESTS.search(load.out), _RATE.search(load.out), _NON2XX.search(load.out)
    if not m or not r or int(m.group(1)) == 0:
        raise RuntimeError(f"wrk did no requests: {load.out.strip()[-300:]}")
    if bad:
        raise RuntimeError(f"wrk saw {bad.group(1)} non-2xx responses")
    ops = int(m.group(1))
    return load.result(ops, ops / float(r.group(1)))


def http_uvicorn_starlette(loop: asyncio.AbstractEventLoop, n: int) -> Dict[str, Any]:
    uvicorn = _need("uvicorn")
    _need("httptools")
    applications = _need("starlette.applications")
    responses = _need("starlette.responses")
    routing = _need("starlette.routing")

    async def hello(request: Any) -> Any:
        return responses.JSONResponse(PAYLOAD)

    app = applications.Starlette(routes=[routing.Route("/", hello)])
    # IPPROTO_TCP, as the socket uvicorn's single-process `--host/--port` path gets from
    # create_server: asyncio (and uvcffi, following it) sets TCP_NODELAY only on such sockets, and
    # uvicorn writes head and body apart, so without it Nagle + delayed ACK cost ~40 ms a request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http="httptools", lifespan="off", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    task = loop.create_task(server.serve(sockets=[sock]))
    try:
        if not _harness.wait_until(loop, lambda: server.started or task.done(), timeout=10):
            raise RuntimeError("uvicorn did not start in 10 s")
        if task.done():
            task.result()
        return _wrk(loop, sock.getsockname()[1], n)
    finally:
        server.should_exit = True
        loop.run_until_complete(asyncio.wait_for(task, 10))
        sock.close()


def http_aiohttp(loop: asyncio.AbstractEventLoop, n: int) -> Dict[str, Any]:
    web = _need("aiohttp.web")

    async def hello(request: Any) -> Any:
        return web.json_response(PAYLOAD)

    async def start() -> Any:
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, port = loop.run_until_complete(start())
    try:
        return _wrk(loop, port, n)
    finally:
        loop.run_until_complete(asyncio.wait_for(runner.cleanup(), 10))


# n: 1 under the runner (wrk, bounded by time); a request count under bench.instructions
WORKLOADS = {
    "http_uvicorn_starlette": (http_uvicorn_starlette, 1, {"tasks": False}),
    "http_aiohttp": (http_aiohttp, 1, {"tasks": False}),
}
