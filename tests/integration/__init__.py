"""Integration tests: real frameworks, real clients, real servers, on both loops.

Each test body runs once on asyncio's own loop (the oracle) and once on uvcffi's: through the
``loop`` / ``loop_factory`` fixtures of ``tests/conftest.py`` (with their strict teardown: no
leaked tasks, no libuv handles left, nothing swallowed by the exception handler), through
``loop_name`` for servers started in a subprocess (``--loop asyncio`` / ``--loop
uvcffi:new_event_loop``), or through the plugins' own loop choice (anyio's ``anyio_backend``,
pytest-asyncio's loop factories in ``conftest.py``). A module whose library is not
installed skips as a whole (``pytest.importorskip``): ``make test`` runs these only where
``make test-integration`` (or ``pip install .[integration]``) installed the packages.

PostgreSQL and Redis are found through ``UVCFFI_TEST_POSTGRES_DSN`` and ``UVCFFI_TEST_REDIS_URL``
(``servers.sh``, run by ``make test-integration`` and ``.ci/integration.sh``, starts both and sets
them with the TLS and restart variables); without them those tests skip and say so.
"""
