"""uvcffi: an asyncio event loop on libuv, bound with cffi, with a pure-Python Task/Future layer.

Public API only: everything here is re-exported from the module that defines it.
"""

from ._binding import libuv_version
from ._version import __version__
from .loop import Loop, new_event_loop
from .policy import EventLoopPolicy, install
from .runners import Runner, run

__all__ = [
    "__version__",
    "EventLoopPolicy",
    "Loop",
    "Runner",
    "install",
    "libuv_version",
    "new_event_loop",
    "run",
]
