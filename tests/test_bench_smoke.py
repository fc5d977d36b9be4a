"""The benchmark runner cannot silently break: run ``python -m bench --smoke`` and check its output.

A subset of workloads (the scheduling microbenchmarks and the 1 KiB TCP protocol echo with its C
reference when a C compiler is present, in two interleaved slices per round), on asyncio and on
uvcffi when it imports, with tiny counts; the test checks the table and the JSON, not the speed.
"""

from __future__ import annotations

import importlib.util
import json
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
