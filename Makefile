# make test   - set up .venv, fetch libuv, build, run the whole test suite
# make bench  - the same setup, then the side-by-side loop benchmark (with uvcffi and asyncio on
#               PyPy too when .venv-pypy has uvcffi built: mk/bench-pypy.mk; make bench-pypy)
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
	$(PY) -m pip install -q --disable-pip-version-check setuptools wheel pytest pytest-timeout hypothesis \
		"cffi>=1.16,<2; python_version < '3.14'" "cffi>=2; python_version >= '3.14'"
	touch $@

$(STAMP_BENCH): $(STAMP_DEPS) pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -e ".[bench]" --no-build-isolation
	touch $@

$(LIBUV_STAMP): vendor/libuv.lock vendor/fetch_libuv.py
	$(PY) vendor/fetch_libuv.py

# The extension is rebuilt when the builder, the version or the lock changes.
$(BUILD_STAMP): $(STAMP_DEPS) $(LIBUV_STAMP) build_ffi.py $(wildcard src/uvcffi/_c/*) src/uvcffi/_version.py setup.py
	rm -f $(VENV)/.build-stamp*
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

# ruff pinned: a newer ruff adds rules, and lint runs in CI
RUFF_VERSION := 0.17.6
# mypy pinned too (a newer one finds new errors): mypy --strict on src/ with pyproject's [tool.mypy]
# (checked as Python 3.9, the oldest supported; 1.20 is the last mypy that checks 3.9 code). The
# exceptiongroup backport is what src/ imports before 3.11: its types are checked with it.
MYPY_VERSION := 1.20.2
EXCEPTIONGROUP_VERSION := 1.3.2

lint: $(STAMP_DEPS)
	@$(PY) -m ruff --version 2>/dev/null | grep -qx "ruff $(RUFF_VERSION)" || \
		$(PY) -m pip install -q --disable-pip-version-check "ruff==$(RUFF_VERSION)"
	@$(PY) -m mypy --version 2>/dev/null | grep -q "^mypy $(MYPY_VERSION) " && \
		$(PY) -c 'import exceptiongroup' 2>/dev/null || \
		$(PY) -m pip install -q --disable-pip-version-check "mypy==$(MYPY_VERSION)" \
			"exceptiongroup==$(EXCEPTIONGROUP_VERSION)"
	$(PY) -m ruff check src tests bench build_ffi.py
	$(PY) -m mypy

# make test-cpython - CPython's own test.test_asyncio on stock asyncio and on uvcffi, compared test by
# test (tests/cpython/run.py; not part of make test). CPYTHON_PYTHONS names the interpreters
# (default: .venv's), CPYTHON_ARGS passes options (--modules test_tasks -j 1 --test-timeout 30).
# tests/cpython/run.py --table prints the README table from the last runs (build/cpython-suite/).
CPYTHON_PYTHONS ?= $(PY)

.PHONY: test-cpython
test-cpython: build
	$(PY) tests/cpython/run.py $(addprefix --python ,$(CPYTHON_PYTHONS)) $(CPYTHON_ARGS)

clean:
	rm -rf build src/uvcffi/_uvcffi*.so src/uvcffi/_uvcffi*.c $(VENV)/.build-stamp* $(PYPY_VENV)/.build-stamp

# make test-matrix - the whole suite on every interpreter users run: CPython 3.9 3.10 3.11 3.12
# 3.13 (pyenv's) and PyPy 3.9 (Debian's pypy3), one venv each (.venv-3.9 ... .venv-3.13,
# .venv-pypy); it goes on after a failing interpreter and names the failed ones at the end.
# make test-3.12 (or test-pypy) runs one of them; PYTEST_ARGS applies to each.
# CPython: the extension is built with cffi's limited API (_uvcffi.abi3.so), so the build that
# `make build` made serves every CPython 3.9+. Those venvs get only the test dependencies and a
# .pth file that puts src/ on sys.path: nothing is built there, and the import still checks the
# build's version. PyPy cannot load an abi3 module: its venv builds its own _uvcffi.pypy39-*.so
# beside it (a different file; the abi3 one is not touched).
MATRIX_CPYTHON := 3.9 3.10 3.11 3.12 3.13
MATRIX := $(MATRIX_CPYTHON) pypy
MATRIX_TESTS := $(addprefix test-,$(MATRIX_CPYTHON))
MATRIX_PIP := -m pip install -q --disable-pip-version-check

# CPython X.Y: PYTHON_X.Y if given (make test-3.12 PYTHON_3.12=/usr/bin/python3.12), else
# pyenv's newest X.Y, else pythonX.Y on PATH.
matrix_python = $(or $(PYTHON_$(1)),$(shell p=$$(pyenv prefix $(1) 2>/dev/null | head -n1); \
	if [ -n "$$p" ] && [ -x "$$p/bin/python" ]; then echo "$$p/bin/python"; else command -v python$(1); fi))

.PHONY: test-matrix test-pypy $(MATRIX_TESTS)

test-matrix:
	@failed=""; for t in $(MATRIX); do \
		echo "== make test-$$t =="; start=$$(date +%s); \
		$(MAKE) --no-print-directory test-$$t || failed="$$failed $$t"; \
		echo "== test-$$t: $$(( $$(date +%s) - start )) s =="; \
	done; \
	if [ -n "$$failed" ]; then echo "make test-matrix: failed on:$$failed" >&2; exit 1; fi; \
	echo "make test-matrix: passed on $(MATRIX)"

$(MATRIX_TESTS): test-%: build .venv-%/.matrix-stamp
	@test -f src/uvcffi/_uvcffi.abi3.so || { echo "make test-$*: src/uvcffi/_uvcffi.abi3.so is missing:" \
		"the CPython venvs reuse the limited-API build of 'make build' (not made by a debug CPython)" >&2; exit 1; }
	.venv-$*/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The venv of CPython X.Y: pytest, pytest-timeout, hypothesis, cffi (1.x below 3.14, as for .venv), src/ on the path.
.venv-%/.matrix-stamp: pyproject.toml
	@py="$(call matrix_python,$*)"; \
	if [ -z "$$py" ] || ! "$$py" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$*".split("."))))'; then \
		echo "make: CPython $* not found (no 'pyenv prefix $*', no python$* on PATH$${py:+, or $$py is not $*}):" \
			"install it (pyenv install $*) or name it: make test-$* PYTHON_$*=/path/to/python$*" >&2; exit 1; fi; \
	test -x .venv-$*/bin/python || { echo "$$py -m venv .venv-$*"; "$$py" -m venv .venv-$*; }
	.venv-$*/bin/python $(MATRIX_PIP) pytest pytest-timeout hypothesis \
		"cffi>=1.16,<2; python_version < '3.14'" "cffi>=2; python_version >= '3.14'"
	.venv-$*/bin/python -c 'import pathlib, sysconfig; \
		pathlib.Path(sysconfig.get_paths()["purelib"], "uvcffi-src.pth").write_text("$(CURDIR)/src\n")'
	.venv-$*/bin/python -c 'import uvcffi, sys; print("uvcffi", uvcffi.__version__, "on", sys.version.split()[0], "from", uvcffi.__file__)'
	touch $@

# PyPy (Debian's pypy3 is 3.9): its own venv and build (pip install -e ., which builds the
# extension in place under PyPy's own file name). The whole suite, with pytest's assertion
# rewriting: the segfault in its AST visit that --assert=plain once worked around did not come
# back in 50 collections of the whole suite (PyPy 7.3.11, pytest 8.4.2).
PYPY ?= pypy3
PYPY_VENV := .venv-pypy

$(PYPY_VENV)/.deps-stamp: pyproject.toml
	@command -v $(PYPY) >/dev/null 2>&1 || { echo "make: $(PYPY) not found: apt-get install pypy3 pypy3-dev" \
		"(Debian), or name it: make test-pypy PYPY=/path/to/pypy3" >&2; exit 1; }
	test -x $(PYPY_VENV)/bin/python || $(PYPY) -m venv $(PYPY_VENV)
	$(PYPY_VENV)/bin/python $(MATRIX_PIP) -U pip setuptools wheel pytest pytest-timeout hypothesis
	touch $@

$(PYPY_VENV)/.build-stamp: $(PYPY_VENV)/.deps-stamp $(LIBUV_STAMP) build_ffi.py $(wildcard src/uvcffi/_c/*) src/uvcffi/_version.py setup.py
	$(PYPY_VENV)/bin/python $(MATRIX_PIP) --no-build-isolation --no-deps -e .
	touch $@

test-pypy: $(PYPY_VENV)/.build-stamp
	$(PYPY_VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# Targets of one subject each live in mk/*.mk (mk/asan.mk, mk/dist.mk, mk/integration.mk ...),
# each with its own header comment; they use the variables above.
include $(sort $(wildcard mk/*.mk))
