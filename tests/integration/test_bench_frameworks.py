"""The framework benchmark rows (bench/bench_http_frameworks.py) run on both loops: each app answers
wrk with 200s only (the workload raises otherwise) and its 1 KiB JSON body is what it claims.
Speed is not checked here; `python -m bench --only 'http_*'` measures it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytest.importorskip("aiohttp")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import _harness, bench_http_frameworks  # noqa: E402


def test_payload_is_one_kib():
    assert len(json.dumps(bench_http_frameworks.PAYLOAD).encode()) == 1024


@pytest.mark.parametrize("workload", sorted(bench_http_frameworks.WORKLOADS))
def test_workload_serves_wrk(loop, workload):
    if shutil.which("wrk") is None:
        pytest.skip("needs wrk (bash bench/setup.sh installs it)")
    fn, n, _ = bench_http_frameworks.WORKLOADS[workload]
    saved = _harness.duration()
    _harness.set_duration(1.0)
    try:
        result = fn(loop, n)
    except _harness.Skip as e:  # a framework part missing here (httptools on PyPy)
        pytest.skip(str(e))
    finally:
        _harness.set_duration(saved)
    assert result["ops"] > 0 and result["seconds"] > 0 and result["cpu"] > 0


@pytest.mark.parametrize("workload", sorted(bench_http_frameworks.WORKLOADS))
def test_workload_serves_a_counted_load(loop, workload):
    # bench.instructions' way: n > 1 is a request count, served by bench/c/http_client exactly
    failures = _harness.build_tools()
    if "http_client" in failures:
        pytest.skip(failures["http_client"])
    fn, _, _ = bench_http_frameworks.WORKLOADS[workload]
    saved = _harness.duration()
    _harness.set_duration(30.0)
    try:
        result = fn(loop, 300)
    except _harness.Skip as e:
        pytest.skip(str(e))
    finally:
        _harness.set_duration(saved)
    assert result["ops"] == 300 and result["seconds"] > 0
