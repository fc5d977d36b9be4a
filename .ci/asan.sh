#!/usr/bin/env bash
# CI step (issue 17): the extension and the bundled libuv built with -fsanitize=address,undefined
# in build/asan/ (never the in-place build), the transport, socket, pipe, UDP, subprocess, TLS, fd
# and fault tests (tests/test_faults.py too) and the fuzz (tests/fuzz: 3 fixed seeds x 40
# sequences, each loop's world in a worker process that inherits the preload: a report aborts
# the worker and fails its step; tests/fuzz alone took 110 s under ASan at load ~20) run on
# it; any sanitizer report fails the step (mk/asan.mk says how). Needs gcc with its sanitizer
# runtimes: on Debian 12 gcc-12 brings libgcc-12-dev (libasan.so, libubsan.so) and
# libasan8/libubsan1. Runs after `make test` (it reuses .venv's interpreter and vendor/libuv/).
# Measured on 2 cores shared with other jobs, sanitized module cached: 220 s at load ~3 (the
# same step without the fuzz: 140 s at the same load), 285-580 s at load 6-13.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v gcc >/dev/null 2>&1 || ! test -f "$(gcc -print-file-name=libasan.so)" \
        || ! test -f "$(gcc -print-file-name=libubsan.so)"; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq gcc >/dev/null
fi

start=$(date +%s)
make --no-print-directory test-asan
echo "== make test-asan: $(( $(date +%s) - start )) s =="
