# make soak - bench/soak.py: an echo server and its clients with connection churn (random-size
# exchanges, close/abort/write_eof at random, TCP and unix sockets) on asyncio and on uvcffi, each
# in its own process for SOAK_SECONDS (default 300, so about 10 minutes for both); prints each
# loop's RSS slope in KiB per 100k connections after a warm-up, its descriptors and libuv handles
# before/after, and tracemalloc's top growth. A benchmark to read, not a test (not in CI).
# SOAK_ARGS passes more options (--loops, --conns, --sample, --no-tracemalloc, --json FILE).
SOAK_SECONDS ?= 300

.PHONY: soak
soak: build
	$(PY) -m bench.soak --seconds $(SOAK_SECONDS) $(SOAK_ARGS)
