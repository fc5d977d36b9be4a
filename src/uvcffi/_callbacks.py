"""This is the only place where C calls into Python.

Every libuv callback that needs Python is an ``extern "Python"`` function declared in
``build_ffi.py`` and implemented here. Each one finds its Python owner through
``handle->data`` / ``req->data`` (an ``ffi.new_handle``) and calls one method on it. A Python
exception never crosses into C: the body catches ``BaseException`` and hands it to the owner's
loop (``Loop._callback_error``), which re-raises ``KeyboardInterrupt``/``SystemExit`` after
``uv_run`` returns and sends everything else to the exception handler. ``onerror`` is the
last resort for a failure in that very handling.

Why ``extern "Python"`` and not ``ffi.callback``: it is faster, needs no executable memory
per callback, and is what PyPy's JIT handles well.
"""

from __future__ import annotations

import sys

from ._binding import ffi, lib

__all__: list = []

_from_handle = ffi.from_handle


def _last_resort(exc_type, exc_value, tb) -> None:
    # Reached only if handing the error to the loop failed itself.
    import traceback

    sys.stderr.write("uvcffi: error in a libuv callback\n")
    traceback.print_exception(exc_type, exc_value, tb)


def _dispatch_error(owner, exc: BaseException) -> None:
    loop = getattr(owner, "_loop", None)
    if loop is None:
        raise exc
    loop._callback_error(exc, owner)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_close(handle) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_closed()
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_read(stream, nread, buf) -> None:
    owner = _from_handle(stream.data)
    try:
        owner._on_read(nread, buf)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_buffered_alloc(handle, suggested, buf) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_alloc(suggested, buf)
    except BaseException as exc:
        buf.base = ffi.NULL
        buf.len = 0
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_write(req, status) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_write(req, status)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_connect(req, status) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_connect(status)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_shutdown(req, status) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_shutdown(status)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_connection(stream, status) -> None:
    owner = _from_handle(stream.data)
    try:
        owner._on_connection(status)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_poll(handle, status, events) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_poll(status, events)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_signal(handle, signum) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_signal(signum)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_exit(handle, exit_status, term_signal) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_exit(exit_status, term_signal)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_udp_send(req, status) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_send(req, status)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_udp_recv(handle, nread, buf, addr, flags) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_recv(nread, buf, addr, flags)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_getaddrinfo(req, status, res) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_getaddrinfo(status, res)
    except BaseException as exc:
        _dispatch_error(owner, exc)
    finally:
        if res != ffi.NULL:
            lib.uv_freeaddrinfo(res)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_getnameinfo(req, status, host, service) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_getnameinfo(status, host, service)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_timer(handle) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_timer()
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_async(handle) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_async()
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_idle(handle) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_idle()
    except BaseException as exc:
        _dispatch_error(owner, exc)


@ffi.def_extern(onerror=_last_resort)
def _uvcffi_on_check(handle) -> None:
    owner = _from_handle(handle.data)
    try:
        owner._on_check()
    except BaseException as exc:
        _dispatch_error(owner, exc)
