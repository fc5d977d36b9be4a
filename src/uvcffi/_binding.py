"""The compiled extension, checked; and the one place where libuv errors become Python errors.

The package version is baked into the extension at build time (``UVCFFI_BUILD_VERSION``) and
compared with the Python package's at import, so a stale build fails loudly instead of
misbehaving: rebuilding is one command, named in the error.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
from typing import Any

from ._version import __version__

try:
    from ._uvcffi import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        f"uvcffi's compiled extension is missing or broken ({exc}). Build it with `make build` "
        "(or `pip install -e .` after `python vendor/fetch_libuv.py`)."
    ) from exc

_built = ffi.string(lib.UVCFFI_BUILD_VERSION).decode()
if _built != __version__:  # pragma: no cover - depends on the build
    raise ImportError(
        f"uvcffi's compiled extension was built for version {_built}, but the Python package is "
        f"{__version__}: the build is stale. Rebuild it with `make build` (or `pip install -e .`)."
    )

# A cffi object (a pointer, a struct, a handle from ffi.new_handle): cffi gives them no types, so
# this is Any, named for what it holds. The extension's stub (_uvcffi.pyi) is the other Any.
CData = Any

__all__ = ["ffi", "lib", "libuv_version", "convert_error", "uv_error_name", "check",
           "NOOP_ASYNC_CB", "DRAIN_POLL_CB", "STREAM_ALLOC_CB", "STREAM_READ_CB", "DGRAM_POLL_CB"]

# The C helpers of _c/ that libuv calls back, as function pointers. Pass these, never
# ``lib.uvcffi_*_cb``: CPython's cffi turns a lib function into a pointer on the fly, PyPy's
# does not (extern "Python" functions are pointers on both).
NOOP_ASYNC_CB = ffi.addressof(lib, "uvcffi_noop_async_cb")
DRAIN_POLL_CB = ffi.addressof(lib, "uvcffi_drain_poll_cb")
STREAM_ALLOC_CB = ffi.addressof(lib, "uvcffi_stream_alloc_cb")
STREAM_READ_CB = ffi.addressof(lib, "uvcffi_stream_read_cb")
DGRAM_POLL_CB = ffi.addressof(lib, "uvcffi_dgram_poll_cb")


def libuv_version() -> str:
    """The version of the libuv in use (bundled, or the system's with UVCFFI_USE_SYSTEM_LIBUV=1)."""
    version: str = ffi.string(lib.uv_version_string()).decode()
    return version


def uv_error_name(code: int) -> str:
    name: str = ffi.string(lib.uv_err_name(code)).decode()
    return name


# libuv's getaddrinfo errors (UV_EAI_*) have no errno; map them to socket's EAI_* numbers.
_EAI = {}
for _name in ("EAI_ADDRFAMILY", "EAI_AGAIN", "EAI_BADFLAGS", "EAI_FAIL", "EAI_FAMILY", "EAI_MEMORY",
              "EAI_NODATA", "EAI_NONAME", "EAI_OVERFLOW", "EAI_SERVICE", "EAI_SOCKTYPE", "EAI_SYSTEM"):
    if hasattr(socket, _name):
        _EAI["UV_" + _name] = getattr(socket, _name)


def convert_error(code: int) -> BaseException:
    """This is the only place where a negative libuv status becomes a Python exception (but
    for ``uv_spawn``'s, which ``handles.process.spawn_error`` words as ``subprocess`` does,
    with the program's name).

    libuv's codes on Unix are ``-errno``, so ``OSError(errno, msg)`` picks the right subclass
    (``ConnectionRefusedError``, ``BrokenPipeError``, ...). DNS failures become
    ``socket.gaierror`` with socket's own ``EAI_*`` numbers; the messages are the C library's
    (``strerror``, ``gai_strerror``), as in asyncio's errors; ``UV_ECANCELED`` becomes
    asyncio's ``CancelledError``.
    """
    name = uv_error_name(code)
    if name.startswith("EAI_"):
        eai = _EAI.get("UV_" + name)
        if eai is None:
            return socket.gaierror(code, ffi.string(lib.uv_strerror(code)).decode())
        return socket.gaierror(eai, ffi.string(lib.gai_strerror(eai)).decode())
    if code == lib.UV_ECANCELED:
        import asyncio

        return asyncio.CancelledError()
    if code == lib.UV_EOF:
        return ConnectionResetError(_errno.ECONNRESET, "end of file")
    err = -code
    return OSError(err, os.strerror(err))


def check(code: int) -> int:
    """Raise the converted error when a libuv call returned a negative status."""
    if code < 0:
        raise convert_error(code)
    return code
