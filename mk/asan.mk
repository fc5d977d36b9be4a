# make test-asan - the extension and the bundled libuv built with -fsanitize=address,undefined (gcc)
# and the transport, handle, socket, pipe, UDP, subprocess, TLS, fd and fault tests
# (tests/test_faults.py too) and the fuzz (tests/fuzz) run against that build. Any sanitizer report
# fails the run: the report aborts its process, ASan writes each report under build/asan/logs/
# (children's too, which must stay empty), and the run's output must hold no UBSan "runtime
# error:" (UBSan next to a preloaded ASan writes to stderr only: a child whose stderr a test
# captures fails by its exit status alone).
#
# It never touches the in-place build: the tree of ASAN_REF (default HEAD: committed work only)
# is extracted into build/asan/tree with vendor/libuv copied beside it, and built there with
# `setup.py build_ext --inplace` (CFLAGS/LDFLAGS from the environment); the built module is cached
# by a hash of build_ffi.py, src/uvcffi/_c/, the version, the libuv lock and the flags, so a rerun only rebuilds
# when the C changed. The tests run from that tree, with its src/ on PYTHONPATH, in a venv of their
# own (build/asan/venv: pytest, pytest-timeout, hypothesis for tests/fuzz, cffi 1.x), libasan
# preloaded (CPython itself is not instrumented), PYTHONMALLOC=malloc (every Python object is an
# ASan-checked malloc block).
# LeakSanitizer stays off: CPython keeps its interned and static objects to the end, which LSan
# reports by the thousand (leaks are bench/soak.py's subject).
#
# Before the tests, a canary (mk/asan-canary.c, same flags, same preload and options) makes one
# heap overflow and one signed overflow: the run stops unless each fails its process and leaves
# its report in the log directory. ASAN_PYTEST_ARGS adds pytest options.
ASAN_DIR := build/asan
ASAN_TREE := $(ASAN_DIR)/tree
ASAN_VENV := $(ASAN_DIR)/venv
ASAN_LOGS := $(ASAN_DIR)/logs
ASAN_REF ?= HEAD
ASAN_CC ?= gcc
ASAN_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
ASAN_LDFLAGS := -fsanitize=address,undefined
ASAN_TESTS ?= tests/transports tests/handles tests/test_tcp.py tests/test_unix.py tests/test_pipes.py \
	tests/test_udp.py tests/test_subprocess.py tests/test_tls.py tests/test_fds.py \
	tests/test_transport_faults.py tests/test_faults.py tests/fuzz
# The fuzz runs a fixed seed set (ASAN_FUZZ_SEEDS; FUZZ_SEEDS in tests/fuzz/test_loop_fuzz.py):
# the same ASAN_FUZZ_EXAMPLES sequences per seed on every run, no example database, no deadline;
# its children (the two worker processes that run the worlds, and the echo subprocess) inherit
# the preload and options from the environment: a report aborts a worker, which fails the step.
# UVCFFI_TEST_SLOWDOWN=$(ASAN_SLOWDOWN) tells the tests the build is that many times slower: the
# fuzz's step, settle and hang bounds are that many times longer (a slow step is not a hang), and
# the spawn-many test of tests/test_subprocess.py makes that many times fewer children. 8: the
# uv_spawn path (plain fork() of the ASan process, each child starting the ASan runtime) ran 6x
# slower than without ASan (125 children: 9.4-10.5 s vs 1.7 s, 2026-12-07, load ~12 on 2 cores);
# its 1000 took 32 s, past the test's 30 s bound, and 250 timed out once in a full run.
# Nothing is deselected (ASAN_DESELECT adds pytest node ids to deselect). The 16-thread
# call_soon_threadsafe test of tests/test_faults.py, deselected on uvcffi until dce467e (its
# unbounded producers outgrew the ready queue to 14.7 GB), passes since its threads make at most
# 20000 calls each (3.6 s under ASan).
ASAN_DESELECT ?=
# halt_on_error/abort_on_error: the first report kills the process; allocator_may_return_null:
# an impossible allocation is a MemoryError, as without ASan, not a report; hard_rss_limit_mb: a
# runaway process is a report at 6 GiB, not the machine's OOM killer.
ASAN_OPTIONS_RUN = detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1:hard_rss_limit_mb=6144:log_path=$(1)/asan
UBSAN_OPTIONS_RUN = halt_on_error=1:print_stacktrace=1
# What a report looks like in the output (UBSan next to a preloaded ASan ignores log_path: its
# reports go to stderr, so the run's output is searched too).
ASAN_REPORT_RE = runtime error:|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer
# tests/fuzz's budget under ASan: ASAN_FUZZ_EXAMPLES sequences of at most 25 steps for each
# seed of ASAN_FUZZ_SEEDS (the plain suite runs its own derandomized default)
ASAN_FUZZ_EXAMPLES ?= 40
ASAN_FUZZ_SEEDS ?= 1 2 3
ASAN_SLOWDOWN ?= 8
asan_env = LD_PRELOAD="$$($(ASAN_CC) -print-file-name=libasan.so)" PYTHONMALLOC=malloc \
	FUZZ_EXAMPLES=$(ASAN_FUZZ_EXAMPLES) FUZZ_SEEDS="$(ASAN_FUZZ_SEEDS)" FUZZ_SEED= UVCFFI_TEST_SLOWDOWN=$(ASAN_SLOWDOWN) \
	PYTHONPATH="$(CURDIR)/$(ASAN_TREE)/src" ASAN_OPTIONS="$(call ASAN_OPTIONS_RUN,$(1))" \
	UBSAN_OPTIONS="$(call UBSAN_OPTIONS_RUN,$(1))"

.PHONY: test-asan asan-build asan-canary

test-asan: asan-canary
	@rm -rf $(ASAN_LOGS) $(ASAN_DIR)/fuzz-stats.txt && mkdir -p $(ASAN_LOGS)
	@cd $(ASAN_TREE) && tests=""; for t in $(ASAN_TESTS); do [ -e "$$t" ] && tests="$$tests $$t"; done; \
	echo "ASan run on$$tests"; \
	{ env $(call asan_env,$(CURDIR)/$(ASAN_LOGS)) FUZZ_STATS=$(CURDIR)/$(ASAN_DIR)/fuzz-stats.txt \
		timeout 1500 $(CURDIR)/$(ASAN_VENV)/bin/python -m pytest \
		-q -p no:cacheprovider $$tests $(addprefix --deselect ,$(ASAN_DESELECT)) $(ASAN_PYTEST_ARGS); \
		echo $$? > $(CURDIR)/$(ASAN_DIR)/pytest.rc; } 2>&1 | tee $(CURDIR)/$(ASAN_DIR)/pytest.log
	@cat $(ASAN_DIR)/fuzz-stats.txt 2>/dev/null | sed 's/^/ASan /' || true
	@rc=$$(cat $(ASAN_DIR)/pytest.rc); reports=$$(ls $(ASAN_LOGS)); \
	for f in $$reports; do echo "== $(ASAN_LOGS)/$$f =="; cat "$(ASAN_LOGS)/$$f"; done; \
	ub=$$(grep -c -E "$(ASAN_REPORT_RE)" $(ASAN_DIR)/pytest.log); \
	if [ -n "$$reports" ] || [ "$$ub" -gt 0 ]; then \
		echo "make test-asan: $$(echo $$reports | wc -w) ASan report file(s), $$ub sanitizer line(s) in the output" \
			"($(ASAN_DIR)/pytest.log)" >&2; exit 1; fi; \
	if [ "$$rc" -ne 0 ]; then echo "make test-asan: pytest exited $$rc (no sanitizer report)" >&2; exit $$rc; fi; \
	echo "make test-asan: no sanitizer report"

# The canary: each deliberate fault must kill its process and leave a report naming it.
asan-canary: asan-build
	@rm -rf $(ASAN_DIR)/canary && mkdir -p $(ASAN_DIR)/canary/logs
	$(ASAN_CC) $(ASAN_CFLAGS) -shared -fPIC -o $(ASAN_DIR)/canary/canary.so mk/asan-canary.c
	@for case in "0 heap-buffer-overflow" "1 signed integer overflow"; do \
		mode=$${case%% *}; want=$${case#* }; rm -f $(ASAN_DIR)/canary/logs/*; \
		if env $(call asan_env,$(CURDIR)/$(ASAN_DIR)/canary/logs) $(ASAN_VENV)/bin/python -c \
			"import ctypes, sys; print(ctypes.CDLL(sys.argv[1]).uvcffi_asan_canary($$mode, 16))" \
			$(ASAN_DIR)/canary/canary.so > $(ASAN_DIR)/canary/out.txt 2>&1; then \
			echo "make test-asan: the canary's $$want did not fail its process: reports would go unseen" >&2; exit 1; fi; \
		if ! cat $(ASAN_DIR)/canary/logs/* $(ASAN_DIR)/canary/out.txt 2>/dev/null | grep -E "$(ASAN_REPORT_RE)" | grep -q "$$want"; then \
			echo "make test-asan: the canary's $$want left no report where the run looks" >&2; exit 1; fi; \
		echo "asan canary: $$want caught, its process failed: $$(cat $(ASAN_DIR)/canary/logs/* $(ASAN_DIR)/canary/out.txt \
			2>/dev/null | grep -m1 -o -E "(ERROR: AddressSanitizer: [a-z-]+|runtime error: [a-z ]+)")"; \
	done

# The build: a fresh tree of ASAN_REF every run; the sanitized module from the cache when its
# inputs did not change.
asan-build: $(ASAN_VENV)/.stamp $(LIBUV_STAMP)
	@command -v $(ASAN_CC) >/dev/null && test -f "$$($(ASAN_CC) -print-file-name=libasan.so)" || { \
		echo "make test-asan: $(ASAN_CC) with libasan is needed (Debian: apt-get install gcc)" >&2; exit 1; }
	rm -rf $(ASAN_TREE) && mkdir -p $(ASAN_TREE)/vendor
	git archive $(ASAN_REF) | tar -x -C $(ASAN_TREE)
	cp -a vendor/libuv $(ASAN_TREE)/vendor/
	@key=$$(cat $(ASAN_TREE)/build_ffi.py $(ASAN_TREE)/src/uvcffi/_c/* $(ASAN_TREE)/src/uvcffi/_version.py $(ASAN_TREE)/vendor/libuv.lock | \
		{ cat; echo "$(ASAN_CC) $(ASAN_CFLAGS) $(ASAN_LDFLAGS)"; } | sha256sum | cut -c1-16); \
	cached=$(ASAN_DIR)/cache/_uvcffi-$$key.so; \
	if [ -f "$$cached" ]; then echo "asan: the sanitized module of these sources is cached ($$cached)"; \
	else echo "asan: building the sanitized module (build/asan/build.log)"; \
		( cd $(ASAN_TREE) && CC=$(ASAN_CC) CFLAGS="$(ASAN_CFLAGS)" LDFLAGS="$(ASAN_LDFLAGS)" \
			$(CURDIR)/$(ASAN_VENV)/bin/python setup.py build_ext --inplace ) > $(ASAN_DIR)/build.log 2>&1 || { \
			tail -30 $(ASAN_DIR)/build.log; exit 1; }; \
		mkdir -p $(ASAN_DIR)/cache && rm -f $(ASAN_DIR)/cache/*.so && \
		cp $(ASAN_TREE)/src/uvcffi/_uvcffi.abi3.so "$$cached"; fi; \
	cp "$$cached" $(ASAN_TREE)/src/uvcffi/_uvcffi.abi3.so
	@nm -D $(ASAN_TREE)/src/uvcffi/_uvcffi.abi3.so | grep -q __asan_init || { \
		echo "make test-asan: the module is not instrumented" >&2; exit 1; }

$(ASAN_VENV)/.stamp: $(VENV)/bin/python mk/asan.mk
	test -x $(ASAN_VENV)/bin/python || $(VENV)/bin/python -m venv $(ASAN_VENV)
	$(ASAN_VENV)/bin/python $(MATRIX_PIP) pytest pytest-timeout hypothesis setuptools wheel "cffi>=1.16,<2"
	touch $@
