"""The worker process of one loop in the fuzz (issue 17): ``python worker.py LOOP FD [PATH]``.

It imports worlds.py (PATH, if given, goes first on sys.path: where the parent found uvcffi)
and serves requests on the socket ``FD`` (multiprocessing.connection framing, pickled tuples),
one world at a time:

* ``("begin", tmpdir)``: a new world on a new loop (``LOOP``: ``asyncio`` or ``uvcffi``);
* ``("step", name, n, kwargs)``: the step ``worlds.STEPS[name]`` applied to the world, the world
  settled and checked against itself; the reply carries the step's outcome and the world's view;
* ``("end",)``: the world torn down (everything closed, nothing left alive); the reply carries
  its final view.

Each reply is ``("ok", value)`` or ``("error", message)`` (an assertion of the world about
itself, or an exception the harness did not expect). The parent bounds every request in time
and treats a worker that dies (a signal, an exit) or does not answer as a failing outcome of the
step; it replaces the worker. Sanitizer runs: the worker inherits LD_PRELOAD/ASAN_OPTIONS from
the parent's environment, and a report aborts it (halt_on_error), which the parent reports.
"""

from __future__ import annotations

import os
import sys
import traceback
from multiprocessing.connection import Connection


def serve(loop_name: str, conn: Connection) -> None:
    import worlds

    world = None
    # FUZZ_LOG=path: every step's name, arguments and outcome appended there (what a budget
    # exercised: e.g. how many reads found bytes, how many were "blocked")
    log = open(os.environ["FUZZ_LOG"], "a") if os.environ.get("FUZZ_LOG") else None  # noqa: SIM115
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        kind = request[0]
        try:
            if kind == "begin":
                world = worlds.World(loop_name, request[1])
                reply = None
            elif kind == "step":
                _, name, n, kwargs = request
                if world.loop.is_closed():
                    result = ("closed",)
                else:
                    result = worlds.STEPS[name](world, n, **kwargs)
                    if log is not None:
                        print(loop_name, name, kwargs, result, file=log, flush=True)
                    world.settle()
                world.self_check()
                reply = (result, world.view())
            elif kind == "end":
                w, world = world, None
                w.teardown()
                reply = w.view()
            else:
                raise AssertionError(f"unknown request {kind!r}")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the step
            text = str(exc) if isinstance(exc, AssertionError) else traceback.format_exc(limit=8)
            conn.send(("error", text or type(exc).__name__))
            continue
        conn.send(("ok", reply))


def main() -> None:
    loop_name, fd = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if len(sys.argv) > 3:
        sys.path.insert(0, sys.argv[3])
    serve(loop_name, Connection(fd))


if __name__ == "__main__":
    main()
