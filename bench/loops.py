"""The loops the runner compares, by name, and how each one describes itself.

A loop is named by a spec ``module:factory``: a zero-argument callable returning a new, unused
event loop. Built in:

* ``asyncio`` — the stock loop with its C ``Task``/``Future`` (``_asyncio``).
* ``asyncio-pytask`` — the same stock loop, but every task is ``asyncio.tasks._PyTask`` and every
  future ``asyncio.futures._PyFuture``: the stock loop with a pure-Python task layer, the fair
  reference for uvcffi's own pure-Python ``Task``/``Future``.
* ``uvloop`` — ``uvloop.new_event_loop``.
* ``uvcffi`` — ``uvcffi.new_event_loop``.

Any other ``name=module:factory`` can be added on the command line.
"""

from __future__ import annotations

import asyncio
import importlib
import platform
import sys
from typing import Any, Callable, Dict

__all__ = ["BUILTIN", "BASELINE", "load_factory", "describe", "pytask_loop"]

BUILTIN: Dict[str, str] = {
    "asyncio": "asyncio:new_event_loop",
    "asyncio-pytask": "bench.loops:pytask_loop",
    "uvloop": "uvloop:new_event_loop",
    "uvcffi": "uvcffi:new_event_loop",
}

#: Ratios are computed against this loop (or the first loop given, when it is not measured).
BASELINE = "asyncio"


class _PyTaskLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """The stock loop, creating pure-Python futures; its task factory makes ``_PyTask``."""

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.futures._PyFuture(loop=self)  # type: ignore[attr-defined]


def _py_task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    return asyncio.tasks._PyTask(coro, loop=loop, **kwargs)  # type: ignore[attr-defined]


def pytask_loop() -> asyncio.AbstractEventLoop:
    loop = _PyTaskLoop()
    loop.set_task_factory(_py_task_factory)
    return loop


def load_factory(spec: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Imports ``module:factory``; raises ImportError/AttributeError as the import does."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"loop spec {spec!r} is not module:factory")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def describe(name: str, spec: str) -> Dict[str, Any]:
    """What the output records about a loop: its module's version and the interpreter."""
    module_name = spec.partition(":")[0]
    info: Dict[str, Any] = {"name": name, "spec": spec}
    if module_name in ("asyncio", "bench.loops"):
        info["version"] = "stdlib " + platform.python_version()
    else:
        root = importlib.import_module(module_name.split(".")[0])
        info["version"] = str(getattr(root, "__version__", "?"))
        libuv = getattr(root, "libuv_version", None)
        if callable(libuv):
            try:
                info["libuv"] = str(libuv())
            except Exception:  # noqa: BLE001 - a description must never fail the run
                pass
            # a cffi binding's per-call cost depends on the backend's build (README, "cffi versions")
            backend = sys.modules.get("_cffi_backend")
            if backend is not None:
                info["cffi"] = str(getattr(backend, "__version__", "?"))
    info["python"] = f"{platform.python_implementation()} {platform.python_version()}"
    info["executable"] = sys.executable
    return info
