"""Network and stream APIs of the loop (TCP, unix sockets, low-level sockets, TLS).

``NetMixin`` is a base class of ``uvcffi.Loop``.

How a connection is made. Sockets are created, bound and connected with Python's ``socket``
module (``sock_connect`` waits on a ``uv_poll``), exactly as asyncio's selector loop does, so
every option and error of asyncio's signatures behaves the same (``local_addr``, happy
eyeballs, ``reuse_port``, ``Server.sockets``, ``OSError`` messages). Only once a socket is
connected does libuv take it over (``uv_tcp_open``/``uv_pipe_open``) for the byte stream,
which is where the time goes. Connecting is rare; moving bytes is not.

TLS is asyncio's own ``sslproto.SSLProtocol`` running over a ``StreamTransport`` (it is a
``BufferedProtocol``: when libuv reports the socket readable, the transport reads straight into
the protocol's buffer with ``recv_into``, ``transports/stream.py``).
"""

from __future__ import annotations

import collections.abc
import errno
import io
import itertools
import logging
import os
import socket
import stat
import sys
from asyncio import exceptions, tasks
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from . import server as _server
from ._compat import (
    SENDFILE_FALLBACK_READBUFFER_SIZE,
    SSLProtocol,
    _SendfileFallbackProtocol,
    _SendfileMode,
    staggered_race,
)
from .sock import SockMixin, _check_ssl_socket, set_reuseport, unlink_stale
from .transports import started as _started
from .transports.stream import StreamTransport

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover
    _ssl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import asyncio
    import ssl

    from _typeshed import StrPath

    from .dns import Resolved

    # what the ssl= argument takes: a context, True for a default one, None/False for none
    _SSLArg = Union[bool, None, ssl.SSLContext]

__all__ = ["NetMixin"]

_ProtocolT = TypeVar("_ProtocolT", bound="asyncio.BaseProtocol")

logger = logging.getLogger("asyncio")

_HAS_SHUTDOWN_TIMEOUT = sys.version_info >= (3, 11)

# create_connection(all_errors=True) raises one: the builtin from 3.11, the backport before
try:
    _ExceptionGroup = ExceptionGroup  # type: ignore[name-defined]  # noqa: F821  (3.11+)
except NameError:  # pragma: no cover (Python < 3.11)
    try:
        from exceptiongroup import ExceptionGroup as _ExceptionGroup
    except ImportError:
        _ExceptionGroup = None


def _interleave_addrinfos(addrinfos: Sequence[Resolved],
                          first_address_family_count: int = 1) -> List[Resolved]:
    """Reorder ``addrinfos`` to alternate address families (RFC 8305), the first family
    getting ``first_address_family_count`` entries up front."""
    by_family: Dict[int, List[Resolved]] = collections.OrderedDict()
    for ai in addrinfos:
        by_family.setdefault(ai[0], []).append(ai)
    lists = list(by_family.values())
    out: List[Resolved] = []
    if first_address_family_count > 1 and lists:
        out.extend(lists[0][:first_address_family_count - 1])
        lists[0] = lists[0][first_address_family_count - 1:]
    for group in itertools.zip_longest(*lists):
        out.extend(ai for ai in group if ai is not None)
    return out


def _check_ssl_args(ssl: _SSLArg, ssl_handshake_timeout: Optional[float],
                    ssl_shutdown_timeout: Optional[float]) -> None:
    if ssl_handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if ssl_shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def _check_sendfile_params(sock_type: Optional[int], file: IO[bytes], offset: int,
                           count: Optional[int]) -> None:
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if sock_type is not None and sock_type != socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")



def _check_stream_sock(sock: socket.socket, unix: bool = False) -> None:
    """asyncio's ``ValueError`` for a ``sock=`` argument that is not a stream socket (of the
    unix family, ``unix``)."""
    if unix:
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
    elif sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A Stream Socket was expected, got {sock!r}")


def _nothing() -> None:
    """The ``attempt`` of a bare wait for readiness (``SockMixin._wait_ready``)."""


def _bind_reason(exc: OSError) -> str:
    """How asyncio words a failed bind: the lowered strerror, the lowered ``str(exc)`` from 3.13."""
    return (str(exc) if sys.version_info >= (3, 13) else str(exc.strerror)).lower()

class NetMixin(SockMixin):
    """The loop's stream and socket methods."""

    # -- transports -----------------------------------------------------------------------
    def _make_socket_transport(self, sock: socket.socket, protocol: asyncio.BaseProtocol,
                               waiter: Optional[asyncio.Future[Any]] = None, *,
                               extra: Optional[Dict[str, Any]] = None,
                               server: Optional[_server.Server] = None) -> StreamTransport:
        return StreamTransport(self, sock,  # type: ignore[arg-type]  # self: the Loop
 protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock: socket.socket, protocol: asyncio.BaseProtocol,
                            sslcontext: Optional[ssl.SSLContext],
                            waiter: Optional[asyncio.Future[Any]] = None,
                            *, server_side: bool = False, server_hostname: Optional[str] = None,
                            extra: Optional[Dict[str, Any]] = None, server: Optional[_server.Server] = None,
                            ssl_handshake_timeout: Optional[float] = None,
                            ssl_shutdown_timeout: Optional[float] = None) -> asyncio.Transport:
        ssl_protocol = self._ssl_protocol(protocol, sslcontext, waiter, server_side, server_hostname,
                                          ssl_handshake_timeout, ssl_shutdown_timeout)
        StreamTransport(self, rawsock, ssl_protocol, None, extra, server)  # type: ignore[arg-type]  # self: the Loop
        return ssl_protocol._app_transport  # type: ignore[no-any-return]

    def _ssl_protocol(self, protocol: asyncio.BaseProtocol, sslcontext: Optional[ssl.SSLContext],
                      waiter: Optional[asyncio.Future[Any]], server_side: bool,
                      server_hostname: Optional[str],
                      ssl_handshake_timeout: Optional[float], ssl_shutdown_timeout: Optional[float],
                      call_connection_made: bool = True) -> Any:  # (_compat's SSLProtocol)
        kwargs: Dict[str, Any] = {"ssl_handshake_timeout": ssl_handshake_timeout,
                  "call_connection_made": call_connection_made}
        if _HAS_SHUTDOWN_TIMEOUT:
            kwargs["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        # self: the Loop; sslcontext None: asyncio's SSLProtocol makes a default one; no waiter: none told
        return SSLProtocol(self, protocol, sslcontext, waiter,
                           server_side, server_hostname, **kwargs)

    async def _create_connection_transport(
            self, sock: socket.socket, protocol_factory: Callable[[], _ProtocolT], ssl: _SSLArg,
            server_hostname: Optional[str], server_side: bool = False,
            ssl_handshake_timeout: Optional[float] = None, ssl_shutdown_timeout: Optional[float] = None,
    ) -> Tuple[asyncio.Transport, _ProtocolT]:
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()
        transport: asyncio.Transport
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            transport = self._make_ssl_transport(
                sock, protocol, sslcontext, waiter, server_side=server_side,
                server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
        else:
            transport = self._make_socket_transport(sock, protocol, waiter)
        await _started(transport, waiter)
        return transport, protocol

    # -- TCP clients ------------------------------------------------------------------------
    async def _connect_sock(self, exceptions_: List[List[OSError]], addr_info: Resolved,
                            local_addr_infos: Optional[Sequence[Resolved]] = None) -> socket.socket:
        """Create, bind and connect one socket; its errors go to ``exceptions_`` too."""
        my_exceptions: List[OSError] = []
        exceptions_.append(my_exceptions)
        family, type_, proto, _, address = addr_info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_addr_infos is not None:
                for lfamily, _, _, _, laddr in local_addr_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        msg = f"error while attempting to bind on address {laddr!r}: {_bind_reason(exc)}"
                        my_exceptions.append(OSError(exc.errno, msg))
                else:
                    if my_exceptions:
                        raise my_exceptions.pop()
                    raise OSError(f"no matching local address with family={family!r} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            my_exceptions.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            exceptions_ = my_exceptions = None  # type: ignore[assignment]  # break the cycles

    async def create_connection(
            self, protocol_factory: Callable[[], _ProtocolT], host: Optional[str] = None,
            port: Optional[int] = None, *, ssl: _SSLArg = None, family: int = 0, proto: int = 0,
            flags: int = 0, sock: Optional[socket.socket] = None,
            local_addr: Optional[Tuple[str, int]] = None,
            server_hostname: Optional[str] = None, ssl_handshake_timeout: Optional[float] = None,
            ssl_shutdown_timeout: Optional[float] = None, happy_eyeballs_delay: Optional[float] = None,
            interleave: Optional[int] = None, all_errors: bool = False,
    ) -> Tuple[asyncio.Transport, _ProtocolT]:
        """Open a stream connection to ``(host, port)`` (or over ``sock``); returns
        ``(transport, protocol)``. Raises ``socket.gaierror`` if the host does not resolve,
        ``OSError`` (``ConnectionRefusedError``...) if every address fails (an
        ``ExceptionGroup`` of all of them with ``all_errors=True``); cancelling closes what
        was opened."""
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if all_errors and _ExceptionGroup is None:  # pragma: no cover (Python < 3.11)
            raise TypeError("all_errors=True needs ExceptionGroup: Python 3.11+ or the "
                            "exceptiongroup package")
        if sock is not None:
            _check_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            infos = await self._resolver.ensure_resolved((host, port), family=family,
                                                         type=socket.SOCK_STREAM, proto=proto, flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            laddr_infos = None
            if local_addr is not None:
                laddr_infos = await self._resolver.ensure_resolved(
                    local_addr, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags)
                if not laddr_infos:
                    raise OSError("getaddrinfo() returned empty list")
            if interleave:
                infos = _interleave_addrinfos(infos, interleave)
            errors: List[List[OSError]] = []
            if happy_eyeballs_delay is None:
                for addrinfo in infos:
                    try:
                        sock = await self._connect_sock(errors, addrinfo, laddr_infos)
                        break
                    except OSError:
                        continue
            else:
                sock, _, _ = await staggered_race(
                    (lambda ai=ai: self._connect_sock(errors, ai, laddr_infos)
                     for ai in infos),
                    happy_eyeballs_delay, loop=self)
            if sock is None:
                flat = [exc for sub in errors for exc in sub]
                try:
                    if all_errors:
                        raise _ExceptionGroup("create_connection failed", flat)
                    if len(flat) == 1:
                        raise flat[0]
                    model = str(flat[0])
                    if all(str(exc) == model for exc in flat):
                        raise flat[0]
                    raise OSError("Multiple exceptions: {}".format(", ".join(str(exc) for exc in flat)))
                finally:
                    flat = errors = None  # type: ignore[assignment]  # break the cycles
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            _check_stream_sock(sock)

        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout)
        if self._debug:
            sock = transport.get_extra_info("socket")
            logger.debug("%r connected to %s:%r: (%r, %r)", sock, host, port, transport, protocol)
        return transport, protocol

    async def connect_accepted_socket(
            self, protocol_factory: Callable[[], _ProtocolT], sock: socket.socket, *, ssl: _SSLArg = None,
            ssl_handshake_timeout: Optional[float] = None, ssl_shutdown_timeout: Optional[float] = None,
    ) -> Tuple[asyncio.Transport, _ProtocolT]:
        """Wrap an already accepted/connected stream socket; returns ``(transport, protocol)``."""
        _check_stream_sock(sock)
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        _check_ssl_socket(sock)
        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, "", server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout)
        if self._debug:
            logger.debug("%r handled: (%r, %r)", sock, transport, protocol)
        return transport, protocol

    async def start_tls(self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol,
                        sslcontext: ssl.SSLContext, *, server_side: bool = False,
                        server_hostname: Optional[str] = None, ssl_handshake_timeout: Optional[float] = None,
                        ssl_shutdown_timeout: Optional[float] = None) -> Optional[asyncio.Transport]:
        """Upgrade ``transport`` to TLS; returns the new (TLS) transport. On failure or
        cancellation the transport is closed and the error propagates."""
        if _ssl is None:  # pragma: no cover
            raise RuntimeError("Python ssl module is not available")
        if not isinstance(sslcontext, _ssl.SSLContext):
            raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        waiter = self.create_future()
        ssl_protocol = self._ssl_protocol(protocol, sslcontext, waiter, server_side, server_hostname,
                                          ssl_handshake_timeout, ssl_shutdown_timeout,
                                          call_connection_made=False)
        # _start_tls_compatible (checked above): one of ours, a read transport
        transport.pause_reading()  # type: ignore[attr-defined]
        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)  # type: ignore[attr-defined]
        try:
            await _started(transport, waiter)  # closes the transport on failure
        except BaseException:
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        return ssl_protocol._app_transport  # type: ignore[no-any-return]

    # -- servers ---------------------------------------------------------------------------
    async def _create_server_getaddrinfo(self, host: Optional[str], port: Optional[int], family: int,
                                         flags: int) -> Sequence[Resolved]:
        infos = await self._resolver.ensure_resolved((host, port), family=family,
                                                     type=socket.SOCK_STREAM, flags=flags)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    async def create_server(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: Union[str, Sequence[str], None] = None, port: Optional[int] = None, *,
            family: int = socket.AF_UNSPEC, flags: int = socket.AI_PASSIVE,
            sock: Optional[socket.socket] = None,
            backlog: int = 100, ssl: _SSLArg = None, reuse_address: Optional[bool] = None,
            reuse_port: Optional[bool] = None, keep_alive: Optional[bool] = None,
            ssl_handshake_timeout: Optional[float] = None, ssl_shutdown_timeout: Optional[float] = None,
            start_serving: bool = True,
    ) -> _server.Server:
        """Listen on ``host``/``port`` (``None``/``""``: all interfaces; a list: each of them)
        or on ``sock``; returns a ``Server``. ``OSError`` if binding fails."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            _check_ssl_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            sockets = []
            if host == "":
                hosts: Sequence[Optional[str]] = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = host
            fs = [self._create_server_getaddrinfo(h, port, family, flags) for h in hosts]
            infos = set(itertools.chain.from_iterable(await tasks.gather(*fs)))
            completed = False
            try:
                for res in infos:
                    af, socktype, proto, _, sa = res
                    try:
                        sock = socket.socket(af, socktype, proto)
                    except OSError:
                        if self._debug:
                            logger.warning("create_server() failed to create socket.socket(%r, %r, %r)",
                                           af, socktype, proto, exc_info=True)
                        continue
                    sockets.append(sock)
                    if reuse_address:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                    if reuse_port:
                        set_reuseport(sock)
                    if keep_alive:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                    if af == getattr(socket, "AF_INET6", None) and hasattr(socket, "IPPROTO_IPV6"):
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                    try:
                        sock.bind(sa)
                    except OSError as err:
                        msg = f"error while attempting to bind on address {sa!r}: {_bind_reason(err)}"
                        if err.errno == errno.EADDRNOTAVAIL:
                            sockets.pop()
                            sock.close()
                            if self._debug:
                                logger.warning(msg)
                            continue
                        raise OSError(err.errno, msg) from None
                if not sockets:
                    raise OSError(f"could not bind on any address out of {[i[4] for i in infos]!r}")
                completed = True
            finally:
                if not completed:
                    for s in sockets:
                        s.close()
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            _check_stream_sock(sock)
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = _server.Server(self, sockets, protocol_factory, ssl, backlog,  # type: ignore[arg-type]
                                ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)
        if self._debug:
            logger.info("%r is serving", server)
        return server

    def _stop_serving(self, sock: socket.socket) -> None:
        self._fds.remove(sock.fileno(), True)
        path = None
        inodes = self._fds.unix_inodes
        if inodes and sock in inodes:
            try:
                path = sock.getsockname()
            except OSError:
                path = None
            prev_ino = inodes.pop(sock)
        sock.close()
        if path is not None:
            try:
                if os.stat(path).st_ino == prev_ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

    # -- unix sockets -----------------------------------------------------------------------
    async def create_unix_connection(
            self, protocol_factory: Callable[[], _ProtocolT], path: Optional[str] = None, *,
            ssl: _SSLArg = None, sock: Optional[socket.socket] = None, server_hostname: Optional[str] = None,
            ssl_handshake_timeout: Optional[float] = None, ssl_shutdown_timeout: Optional[float] = None,
    ) -> Tuple[asyncio.Transport, _ProtocolT]:
        """Connect to the unix socket ``path`` (a leading NUL: the abstract namespace) or use
        ``sock``; returns ``(transport, protocol)``."""
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            _check_stream_sock(sock, unix=True)
            sock.setblocking(False)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def create_unix_server(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], path: Optional[StrPath] = None, *,
            sock: Optional[socket.socket] = None, backlog: int = 100, ssl: _SSLArg = None,
            ssl_handshake_timeout: Optional[float] = None, ssl_shutdown_timeout: Optional[float] = None,
            start_serving: bool = True, cleanup_socket: bool = True,
    ) -> _server.Server:
        """Listen on the unix socket ``path`` (a stale socket file there is replaced) or on
        ``sock``; with ``cleanup_socket`` the file is removed when the server closes."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unlink_stale(path)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            _check_stream_sock(sock, unix=True)
        if cleanup_socket:
            name = sock.getsockname()
            if name and name[0] not in (0, "\x00"):
                try:
                    self._fds.unix_inodes[sock] = os.stat(name).st_ino
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server = _server.Server(self, [sock], protocol_factory, ssl, backlog,  # type: ignore[arg-type]
                                ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)
        return server

    # -- sendfile --------------------------------------------------------------------------
    async def sendfile(self, transport: asyncio.WriteTransport, file: IO[bytes], offset: int = 0,
                       count: Optional[int] = None, *, fallback: bool = True) -> int:
        """Send ``file`` over ``transport``: ``os.sendfile`` straight from the page cache on
        socket transports, read-and-write otherwise (``fallback``). Returns bytes sent."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = getattr(transport, "_sendfile_compatible", _SendfileMode.UNSUPPORTED)
        if mode is _SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        _check_sendfile_params(None, file, offset, count)
        if mode is _SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)  # type: ignore[arg-type]
            except exceptions.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(f"fallback is disabled and native sendfile is not supported for "
                               f"transport {transport!r}")
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transport: StreamTransport, file: IO[bytes], offset: int,
                               count: Optional[int]) -> int:
        fileno = self._sendfile_fileno(file)
        resume_reading = transport.is_reading()  # a transport the user paused stays paused
        transport.pause_reading()
        await transport._make_empty_waiter()
        watch_fd = os.dup(transport._fd)  # a poll of our own: libuv watches transport._fd
        try:
            return await self._sendfile_loop(watch_fd, fileno, offset, count)
        finally:
            os.close(watch_fd)
            transport._reset_empty_waiter()
            if resume_reading:
                transport.resume_reading()

    def _sendfile_fileno(self, file: IO[bytes]) -> int:
        if not hasattr(os, "sendfile"):  # pragma: no cover
            raise exceptions.SendfileNotAvailableError("os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        try:
            st = os.fstat(fileno)
        except OSError:
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        if not stat.S_ISREG(st.st_mode):
            raise exceptions.SendfileNotAvailableError("not a regular file")
        return fileno

    async def _sendfile_loop(self, fd: int, fileno: int, offset: int, count: Optional[int]) -> int:
        """``os.sendfile`` from ``fileno`` to socket ``fd`` until ``count`` bytes or EOF;
        waits for writability on a poll of ``fd``. Ends as asyncio's native sendfile does:
        returns the bytes sent, the file position after them; an ``OSError`` before any byte
        went out is ``SendfileNotAvailableError`` (the caller may fall back to read-and-send),
        a later one propagates (``ENOTCONN`` as ``ConnectionError``), the position after the
        bytes sent; cancelled, ``CancelledError`` with the file position left where it was."""
        total = 0
        seek = True
        try:
            while True:
                want = (count - total) if count else (1 << 30)
                if want <= 0:
                    break
                try:
                    sent = os.sendfile(fd, fileno, offset + total, min(want, 1 << 30))
                except (BlockingIOError, InterruptedError):
                    await self._wait_ready(fd, _nothing, False)
                    continue
                except OSError as exc:
                    if total == 0:
                        raise exceptions.SendfileNotAvailableError("os.sendfile call failed") from exc
                    if exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                        raise ConnectionError(errno.ENOTCONN, "socket is not connected") from exc
                    raise
                if sent == 0:
                    break
                total += sent
        except exceptions.CancelledError:
            seek = False
            raise
        finally:
            if total > 0 and seek:
                os.lseek(fileno, offset + total, os.SEEK_SET)
        return total

    async def _sendfile_fallback(self, transport: asyncio.WriteTransport, file: IO[bytes], offset: int,
                                 count: Optional[int]) -> int:
        proto = _SendfileFallbackProtocol(transport)

        async def send(data: memoryview) -> None:
            await proto.drain()
            transport.write(data)

        try:
            return await self._read_and_send(file, offset, count, 16384, send)
        finally:
            await proto.restore()

    async def _read_and_send(self, file: IO[bytes], offset: int, count: Optional[int], blocksize: int,
                             send: Callable[[memoryview], Awaitable[None]]) -> int:
        """The read-and-send fallback of ``sendfile`` and ``sock_sendfile``, as asyncio's:
        read ``file`` from ``offset`` (``count`` bytes, or up to EOF) in the default
        executor, ``blocksize`` at a time, and ``await send(block)`` each block. Returns the
        bytes sent; the file position is left after them, whatever ends the copy."""
        if offset:
            file.seek(offset)
        blocksize = min(count, blocksize) if count else blocksize
        buf = bytearray(blocksize)
        total = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total, blocksize)
                    if blocksize <= 0:
                        return total
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)  # type: ignore[attr-defined]
                if not read:
                    return total
                await send(view[:read])
                total += read
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset + total)

    async def sock_sendfile(self, sock: socket.socket, file: IO[bytes], offset: int = 0,
                            count: Optional[int] = None, *, fallback: Optional[bool] = True) -> int:
        """Send ``file`` over non-blocking stream socket ``sock`` (``os.sendfile`` when the
        file is a regular file, else read-and-send if ``fallback``). Returns bytes sent."""
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_ssl_socket(sock)
        _check_sendfile_params(sock.type, file, offset, count)
        try:
            fileno = self._sendfile_fileno(file)
            return await self._sendfile_loop(sock.fileno(), fileno, offset, count)
        except exceptions.SendfileNotAvailableError:
            if not fallback:
                raise

        async def send(data: memoryview) -> None:
            await self.sock_sendall(sock, data)

        return await self._read_and_send(file, offset, count,
                                         SENDFILE_FALLBACK_READBUFFER_SIZE, send)
