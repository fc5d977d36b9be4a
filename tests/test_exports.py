"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import inspect
import re

import uvcffi
from uvcffi import _binding
from uvcffi._version import __version__

EXPECTED = {
    "__version__", "ALL_COMPLETED", "EventLoopPolicy", "FIRST_COMPLETED", "FIRST_EXCEPTION",
    "Future", "Loop", "Runner", "Task", "TaskGroup", "Timeout", "all_tasks", "as_completed", "coroutine",
    "create_eager_task_factory", "create_task", "current_task", "eager_task_factory",
    "ensure_future", "gather", "install", "iscoroutine", "iscoroutinefunction", "libuv_version",
    "new_event_loop", "run", "run_coroutine_threadsafe", "shield", "sleep", "task_factory",
    "timeout", "timeout_at", "wait", "wait_for", "wrap_future",
}


def test_exports_are_pinned():
    assert set(uvcffi.__all__) == EXPECTED
    for name in uvcffi.__all__:
        assert hasattr(uvcffi, name), name


def test_libuv_version():
    v = uvcffi.libuv_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+(-\w+)?", v)
    major, minor = map(int, v.split(".")[:2])
    assert (major, minor) >= (1, 44)


def test_build_version_matches_package():
    built = _binding.ffi.string(_binding.lib.UVCFFI_BUILD_VERSION).decode()
    assert built == __version__ == uvcffi.__version__


def test_convert_error_types():
    import errno
    import socket

    lib = _binding.lib
    err = _binding.convert_error(-errno.ECONNREFUSED)
    assert isinstance(err, ConnectionRefusedError) and err.errno == errno.ECONNREFUSED
    assert isinstance(_binding.convert_error(-errno.EPIPE), BrokenPipeError)
    gai = _binding.convert_error(lib.UV_EAI_NONAME) if hasattr(lib, "UV_EAI_NONAME") else None
    if gai is not None:
        assert isinstance(gai, socket.gaierror)


# -- the public API is fully typed ---------------------------------------------------------------
# Every function of uvcffi.__all__, and every method, property and classmethod a public class
# defines itself (uvcffi's own code, not what it inherits from asyncio), annotates every parameter
# (but self/cls) and its return. mypy --strict (make lint) checks that the annotations are right;
# this checks that none is missing, on the running interpreter, without mypy.

def _callables(owner: object):
    """(qualified name, function) of ``owner``, or if it is a class, of the public methods it
    has from uvcffi's classes (itself, its mixins): each name once, as the class resolves it."""
    if not isinstance(owner, type):
        yield getattr(owner, "__qualname__", repr(owner)), owner
        return
    seen = set()
    for klass in owner.__mro__:
        for name, member in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            if klass.__module__.startswith("uvcffi"):
                yield from _member(owner, name, member)


def _member(owner: type, name: str, member: object):
    """(qualified name, function) of one attribute of a class: a public method (dunders too),
    a property's getter and setter."""
    if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
        return  # private
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        for fn in (member.fget, member.fset):
            if fn is not None:
                yield f"{owner.__qualname__}.{name}", fn
    elif inspect.isfunction(member):
        yield f"{owner.__qualname__}.{name}", member


def _unannotated(obj: object) -> list:
    """What ``obj`` (a function or a class) leaves unannotated, as ``name: parameter`` texts."""
    missing = []
    for qualname, fn in _callables(obj):
        if not inspect.isfunction(fn) or not fn.__module__.startswith("uvcffi"):
            continue  # a builtin, or asyncio's
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if isinstance(obj, type) and params and params[0].name in ("self", "cls"):
            params = params[1:]
        for p in params:
            if p.annotation is inspect.Parameter.empty:
                missing.append(f"{qualname}: {p.name}")
        if sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{qualname}: return")
    return missing


def test_public_api_is_fully_typed():
    missing = []
    for name in uvcffi.__all__:
        obj = getattr(uvcffi, name)
        if callable(obj):
            missing += _unannotated(obj)
    assert not missing, "unannotated in the public API:\n" + "\n".join(missing)


def test_typed_check_finds_what_is_missing():
    # the check above can fail: a function and a class of uvcffi's with gaps are reported
    ns: dict = {}
    exec(
        "def f(a, b: int, *args, c=1, **kw):\n    pass\n"
        "def g(a: int) -> None:\n    pass\n"
        "class C:\n"
        "    def m(self, x) -> int:\n        return 0\n"
        "    def _private(self, y):\n        pass\n"
        "    @property\n    def p(self):\n        return 0\n"
        "    @classmethod\n    def k(cls, z: int) -> None:\n        pass\n",
        {"__name__": "uvcffi._typing_probe"}, ns)
    assert _unannotated(ns["f"]) == ["f: a", "f: args", "f: c", "f: kw", "f: return"]
    assert _unannotated(ns["g"]) == []
    assert _unannotated(ns["C"]) == ["C.m: x", "C.p: return"]
