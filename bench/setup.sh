#!/usr/bin/env bash
# Installs the system tools the network benchmarks use: a C compiler (for the load client and
# the reference epoll server, which the runner compiles into bench/bin/) and wrk (the HTTP load
# generator). Idempotent: does nothing when everything is there. Needs root (or sudo) for apt-get.
set -euo pipefail

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench/setup.sh: missing ${missing[*]} and no apt-get here; install them by hand" >&2
    echo "  (the runner skips the workloads that need them)" >&2
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "bench/setup.sh: need root to apt-get install ${missing[*]}; skipping" >&2
        exit 0
    fi
fi

echo "bench/setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
