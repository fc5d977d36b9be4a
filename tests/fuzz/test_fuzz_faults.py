"""The fuzz survives its workers' faults (issue 17): a crash (SIGABRT, SIGSEGV, an exit) or a
hang of the uvcffi worker in the middle of a sequence fails that sequence with the step named
and the shrunk sequence printed, instead of killing or wedging the fuzzer; the next sequence
gets a new worker. The faults are a step no rule of the real machine draws
(worlds.inject_fault); the machine here is the real one plus that rule."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (the [test] extra)")

from hypothesis import Phase, reporting  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import rule, run_state_machine_as_test  # noqa: E402

from . import machine  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="unix sockets and pipes")


# the real rules the faulty machine keeps beside its own (the others are set to None: with all
# ~30 of them the faulty step would be drawn too seldom for a short, bounded test)
KEEP = ("open", "write", "call_later", "child_write", "s_write", "s_read", "task")


def faulty_machine(fault):
    class FaultyMachine(machine.LoopMachine):
        @rule(world=st.just("uvcffi"))
        def inject(self, world):
            self.both("inject_fault", fault=fault, world=world)

    for name, value in vars(machine.LoopMachine).items():
        if name not in KEEP and callable(value) and hasattr(value, "hypothesis_stateful_rule"):
            setattr(FaultyMachine, name, None)
    return FaultyMachine


@pytest.fixture
def workers(monkeypatch, tmp_path):
    """Short bounds, and (under AddressSanitizer) the workers' reports in a directory of the
    test's: the deliberate SIGSEGV is a report there, not a finding of the run."""
    monkeypatch.setattr(machine, "STEP_LIMIT", 3.0 * machine.SLOWDOWN)
    options = os.environ.get("ASAN_OPTIONS")
    env = None
    if options is not None:
        env = dict(os.environ, ASAN_OPTIONS=re.sub(r"log_path=[^:]*", f"log_path={tmp_path}/asan", options))
    machine.stop_workers()
    for key in machine.STATS:
        machine.STATS[key] = 0
    for w in machine.WORKERS.values():
        monkeypatch.setattr(w, "env", env)
    yield
    machine.stop_workers()


@pytest.mark.timeout(int(300 * machine.SLOWDOWN))
@pytest.mark.parametrize("fault", ["abort", "segv", "exit", "hang"])
def test_worker_fault_fails_the_sequence(workers, fault, tmp_path):
    if fault == "hang" and machine.SLOWDOWN > 1:
        # every run of the hanging sequence costs the step limit, scaled by the slowdown (3 s x
        # 8 under make test-asan, about 7 runs while shrinking): the plain suite proves it
        pytest.skip("the hang case runs in the plain suite (its bound scales with the slowdown)")
    reports = []
    start = time.monotonic()
    with reporting.with_reporter(reports.append):
        with pytest.raises(AssertionError) as info:
            run_state_machine_as_test(faulty_machine(fault), settings=machine.fuzz_settings(
                max_examples=20, stateful_step_count=3, derandomize=True,
                phases=[Phase.generate, Phase.shrink]))
    took = time.monotonic() - start
    text = "\n".join(str(r) for r in reports) + "\n" + "\n".join(getattr(info.value, "__notes__", []))
    message = str(info.value)
    how = "hung" if fault == "hang" else "died"
    assert f"uvcffi worker {how}" in message, message
    assert "(inject_fault)" in message, message
    # the sequence, shrunk to the faulty step alone, is printed
    assert "state.inject(" in text, text
    steps = [line for line in text.splitlines() if line.startswith("state.") and "teardown" not in line]
    assert steps == ["state.inject(world='uvcffi')"], text
    if fault == "segv" and "ASAN_OPTIONS" in os.environ:
        # under make test-asan the SEGV is AddressSanitizer's report, which aborted the worker
        found = [p.read_text(errors="replace") for p in tmp_path.glob("asan*")]
        assert any("AddressSanitizer: SEGV" in r for r in found), found
    print(f"\n{fault}: {message} ({took:.1f} s, {machine.STATS['sequences']} sequences, "
          f"{machine.STATS['workers']} workers started)\n{text}")
