"""Integration tests: real frameworks, real clients, real servers, on both loops.

Each test takes the ``loop`` fixture of ``tests/conftest.py``, so its body runs once on asyncio's
own loop (the oracle) and once on uvcffi's, with the same strict teardown (no leaked tasks, no
libuv handles left, nothing swallowed by the exception handler). A module whose library is not
installed skips as a whole (``pytest.importorskip``): ``make test`` runs these only where
``make test-integration`` (or ``pip install .[integration]``) installed the packages.

PostgreSQL and Redis are found through ``UVCFFI_TEST_POSTGRES_DSN`` and ``UVCFFI_TEST_REDIS_URL``
(``.ci/integration.sh`` starts both and sets them); without them those tests skip and say so.
"""
