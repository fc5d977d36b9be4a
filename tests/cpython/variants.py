"""Which classes of a ``test.test_asyncio`` module run, and their uvcffi variants.

CPython parametrizes its asyncio tests by implementation: ``test_tasks`` runs one body of tests
(``BaseTaskTests``) as ``CTask_CFuture_Tests``, ``PyTask_PyFuture_Tests`` and half a dozen more,
each setting ``Task``/``Future`` class attributes; ``test_futures`` sets ``cls`` or overrides
``_new_future()``; ``test_events``, ``test_sock_lowlevel`` and ``test_sendfile`` run one mixin as
``EPollEventLoopTests``, ``PollEventLoopTests``, ``SelectEventLoopTests``, each overriding
``create_event_loop()``; ``test_server``/``test_sslproto``/``test_buffered_proto`` override
``new_loop()``; ``test_subprocess`` sets ``Watcher``. Those classes are *parametrizations*:
their own namespace names an asyncio implementation.

Nothing here copies a test. For a module we find, by looking at the classes and the code objects
of their methods:

* the parametrization groups: the test classes of the module that share a first base, when one
  of them names an implementation. One member of each group runs (the pure-Python one where there
  is a choice, else the default selector's, else the first that is not skipped): the others test
  the same body on another asyncio implementation, which says nothing about uvcffi;
* for uvcffi, a variant of each class that names an implementation, itself or through a base of
  the module: a subclass called ``<Class>__uvcffi`` whose implementation attributes are uvcffi's
  (``Task``, ``Future``, ``cls``, ``current_task``...), whose loop factories return
  ``uvcffi.new_event_loop()``, and whose helper methods that reach ``futures._PyFuture`` or
  ``tasks._CTask`` run with ``futures``/``tasks`` globals in which those names are uvcffi's.
  Test methods are never rewritten: a test that names one implementation on purpose keeps it.

In the task-layer modules (``task_layer=True``) every class that runs gets a variant, and the
methods of its classes from CPython's test package (test methods included) run with an
``asyncio`` global (and ``tasks``/``futures``) in which the task-layer API that uvcffi provides
(``gather``, ``wait``, ``wait_for``, ``shield``, ``sleep``, ``as_completed``, ``ensure_future``,
``create_task``, ``TaskGroup``, ``timeout``...) is uvcffi's: CPython's tests of ``asyncio.gather``
then test ``uvcffi.gather``, and ``test_taskgroups``/``test_timeouts`` (which also reach them as
``taskgroups.TaskGroup``: ``asyncio.taskgroups``/``asyncio.timeouts`` globals are swapped too)
test uvcffi's ``TaskGroup``/``timeout``/``timeout_at``/``Timeout``.
The classes ``asyncio.Task``/``asyncio.Future`` stay asyncio's there (tests check ``isinstance``
against them, and uvcffi's are their subclasses). ``asyncio.run``/``Runner`` stay asyncio's
(``test_runners`` drives them with a mocked loop). A decorated test method whose wrapper hides
it (``mock.patch``) keeps the real ``asyncio``.

Other classes run unchanged; in the uvcffi run they meet uvcffi through the event loop policy
(``worker.py`` makes uvcffi's policy asyncio's default), or not at all (a ``TestLoop`` with
virtual time, a mocked ``BaseEventLoop``): the worker records which tests created a uvcffi loop,
ran in a parametrized variant or name a swapped task-layer function in their own code, and the
report counts the others apart.
"""

from __future__ import annotations

import asyncio
import asyncio.futures
import asyncio.tasks
import types
import unittest
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["SUFFIX", "Selection", "asyncio_class_of", "describe", "make_variants", "select_classes"]

SUFFIX = "__uvcffi"

# Names of asyncio's implementations as test code reaches them (``futures._PyFuture``...).
_IMPL_ATTRS = {
    "futures": {"Future": "Future", "_CFuture": "Future", "_PyFuture": "Future"},
    "tasks": {
        "Task": "Task", "_CTask": "Task", "_PyTask": "Task",
        "current_task": "current_task", "_c_current_task": "current_task",
        "_py_current_task": "current_task",
        "all_tasks": "all_tasks", "_c_all_tasks": "all_tasks", "_py_all_tasks": "all_tasks",
    },
}
_PRIVATE_IMPL_NAMES = frozenset(n for names in _IMPL_ATTRS.values() for n in names if n.startswith("_"))
_PY_IMPL_NAMES = frozenset(n for n in _PRIVATE_IMPL_NAMES if n.startswith(("_Py", "_py_")))
# Loop constructors that a loop-factory method names when it builds a selector loop itself.
_LOOP_CLASS_NAMES = frozenset({
    "SelectorEventLoop", "_UnixSelectorEventLoop", "ProactorEventLoop", "EventLoop",
    "EpollSelector", "PollSelector", "SelectSelector", "KqueueSelector", "DevpollSelector",
})
_LOOP_FACTORY_NAMES = frozenset({"create_event_loop", "new_loop"})
_WATCHER_NAMES = frozenset({"SafeChildWatcher", "FastChildWatcher", "ThreadedChildWatcher",
                            "PidfdChildWatcher", "MultiLoopChildWatcher"})
# The task-layer API of asyncio that uvcffi has its own of, swapped in the task-layer modules.
_TASK_API = ("all_tasks", "as_completed", "coroutine", "create_task", "current_task",
             "ensure_future", "gather", "iscoroutine", "iscoroutinefunction", "run_coroutine_threadsafe",
             "shield", "sleep", "wait", "wait_for", "wrap_future", "create_eager_task_factory",
             "eager_task_factory", "TaskGroup", "Timeout", "timeout", "timeout_at")
# asyncio's submodules that tests reach the swapped API through (``taskgroups.TaskGroup``), 3.11+.
_API_MODULES = ("taskgroups", "timeouts")


def _impl_objects() -> Dict[int, Tuple[Any, str, bool]]:
    """id(asyncio implementation object) -> (object, uvcffi name, is the pure-Python one)."""
    found: Dict[int, Tuple[Any, str, bool]] = {}
    for modname, names in _IMPL_ATTRS.items():
        mod = getattr(asyncio, modname)
        for name, uv_name in names.items():
            obj = getattr(mod, name, None)
            if obj is not None and id(obj) not in found:
                found[id(obj)] = (obj, uv_name, name in _PY_IMPL_NAMES)
    return found


_IMPLS = _impl_objects()


def _unwrap(value: Any) -> Tuple[Any, Optional[type]]:
    if isinstance(value, (staticmethod, classmethod)):
        return value.__func__, type(value)
    return value, None


def _code_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _function_of(value: Any) -> Optional[types.FunctionType]:
    func, _ = _unwrap(value)
    return func if isinstance(func, types.FunctionType) else None


def _is_loop_factory(name: str, value: Any) -> bool:
    func = _function_of(value)
    return (func is not None and name in _LOOP_FACTORY_NAMES
            and func.__code__.co_argcount == 1
            and bool(_code_names(func.__code__) & _LOOP_CLASS_NAMES))


def _impl_refs(name: str, value: Any) -> Optional[str]:
    """How the class attribute ``name = value`` names an asyncio implementation, if it does:
    'value' (it is one), 'loop' (a loop factory building a selector loop), 'code' (a helper
    method reaching a private implementation name), 'watcher' (a child watcher class)."""
    obj, _ = _unwrap(value)
    if id(obj) in _IMPLS and _IMPLS[id(obj)][0] is obj:
        return "value"
    if (isinstance(obj, type) and obj.__module__ == "asyncio.unix_events"
            and obj.__name__.endswith("ChildWatcher")):
        return "watcher"
    if _is_loop_factory(name, value):
        return "loop"
    func = _function_of(value)
    if (func is not None and "watcher" in name.lower() and not name.startswith("test")
            and _code_names(func.__code__) & _WATCHER_NAMES):
        return "watcher"  # 3.12's test_subprocess: a _get_watcher() per watcher class
    func = _function_of(value)
    if func is not None and not name.startswith("test") and _code_names(func.__code__) & _PRIVATE_IMPL_NAMES:
        return "code"
    return None


def _own_refs(cls: type) -> Dict[str, str]:
    return {name: kind for name, value in vars(cls).items() if (kind := _impl_refs(name, value))}


def _is_pure_python(cls: type) -> bool:
    """True when every implementation ``cls`` names itself is asyncio's pure-Python one."""
    for name, value in vars(cls).items():
        kind = _impl_refs(name, value)
        if kind == "value":
            if not _IMPLS[id(_unwrap(value)[0])][2]:
                return False
        elif kind == "code":
            names = _code_names(_function_of(value).__code__) & _PRIVATE_IMPL_NAMES
            if names - _PY_IMPL_NAMES:
                return False
    return True


def _skipped(cls: type) -> bool:
    return bool(getattr(cls, "__unittest_skip__", False))


class Selection:
    """The classes of one module that run: ``classes`` in definition order, each with a flag saying
    whether it names an implementation (and so gets a uvcffi variant)."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module
        self.classes: List[type] = []
        self.parametrized: Dict[str, bool] = {}
        self.dropped: Dict[str, str] = {}  # class name -> the member of its group that runs


def _test_classes(module: types.ModuleType) -> List[type]:
    out = []
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, unittest.TestCase)
                and value.__module__ == module.__name__ and not value.__name__.endswith(SUFFIX)):
            out.append(value)
    return out


def _names_implementation(cls: type, package: str) -> bool:
    """The class or one of its bases from CPython's test package names an implementation."""
    for klass in cls.__mro__:
        if klass.__module__.startswith(package) and _own_refs(klass):
            return True
    return False


def select_classes(module: types.ModuleType) -> Selection:
    """Pick the classes that run (the same pick for asyncio's run and uvcffi's)."""
    package = module.__name__.rpartition(".")[0]
    sel = Selection(module)
    classes = _test_classes(module)
    groups: Dict[type, List[type]] = {}
    for cls in classes:
        first = cls.__bases__[0]
        if not issubclass(first, unittest.TestCase) or first.__module__ == module.__name__:
            groups.setdefault(first, []).append(cls)
    chosen: Dict[type, type] = {}
    for members in groups.values():
        if len(members) < 2 or not any(_own_refs(m) for m in members):
            continue

        def rank(cls: type, members: List[type] = members) -> Tuple[int, int, int, int, int]:
            refs = _own_refs(cls)
            return (_skipped(cls), not refs, not _is_pure_python(cls),
                    "EPoll" not in cls.__name__ and "Threaded" not in cls.__name__,
                    members.index(cls))

        best = min(members, key=rank)
        for member in members:
            chosen[member] = best
    for cls in classes:
        best = chosen.get(cls, cls)
        if best is not cls:
            sel.dropped[cls.__name__] = best.__name__
            continue
        sel.classes.append(cls)
        sel.parametrized[cls.__name__] = _names_implementation(cls, package)
    return sel


class _ProxyModule(types.ModuleType):
    """A stand-in for ``asyncio.futures``/``asyncio.tasks`` whose implementation names are
    uvcffi's; every other attribute is the real module's."""

    def __init__(self, real: types.ModuleType, overrides: Dict[str, Any]) -> None:
        super().__init__(real.__name__)
        self.__dict__.update(overrides)
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _uvcffi_objects(uvcffi: Any) -> Dict[str, Any]:
    return {"Future": uvcffi.Future, "Task": uvcffi.Task,
            "current_task": uvcffi.current_task, "all_tasks": uvcffi.all_tasks}


def _task_api(uvcffi: Any) -> Dict[str, Any]:
    # The functions themselves, unwrapped: tests look at the frames that call them.
    return {name: getattr(uvcffi, name) for name in _TASK_API
            if hasattr(uvcffi, name) and hasattr(asyncio, name)}


def _rebind(func: types.FunctionType, proxies: Dict[Any, _ProxyModule]) -> types.FunctionType:
    globs = dict(func.__globals__)
    for real, proxy in proxies.items():
        for key, value in func.__globals__.items():
            if value is real:
                globs[key] = proxy
    new = types.FunctionType(func.__code__, globs, func.__name__, func.__defaults__, func.__closure__)
    new.__kwdefaults__ = func.__kwdefaults__
    new.__qualname__ = func.__qualname__
    new.__dict__.update(func.__dict__)
    return new


def make_variants(sel: Selection, uvcffi: Any, task_layer: bool = False) -> Dict[str, type]:
    """Build the uvcffi variant of each parametrized class of ``sel`` (of every class, with
    ``task_layer``); returns name -> class, the variant named ``<Class>__uvcffi`` and put in the
    module (unittest ids name it)."""
    objects = _uvcffi_objects(uvcffi)
    proxies = {
        getattr(asyncio, modname): _ProxyModule(getattr(asyncio, modname),
                                                {n: objects[uv] for n, uv in names.items()})
        for modname, names in _IMPL_ATTRS.items()
    }
    api_proxies = {}
    if task_layer:
        api = _task_api(uvcffi)
        api_proxies = {asyncio: _ProxyModule(asyncio, api)}
        for real, proxy in proxies.items():
            api_proxies[real] = _ProxyModule(real, {**{n: v for n, v in api.items() if hasattr(real, n)},
                                                    **{n: v for n, v in vars(proxy).items()
                                                       if not n.startswith("__") and n != "_real"}})
        for modname in _API_MODULES:
            real = getattr(asyncio, modname, None)
            if real is not None:
                api_proxies[real] = _ProxyModule(real, {n: v for n, v in api.items() if hasattr(real, n)})

    def uvcffi_loop_factory(self: Any) -> Any:
        return uvcffi.new_event_loop()

    module = sel.module
    package = module.__name__.rpartition(".")[0]
    out: Dict[str, type] = {}
    for cls in sel.classes:
        if not sel.parametrized[cls.__name__] and not task_layer:
            continue
        overrides: Dict[str, Any] = {}
        seen: set = set()
        for klass in cls.__mro__:
            if not klass.__module__.startswith(package):
                continue
            for name, value in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)
                kind = _impl_refs(name, value)
                if kind == "value":
                    obj, wrapper = _unwrap(value)
                    new = objects[_IMPLS[id(obj)][1]]
                    overrides[name] = wrapper(new) if wrapper else new
                elif kind == "loop":
                    overrides[name] = uvcffi_loop_factory
                elif kind == "code":
                    func, wrapper = _unwrap(value)
                    new = _rebind(func, api_proxies or proxies)
                    overrides[name] = wrapper(new) if wrapper else new
                elif task_layer and _function_of(value) is not None:
                    func, wrapper = _unwrap(value)
                    new = _rebind(func, api_proxies)
                    overrides[name] = wrapper(new) if wrapper else new
        name = cls.__name__ + SUFFIX
        overrides["__uvcffi_parametrized__"] = sel.parametrized[cls.__name__]
        if task_layer:  # the tests whose own code calls a swapped function (they meet uvcffi)
            overrides["__uvcffi_api_tests__"] = frozenset(
                name for name in dir(cls) if name.startswith("test")
                and (func := _function_of(getattr(cls, name))) is not None
                and _code_names(func.__code__) & set(api))
        variant = type(name, (cls,), overrides)
        variant.__module__ = module.__name__
        variant.__qualname__ = name
        setattr(module, name, variant)
        out[cls.__name__] = variant
    return out


def asyncio_class_of(test_id: str) -> str:
    """The id of the asyncio test a uvcffi test id derives from (``X__uvcffi`` -> ``X``)."""
    return test_id.replace(SUFFIX, "")


def describe(sel: Selection) -> List[str]:
    lines = []
    for cls in sel.classes:
        lines.append(f"{cls.__name__}: {'uvcffi variant' if sel.parametrized[cls.__name__] else 'as is'}")
    for name, best in sel.dropped.items():
        lines.append(f"{name}: not run (same tests as {best})")
    return lines

