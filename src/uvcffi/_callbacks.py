"""This is the only place where C calls into Python.

Every libuv callback that needs Python is an ``extern "Python"`` function declared in
``_c/cdef.h`` and implemented here. Each one finds its Python owner through
``handle->data`` / ``req->data`` (an ``ffi.new_handle``; for ``_uvcffi_on_read_batch``, the
read arena's ``owner``, the loop's ``ReadEngine``) and calls one method on it. A Python
exception never crosses into C: the body catches ``BaseException`` and hands it to the owner's
loop (``Loop._callback_error``), which re-raises ``KeyboardInterrupt``/``SystemExit`` after
``uv_run`` returns and sends everything else to the exception handler. ``onerror`` is the
last resort for a failure in that very handling.

Why ``extern "Python"`` and not ``ffi.callback``: it is faster, needs no executable memory
per callback, and is what PyPy's JIT handles well.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Type, TypeVar

from ._binding import CData, ffi, lib

__all__: List[str] = []

_F = TypeVar("_F", bound=Callable[..., None])

if TYPE_CHECKING:
    # cffi's decorator (ffi is untyped): registers the function as its extern "Python" and
    # returns it unchanged.
    def _def_extern(*, onerror: Callable[..., None], name: Optional[str] = None) -> Callable[[_F], _F]: ...
else:
    _def_extern = ffi.def_extern

_from_handle = ffi.from_handle


def _last_resort(exc_type: Type[BaseException], exc_value: BaseException,
                 tb: Optional[TracebackType]) -> None:
    # Reached only if handing the error to the loop failed itself.
    import traceback

    sys.stderr.write("uvcffi: error in a libuv callback\n")
    traceback.print_exception(exc_type, exc_value, tb)


def _dispatch_error(owner: Any, exc: BaseException) -> None:
    loop = getattr(owner, "_loop", None)
    if loop is None:
        raise exc
    loop._callback_error(exc, owner)


# The per-message callbacks, written out: no getattr, no *args on the hot path.

@_def_extern(onerror=_last_resort)
def _uvcffi_on_read_batch(data: CData) -> None:
    # The loop's read arena or event array filled up during uv_run (_c/reads.c): the read
    # engine (read_engine.py) dispatches now.
    batch = _from_handle(data)
    try:
        exc = batch.dispatch()
    except BaseException as e:
        exc = e
    if exc is not None:
        _dispatch_error(batch, exc)


@_def_extern(onerror=_last_resort)
def _uvcffi_on_write(req: CData, status: int) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_write(req, status)
    except BaseException as exc:
        _dispatch_error(owner, exc)


@_def_extern(onerror=_last_resort)
def _uvcffi_on_getaddrinfo(req: CData, status: int, res: CData) -> None:
    owner = _from_handle(req.data)
    try:
        owner._on_getaddrinfo(status, res)
    except BaseException as exc:
        _dispatch_error(owner, exc)
    finally:
        if res != ffi.NULL:
            lib.uv_freeaddrinfo(res)


@_def_extern(onerror=_last_resort)
def _uvcffi_on_poll(poll: CData, status: int, events: int) -> None:
    # Every readiness event of a uv_poll_t that C does not handle itself: add_reader/add_writer
    # and the sock_* waits (fds.py), a datagram socket's writability and errors and a unix
    # datagram socket's reads (IPv4/IPv6 datagrams are read by C, _c/reads.c), a write pipe's
    # hang-up watch, a child's pidfd. ``Poll.start`` keeps its callback in the poll's
    # ``_callback`` field, so this lands directly in the watcher's method.
    owner = _from_handle(poll.data)
    try:
        owner._callback(status, events)
    except BaseException as exc:
        _dispatch_error(owner, exc)


def _forward(extern_name: str, method: str) -> None:
    """Implement ``extern_name`` as: find the owner of the handle/request passed first, call
    ``owner.<method>(*rest)``."""

    def callback(ptr: CData, *args: Any) -> None:
        owner = _from_handle(ptr.data)
        try:
            getattr(owner, method)(*args)
        except BaseException as exc:
            _dispatch_error(owner, exc)

    callback.__name__ = extern_name
    _def_extern(name=extern_name, onerror=_last_resort)(callback)


# The rest: once per connection, request, signal or process at most.
_forward("_uvcffi_on_close", "_on_closed")
_forward("_uvcffi_on_shutdown", "_on_shutdown")
_forward("_uvcffi_on_signal", "_on_signal")
_forward("_uvcffi_on_exit", "_on_exit")
_forward("_uvcffi_on_getnameinfo", "_on_getnameinfo")
