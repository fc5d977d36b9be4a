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

**Other interpreters.** A loop name may end in ``@interp``: ``uvcffi@pypy`` is the ``uvcffi`` loop
run by a worker under PyPy, in the same interleaved run as the loops of the runner's own
interpreter (a name without ``@`` runs there). ``interpreter()`` resolves ``interp``:

* ``cpython`` — the running interpreter when it is CPython, else the repository's ``.venv``;
* ``pypy`` — the running interpreter when it is PyPy, else the repository's ``.venv-pypy``
  (``make .venv-pypy/.build-stamp`` makes it, with uvcffi built for PyPy);
* any other name, or these two overridden, with ``--interp NAME=PATH``.
"""

from __future__ import annotations

import asyncio
import importlib
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

__all__ = [
    "BUILTIN", "BASELINE", "INTERPRETER_VENVS", "load_factory", "describe", "pytask_loop",
    "split_name", "interpreter",
]

BUILTIN: Dict[str, str] = {
    "asyncio": "asyncio:new_event_loop",
    "asyncio-pytask": "bench.loops:pytask_loop",
    "uvloop": "uvloop:new_event_loop",
    "uvcffi": "uvcffi:new_event_loop",
}

#: Ratios are computed against this loop (or the first loop given, when it is not measured).
BASELINE = "asyncio"

#: ``name@interp``: the venv of the repository that holds ``interp`` when the runner is not it.
INTERPRETER_VENVS: Dict[str, str] = {"cpython": ".venv", "pypy": ".venv-pypy"}

_REPO = Path(__file__).resolve().parent.parent


def split_name(name: str) -> Tuple[str, Optional[str]]:
    """``"uvcffi@pypy"`` -> ``("uvcffi", "pypy")``; ``"uvcffi"`` -> ``("uvcffi", None)``."""
    base, sep, interp = name.rpartition("@")
    return (base, interp) if sep and base and interp else (name, None)


def interpreter(interp: str, given: Mapping[str, str]) -> Optional[str]:
    """The executable that runs the loops named ``...@interp``, or None when there is none here.

    ``given`` (``--interp NAME=PATH``) comes first; then ``cpython``/``pypy`` are the running
    interpreter when it is that one, else the repository's venv of it when it exists."""
    if interp in given:
        return given[interp]
    if interp not in INTERPRETER_VENVS:
        return None
    if platform.python_implementation().lower() == interp:
        return sys.executable
    path = _REPO / INTERPRETER_VENVS[interp] / "bin" / "python"
    return str(path) if path.exists() else None


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
    info["implementation"] = platform.python_implementation()
    pypy = getattr(sys, "pypy_version_info", None)
    if pypy is not None:
        info["pypy"] = ".".join(map(str, pypy[:3]))
    info["sys_version"] = " ".join(sys.version.split())
    # the runner warms a JIT's loops up longer (bench/run.py, jit_warm_up)
    info["jit"] = "__pypy__" in sys.builtin_module_names
    info["executable"] = sys.executable
    return info
