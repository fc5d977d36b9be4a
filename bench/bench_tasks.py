"""Task/Future layer workloads (issue 3's benchmark section).

Protocol: ``WORKLOADS = {name: (fn, n_default)}``; ``fn(loop, n)`` runs ``n`` operations on an
already-configured loop (the runner installs the task factory: asyncio's C Task, asyncio's
``_PyTask`` or uvcffi's) and the runner times it. The combinators used (``sleep``, ``gather``,
``wait_for``) are uvcffi's when the loop makes uvcffi Tasks, asyncio's otherwise, so each row
measures one whole Task layer.

Run standalone for a quick table: ``python -m bench.bench_tasks [workload ...]``.
"""

from __future__ import annotations

import asyncio
import sys
import time

from uvcffi import tasks as ut

__all__ = ["WORKLOADS", "uvtasks_loop"]


class _UVTasksLoop(asyncio.SelectorEventLoop):  # type: ignore[misc,valid-type]
    """The stock loop, creating uvcffi futures; its task factory makes uvcffi Tasks."""

    def create_future(self):
        return ut.Future(loop=self)


def uvtasks_loop():
    """asyncio's stock loop with uvcffi's Task layer: the same-loop rival of ``asyncio-pytask``.

    ``python -m bench --loop 'asyncio-uvtasks=bench.bench_tasks:uvtasks_loop'``
    """
    loop = _UVTasksLoop()
    loop.set_task_factory(ut.task_factory)
    return loop


def _api(loop):
    """uvcffi.tasks if ``loop.create_task`` makes uvcffi Tasks, else asyncio."""

    async def probe():
        return None

    t = loop.create_task(probe())
    loop.run_until_complete(t)
    return ut if isinstance(t, ut.Task) else asyncio


async def _noop():
    return None


def task_create_gather(loop, n):
    """Create n tasks of a coroutine that returns at once, gather them."""
    api = _api(loop)

    async def main():
        await api.gather(*[loop.create_task(_noop()) for _ in range(n)])

    loop.run_until_complete(main())


def sleep0_switch(loop, n, ntasks=100):
    """n ``sleep(0)`` switches spread over ``ntasks`` tasks."""
    api = _api(loop)
    per_task = max(1, n // ntasks)
    sleep = api.sleep

    async def worker():
        for _ in range(per_task):
            await sleep(0)

    async def main():
        await api.gather(*[worker() for _ in range(ntasks)])

    loop.run_until_complete(main())


def future_set_await(loop, n):
    """n times: create a future, have the loop set its result, await it."""
    api = _api(loop)

    async def main():
        create = loop.create_future
        call_soon = loop.call_soon
        for i in range(n):
            f = create()
            call_soon(f.set_result, i)
            await f

    del api
    loop.run_until_complete(main())


def wait_for_overhead(loop, n):
    """n ``wait_for(coro, timeout)`` calls where the coroutine finishes after one switch."""
    api = _api(loop)
    sleep = api.sleep
    wait_for = api.wait_for

    async def main():
        for _ in range(n):
            await wait_for(sleep(0), 10)

    loop.run_until_complete(main())


def gather_1k_futures(loop, n):
    """n rounds: gather 1000 futures, complete them from a callback, await the gather."""
    api = _api(loop)

    def complete(futs):
        for f in futs:
            f.set_result(None)

    async def main():
        for _ in range(n):
            futs = [loop.create_future() for _ in range(1000)]
            g = api.gather(*futs)
            loop.call_soon(complete, futs)
            await g

    loop.run_until_complete(main())


WORKLOADS = {
    "task_create_gather": (task_create_gather, 100_000),
    "sleep0_switch": (sleep0_switch, 1_000_000),
    "future_set_await": (future_set_await, 100_000),
    "wait_for_overhead": (wait_for_overhead, 20_000),
    "gather_1k_futures": (gather_1k_futures, 100),
}


# -- pytest-benchmark hooks (optional) -----------------------------------------------------------


def _bench(benchmark, name, n):
    import uvcffi

    fn = WORKLOADS[name][0]
    loop = uvcffi.new_event_loop()
    try:
        benchmark(fn, loop, n)
    finally:
        loop.close()


def test_task_create_gather(benchmark):
    _bench(benchmark, "task_create_gather", 10_000)


def test_sleep0_switch(benchmark):
    _bench(benchmark, "sleep0_switch", 100_000)


def test_future_set_await(benchmark):
    _bench(benchmark, "future_set_await", 10_000)


def test_wait_for_overhead(benchmark):
    _bench(benchmark, "wait_for_overhead", 5_000)


def test_gather_1k_futures(benchmark):
    _bench(benchmark, "gather_1k_futures", 10)


# -- standalone table ----------------------------------------------------------------------------


def _configs():
    import uvcffi
    from bench.loops import pytask_loop

    return {
        "asyncio loop + C Task": asyncio.new_event_loop,
        "asyncio loop + _PyTask": pytask_loop,
        "asyncio loop + uvcffi Task": uvtasks_loop,
        "uvcffi loop + uvcffi Task": uvcffi.new_event_loop,
    }


def main(argv):
    names = argv or list(WORKLOADS)
    configs = _configs()
    rounds = 3
    print(f"{'workload':22} " + " ".join(f"{c:>28}" for c in configs))
    for name in names:
        fn, n = WORKLOADS[name]
        best = {c: float("inf") for c in configs}
        for _ in range(rounds):  # interleaved rounds
            for c, make in configs.items():
                loop = make()
                try:
                    t0 = time.perf_counter()
                    fn(loop, n)
                    best[c] = min(best[c], time.perf_counter() - t0)
                finally:
                    loop.close()
        print(f"{name:22} " + " ".join(f"{best[c] / n * 1e6:>24.3f} µs" for c in configs))


if __name__ == "__main__":
    main(sys.argv[1:])
