#!/usr/bin/env bash
# CI step: make lint-c, the C of src/uvcffi/_c/ compiled with -Wall -Wextra -Werror (syntax only)
# against the bundled libuv and the system's (libuv1-dev, installed by the system-libuv step or
# here), and checked against its .clang-format (clang-format from PyPI, pinned: a newer one may
# format differently). Runs after `make test` (it reuses .venv and vendor/libuv/).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pkg-config --exists libuv 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libuv1-dev pkg-config >/dev/null
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "clang-format==19.1.7"
start=$(date +%s)
make --no-print-directory lint-c
echo "== make lint-c: $(( $(date +%s) - start )) s =="
