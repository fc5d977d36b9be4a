# CPython's asyncio suite runs through tests/cpython/run.py (make test-cpython), not pytest.
collect_ignore_glob = ["*"]
