"""The benchmark runner cannot silently break: run ``python -m bench --smoke`` and check its output.

The cross-interpreter test runs loops of PyPy's venv beside CPython's (or the reverse under PyPy)
in one run, when that venv exists with uvcffi built.

A subset of workloads (the scheduling microbenchmarks and the 1 KiB TCP protocol echo with its C
reference when a C compiler is present, in two interleaved slices per round), on asyncio and on
uvcffi when it imports, with tiny counts; the test checks the table and the JSON, not the speed.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _uvcffi_loop_works() -> bool:
    try:
        import uvcffi

        loop = uvcffi.new_event_loop()
        loop.close()
        return True
    except Exception:
        return False


@pytest.mark.timeout(120)
def test_bench_smoke(tmp_path: Path) -> None:
    if not (REPO / "bench" / "run.py").exists():
        pytest.skip("no bench/ runner in this tree")
    loops = ["asyncio"]
    if _uvcffi_loop_works():
        loops.append("uvcffi")
    cmd = [
        sys.executable, "-m", "bench", "--smoke", "--json", "--out", str(tmp_path),
        "--loops", ",".join(loops), "--only", "bench_loop.*", "--only", "tcp_proto_1k",
        "--slices", "2",
    ]
    if importlib.util.find_spec("matplotlib") is None:
        cmd.append("--no-chart")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # a progress line per measurement
    assert "[1/2] call_soon" in proc.stdout and "[2/2] call_soon" in proc.stdout, proc.stdout

    md = (tmp_path / "latest.md").read_text()
    assert "| workload |" in md and "| call_soon |" in md, md
    for loop in loops:
        assert f"| {loop} |" in md, md

    run = json.loads((tmp_path / "latest.json").read_text())
    assert run["meta"]["mode"] == "smoke" and run["meta"]["baseline"] == "asyncio"
    assert run["meta"]["slices"] == 2 and run["meta"]["duration_s"] == 0.1
    assert set(loops) <= set(run["loops"])
    assert all(run["loops"][lp].get("version") for lp in loops)
    by_name = {wl["name"]: wl for wl in run["workloads"]}
    assert {"call_soon", "call_later_fire", "call_later_cancel", "call_soon_threadsafe"} <= set(by_name)
    for name in ("call_soon", "call_later_fire", "call_later_cancel", "call_soon_threadsafe"):
        wl = by_name[name]
        assert wl["n"] >= 1
        res = wl["results"]["asyncio"]
        assert res["status"] == "ok", (name, wl["status"])
        assert 1e3 < res["ops_s"] < 1e9, (name, res)
        assert res["ops_s_min"] <= res["ops_s"] <= res["ops_s_max"]
        if "uvcffi" in loops and wl["results"]["uvcffi"]["status"] == "ok":
            u = wl["results"]["uvcffi"]
            assert 0.01 < u["ratio"] < 100 and u["ratio_min"] <= u["ratio"] <= u["ratio_max"], (name, u)

    echo = by_name.get("tcp_proto_1k")
    if echo is not None and shutil.which("cc"):
        res = echo["results"]["asyncio"]
        assert echo["server"] is True
        assert res["status"] == "ok", echo["status"]
        assert res["ops_s"] > 100 and res["eff"] > 100, res
        ref = echo["results"].get("epoll (C)")
        assert ref and ref["status"] == "ok" and ref["ops_s"] > 100, ref
        # a round's server sample sums its two slices of 0.05 s: about 0.1 s of load, and its
        # operations over that time (one slice alone would be about 0.05 s, a whole-duration
        # one 0.1 s, two of those 0.2 s)
        for loop in loops + ["epoll (C)"]:
            for sample in echo["samples"][loop]:
                assert sample is not None, (loop, "a round failed", echo["status"], proc.stdout[-2000:])
                assert sample["slices"] == 2, (loop, sample)
                assert 0.08 < sample["seconds"] < 0.16, (loop, sample)
                assert sample["rate"] == pytest.approx(sample["ops"] / sample["seconds"]), sample

    if "--no-chart" not in cmd:
        png = tmp_path / "latest.png"
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _other_interpreter() -> tuple:
    """The interpreter of the cross-interpreter run: PyPy's venv from CPython, CPython's from
    PyPy, as bench/loops.py resolves ``@pypy`` / ``@cpython``; (label, path, why-not)."""
    on_pypy = platform.python_implementation() == "PyPy"
    other, venv = ("cpython", ".venv") if on_pypy else ("pypy", ".venv-pypy")
    exe = REPO / venv / "bin" / "python"
    if not exe.exists():
        return other, None, f"{venv}/bin/python does not exist (make {venv}/.build-stamp makes it)"
    probe = subprocess.run(
        [str(exe), "-c", "import uvcffi; uvcffi.new_event_loop().close()"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    if probe.returncode != 0:
        return other, None, f"uvcffi does not import under {venv}/bin/python: {probe.stderr.strip()[-300:]}"
    return other, exe, None


def test_bench_pair_ratio_is_the_median_of_per_round_ratios() -> None:
    """A pair column divides the two loops' samples round by round and takes the median (not the
    ratio of the medians), by ops/s and by requests per server CPU-second; a round that either
    loop lost is left out; a row whose client was 90%+ busy is marked in the throughput table."""
    sys.path.insert(0, str(REPO))
    try:
        from bench import report, run
    finally:
        sys.path.remove(str(REPO))
    wl = run.Workload("bench_tcp", "tcp_proto_1k", 1, {}, server=True)
    wl.samples = {
        "uvcffi@pypy": [{"rate": 10.0, "eff": 20.0, "client_load": 0.95}, {"rate": 30.0, "eff": 10.0,
                        "client_load": 0.95}, {"rate": 20.0, "eff": 10.0, "client_load": 0.95}],
        "uvloop": [{"rate": 10.0, "eff": 10.0, "client_load": 0.5}, {"rate": 10.0, "eff": 10.0,
                   "client_load": 0.5}, None],
    }
    results = run.summarize(wl, ["uvcffi@pypy", "uvloop"], "uvloop")
    pair = run.pair_ratios(wl, "uvcffi@pypy", "uvloop", results)
    # rounds 1 and 2 only: 10/10 and 30/10 by ops/s, 20/10 and 10/10 by server CPU (the ratio of
    # the medians would be 2.0 and 1.0)
    assert (pair["ratio"], pair["ratio_min"], pair["ratio_max"]) == (2.0, 1.0, 3.0), pair
    assert (pair["eff_ratio"], pair["eff_ratio_min"], pair["eff_ratio_max"]) == (1.5, 1.0, 2.0), pair
    assert pair["client_load"] == 0.95, pair

    label = "uvcffi@pypy ÷ uvloop"
    doc = {
        "meta": {"date": "d", "command": "c", "mode": "quick", "rounds": 3, "elapsed_s": 1, "duration_s": 0.5,
                 "python": "CPython 3.11.7", "baseline": "uvloop",
                 "machine": {"cpu": "x", "cores": 2, "os": "Linux", "server_cpu": 0, "client_cpu": 1}},
        "loops": {"uvcffi@pypy": {"python": "PyPy 3.9.16"}, "uvloop": {"python": "CPython 3.11.7"}},
        "columns": ["uvcffi@pypy", "uvloop"],
        "pairs": [{"label": label, "num": "uvcffi@pypy", "den": "uvloop"}],
        "workloads": [{"name": "tcp_proto_1k", "server": True, "results": results, "pairs": {label: pair}}],
    }
    md = report.markdown(doc)
    assert "| tcp_proto_1k | " in md and f"**{label}** |" in md, md
    rows = [line for line in md.splitlines() if line.startswith("| tcp_proto_1k |")]
    assert rows[0].endswith("| 2.00 [1.00–3.00] † |"), rows  # throughput: client-bound
    assert rows[1].endswith("| 1.50 [1.00–2.00] |"), rows    # per server CPU-second
    pair["client_load"] = 0.5
    rows = [line for line in report.markdown(doc).splitlines() if line.startswith("| tcp_proto_1k |")]
    assert rows[0].endswith("| 2.00 [1.00–3.00] |"), rows


@pytest.mark.timeout(180)
def test_bench_smoke_cross_interpreter(tmp_path: Path) -> None:
    """Loops of two interpreters in one interleaved run: ``uvcffi@pypy`` beside ``uvcffi`` (and
    uvloop on CPython when installed) with the other interpreter recorded, its loops' columns in
    the table, and the pair ratios (``--ratio``, and uvcffi on PyPy over uvloop on CPython)."""
    if not (REPO / "bench" / "run.py").exists():
        pytest.skip("no bench/ runner in this tree")
    if not _uvcffi_loop_works():
        pytest.skip("uvcffi does not import under this interpreter")
    other, exe, why = _other_interpreter()
    if exe is None:
        pytest.skip(why)
    here = "pypy" if other == "cpython" else "cpython"
    theirs = [f"uvcffi@{other}", f"asyncio@{other}"]
    # uvloop on CPython: the runner's own loop (named uvloop, the @ of the runner's interpreter
    # dropped), or one of the other interpreter's
    uvloop = "uvloop" if here == "cpython" else "uvloop@cpython"
    loops = ["asyncio", "uvcffi", *theirs, "uvloop@cpython", f"asyncio@{here}"]
    cmd = [
        sys.executable, "-m", "bench", "--smoke", "--json", "--out", str(tmp_path),
        "--loops", ",".join(loops), "--only", "call_soon", "--only", "sleep0_switch",
        "--only", "tcp_proto_1k", "--no-reference", "--ratio", f"uvcffi@{other}/uvcffi",
    ]
    if importlib.util.find_spec("matplotlib") is None:
        cmd.append("--no-chart")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(rf"^\[2/2\] call_soon +uvcffi@{other} ", proc.stdout, re.M), proc.stdout

    run = json.loads((tmp_path / "latest.json").read_text())
    impl = {"pypy": "PyPy", "cpython": "CPython"}
    # asyncio@<the runner's own interpreter> is asyncio again: not run twice
    assert f"asyncio@{here}" not in run["loops"]
    assert any(f"loop asyncio@{here} skipped: the same loop on the same interpreter as asyncio" in n
               for n in run["notes"]), run["notes"]
    assert "uvloop@cpython" not in run["loops"] or here == "pypy", run["loops"]
    for name in theirs:
        info = run["loops"][name]
        assert info["implementation"] == impl[other] and Path(info["executable"]) == exe, info
        assert info["jit"] is (other == "pypy"), info
    assert run["loops"]["uvcffi"]["implementation"] == impl[here]
    interps = run["meta"]["interpreters"]
    assert len(interps) == 2, interps
    theirs_entry = interps[str(exe.relative_to(REPO))]
    assert theirs_entry["implementation"] == impl[other] and not theirs_entry["runner"]
    assert set(theirs) <= set(theirs_entry["loops"]), interps

    labels = [p["label"] for p in run["pairs"]]
    asked = f"uvcffi@{other} ÷ uvcffi"
    assert asked in labels, labels
    pypy_uvcffi = "uvcffi@pypy" if other == "pypy" else "uvcffi"
    default = f"{pypy_uvcffi} ÷ {uvloop}"
    assert (default in labels) == (uvloop in run["loops"]), (labels, run["notes"])
    by_name = {wl["name"]: wl for wl in run["workloads"]}
    for name in ("call_soon", "sleep0_switch"):
        wl = by_name[name]
        assert wl["results"][f"uvcffi@{other}"]["status"] == "ok", wl["status"]
        for label in labels:
            pair = wl["pairs"][label]
            assert 0.01 < pair["ratio"] < 100, pair
            assert pair["ratio_min"] <= pair["ratio"] <= pair["ratio_max"], pair
            assert "eff_ratio" not in pair, pair  # counted rows: no server CPU
    echo = by_name.get("tcp_proto_1k")
    if echo is not None and shutil.which("cc"):
        pair = echo["pairs"][asked]
        assert echo["server"] and 0.01 < pair["eff_ratio"] < 100, (pair, echo["status"])
        assert 0 < pair["client_load"] <= 1.5, pair

    md = (tmp_path / "latest.md").read_text()
    assert f"| uvcffi@{other} | {run['loops'][f'uvcffi@{other}']['python']} |" in md, md
    assert md.count(f"**{asked}**") >= 2, md  # throughput and server efficiency tables
    assert "Interpreters: " in md, md
    if "--no-chart" not in cmd:
        assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="bench.instructions needs valgrind")
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="the load client needs a C compiler")
def test_bench_instructions_counts_per_request() -> None:
    """bench.instructions reports a plausible instruction count per request for each loop."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "unix_proto_1k", "--loops", "asyncio,uvcffi",
         "--small", "300", "--large", "1200"],
        cwd=str(REPO), capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = dict(line.split() for line in proc.stdout.splitlines()[1:])
    assert set(counts) == {"asyncio", "uvcffi"}, proc.stdout
    for loop, n in counts.items():
        # a Python echo server runs thousands of instructions per request, never a handful
        # or millions: anything else means the two runs' difference is not per-request work
        assert 1_000 < float(n) < 200_000, (loop, proc.stdout)
