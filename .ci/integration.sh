#!/usr/bin/env bash
# CI step: `make test-integration` - tests/integration on asyncio's loop and on uvcffi's, with the
# pinned framework packages installed into .venv and a PostgreSQL and a Redis started on loopback
# for the run (tests/integration/servers.sh; apt-get installs them where missing). Prints its wall
# time; budget ~8 minutes on 2 cores, installs included.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
make test-integration
echo "== test-integration: $(( $(date +%s) - start )) s =="
