"""Run one module of CPython's ``test.test_asyncio`` in this process, on asyncio or on uvcffi.

    python tests/cpython/worker.py MODULE {asyncio,uvcffi} OUT.jsonl [SKIP.txt]

``run.py`` starts one of these per module and mode, each in its own process. The worker appends
one JSON line per event to OUT.jsonl and flushes it at once, so that the parent still knows what
finished, and which test was running, when a test hangs or the interpreter crashes: ``start``
before a test runs, ``result`` after it (``pass``, ``fail``, ``error``, ``skip``, ``xfail``,
``xpass``), ``fixture`` for an error outside any test (``setUpClass``, ``setUpModule``...),
``module`` for a module that cannot be imported or skips itself. The ids listed in SKIP.txt are not
run: the parent passes those that already ended when it starts the module again after a hang.

In the uvcffi mode the worker, before it imports the module:

* makes uvcffi's ``EventLoopPolicy`` asyncio's default policy class, so that every
  ``asyncio.new_event_loop()``, ``asyncio.run()``, ``IsolatedAsyncioTestCase`` and
  ``set_event_loop_policy(None)`` of the tests gives a uvcffi loop (``asyncio.EventLoop``, 3.13's
  default loop class, stays asyncio's: test_runners checks that it is);
* counts the uvcffi loops created, so that each result says whether the test met uvcffi;

and it runs the uvcffi variants that ``variants.py`` builds in place of the parametrized classes.
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import os
import sys
import time
import traceback
import unittest
from typing import Any, Dict, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import variants  # noqa: E402
from run import TASK_LAYER  # noqa: E402

PACKAGE = "test.test_asyncio"
_loops_created = [0]


def install_uvcffi() -> Any:
    """Make uvcffi the loop of every asyncio entry point the tests use (see the module doc)."""
    import asyncio

    import uvcffi
    import uvcffi.loop

    loop_class = uvcffi.loop.Loop
    original_init = loop_class.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _loops_created[0] += 1
        original_init(self, *args, **kwargs)

    loop_class.__init__ = counting_init
    asyncio.DefaultEventLoopPolicy = uvcffi.EventLoopPolicy
    asyncio.set_event_loop_policy(None)
    policy = asyncio.get_event_loop_policy()
    if not isinstance(policy, uvcffi.EventLoopPolicy):
        raise RuntimeError(f"asyncio's default policy is still {policy!r}: this Python's "
                           "asyncio builds its default policy elsewhere; the runner needs updating")
    return uvcffi


def _where(tb: Any) -> Dict[str, Optional[str]]:
    """The innermost frame of a traceback, and the innermost one inside uvcffi."""
    inner = uv = None
    for frame, lineno in traceback.walk_tb(tb):
        name = frame.f_code.co_filename
        loc = f"{os.path.basename(name)}:{lineno} {frame.f_code.co_name}"
        inner = loc
        if os.sep + "uvcffi" + os.sep in name:
            uv = f"uvcffi/{name.rpartition(os.sep + 'uvcffi' + os.sep)[2]}:{lineno} {frame.f_code.co_name}"
    return {"where": inner, "uv_where": uv}


def _one_line(err: Any) -> str:
    etype, value, _ = err
    text = traceback.format_exception_only(etype, value)[-1].strip().replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


class RecordingResult(unittest.TestResult):
    """Writes each test's outcome to the events file as soon as it is known."""

    def __init__(self, out: Any, uvcffi_mode: bool) -> None:
        super().__init__()
        self.out = out
        self.uvcffi_mode = uvcffi_mode
        self.current: Optional[Dict[str, Any]] = None

    def emit(self, record: Dict[str, Any]) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    def startTest(self, test: Any) -> None:
        super().startTest(test)
        self.current = {"ev": "result", "id": test.id(), "outcome": "pass",
                        "t0": time.monotonic(), "loops0": _loops_created[0]}
        self.emit({"ev": "start", "id": test.id(), "time": time.time()})

    def _set(self, test: Any, outcome: str, err: Any = None, msg: Optional[str] = None) -> None:
        cur = self.current
        if cur is None or cur["id"] != test.id():  # an error outside a test: a fixture
            rec: Dict[str, Any] = {"ev": "fixture", "id": test.id(), "outcome": outcome}
            if err is not None:
                rec.update(msg=_one_line(err), tb=self._exc_info_to_string(err, test)[-6000:],
                           **_where(err[2]))
            rec["touched"] = self.uvcffi_mode and variants.SUFFIX in test.id()  # a class fixture
            self.emit(rec)
            return
        if cur["outcome"] in ("fail", "error"):
            return  # the first failure (a subtest's, say) is the one reported
        cur["outcome"] = outcome
        if err is not None:
            cur.update(msg=_one_line(err), tb=self._exc_info_to_string(err, test)[-6000:], **_where(err[2]))
        elif msg is not None:
            cur["msg"] = msg

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._set(test, "fail", err)

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._set(test, "error", err)

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._set(test, "skip", msg=str(reason)[:300])

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._set(test, "xfail", msg=_one_line(err))

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._set(test, "xpass")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(test, "fail" if failed else "error", err)

    def stopTest(self, test: Any) -> None:
        super().stopTest(test)
        cur = self.current
        if cur is not None and cur["id"] == test.id():
            cur["time"] = round(time.monotonic() - cur.pop("t0"), 3)
            loops0 = cur.pop("loops0")
            cur["touched"] = self.uvcffi_mode and (
                getattr(type(test), "__uvcffi_parametrized__", False)
                or _loops_created[0] != loops0
                or getattr(test, "_testMethodName", None) in getattr(type(test), "__uvcffi_api_tests__", ()))
            self.emit(cur)
        self.current = None


def _flatten(suite: Any) -> Any:
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


def main(argv: list) -> int:
    modname, mode, out_path = argv[:3]
    skip = set()
    if len(argv) > 3 and os.path.exists(argv[3]):
        with open(argv[3]) as f:
            skip = {line.strip() for line in f if line.strip()}
    if hasattr(faulthandler, "enable"):
        faulthandler.enable(all_threads=True)  # SIGABRT from the parent on a hang: a traceback
    with open(out_path, "a", buffering=1) as out:
        uvcffi = None
        try:
            if mode == "uvcffi":
                uvcffi = install_uvcffi()
            module = importlib.import_module(f"{PACKAGE}.{modname}")
        except unittest.SkipTest as exc:
            out.write(json.dumps({"ev": "module", "outcome": "skip", "msg": str(exc)}) + "\n")
            return 0
        except BaseException as exc:  # noqa: BLE001 - reported, then the parent decides
            out.write(json.dumps({"ev": "module", "outcome": "error", "msg": repr(exc)[:300],
                                  "tb": traceback.format_exc()[-6000:]}) + "\n")
            return 3
        sel = variants.select_classes(module)
        task_layer = modname in TASK_LAYER
        uv_classes = variants.make_variants(sel, uvcffi, task_layer) if uvcffi is not None else {}
        loader = unittest.TestLoader()
        suite = unittest.TestSuite()
        for cls in sel.classes:
            cls = uv_classes.get(cls.__name__, cls)
            for test in _flatten(loader.loadTestsFromTestCase(cls)):
                if test.id() not in skip:
                    suite.addTest(test)
        if not skip:
            out.write(json.dumps({"ev": "selection", "lines": variants.describe(sel)}) + "\n")
        result = RecordingResult(out, uvcffi_mode=uvcffi is not None)
        suite.run(result)
        out.write(json.dumps({"ev": "done", "run": result.testsRun}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
