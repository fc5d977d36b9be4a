"""pytest-asyncio's documented way of choosing loops: the ``pytest_asyncio_loop_factories`` hook.

Every ``pytest.mark.asyncio`` test under this directory runs once per factory named here: on
asyncio's loop and on uvcffi's. The hook is new in pytest-asyncio 1.x (1.5.0 is pinned); without the plugin
(or with an older one) nothing is defined, so pytest does not reject an unknown hook.
"""

from __future__ import annotations

import asyncio

try:
    from pytest_asyncio import plugin as _plugin
except ImportError:
    _plugin = None
PytestAsyncioSpecs = getattr(_plugin, "PytestAsyncioSpecs", None)

if PytestAsyncioSpecs is not None and hasattr(PytestAsyncioSpecs, "pytest_asyncio_loop_factories"):

    def pytest_asyncio_loop_factories(config, item):
        import uvcffi

        return {"asyncio": asyncio.new_event_loop, "uvcffi": uvcffi.new_event_loop}
