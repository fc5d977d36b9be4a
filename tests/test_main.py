"""``python -m uvcffi script.py`` / ``python -m uvcffi -m module``, in subprocesses.

The oracle is the interpreter itself: the same program run as ``python script.py args`` (or
``python -m module args``) must print the same things (argv, ``__name__``, ``sys.path[0]``, a
sibling import, results) except the class of the loops it got, which must be uvcffi's under
``python -m uvcffi`` and asyncio's otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent("""
    import asyncio, json, os, sys, warnings
    import helper  # a sibling module: the script's directory is first on sys.path

    def kind(loop):
        return "uvcffi" if type(loop).__module__.startswith("uvcffi") else "asyncio"

    async def main(n):
        await asyncio.sleep(0)
        return kind(asyncio.get_running_loop()), n * 2

    out = {"argv": sys.argv[1:], "name": __name__, "path0": os.path.realpath(sys.path[0]),
           "helper": helper.VALUE, "argv0": os.path.basename(sys.argv[0])}
    if sys.version_info < (3, 14):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop()
        out["get_event_loop"] = kind(loop)
        loop.close()
        asyncio.set_event_loop(None)
    out["run"] = asyncio.run(main(21))
    loop = asyncio.new_event_loop()
    out["new_event_loop"] = loop.run_until_complete(main(1))
    loop.close()
    if hasattr(asyncio, "Runner"):
        with asyncio.Runner() as runner:
            out["runner"] = runner.run(main(2))
    print(json.dumps(out))
""")


def run(args, cwd, **kw):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.fixture
def program(tmp_path):
    d = tmp_path / "prog"
    d.mkdir()
    (d / "helper.py").write_text("VALUE = 'sibling'\n")
    (d / "script.py").write_text(PROGRAM)
    pkg = d / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(PROGRAM)
    return d


def loops_of(out: dict) -> set:
    return {v[0] if isinstance(v, list) else v for k, v in out.items()
            if k in ("run", "new_event_loop", "get_event_loop", "runner")}


def strip_loops(out: dict) -> dict:
    return {k: (v[1:] if isinstance(v, list) else None) if k in (
        "run", "new_event_loop", "get_event_loop", "runner") else v for k, v in out.items()}


def test_script_runs_unchanged_on_uvcffi(program, tmp_path):
    script = str(program / "script.py")
    direct = run([script, "a", "--flag"], cwd=tmp_path)
    swapped = run(["-m", "uvcffi", script, "a", "--flag"], cwd=tmp_path)
    assert direct.returncode == 0, direct.stderr
    assert swapped.returncode == 0, swapped.stderr
    d, s = json.loads(direct.stdout), json.loads(swapped.stdout)
    assert loops_of(d) == {"asyncio"}
    assert loops_of(s) == {"uvcffi"}
    assert strip_loops(s) == strip_loops(d)
    assert s["argv"] == ["a", "--flag"] and s["name"] == "__main__" and s["run"] == ["uvcffi", 42]
    assert s["path0"] == os.path.realpath(program) and s["argv0"] == "script.py"
    assert swapped.stderr == ""


def test_module_runs_unchanged_on_uvcffi(program):
    # helper.py is found because -m puts the current directory first on sys.path, as python -m
    direct = run(["-m", "pkg", "x"], cwd=program)
    swapped = run(["-m", "uvcffi", "-m", "pkg", "x"], cwd=program)
    assert direct.returncode == 0, direct.stderr
    assert swapped.returncode == 0, swapped.stderr
    d, s = json.loads(direct.stdout), json.loads(swapped.stdout)
    assert loops_of(d) == {"asyncio"} and loops_of(s) == {"uvcffi"}
    assert strip_loops(s) == strip_loops(d)
    assert s["argv"] == ["x"] and s["argv0"] == "__main__.py" and s["path0"] == os.path.realpath(program)


def test_missing_script(tmp_path):
    r = run(["-m", "uvcffi", "nothere.py", "arg"], cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == (f"python -m uvcffi: can't open file {str(tmp_path / 'nothere.py')!r}: "
                        "[Errno 2] No such file or directory\n")
    assert r.stdout == ""


def test_missing_module(tmp_path):
    r = run(["-m", "uvcffi", "-m", "no_such_module_here"], cwd=tmp_path)
    assert (r.returncode, r.stderr) == (1, "python -m uvcffi: no module named no_such_module_here\n")
    r = run(["-m", "uvcffi", "-m", "no_such_pkg.mod"], cwd=tmp_path)
    assert r.returncode == 1 and "no_such_pkg" in r.stderr


@pytest.mark.parametrize("args, message", [
    ([], "a script or -m module is required"),
    (["-m"], "argument -m: expected a module name"),
    (["--bogus"], "unknown option --bogus"),
])
def test_usage_errors(tmp_path, args, message):
    r = run(["-m", "uvcffi", *args], cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["usage: python -m uvcffi [-h] (script.py | -m module) [args ...]",
                                     f"python -m uvcffi: {message}"]


def test_help(tmp_path):
    r = run(["-m", "uvcffi", "--help"], cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m uvcffi") and r.stderr == ""


def test_program_that_is_not_asyncio_is_named(tmp_path):
    (tmp_path / "plain.py").write_text("print('hello')\n")
    r = run(["-m", "uvcffi", "plain.py"], cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "hello\n")
    assert r.stderr.startswith("python -m uvcffi: plain.py finished without asking asyncio for an event loop")


def test_program_exit_status_and_traceback_are_its_own(tmp_path):
    (tmp_path / "exits.py").write_text("import asyncio, sys\nasync def m():\n    return 3\n"
                                       "sys.exit(asyncio.run(m()))\n")
    (tmp_path / "raises.py").write_text("import asyncio\nasync def m():\n    raise LookupError('boom')\n"
                                        "asyncio.run(m())\n")
    for name, status in (("exits.py", 3), ("raises.py", 1)):
        direct = run([name], cwd=tmp_path)
        swapped = run(["-m", "uvcffi", name], cwd=tmp_path)
        assert direct.returncode == swapped.returncode == status
        assert direct.stderr.splitlines()[-1:] == swapped.stderr.splitlines()[-1:]
    assert swapped.stderr.splitlines()[-1] == "LookupError: boom"


def test_new_event_loop_takes_no_arguments_as_a_loop_factory():
    """uvicorn (--loop uvcffi:new_event_loop), anyio and asyncio.Runner call the factory bare."""
    import uvcffi

    loop = uvcffi.new_event_loop()
    try:
        assert isinstance(loop, uvcffi.Loop)
        assert loop.run_until_complete(uvcffi.sleep(0, "ok")) == "ok"
    finally:
        loop.close()
