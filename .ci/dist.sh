#!/usr/bin/env bash
# CI: the release artifacts. make dist (the sdist and the wheels, built in a clean copy of HEAD,
# contents checked), then make test-dist (each wheel installed into a fresh venv of every
# interpreter and the whole suite run against it; then the sdist built offline and tested).
# DIST_PYTHONS picks the interpreters (default: CPython 3.9-3.13 and PyPy 3.9); wall times printed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pypy3 >/dev/null 2>&1 || ! ls /usr/include/pypy3*/Python.h >/dev/null 2>&1 \
        || ! command -v readelf >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq pypy3 pypy3-dev binutils >/dev/null  # the PyPy wheel; readelf for the check
fi

start=$(date +%s)
make dist
echo "== make dist: $(( $(date +%s) - start )) s =="

# The sdist's run: the wheels' runs already take the whole suite through the same code, so the
# extension built from the sdist gets the loop, handle, transport, UDP and pipe tests (as the
# system-libuv build in .ci/run); DIST_SDIST_PYTEST_ARGS= (empty) gives it the whole suite.
export DIST_SDIST_PYTEST_ARGS="${DIST_SDIST_PYTEST_ARGS-tests/test_loop.py tests/handles tests/transports tests/test_udp.py tests/test_pipes.py}"
start=$(date +%s)
status=0
make test-dist DIST_PYTHONS="${DIST_PYTHONS:-}" || status=$?
echo "== make test-dist: $(( $(date +%s) - start )) s =="
exit $status
