"""anyio's pytest plugin with uvcffi's loop: ``anyio_backend = ("asyncio", {"loop_factory": ...})``.

Each test here is collected by anyio's plugin (``pytest.mark.anyio``) and runs on asyncio's loop
and on uvcffi's, chosen by the ``anyio_backend`` fixture below, as a user's conftest would.
"""

from __future__ import annotations

import asyncio

import pytest

anyio = pytest.importorskip("anyio")

import uvcffi  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"loop_factory": uvcffi.new_event_loop}), id="uvcffi"),
])
def anyio_backend(request):
    return request.param


@pytest.fixture
async def echo_server():
    async def handle(stream):
        async with stream:
            async for chunk in stream:
                await stream.send(chunk)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.cancel_scope.cancel()


async def test_loop_is_the_chosen_one(anyio_backend):
    expected = uvcffi.Loop if anyio_backend[1] else type(asyncio.new_event_loop())
    assert type(asyncio.get_running_loop()) is expected


async def test_tcp_echo_through_async_fixture(echo_server):
    async with await anyio.connect_tcp("127.0.0.1", echo_server) as client:
        data = bytes(range(256)) * 1024
        await client.send(data)
        got = b""
        while len(got) < len(data):
            got += await client.receive()
    assert got == data
