# make lint-c - the C of src/uvcffi/_c/ through the compiler's warnings (-Wall -Wextra -Werror,
#               -Wshadow -Wstrict-prototypes): the extension's translation unit as build_ffi.py sets
#               it up (cffi's generated code, the engine's files included) and each engine .c file
#               alone, against the bundled libuv's uv.h, then the system's when pkg-config finds
#               libuv (UVCFFI_USE_SYSTEM_LIBUV=1); then the files' format, if clang-format is
#               installed (.ci/lint-c.sh pins it: pip install clang-format==19.1.7). Syntax-only:
#               nothing is built, the in-place extension is not touched. tools/check_c.py does it
#               (CC, CFLAGS, CLANG_FORMAT from the environment).
.PHONY: lint-c

lint-c: $(STAMP_DEPS) $(LIBUV_STAMP)
	$(PY) tools/check_c.py
	@if pkg-config --exists libuv 2>/dev/null; then \
		echo "UVCFFI_USE_SYSTEM_LIBUV=1 $(PY) tools/check_c.py"; \
		UVCFFI_USE_SYSTEM_LIBUV=1 $(PY) tools/check_c.py; \
	else echo "lint-c: no system libuv (pkg-config libuv): checked against the bundled one only"; fi
