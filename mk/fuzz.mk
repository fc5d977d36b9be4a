# make fuzz - stateful fuzzing of uvcffi's loop against asyncio's (tests/fuzz/, issue 17), longer
# than the short derandomized run that the normal suite makes. Every sequence of steps runs on
# both loops in lockstep, each loop in a worker process of its own, and compares what each
# observed; a mismatch, a crashed worker (a signal, a sanitizer report) or a hung one (no answer
# within FUZZ_STEP_LIMIT seconds, default 30) fails with the shrunk sequence printed. (The proof
# that a crash or hang is caught, tests/fuzz/test_fuzz_faults.py, runs in make test.)
#   FUZZ_EXAMPLES  sequences (default 500)         FUZZ_STEPS  steps per sequence at most (50)
#   FUZZ_SEED      a fresh seed: unset = Hypothesis's fixed derandomized seed, "random" = a new
#                  one each run (printed), a number = that seed again
#   FUZZ_SEEDS     "1 2 3": FUZZ_EXAMPLES sequences for each of these seeds (the fixed seed set
#                  that make test-asan runs), instead of FUZZ_SEED's one run
#   FUZZ_SHRINK=0  report the first failing sequence without shrinking it
#   FUZZ_PY        the interpreter (default .venv's; e.g. .venv-pypy/bin/python)
FUZZ_EXAMPLES ?= 500
FUZZ_STEPS ?= 50
FUZZ_SEED ?=
FUZZ_PY ?= $(PY)

.PHONY: fuzz
fuzz: build
	@$(FUZZ_PY) -c 'import hypothesis' 2>/dev/null || $(FUZZ_PY) -m pip install -q --disable-pip-version-check hypothesis
	seed="$(FUZZ_SEED)"; if [ "$$seed" = random ]; then seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); fi; \
	echo "make fuzz: $(FUZZ_EXAMPLES) sequences of <= $(FUZZ_STEPS) steps, seed $${seed:-derandomized}"; \
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_STEPS=$(FUZZ_STEPS) FUZZ_SEED="$$seed" FUZZ_TIMEOUT=7200 \
		$(FUZZ_PY) -m pytest -q -s -p no:cacheprovider tests/fuzz/test_loop_fuzz.py tests/fuzz/test_regressions.py $${seed:+--hypothesis-seed=$$seed} $(PYTEST_ARGS)
