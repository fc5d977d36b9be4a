"""pytest-asyncio tests on uvcffi, through the loop factories of ``conftest.py`` (the plugin's hook).

The tests are ordinary ``async def`` tests with ``pytest.mark.asyncio``: each runs on asyncio's
loop and on uvcffi's, with an async fixture that serves TCP on the same loop.
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest

pytest_asyncio = pytest.importorskip("pytest_asyncio")
if not hasattr(pytest_asyncio.plugin.PytestAsyncioSpecs, "pytest_asyncio_loop_factories"):
    pytest.skip("pytest-asyncio without the pytest_asyncio_loop_factories hook (the pinned 1.5.0 has it)",
                allow_module_level=True)

import uvcffi  # noqa: E402

pytestmark = pytest.mark.asyncio

request_id = contextvars.ContextVar("request_id", default=None)


@pytest_asyncio.fixture
async def echo_port():
    async def handle(reader, writer):
        writer.write(await reader.read(65536))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_runs_on_each_factory_loop(request):
    factory = request.node.callspec.params["_asyncio_loop_factory"]
    loop = asyncio.get_running_loop()
    if factory is uvcffi.new_event_loop:
        assert type(loop) is uvcffi.Loop
    else:
        assert not isinstance(loop, uvcffi.Loop)


async def test_async_fixture_shares_the_loop(echo_port):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
    writer.write(b"ping")
    got = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert got == b"ping"


async def test_tasks_and_context():
    request_id.set("abc")

    async def child():
        await asyncio.sleep(0)
        return request_id.get()

    async with asyncio.timeout(5) if hasattr(asyncio, "timeout") else _null():
        results = await asyncio.gather(*(asyncio.create_task(child()) for _ in range(5)))
    assert results == ["abc"] * 5


class _null:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc):
        return False
