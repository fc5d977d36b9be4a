"""Shared fixtures: one test body, two loops.

Every test that takes ``loop`` (or ``loop_factory``) runs twice: on asyncio's stock loop (the
oracle) and on uvcffi's. Teardown is strict, so a test cannot pass while it leaks:

* the loop is closed, and for uvcffi no libuv handle may be left alive afterwards;
* no task of the loop may be left pending;
* nothing may reach the loop's exception handler unless the test asked for the
  ``handler_calls`` fixture (then the test asserts on what arrived).

``certs``/``contexts``: a self-signed certificate for ``localhost`` made with the ``openssl`` CLI
(skips without it), and the server/client ``SSLContext`` pair trusting it.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import ssl
import subprocess

import pytest

LOOP_NAMES = ["asyncio", "uvcffi"]


def make_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "asyncio":
        return asyncio.new_event_loop()
    import uvcffi

    return uvcffi.new_event_loop()


@pytest.fixture(params=LOOP_NAMES)
def loop_name(request) -> str:
    return request.param


@pytest.fixture
def loop_factory(loop_name):
    """A factory of fresh loops of the parametrized kind; every loop it made is checked at teardown."""
    made = []

    def factory():
        lp = make_loop(loop_name)
        made.append(lp)
        return lp

    yield factory
    for lp in made:
        if not lp.is_closed():
            lp.close()
        _assert_no_live_handles(lp)


def _assert_no_live_handles(lp) -> None:
    live = getattr(lp, "_debug_live_handles", None)
    if live is not None:
        assert live() == 0, f"{lp!r} left {live()} libuv handles alive after close()"


@pytest.fixture
def handler_calls():
    """The contexts the loop's exception handler received, for tests that expect some."""
    return []


@pytest.fixture
def loop(request, loop_factory):
    lp = loop_factory()
    calls = request.getfixturevalue("handler_calls") if "handler_calls" in request.fixturenames else None
    recorded: list = []

    def handler(loop, context):
        recorded.append(context)
        if calls is not None:
            calls.append(context)

    lp.set_exception_handler(handler)
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        asyncio.set_event_loop(None)
        pending = [t for t in asyncio.all_tasks(lp) if not t.done()] if not lp.is_closed() else []
        for t in pending:
            t.cancel()
        stuck = []
        if pending and not lp.is_closed():
            # bounded: a task that ignores cancellation must fail the test, not hang the suite
            _, still = lp.run_until_complete(asyncio.wait(pending, timeout=10))
            stuck = list(still)
            for t in still:
                t.cancel()
        if not lp.is_closed():
            lp.run_until_complete(lp.shutdown_asyncgens())
            lp.close()
        gc.collect()
        _assert_no_live_handles(lp)
        assert not stuck, f"test left tasks that ignore cancellation: {stuck!r}"
        assert not pending, f"test left tasks pending: {pending!r}"
        if calls is None:
            assert not recorded, f"unexpected exception handler calls: {recorded!r}"


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """``(cert_path, key_path)``: a self-signed EC certificate for localhost / 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture
def contexts(certs):
    """``(server_ctx, client_ctx)`` for ``certs``; the client verifies the server."""
    cert, key = certs
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)
    return server_ctx, client_ctx
