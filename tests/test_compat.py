"""``_compat`` is the one door to asyncio's internals.

(a) No module of ``src/uvcffi`` but ``_compat.py`` imports a private asyncio name or reaches one
through an attribute (``asyncio.tasks._enter_task``, an alias of an asyncio module, ``getattr``
with a literal name): checked on the source, by parsing it. The checker is itself tested on
snippets that must fail, so it cannot pass by seeing nothing.
(b) Every name of ``_compat`` resolves on the running interpreter: asyncio's own object wherever
this asyncio has it, the fallback only where it does not; and the fallbacks work.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import importlib
import pathlib
import socket
import sys

import pytest

from uvcffi import _compat

SRC = pathlib.Path(_compat.__file__).resolve().parent

# asyncio's submodules that are public API (their non-underscore names may be used anywhere);
# every other submodule (base_events, constants, coroutines, format_helpers, sslproto, staggered,
# trsock, selector_events, unix_events, base_futures, base_tasks, ...) is private as a whole.
PUBLIC_SUBMODULES = frozenset({
    "events", "exceptions", "futures", "locks", "protocols", "queues", "runners", "streams",
    "subprocess", "taskgroups", "tasks", "threads", "timeouts", "transports",
})


@functools.cache
def _is_submodule(name: str) -> bool:
    try:
        importlib.import_module(f"asyncio.{name}")
    except ImportError:
        return False
    return True


def _private_path(path: str) -> bool:
    """Whether the dotted ``asyncio...`` path names something private."""
    parts = path.split(".")[1:]
    if not parts:
        return False
    if parts[0] not in PUBLIC_SUBMODULES and not parts[0].startswith("_") and _is_submodule(parts[0]):
        return True  # asyncio.constants, asyncio.sslproto ...
    return any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts)


def _resolve(node: ast.AST, aliases: dict) -> str | None:
    """The dotted asyncio path an expression stands for, or None."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, aliases)
        return None if base is None else f"{base}.{node.attr}"
    return None


def private_asyncio_uses(source: str, filename: str = "<src>") -> list:
    """Every place where ``source`` imports or reaches a private asyncio name: (line, what)."""
    tree = ast.parse(source, filename)
    aliases: dict = {}
    found = []
    # bindings first (module-wide: uvcffi does not shadow these names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "asyncio" or a.name.startswith("asyncio."):
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases["asyncio"] = "asyncio"
                    if _private_path(a.name):
                        found.append((node.lineno, f"import {a.name}"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and (node.module == "asyncio" or node.module.startswith("asyncio.")):
            for a in node.names:
                path = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = path
                if _private_path(path):
                    found.append((node.lineno, f"from {node.module} import {a.name}"))
    changed = True
    while changed:  # X = asyncio.tasks; Y = X ...
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                path = _resolve(node.value, aliases)
                if path is None:
                    continue
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and aliases.get(t.id) != path:
                        aliases[t.id] = path
                        changed = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            path = _resolve(node, aliases)
            if path is not None and _private_path(path):
                found.append((node.lineno, path))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2:
            base = _resolve(node.args[0], aliases)
            name = node.args[1]
            if base is not None and isinstance(name, ast.Constant) and isinstance(name.value, str) \
                    and _private_path(f"{base}.{name.value}"):
                found.append((node.lineno, f"{node.func.id}({base}, {name.value!r})"))
        elif isinstance(node, ast.Call):
            for arg in node.args:  # importlib.import_module("asyncio.base_events"), __import__(...)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                        and arg.value.startswith("asyncio.") and _private_path(arg.value):
                    found.append((node.lineno, f"call with {arg.value!r}"))
        elif isinstance(node, ast.Subscript):  # sys.modules["asyncio.sslproto"]
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                    and key.value.startswith("asyncio.") and _private_path(key.value):
                found.append((node.lineno, f"[{key.value!r}]"))
    # report an attribute chain once, at its outermost node
    return sorted(set(_outermost(found)))


def _outermost(found: list) -> list:
    paths = {(line, what) for line, what in found}
    return [(line, what) for line, what in paths
            if not any(o[0] == line and o[1] != what and o[1].startswith(what + ".") for o in paths)]


def _modules() -> list:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "_compat.py")


def test_sources_are_found() -> None:
    names = {p.relative_to(SRC).as_posix() for p in _modules()}
    assert {"loop.py", "tasks.py", "futures.py", "net.py", "transports/stream.py"} <= names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(SRC).as_posix())
def test_no_private_asyncio_name_outside_compat(path: pathlib.Path) -> None:
    uses = private_asyncio_uses(path.read_text(encoding="utf-8"), str(path))
    assert not uses, (f"{path.relative_to(SRC)} reaches asyncio's private names; take them from "
                      f"uvcffi._compat instead: {uses}")


# Snippets the checker must flag: if it stopped seeing one of these, the test above could pass
# on a tree that breaks the rule.
MUST_FLAG = [
    "from asyncio.tasks import _enter_task",
    "from asyncio import sslproto",
    "from asyncio import constants as c",
    "from asyncio.base_events import _SendfileFallbackProtocol",
    "from asyncio.trsock import TransportSocket",
    "from asyncio import _get_running_loop",
    "import asyncio.base_events",
    "import asyncio.staggered as st",
    "import asyncio\nasyncio.coroutines._DEBUG_STACK_DEPTH",
    "import asyncio\nx = asyncio._get_running_loop()",
    "import asyncio\nasyncio.format_helpers.extract_stack()",
    "from asyncio import events\nevents._set_running_loop(None)",
    "from asyncio import transports as t\nclass T(t._FlowControlMixin): pass",
    "import asyncio\n_t = asyncio.tasks\nf = _t._register_task",
    "import asyncio\n_t = asyncio.tasks\nf = getattr(_t, '_swap_current_task', None)",
    "import asyncio\nhasattr(asyncio.coroutines, 'x')",
    "from asyncio import Handle\nHandle._run",
    "import importlib\nimportlib.import_module('asyncio.sslproto')",
    "import sys\nsys.modules['asyncio.base_events']",
]

MUST_PASS = [
    "import asyncio\nasyncio.get_running_loop()",
    "from asyncio import events, transports\nclass H(events.Handle): pass\ntransports.ReadTransport.__init__",
    "import asyncio\nasyncio.Future.__init__",
    "from asyncio import tasks, exceptions\ntasks.gather; exceptions.CancelledError",
    "from ._compat import _enter_task, _SendfileMode\n_SendfileMode.TRY_NATIVE",
    "import asyncio\nx = asyncio.Future\nx.add_done_callback",
]


@pytest.mark.parametrize("source", MUST_FLAG)
def test_checker_flags(source: str) -> None:
    assert private_asyncio_uses(source), source


@pytest.mark.parametrize("source", MUST_PASS)
def test_checker_passes(source: str) -> None:
    assert private_asyncio_uses(source) == []


# -- (b) every name resolves, to asyncio's object where this asyncio has it ------------------------

@pytest.mark.parametrize("name", _compat.__all__)
def test_name_resolves(name: str) -> None:
    value = getattr(_compat, name)
    assert value is not None
    if name not in _compat.ORIGINS:  # uvcffi's own constants (HANDLE_FIELDS ...)
        return
    modname, attr = _compat.ORIGINS[name]
    module = importlib.import_module(modname)
    if modname == "asyncio" and sys.version_info >= (3, 14):  # pragma: no cover
        pytest.skip("3.14's public policy names warn")
    if hasattr(module, attr):
        assert value is getattr(module, attr), f"{name}: this asyncio has {modname}.{attr}, use it"
    else:
        assert name in _compat.FALLBACKS, f"{name}: {modname}.{attr} is missing and has no fallback"
        assert value is _compat.FALLBACKS[name]


def test_every_name_is_recorded() -> None:
    own = {"HANDLE_FIELDS", "TIMER_HANDLE_FIELDS", "running_loop", "set_running_loop"}
    assert set(_compat.__all__) - own == set(_compat.ORIGINS) - set(_compat.PER_CALL)


@pytest.mark.parametrize("name", _compat.PER_CALL)
def test_per_call_name_exists(name: str) -> None:
    # looked up in asyncio.events at each call: this asyncio must have it (or its fallback)
    assert _compat.ORIGINS[name] == ("asyncio.events", name)
    assert hasattr(asyncio.events, name) or name in _compat.FALLBACKS


def test_running_loop_follows_events_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    # what CPython's test_events.TestPyGetEventLoop does: events' functions swapped after import
    calls = []
    monkeypatch.setattr(asyncio.events, "_get_running_loop", lambda: calls.append("get") or "L")
    monkeypatch.setattr(asyncio.events, "_set_running_loop", lambda loop: calls.append(("set", loop)))
    assert _compat.running_loop() == "L"
    _compat.set_running_loop(None)
    assert calls == ["get", ("set", None)]


def test_version_gates_match_the_interpreter() -> None:
    tasks = asyncio.tasks
    if sys.version_info >= (3, 12):
        assert _compat._swap_current_task is tasks._swap_current_task
        assert _compat._register_eager_task is tasks._register_eager_task
    else:
        assert _compat._swap_current_task is _compat._fallback_swap_current_task
        assert _compat._register_eager_task is _compat._register_task
    assert _compat.DEBUG_STACK_DEPTH == asyncio.constants.DEBUG_STACK_DEPTH
    if sys.version_info < (3, 14):
        assert _compat._DefaultEventLoopPolicy is asyncio.DefaultEventLoopPolicy


def test_handle_fields() -> None:
    """The slots uvcffi fills by hand are exactly asyncio's (Handle.__init__ inlined)."""
    assert _compat._handle_fields_match()
    assert set(asyncio.events.Handle.__slots__) - {"__weakref__"} == set(_compat.HANDLE_FIELDS)
    assert set(asyncio.events.TimerHandle.__slots__) == set(_compat.TIMER_HANDLE_FIELDS)


# -- the fallbacks work (each runs here whether or not this asyncio needs it) ---------------------

def test_fallback_formatting() -> None:
    def cb() -> None:
        pass

    source = _compat._fallback_format_callback_source(cb, ())
    assert source.startswith("test_fallback_formatting.<locals>.cb() at ")
    assert len(_compat._fallback_extract_stack()) >= 1

    async def coro() -> None:
        pass

    c = coro()
    assert _compat._fallback_format_coroutine(c) == "test_fallback_formatting.<locals>.coro()"
    c.close()


def test_fallback_staggered_race() -> None:
    async def fail() -> None:
        raise OSError("no")

    async def win() -> str:
        return "yes"

    async def main() -> tuple:
        return await _compat._fallback_staggered_race([fail, win, fail], 0.1)

    result, index, errors = asyncio.run(main())
    assert (result, index) == ("yes", 1)
    assert isinstance(errors[0], OSError) and errors[1] is None and len(errors) == 2
    result, index, errors = asyncio.run(_compat._fallback_staggered_race([fail], None))
    assert (result, index, len(errors)) == (None, None, 1)


def test_fallback_current_task_functions() -> None:
    saved = dict(_compat._current_tasks) if _compat._current_tasks is not None else None
    if saved is None:  # pragma: no cover - 3.14: no current-task dict to build on
        pytest.skip("no tasks._current_tasks")
    loop, task, other = object(), object(), object()
    swap = _compat._fallback_swap_current_task
    try:
        assert swap(loop, task) is None
        assert swap(loop, None) is task
        assert swap(loop, None) is None
    finally:
        _compat._current_tasks.clear()
        _compat._current_tasks.update(saved)
    if _compat._swap_current_task is not _compat._fallback_swap_current_task and sys.version_info >= (3, 14):
        return  # pragma: no cover
    real = _compat._swap_current_task
    _compat._swap_current_task = swap if sys.version_info < (3, 12) else real
    try:
        _compat._fallback_enter_task(loop, task)
        with pytest.raises(RuntimeError):
            _compat._fallback_enter_task(loop, other)
        with pytest.raises(RuntimeError):
            _compat._fallback_leave_task(loop, other)
        _compat._fallback_leave_task(loop, task)
        assert asyncio.current_task(loop) is None
    finally:
        _compat._swap_current_task = real


def test_fallback_small_ones() -> None:
    s = socket.socket()
    try:
        assert _compat._fallback_TransportSocket(s) is s
    finally:
        s.close()
    with pytest.raises(RuntimeError, match="TLS"):
        _compat._fallback_SSLProtocol(None, None, None, None)
    assert [m.name for m in _compat._FallbackSendfileMode] == ["UNSUPPORTED", "TRY_NATIVE", "FALLBACK"]
    assert [m.name for m in _compat._SendfileMode] == ["UNSUPPORTED", "TRY_NATIVE", "FALLBACK"]


class _Proto(asyncio.Protocol):
    def __init__(self) -> None:
        self.calls: list = []

    def pause_writing(self) -> None:
        self.calls.append("pause")

    def resume_writing(self) -> None:
        self.calls.append("resume")

    def connection_lost(self, exc: object) -> None:
        self.calls.append("lost")


class _Transport(_compat._fallback_FlowControlMixin):
    __slots__ = ("_protocol", "size", "reading", "closing")

    def __init__(self, loop: object, protocol: asyncio.Protocol) -> None:
        super().__init__(None, loop)
        self._protocol = protocol
        self.size = 0
        self.reading = True
        self.closing = False

    def get_write_buffer_size(self) -> int:
        return self.size

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing


def test_fallback_flow_control_and_sendfile_protocol() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        proto = _Proto()
        t = _Transport(loop, proto)
        assert t.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=1, low=2)
        t.set_write_buffer_limits(high=100)
        assert t.get_write_buffer_limits() == (25, 100)
        t.size = 101
        t._maybe_pause_protocol()
        t._maybe_pause_protocol()
        t.size = 25
        t._maybe_resume_protocol()
        assert proto.calls == ["pause", "resume"]

        sp = _compat._fallback_SendfileFallbackProtocol(t)
        assert t.get_protocol() is sp and not t.reading
        await sp.drain()  # not paused: returns at once
        sp.pause_writing()
        waiter = loop.create_task(sp.drain())
        await asyncio.sleep(0)
        assert not waiter.done()
        sp.resume_writing()
        await waiter
        await sp.restore()
        assert t.get_protocol() is proto and t.reading
        t.closing = True
        with pytest.raises(ConnectionError):
            await sp.drain()

    asyncio.run(main())
