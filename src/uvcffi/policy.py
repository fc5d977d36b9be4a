"""The legacy policy shim: ``uvcffi.EventLoopPolicy`` and ``uvcffi.install()``.

The policy system is deprecated from Python 3.14; lead with ``uvcffi.run`` or
``asyncio.run(main(), loop_factory=uvcffi.new_event_loop)``. ``install()`` warns with
``DeprecationWarning`` where asyncio deprecates policies.
"""

from __future__ import annotations

import asyncio
import sys
import warnings

from ._compat import _DefaultEventLoopPolicy as _BasePolicy
from .loop import Loop

__all__ = ["EventLoopPolicy", "install"]


class EventLoopPolicy(_BasePolicy):  # type: ignore[misc]
    """An asyncio event loop policy whose ``new_event_loop()`` makes uvcffi loops."""

    def new_event_loop(self) -> Loop:
        return Loop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def install() -> None:
    """Make uvcffi the loop of ``asyncio.get_event_loop_policy()`` (legacy; see module doc)."""
    if sys.version_info >= (3, 14):
        warnings.warn("uvcffi.install() relies on asyncio's event loop policies, deprecated since "
                      "Python 3.14; use uvcffi.run() or asyncio.run(..., loop_factory=uvcffi.new_event_loop)",
                      DeprecationWarning, stacklevel=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(EventLoopPolicy())
        return
    asyncio.set_event_loop_policy(EventLoopPolicy())
