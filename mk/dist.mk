# make dist       - dist/: the sdist (libuv's pinned source inside, checksum-checked when fetched:
#                   it builds with no network) and the wheels built from it offline: one cp39-abi3
#                   wheel (cffi's limited API: one build for every CPython 3.9+, built by the
#                   oldest CPython found, checked by abi3audit) and one PyPy 3.9 wheel, each
#                   repaired by auditwheel to the manylinux tag its symbols allow, libuv inside the
#                   extension. Built in a clean copy of DIST_REF (default HEAD: commit first) under
#                   build/dist/, never in src/. The contents are checked against
#                   tools/dist-contents.txt (make check-dist runs that check alone).
# make test-dist  - each wheel pip-installed (--no-index) into a fresh venv of every interpreter
#                   (CPython 3.9-3.13, PyPy 3.9; DIST_PYTHONS="3.9 pypy" picks some), the whole
#                   suite run against the installed package from a directory outside the tree;
#                   then the sdist built offline into a fresh venv of the newest CPython and tested
#                   (DIST_SDIST=0 skips it). Goes on after a failing run, names the failed ones at
#                   the end, prints each run's counts and wall time. DIST_PYTEST_ARGS passes
#                   pytest options to every run (DIST_SDIST_PYTEST_ARGS to the sdist's).
#                   DIST_CPYTHON_SUITE=1 adds tests/cpython/run.py on each installed wheel
#                   (reported, not fatal; =strict: fatal; DIST_CPYTHON_ARGS: its options).
# Everything is in tools/dist.py (its docstring says more); it needs git and the interpreters only.
DIST_PYTHON ?= $(PYTHON)
DIST_REF ?= HEAD

.PHONY: dist check-dist test-dist

dist:
	$(DIST_PYTHON) tools/dist.py build --ref $(DIST_REF)

check-dist:
	$(DIST_PYTHON) tools/dist.py check

test-dist:
	$(DIST_PYTHON) tools/dist.py test $(DIST_PYTHONS)
