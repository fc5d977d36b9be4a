# make test   - set up .venv, fetch libuv, build, run the whole test suite
# make bench  - the same setup, then the side-by-side loop benchmark
# Idempotent: each step is skipped when its inputs have not changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_DEPS := $(VENV)/.deps-stamp
STAMP_BENCH := $(VENV)/.bench-stamp
LIBUV_STAMP := vendor/libuv/.uvcffi-stamp
EXT := $(wildcard src/uvcffi/_uvcffi*.so)
BUILD_STAMP := $(VENV)/.build-stamp$(if $(UVCFFI_USE_SYSTEM_LIBUV),-system)

.PHONY: test bench build venv clean fetch lint

test: build
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: build $(STAMP_BENCH)
	bash bench/setup.sh
	$(PY) -m bench --quick $(BENCH_ARGS)

build: $(BUILD_STAMP)

fetch: $(LIBUV_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# cffi: 1.x on CPython before 3.14. cffi 2.0.0's and 2.1.1's manylinux wheels leave CPython's
# inline helpers (Py_TYPE, PyType_HasFeature) out of line in _cffi_backend, which costs ~170 more
# instructions per lib call: ~3% of a 1 KiB echo request (README, "cffi versions"). 1.17.1's
# wheels, and cffi built from source, inline them. CPython 3.14 needs cffi 2.
$(STAMP_DEPS): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check setuptools wheel pytest pytest-timeout \
		"cffi>=1.16,<2; python_version < '3.14'" "cffi>=2; python_version >= '3.14'"
	touch $@

$(STAMP_BENCH): $(STAMP_DEPS) pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -e ".[bench]" --no-build-isolation
	touch $@

$(LIBUV_STAMP): vendor/libuv.lock vendor/fetch_libuv.py
	$(PY) vendor/fetch_libuv.py

# The extension is rebuilt when the builder, the version or the lock changes.
$(BUILD_STAMP): $(STAMP_DEPS) $(LIBUV_STAMP) build_ffi.py src/uvcffi/_version.py setup.py
	rm -f $(VENV)/.build-stamp*
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

# ruff pinned: a newer ruff adds rules, and lint runs in CI
RUFF_VERSION := 0.17.6

lint: $(STAMP_DEPS)
	@$(PY) -m ruff --version 2>/dev/null | grep -qx "ruff $(RUFF_VERSION)" || \
		$(PY) -m pip install -q --disable-pip-version-check "ruff==$(RUFF_VERSION)"
	$(PY) -m ruff check src tests bench build_ffi.py

# make test-cpython - CPython's own test.test_asyncio on stock asyncio and on uvcffi, compared test by
# test (tests/cpython/run.py; not part of make test). CPYTHON_PYTHONS names the interpreters
# (default: .venv's), CPYTHON_ARGS passes options (--modules test_tasks -j 1 --test-timeout 30).
# tests/cpython/run.py --table prints the README table from the last runs (build/cpython-suite/).
CPYTHON_PYTHONS ?= $(PY)

.PHONY: test-cpython
test-cpython: build
	$(PY) tests/cpython/run.py $(addprefix --python ,$(CPYTHON_PYTHONS)) $(CPYTHON_ARGS)

clean:
	rm -rf build src/uvcffi/_uvcffi*.so src/uvcffi/_uvcffi*.c $(VENV)/.build-stamp*

# PyPy (Debian's pypy3 is 3.9): its own venv and build; the test files whose asyncio side also
# runs on 3.9 (the rest use asyncio APIs newer than 3.9 in their oracle runs).
# --assert=plain: Debian's PyPy 3.9 segfaults in pytest's assertion rewriting about once in ten
# collections of these files (in _pytest/assertion/rewrite.py's AST visit; seen with uvcffi's
# extension missing altogether, and never in 25 collections without rewriting). The asserts
# still run; a failure just says less.
PYPY ?= pypy3
PYPY_VENV := .venv-pypy
PYPY_TESTS ?= tests/test_loop.py tests/test_runners.py tests/handles/test_base.py tests/test_futures.py tests/test_tasks.py \
              tests/transports/test_stream.py tests/transports/test_read_order.py tests/transports/test_large_reads.py \
              tests/test_integrity.py \
              tests/test_udp.py \
              tests/test_subprocess.py tests/test_sendfile.py

.PHONY: test-pypy
test-pypy: $(LIBUV_STAMP)
	test -x $(PYPY_VENV)/bin/python || $(PYPY) -m venv $(PYPY_VENV)
	$(PYPY_VENV)/bin/python -m pip install -q --disable-pip-version-check -U pip setuptools wheel pytest pytest-timeout
	$(PYPY_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	$(PYPY_VENV)/bin/python -m pytest -q -p no:cacheprovider --assert=plain $(PYPY_TESTS)
