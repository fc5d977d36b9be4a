# make bench with PyPy columns. The runner adds asyncio@pypy and uvcffi@pypy to its default loops
# whenever .venv-pypy/bin/python exists, and shows "uvcffi@pypy ÷ uvloop" beside them (bench/README.md,
# "Other interpreters"). When that venv has uvcffi built ($(PYPY_VENV)/.build-stamp: make test-pypy or
# make bench-pypy made it), make bench keeps the PyPy build current, as test-pypy does, and installs
# there what the PyPy workers use of pyproject's [bench] extra: aiohttp, starlette, uvicorn (uvloop
# and httptools have no PyPy build, so the uvicorn row skips there; matplotlib and pytest-benchmark
# serve the runner, which runs on .venv).
# make bench-pypy makes the PyPy venv and its build first (needs pypy3: see test-pypy), then make bench.
STAMP_BENCH_PYPY := $(PYPY_VENV)/.bench-stamp
BENCH_PYPY_PACKAGES := aiohttp starlette uvicorn

$(STAMP_BENCH_PYPY): $(PYPY_VENV)/.deps-stamp pyproject.toml
	$(PYPY_VENV)/bin/python $(MATRIX_PIP) $(BENCH_PYPY_PACKAGES)
	touch $@

bench: $(if $(wildcard $(PYPY_VENV)/.build-stamp),$(PYPY_VENV)/.build-stamp $(STAMP_BENCH_PYPY))

.PHONY: bench-pypy
bench-pypy: $(PYPY_VENV)/.build-stamp $(STAMP_BENCH_PYPY)
	$(MAKE) --no-print-directory bench
