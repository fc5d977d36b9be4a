"""The C of src/uvcffi/_c/ through a compiler's warnings: -Wall -Wextra -Werror, nothing built.

    python tools/check_c.py            # make lint-c: against the bundled libuv (vendor/libuv)
    UVCFFI_USE_SYSTEM_LIBUV=1 python tools/check_c.py   # against the system's uv.h (pkg-config)

Two checks, each a syntax-only compile (no object file, the checkout's extension untouched):
the translation unit the extension is built from (cffi's generated code with the engine's files
included, as build_ffi.py sets it up), and each engine .c file alone, as a C tool (clangd,
clang-tidy) sees it. CC names the compiler (default cc), CFLAGS adds flags. Then, if
clang-format is found (CLANG_FORMAT, PATH, or beside this interpreter: pip install
clang-format), that the files follow src/uvcffi/_c/.clang-format (cdef.h, cffi's dialect,
turns it off).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wstrict-prototypes"]


def main() -> int:
    sys.path.insert(0, ROOT)
    import build_ffi  # noqa: E402  (the builder of the checkout; reads the C from its files)

    kw = build_ffi.build_kwargs()
    flags = [f"-I{d}" for d in kw.get("include_dirs", [])]
    flags.append(f"-I{sysconfig.get_paths()['include']}")
    for name, value in kw.get("define_macros", []):
        flags.append(f"-D{name}" if value is None else f"-D{name}={value}")
    cc = shlex.split(os.environ.get("CC", "cc"))
    base = [*cc, "-fsyntax-only", "-std=gnu11", *WARNINGS, *flags, *shlex.split(os.environ.get("CFLAGS", ""))]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="uvcffi-check-c-") as tmp:
        unit = os.path.join(tmp, "_uvcffi.c")
        build_ffi.ffibuilder.emit_c_code(unit)
        units = [("the extension's translation unit", unit)]
        units += [(f, os.path.join(build_ffi.C_DIR, f)) for f in build_ffi.C_FILES]
        for label, path in units:
            r = subprocess.run([*base, path], cwd=ROOT)
            print(f"check_c: {label}: {'ok' if r.returncode == 0 else 'FAILED'}", flush=True)
            failed += r.returncode != 0
        failed += not formatted(build_ffi.C_DIR)
    return 1 if failed else 0


def formatted(c_dir: str) -> bool:
    beside = os.path.join(os.path.dirname(sys.executable), "clang-format")
    exe = os.environ.get("CLANG_FORMAT") or shutil.which("clang-format") or (
        beside if os.access(beside, os.X_OK) else None)
    if exe is None:
        print("check_c: no clang-format (pip install clang-format): format not checked", flush=True)
        return True
    files = sorted(f for f in os.listdir(c_dir) if f.endswith((".c", ".h")))
    r = subprocess.run([exe, "--dry-run", "--Werror", *files], cwd=c_dir)
    print(f"check_c: clang-format: {'ok' if r.returncode == 0 else 'FAILED'}", flush=True)
    return r.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
