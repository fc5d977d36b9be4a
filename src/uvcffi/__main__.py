"""``python -m uvcffi``: run an existing asyncio program, unchanged, on uvcffi's loop.

    python -m uvcffi script.py [args ...]
    python -m uvcffi -m package.module [args ...]

The program runs as ``python script.py`` / ``python -m package.module`` would run it: as
``__main__``, with ``sys.argv`` set to the script (or the module's file) and its arguments, and
with the script's directory (or, for ``-m``, the current directory) first on ``sys.path``.

How the loop is swapped: before the program starts, ``asyncio``'s event loop policy becomes
uvcffi's (``uvcffi.EventLoopPolicy``). Every path through which an asyncio program gets a loop
without naming one goes through the policy on CPython 3.9-3.13 and PyPy 3.9: ``asyncio.run``,
``asyncio.Runner`` without ``loop_factory``, ``asyncio.new_event_loop`` and the implicit loop of
``asyncio.get_event_loop``. A program that names its loop (``loop_factory=``, a loop class
instantiated directly) keeps it. Policies are deprecated from Python 3.14 (and announced for
removal in 3.16): there this still works, with asyncio's ``DeprecationWarning`` silenced here.

When the program ends without having asked for a loop, a note on stderr says that it ran without
uvcffi (it is not an asyncio program, or it builds its loop itself); the exit status is the
program's own. Errors of this command exit with status 2 (usage, missing script) or 1 (missing
module), worded as Python's own.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
import warnings
from typing import List, Optional

from .loop import Loop
from .policy import EventLoopPolicy

__all__ = ["main"]

USAGE = "usage: python -m uvcffi [-h] (script.py | -m module) [args ...]"
HELP = f"""{USAGE}

Run an asyncio program on uvcffi's event loop, unchanged: its asyncio.run(),
asyncio.Runner(), asyncio.new_event_loop() and asyncio.get_event_loop() give uvcffi loops.

  script.py      the program's file (or a directory / zip file with __main__.py)
  -m module      run a module as `python -m module` would
  args           passed to the program in sys.argv[1:]
"""


class _MainPolicy(EventLoopPolicy):
    """uvcffi's policy, counting the loops it made (for the note on programs that made none)."""

    loops_made = 0

    def new_event_loop(self) -> Loop:
        self.loops_made += 1
        return super().new_event_loop()


def _install_policy() -> _MainPolicy:
    policy = _MainPolicy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.14+: policies are deprecated
        asyncio.set_event_loop_policy(policy)
    return policy


def _fail(message: str, status: int, usage: bool = False) -> int:
    if usage:
        print(USAGE, file=sys.stderr)
    print(f"python -m uvcffi: {message}", file=sys.stderr)
    return status


def main(argv: Optional[List[str]] = None) -> int:
    """Run the program that ``argv`` names; return the exit status when it returns normally.

    The program's own ``SystemExit`` and exceptions propagate (the interpreter prints and exits
    as for ``python script.py``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return _fail("a script or -m module is required", 2, usage=True)
    if args[0] in ("-h", "--help"):
        print(HELP, end="")
        return 0
    if args[0] == "-m":
        if len(args) < 2:
            return _fail("argument -m: expected a module name", 2, usage=True)
        module, prog_args = args[1], args[2:]
        sys.path[0] = os.getcwd()
        try:
            spec_found = _module_exists(module)
        except ImportError as exc:
            return _fail(f"error while finding module specification for {module!r} ({exc})", 1)
        if not spec_found:
            return _fail(f"no module named {module}", 1)
        policy = _install_policy()
        sys.argv[:] = [module, *prog_args]  # runpy puts the module's file in argv[0]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        what = f"module {module}"
    else:
        if args[0].startswith("-"):
            return _fail(f"unknown option {args[0]}", 2, usage=True)
        script, prog_args = args[0], args[1:]
        if not os.path.exists(script):
            return _fail(f"can't open file {os.path.abspath(script)!r}: [Errno 2] No such file or directory",
                         2)
        path = os.path.dirname(os.path.abspath(script)) if os.path.isfile(script) else os.path.abspath(script)
        sys.path[0] = path
        sys.argv[:] = [script, *prog_args]
        policy = _install_policy()
        runpy.run_path(script, run_name="__main__")
        what = script
    if policy.loops_made == 0:
        print(f"python -m uvcffi: {what} finished without asking asyncio for an event loop: it ran "
              "without uvcffi (not an asyncio program, or one that makes its loop itself)", file=sys.stderr)
    return 0


def _module_exists(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main())
