"""The scheduling and task workloads as pytest-benchmark microbenchmarks (issue 2's first form).

    .venv/bin/python -m pytest bench/test_pytest_benchmark.py --benchmark-group-by=param:workload

Each test runs one workload of bench_loop.py / bench_tasks.py on one loop, a fixed count per
round on a fresh loop. pytest-benchmark reports time per round; the ``ops_per_s`` extra info is
the count divided by the mean. The side-by-side table with ratios is ``python -m bench``; this
file exists for pytest-benchmark's own tooling (``--benchmark-compare``, histograms, saved runs).
Not part of ``make test`` (the project's testpaths are ``tests/``).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, Callable, List, Tuple

import pytest

from bench.loops import BUILTIN, load_factory

pytest.importorskip("pytest_benchmark")

#: Counts per round: a fraction of each workload's n_default, so a round takes milliseconds.
SCALE = 0.02


def _workloads() -> List[Tuple[str, Callable[..., Any], int, bool]]:
    out = []
    for mod_name in ("bench_loop", "bench_tasks"):
        try:
            module = importlib.import_module(f"bench.{mod_name}")
        except Exception:  # noqa: BLE001 - bench_tasks may not exist yet
            continue
        for name, entry in module.WORKLOADS.items():
            opts = entry[2] if len(entry) > 2 else {}
            out.append((name, entry[0], max(1, int(entry[1] * SCALE)), bool(opts.get("tasks", True))))
    return out


WORKLOADS = _workloads()


@pytest.mark.parametrize("loop_name", list(BUILTIN))
@pytest.mark.parametrize("workload", [w[0] for w in WORKLOADS])
def test_workload(benchmark: Any, workload: str, loop_name: str) -> None:
    name, fn, n, tasks = next(w for w in WORKLOADS if w[0] == workload)
    if loop_name == "asyncio-pytask" and not tasks:
        pytest.skip("no tasks in this workload: same as asyncio")
    try:
        factory = load_factory(BUILTIN[loop_name])
        factory().close()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"{loop_name} unavailable: {type(e).__name__}: {e}")

    loops: List[asyncio.AbstractEventLoop] = []

    def setup() -> Tuple[Tuple[Any, int], dict]:
        loop = factory()
        asyncio.set_event_loop(loop)
        loops.append(loop)
        return (loop, n), {}

    def teardown(loop: Any, n: int) -> None:
        asyncio.set_event_loop(None)
        loop.close()

    benchmark.group = name
    benchmark.extra_info["ops"] = n
    benchmark.pedantic(fn, setup=setup, teardown=teardown, rounds=5, warmup_rounds=1)
    benchmark.extra_info["ops_per_s"] = n / benchmark.stats.stats.mean
