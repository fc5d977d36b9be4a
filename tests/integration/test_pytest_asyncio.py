"""pytest-asyncio tests on uvcffi, through the loop factories of ``conftest.py`` (the plugin's hook),
or on older versions of the plugin through its ``event_loop_policy`` fixture.

The tests are ordinary ``async def`` tests with ``pytest.mark.asyncio``: each runs on asyncio's
loop and on uvcffi's, with an async fixture that serves TCP on the same loop.
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest

pytest_asyncio = pytest.importorskip("pytest_asyncio")

import uvcffi  # noqa: E402

pytestmark = pytest.mark.asyncio

request_id = contextvars.ContextVar("request_id", default=None)

# pytest-asyncio 1.x with the pytest_asyncio_loop_factories hook (conftest.py) parametrizes every
# test by loop factory. Older versions document the ``event_loop_policy`` fixture instead: the
# same two loops through asyncio's policy (deprecated from Python 3.14, where the hook exists).
HAS_FACTORY_HOOK = hasattr(getattr(pytest_asyncio.plugin, "PytestAsyncioSpecs", None),
                           "pytest_asyncio_loop_factories")

if not HAS_FACTORY_HOOK:
    @pytest.fixture(params=["asyncio", "uvcffi"])
    def event_loop_policy(request):
        return uvcffi.EventLoopPolicy() if request.param == "uvcffi" else asyncio.DefaultEventLoopPolicy()


def chosen_loop(request) -> str:
    params = request.node.callspec.params
    if HAS_FACTORY_HOOK:
        return "uvcffi" if params["_asyncio_loop_factory"] is uvcffi.new_event_loop else "asyncio"
    return params["event_loop_policy"]


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
    loop = asyncio.get_running_loop()
    if chosen_loop(request) == "uvcffi":
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
