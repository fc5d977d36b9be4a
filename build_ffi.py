"""The one cffi builder of uvcffi: where the C comes from, and where libuv comes from.

Out-of-line API mode: cffi compiles a real C extension against ``uv.h``, so struct sizes and
constants are the compiler's, never guessed. The C is in ``src/uvcffi/_c/``: ``cdef.h``, the
declarations cffi reads (structs with ``...;`` and only the fields Python touches; constants
as ``#define NAME ...``, their values taken from the C), and the engine's ``.c`` files with
their shared header ``uvcffi.h``, included by the ``set_source`` text. This file holds no C.

libuv is bundled by default: libuv's own ``.c`` files from ``vendor/libuv/`` (placed there by
``python vendor/fetch_libuv.py``) are compiled into the extension with ``-fPIC``.
``UVCFFI_USE_SYSTEM_LIBUV=1`` links the system's shared libuv found by pkg-config instead
(Debian: ``libuv1-dev``). ``cdef.h`` stays within libuv 1.44's API so both work.

C reaches Python only through the ``extern "Python"`` functions declared at the end of
``cdef.h`` (implemented in ``src/uvcffi/_callbacks.py``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
LIBUV = os.path.join(HERE, "vendor", "libuv")


def package_version() -> str:
    text = open(os.path.join(HERE, "src", "uvcffi", "_version.py")).read()
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)  # type: ignore[union-attr]


# The C part lives in src/uvcffi/_c/ (its uvcffi.h says what each file holds). cffi compiles one
# translation unit: its own code after SOURCE, which includes the engine's .c files by name (so a
# compiler's and a sanitizer's messages name the real files), and gil.h last (the GIL rule).
C_DIR = os.path.join(HERE, "src", "uvcffi", "_c")
C_FILES = ["reads.c", "write.c", "run.c", "process.c"]
SOURCE = "".join(f'#include "{name}"\n' for name in ["uvcffi.h", *C_FILES, "gil.h"])


def read_cdef() -> str:
    """cdef.h (libuv, the constants, the callbacks), then api.h: the engine's structs and
    functions, which C reads too (uvcffi.h includes it)."""
    text = []
    for name in ("cdef.h", "api.h"):
        with open(os.path.join(C_DIR, name)) as f:
            text.append(f.read())
    return "\n".join(text)


LIBUV_SOURCES = [
    "src/fs-poll.c", "src/idna.c", "src/inet.c", "src/random.c", "src/strscpy.c", "src/strtok.c",
    "src/thread-common.c", "src/threadpool.c", "src/timer.c", "src/uv-common.c",
    "src/uv-data-getter-setters.c", "src/version.c",
    "src/unix/async.c", "src/unix/core.c", "src/unix/dl.c", "src/unix/fs.c",
    "src/unix/getaddrinfo.c", "src/unix/getnameinfo.c", "src/unix/loop-watcher.c",
    "src/unix/loop.c", "src/unix/pipe.c", "src/unix/poll.c", "src/unix/process.c",
    "src/unix/random-devurandom.c", "src/unix/signal.c", "src/unix/stream.c", "src/unix/tcp.c",
    "src/unix/thread.c", "src/unix/tty.c", "src/unix/udp.c",
    "src/unix/proctitle.c",
    "src/unix/linux.c", "src/unix/procfs-exepath.c", "src/unix/random-getrandom.c",
    "src/unix/random-sysctl-linux.c",
]


def _pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(["pkg-config", *args, "libuv"], check=True, capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit("build_ffi: UVCFFI_USE_SYSTEM_LIBUV=1 but pkg-config cannot find libuv "
                 f"({exc}). Install it: apt-get install -y libuv1-dev pkg-config")
    return shlex.split(out)


def build_kwargs() -> dict:
    """set_source()'s keywords: the engine's files and version, and libuv, bundled or the system's."""
    engine = dict(
        include_dirs=[C_DIR],
        define_macros=[("UVCFFI_VERSION", f'"{package_version()}"')],
        depends=[os.path.relpath(os.path.join(C_DIR, f), HERE) for f in sorted(os.listdir(C_DIR))],
    )
    libuv = libuv_kwargs()
    return {key: engine.get(key, []) + libuv.get(key, []) for key in {*engine, *libuv}}


def libuv_kwargs() -> dict:
    if os.environ.get("UVCFFI_USE_SYSTEM_LIBUV") == "1":
        cflags = _pkg_config("--cflags")
        libs = _pkg_config("--libs")
        return dict(
            include_dirs=[f[2:] for f in cflags if f.startswith("-I")],
            library_dirs=[f[2:] for f in libs if f.startswith("-L")],
            libraries=[f[2:] for f in libs if f.startswith("-l")],
            define_macros=[("UVCFFI_SYSTEM_LIBUV", "1")],
        )
    if not os.path.exists(os.path.join(LIBUV, "include", "uv.h")):
        sys.exit("build_ffi: libuv's source is missing from vendor/libuv/. "
                 "Fetch it with: python vendor/fetch_libuv.py   (or: make test)")
    return dict(
        sources=[os.path.relpath(os.path.join(LIBUV, s), HERE) for s in LIBUV_SOURCES],
        include_dirs=[os.path.join(LIBUV, "include"), os.path.join(LIBUV, "src")],
        define_macros=[("_GNU_SOURCE", None), ("_FILE_OFFSET_BITS", "64"), ("_LARGEFILE_SOURCE", None)],
        extra_compile_args=["-fPIC", "-fno-strict-aliasing", "-O2", "-Wno-unused-parameter",
                            "-Wno-sign-compare"],
        libraries=["pthread", "dl", "rt"],
    )


ffibuilder = FFI()
ffibuilder.cdef(read_cdef())
ffibuilder.set_source("uvcffi._uvcffi", SOURCE, **build_kwargs())

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
