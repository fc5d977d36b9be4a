"""The shape of the package, checked on its source (ARCHITECTURE.md states these rules).

1. The import graph of ``uvcffi`` has no cycle. Every import statement counts, those inside
   functions too: an import moved into a function to dodge a cycle at import time is still a
   cycle in the design. The implicit import of a parent package (``uvcffi.transports`` runs
   before ``uvcffi.transports.stream``) is not an edge: ``uvcffi/__init__.py`` re-exports the
   public API, so every module would otherwise close a circle through it. An import under
   ``if TYPE_CHECKING:`` is not an edge either: it is never executed, and only names a type
   for an annotation (a component's ``loop: Loop``), which mypy reads and Python does not.

2. No module writes another module's private attributes. A *write* is an assignment,
   augmented assignment or ``del`` of ``x._name`` or of ``x._name[...]``, or a call of a
   container mutator (``append``, ``add``, ``discard``, ...) on ``x._name``, where ``x`` is
   not ``self``/``cls``. It is allowed when a class of the same module declares ``_name`` as
   data (assigns ``self._name``/``cls._name``, or names it in its body or ``__slots__``): the
   classes of one module cooperate. A name a module defines only as a *method* does not count:
   storing a callable under a method's name on another object is grafting. Calling a method of
   a loop component (``loop._fds.add(...)``: the attributes ``Loop.__init__`` sets to an
   instance of a class) is the design's one hop, not a write.

   Without types the rule cannot tell apart two modules' attributes of one name (``_loop``,
   ``_closing``): such writes pass. It catches the clear cases, and ``KNOWN_WRITES`` lists
   today's, each with its reason; a new one fails the test, and an entry that no longer
   matches a write fails it too, so the list stays the truth.

Each checker is also run on small made-up sources, so a test that cannot fail is caught.
"""

from __future__ import annotations

import ast
import pathlib
from typing import Dict, Iterator, List, Set, Tuple

import uvcffi

PACKAGE = pathlib.Path(uvcffi.__file__).resolve().parent

_MUTATORS = {"append", "appendleft", "extend", "insert", "pop", "popleft", "remove", "discard",
             "add", "clear", "update", "setdefault"}


# --------------------------------------------------------------------------------- sources
def package_sources(root: pathlib.Path = PACKAGE, name: str = "uvcffi") -> Dict[str, Tuple[str, bool]]:
    """module name -> (source text, is a package's ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [name] + list(path.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        out[".".join(parts)] = (path.read_text(encoding="utf-8"), is_pkg)
    return out


# --------------------------------------------------------------------------------- imports
def _scopes(tree: ast.AST) -> Iterator[Tuple[ast.AST, str]]:
    """Every node with the name of the function it is in ("" at module or class level)."""
    stack: List[Tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, func = stack.pop()
        yield node, func
        inner = node.name if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def _type_checking_only(tree: ast.AST) -> Set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` (the body, not an ``else``)."""
    out: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
                or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")):
            out.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return out


def import_edges(sources: Dict[str, Tuple[str, bool]], top: str = "uvcffi"):
    """``{(importer, imported): [(line, function or "")]}`` for imports between the modules."""
    edges: Dict[Tuple[str, str], List[Tuple[int, str]]] = {}
    for mod, (text, is_pkg) in sources.items():
        tree = ast.parse(text)
        typing_only = _type_checking_only(tree)
        for node, func in _scopes(tree):
            if id(node) in typing_only:
                continue  # an annotation's import: never executed
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == top]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".")
                    if not is_pkg:
                        base.pop()
                    base = base[:len(base) - (node.level - 1)]
                    where = ".".join(base + ([node.module] if node.module else []))
                elif (node.module or "").split(".")[0] == top:
                    where = node.module
                else:
                    continue
                for alias in node.names:  # a submodule, or a name of the module `where`
                    sub = f"{where}.{alias.name}"
                    targets.append(sub if sub in sources else where)
            for target in targets:
                if target != mod and target in sources:
                    edges.setdefault((mod, target), []).append((node.lineno, func))
    return edges


def import_cycles(edges) -> List[List[str]]:
    """The cycles a depth-first search meets (each as a path that returns to its start)."""
    graph: Dict[str, List[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
    state: Dict[str, int] = {}
    path: List[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_import_graph_has_no_cycle():
    edges = import_edges(package_sources())
    assert ("uvcffi.loop", "uvcffi.read_engine") in edges  # the graph is really read
    assert import_cycles(edges) == []


def test_function_level_imports_are_known():
    """An import inside a function is a smell (it often hides a cycle): the ones that exist
    are listed here, with why they are not at the top."""
    edges = import_edges(package_sources())
    inner = sorted((a, b) for (a, b), where in edges.items() if any(func for _, func in where))
    assert inner == [], f"imports of uvcffi modules inside functions: {inner}"


def test_cycle_checker_fails_on_a_cycle():
    sources = {
        "pkg": ("", True),
        "pkg.a": ("from .b import x\n", False),
        "pkg.b": ("def f():\n    from . import c\n", False),  # inside a function: counts
        "pkg.c": ("import pkg.a\n", False),
        "pkg.d": ("from .sub import e\n", False),
        "pkg.sub": ("", True),
        "pkg.sub.e": ("from .. import d\n", False),
        # for annotations only: not an edge (but the else branch runs, and is one)
        "pkg.f": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .g import G\n"
                  "else:\n    from . import a\n", False),
        "pkg.g": ("from . import f\n", False),
    }
    edges = import_edges(sources, top="pkg")
    assert edges[("pkg.b", "pkg.c")] == [(2, "f")]
    assert ("pkg.f", "pkg.g") not in edges and ("pkg.f", "pkg.a") in edges
    cycles = import_cycles(edges)
    assert ["pkg.a", "pkg.b", "pkg.c", "pkg.a"] in cycles
    assert ["pkg.d", "pkg.sub.e", "pkg.d"] in cycles
    assert not any("pkg.g" in cycle for cycle in cycles)


# --------------------------------------------------------------------------------- private writes
def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def declared_data(tree: ast.AST) -> Set[str]:
    """The data attributes the module's classes declare (not their methods)."""
    names: Set[str] = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _is_self(node.value):
                names.add(node.attr)
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign):
                targets = stmt.targets
            elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
                targets = [stmt.target]
            else:
                continue
            for t in targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
                    if t.id == "__slots__" and isinstance(stmt.value, (ast.Tuple, ast.List)):
                        names.update(e.value for e in stmt.value.elts if isinstance(e, ast.Constant))
    return names


def loop_components(sources) -> Set[str]:
    """The attributes ``Loop.__init__`` sets to an instance of a class: the loop's components."""
    tree = ast.parse(sources["uvcffi.loop"][0])
    names = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Loop"):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"):
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                        isinstance(node.value.func, ast.Name) and node.value.func.id[:1].isupper():
                    names.update(t.attr for t in node.targets
                                 if isinstance(t, ast.Attribute) and _is_self(t.value))
    return names


def private_writes(sources, components: Set[str] = frozenset()) -> Set[Tuple[str, str, str]]:
    """``{(module, function, written expression)}`` that break rule 2 (module docstring)."""
    found = set()
    for mod, (text, _) in sources.items():
        tree = ast.parse(text)
        own = declared_data(tree)
        for node, func in _scopes(tree):
            hits = []
            if isinstance(node, (ast.Assign, ast.Delete)):
                stack = list(node.targets)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                stack = [node.target]
            else:
                stack = []
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                        node.func.attr in _MUTATORS and isinstance(node.func.value, ast.Attribute) and \
                        node.func.value.attr not in components:
                    hits.append(node.func.value)
            while stack:
                t = stack.pop()
                if isinstance(t, (ast.Tuple, ast.List)):
                    stack.extend(t.elts)
                    continue
                if isinstance(t, ast.Subscript):
                    t = t.value
                if isinstance(t, ast.Attribute):
                    hits.append(t)
            for t in hits:
                if _is_private(t.attr) and not _is_self(t.value) and t.attr not in own:
                    found.add((mod, func, ast.unparse(t)))
    return found


# Today's writes into another module's private state: (module, function, expression) -> why.
# Remove an entry with the write it names; never add one without a reason.
KNOWN_WRITES = {
    # asyncio's own protocol attributes, written as asyncio itself writes them
    ("uvcffi.loop", "run_until_complete", "future._log_destroy_pending"):
        "asyncio's run_until_complete does the same to the task it makes",
    ("uvcffi.tasks", "coroutine", "wrapper._is_coroutine"):
        "asyncio's @coroutine marker on the function it returns (deprecated API)",
    # the task layer's hand-inlined constructors (measured; the factory is named beside each)
    ("uvcffi.loop", "create_future", "fut._state"): "futures._FutureCore._setup inlined (perf)",
    ("uvcffi.loop", "create_future", "fut._result"): "futures._FutureCore._setup inlined (perf)",
    ("uvcffi.loop", "create_future", "fut._exception"): "futures._FutureCore._setup inlined (perf)",
    ("uvcffi.loop", "create_future", "fut._callbacks"): "futures._FutureCore._setup inlined (perf)",
    ("uvcffi.loop", "create_future", "fut._asyncio_future_blocking"):
        "futures._FutureCore._setup inlined (perf)",
    ("uvcffi.tasks", "__init__", "wake._callback"): "the Task's step Handle, built inline (perf)",
    ("uvcffi.tasks", "__init__", "wake._args"): "the Task's step Handle, built inline (perf)",
    ("uvcffi.tasks", "__init__", "wake._cancelled"): "the Task's step Handle, built inline (perf)",
    ("uvcffi.tasks", "__init__", "wake._repr"): "the Task's step Handle, built inline (perf)",
    ("uvcffi.tasks", "_task_failed", "task._exception_tb"):
        "futures._FutureCore.set_exception inlined in Task._step's failure path (perf)",
    # components that put callbacks straight into the loop's ready queue
    ("uvcffi.fds", "on_poll", "fds._loop._ready"): "a ready fd watch queues its Handle itself",
    ("uvcffi.signals", "handle", "loop._ready"): "a signal queues its handler's Handle itself",
    # handles register themselves in the loop's set of live handles (handles/base.py rule 3)
    ("uvcffi.handles.base", "_registered", "self._loop._live_handles"): "handle lifetime rule 3",
    ("uvcffi.handles.base", "_on_closed", "self._loop._live_handles"): "handle lifetime rule 3",
    ("uvcffi.handles.process", "__init__", "loop._live_handles"): "handle lifetime rule 3 (uv_spawn)",
}


def test_no_new_private_writes():
    sources = package_sources()
    found = private_writes(sources, loop_components(sources))
    new = sorted(found - set(KNOWN_WRITES))
    assert new == [], "writes into another module's private attributes (see the module docstring)"


def test_known_private_writes_still_exist():
    sources = package_sources()
    found = private_writes(sources, loop_components(sources))
    gone = sorted(set(KNOWN_WRITES) - found)
    assert gone == [], "these writes are gone: remove them from KNOWN_WRITES"


def test_components_are_found():
    assert {"_reads", "_fds", "_resolver", "_signals", "_timer"} <= loop_components(package_sources())


def test_private_write_checker_fails_on_a_write():
    sources = {
        "pkg.a": ("class A:\n"
                  "    __slots__ = ('_s',)\n"
                  "    _k = 0\n"
                  "    def __init__(self):\n"
                  "        self._x = 1\n"
                  "    def _meth(self):\n"
                  "        pass\n"
                  "def f(a, b, loop):\n"
                  "    a._x = 2\n"          # declared here: allowed
                  "    a._s = 2\n"          # in __slots__: allowed
                  "    a._k += 1\n"         # in the class body: allowed
                  "    b._y = 3\n"          # nobody here declares _y
                  "    b._meth = f\n"       # a method's name: grafting
                  "    del b._z\n"
                  "    b._w[0] = 1\n"
                  "    b.c._q.append(1)\n"
                  "    loop._fds.add(1)\n"  # a component's method
                  "    self = b\n"
                  "    self._ok = 1\n", False),
    }
    found = private_writes(sources, {"_fds"})
    assert found == {("pkg.a", "f", e) for e in ("b._y", "b._meth", "b._z", "b._w", "b.c._q")}
