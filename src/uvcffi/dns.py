"""``getaddrinfo``/``getnameinfo`` on libuv's threadpool.

Two kinds of "already numeric", because asyncio has two:

* ``loop.getaddrinfo()`` must answer exactly as ``socket.getaddrinfo`` does (asyncio runs that in
  its executor), every flag, filter and error included. For a numeric host and a numeric port the
  C library answers without touching the network or a file, so ``_is_numeric`` sends those
  straight to ``socket.getaddrinfo`` on the loop's thread (a few microseconds: exact, and cheaper
  than a threadpool round trip). Anything else becomes a ``uv_getaddrinfo`` request; IPv6 zone
  ids (``fe80::1%eth0``) go that way too, so the resolver fills ``scope_id``.
* ``create_connection``, ``create_server``, ``create_datagram_endpoint`` and ``sock_connect``
  skip resolving an address that is already an IP, without normalizing it or checking the port,
  and keep the caller's flowinfo and scope id (asyncio's ``_ipaddr_info`` rule, ``_ipaddr_info``
  here). So ``("127.0.0.1", 70000)`` fails in ``connect()`` with ``OverflowError``, as on
  asyncio's loop, instead of wrapping.

Argument errors are the socket module's own, on every interpreter: before a libuv request, the
socket module itself judges the arguments in a call that cannot look anything up
(``_check_arguments`` for ``getaddrinfo``, ``_parse_sockaddr`` for ``getnameinfo``), because
its rules and messages changed between versions and differ on PyPy.

The resolver is a loop component: ``Resolver`` (``Loop._resolver``) owns the requests in
flight; ``Loop.getaddrinfo``/``getnameinfo`` delegate to it, and the connection code of the
loop (``net.py``, ``sock.py``, ``transports/datagram.py``) resolves through
``Resolver.ensure_resolved``.

Request lifetime. A ``_Request`` owns its ``uv_*_t`` memory and ``ffi.new_handle``; the
resolver keeps it in its request set from submission until libuv's callback, so neither can
be freed while the threadpool works. Cancelling the awaiting future calls ``uv_cancel``
(which succeeds only before a worker picked the request up; otherwise the answer is dropped).
``Loop.close()`` cancels what is pending (``Resolver.close``) and runs libuv until the
callbacks have run. Failures are ``socket.gaierror`` (through ``_binding.convert_error``;
libuv words the messages its own way, the ``errno`` is the C library's ``EAI_*`` number).
"""

from __future__ import annotations

import operator
import socket
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Set, Tuple, Union

from ._binding import CData, convert_error, ffi, lib

if TYPE_CHECKING:
    import asyncio

    from .loop import Loop

    # the socket module's address of an IPv4 / IPv6 socket
    Sockaddr = Union[Tuple[str, int], Tuple[str, int, int, int]]
    # one entry of getaddrinfo's answer, as typeshed types socket.getaddrinfo's
    AddrInfo = Tuple[socket.AddressFamily, socket.SocketKind, int, str, Sockaddr]
    # one address to connect or bind to: getaddrinfo's, or an IP as written (_ipaddr_info)
    Resolved = Tuple[int, int, int, str, Sockaddr]

__all__ = ["Resolver"]

_HAS_IPV6 = hasattr(socket, "AF_INET6")
_NUMERIC_NAME = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


def _zone_in_host() -> bool:
    """Whether this socket module writes an IPv6 address's zone into the host text, as the C
    library's ``getnameinfo`` does (PyPy: ``("fe80::1%lo", 80, 0, 1)``); CPython leaves it to the
    scope id alone (``("fe80::1", 80, 0, 1)``). Asked once, of a numeric address."""
    if not _HAS_IPV6:
        return False
    try:
        infos = socket.getaddrinfo("fe80::1%1", 0, socket.AF_INET6, socket.SOCK_STREAM, 0,
                                   socket.AI_NUMERICHOST)
    except OSError:
        return False
    return "%" in infos[0][4][0]  # type: ignore[operator]  # an AF_INET6 address: a str


_ZONE_IN_HOST = _zone_in_host()


def _c_int(value: int) -> int:
    """``value`` as a C int takes it, wrapping: PyPy's socket module passes a number outside
    the range on that way (CPython's refuses it, so there only in-range numbers get here)."""
    return (value + 0x80000000) % 0x100000000 - 0x80000000


def _family(af: int) -> socket.AddressFamily:
    try:
        return socket.AddressFamily(af)
    except ValueError:
        return af  # type: ignore[return-value]  # as socket.getaddrinfo: a number it has no name for


def _socktype(t: int) -> socket.SocketKind:
    try:
        return socket.SocketKind(t)
    except ValueError:
        return t  # type: ignore[return-value]  # as socket.getaddrinfo: a number it has no name for


def _sockaddr_to_tuple(sa: CData) -> Optional[Sockaddr]:
    """A ``struct sockaddr*`` as the socket module's address tuple."""
    fam = sa.sa_family
    if fam == socket.AF_INET:
        sin = ffi.cast("struct sockaddr_in*", sa)
        buf = ffi.new("char[64]")
        lib.uv_ip4_name(sin, buf, 64)
        host: str = ffi.string(buf).decode()
        return (host, socket.ntohs(sin.sin_port))
    if fam == socket.AF_INET6:
        sin6 = ffi.cast("struct sockaddr_in6*", sa)
        buf = ffi.new("char[64]")
        lib.uv_ip6_name(sin6, buf, 64)
        host = ffi.string(buf).decode()
        scope_id: int = sin6.sin6_scope_id
        if scope_id and _ZONE_IN_HOST:
            host = socket.getnameinfo((host, 0, 0, scope_id), _NUMERIC_NAME)[0]
        return (host, socket.ntohs(sin6.sin6_port), socket.ntohl(sin6.sin6_flowinfo), scope_id)
    return None


def _is_ip(host: str) -> bool:
    """True if ``host`` (str) is an IPv4 or IPv6 address in a form ``inet_pton`` takes."""
    for af in (socket.AF_INET, socket.AF_INET6) if _HAS_IPV6 else (socket.AF_INET,):
        try:
            socket.inet_pton(af, host)
            return True
        except (OSError, ValueError):
            pass
    return False


def _is_numeric(host: object, port: object) -> bool:
    """True if the C library resolves ``(host, port)`` without a lookup of any kind: an IP
    literal without zone id and a port that is absent, an int or all digits."""
    if isinstance(host, (bytes, bytearray)):
        try:
            host = bytes(host).decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str) or "%" in host:
        return False
    if port is not None and not isinstance(port, int):
        if isinstance(port, (bytes, bytearray)):
            try:
                port = bytes(port).decode("ascii")
            except UnicodeDecodeError:
                return False
        if not isinstance(port, str) or not (port == "" or port.isascii() and port.isdigit()):
            return False
    return _is_ip(host)


def _ipaddr_info(host: Union[str, bytes, None], port: Union[str, bytes, int, None], family: int, type: int,
                 proto: int, flowinfo: int = 0, scopeid: int = 0) -> Optional[Resolved]:
    """The one addrinfo entry for an address that is already an IP, or None to resolve it
    (the rule of asyncio's ``_ensure_resolved``: only for stream/datagram sockets, any port
    ``int()`` takes, the host kept as written)."""
    if host is None or proto not in (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None or port == "" or port == b"":
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None  # a service name ("http") or garbage: the resolver decides
    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        return None  # inet_pton takes no zone id
    if family == socket.AF_UNSPEC:
        families: Tuple[int, ...] = (socket.AF_INET, socket.AF_INET6) if _HAS_IPV6 else (socket.AF_INET,)
    else:
        families = (family,)
    for af in families:
        try:
            socket.inet_pton(af, host)
        except OSError:
            continue
        if _HAS_IPV6 and af == socket.AF_INET6:
            return af, type, proto, "", (host, port, flowinfo, scopeid)
        return af, type, proto, "", (host, port)
    return None


def _parse_sockaddr(sockaddr: Sockaddr, flags: int) -> Tuple[int, Tuple[Any, ...]]:
    """Check ``getnameinfo``'s arguments as the socket module does; the numeric
    ``(family, address)`` to hand to libuv. The same ``TypeError``/``OverflowError``/
    ``OSError``/``socket.gaierror`` as ``socket.getnameinfo`` for a bad one.

    The socket module itself judges them (its messages differ between interpreters:
    CPython 3.9's "an integer is required", 3.10's "cannot be interpreted as an integer",
    PyPy's own): ``socket.getnameinfo`` with ``NI_NUMERICHOST | NI_NUMERICSERV`` added to the
    flags, so the C library looks nothing up. A ``gaierror`` from it is dropped: the host's
    parse below raises it again, and the flags are the real request's to judge."""
    try:
        numeric = operator.index(flags) | _NUMERIC_NAME
        if not -0x80000000 <= numeric <= 0x7FFFFFFF:
            numeric = flags  # a C int overflow: the socket module's error
    except TypeError:
        numeric = flags  # not a number: the socket module's error
    try:
        socket.getnameinfo(sockaddr, numeric)
    except socket.gaierror:
        pass
    host, port = sockaddr[0], int(sockaddr[1])
    flowinfo = int(sockaddr[2]) & 0xFFFFFFFF if len(sockaddr) > 2 else 0
    scope_id = int(sockaddr[3]) & 0xFFFFFFFF if len(sockaddr) > 3 else 0
    # AI_NUMERICHOST: the C library parses, it never looks anything up
    infos = socket.getaddrinfo(host, str(port), socket.AF_UNSPEC, socket.SOCK_DGRAM, 0,
                               socket.AI_NUMERICHOST)
    if len(infos) != 1:
        raise OSError("sockaddr resolved to multiple addresses")
    family, _, _, _, addr = infos[0]
    if family == socket.AF_INET:
        if len(sockaddr) != 2:
            raise OSError("IPv4 sockaddr must be 2 tuple")
        return family, addr
    if _HAS_IPV6 and family == socket.AF_INET6:
        return family, (addr[0], addr[1], flowinfo, scope_id)
    raise OSError("unknown family")  # pragma: no cover


def _check_arguments(host: Any, port: Any, family: int, type: int, proto: int, flags: int) -> None:
    """Raise what ``socket.getaddrinfo`` raises for arguments it refuses before it asks the C
    library, in its order: the four numbers, then the host's type, then its IDNA encoding,
    then the port.

    The socket module itself judges them, because its rules differ between interpreters:
    CPython before 3.12 refuses an int port outside a C long with ``OverflowError``, 3.12 and
    later hand its digits to the C library, which answers ``gaierror`` or wraps it (gh-74895);
    CPython takes only exact ints and raises ``OSError("Int or String expected")`` for any other
    type, PyPy takes bools and int subclasses, refuses the rest with ``TypeError`` and words
    its number errors its own way. So the numbers and the port go to ``socket.getaddrinfo``
    with the host replaced by ``None`` (a wrong-typed host is passed as is, to be refused) and a
    text port (a service name) by ``None``: the C library is asked for nothing it would look
    up. Its answer, a loopback address or a ``gaierror``, is dropped: the real request gets the
    C library's verdict on the real arguments.
    """
    probe_host = None if host is None or isinstance(host, (str, bytes)) else host
    probe_port = None if port is None or isinstance(port, (str, bytes)) else port
    try:
        socket.getaddrinfo(probe_host, probe_port, family, type, proto, flags)
    except socket.gaierror:
        pass
    except BaseException:
        if probe_port is not None and isinstance(host, str):
            # the socket module encodes the host before it reads the port: if the numbers
            # pass and the host does not encode, that error comes first
            try:
                socket.getaddrinfo(None, None, family, type, proto, flags)
            except socket.gaierror:
                pass
            host.encode("idna")
        raise


class _Request:
    """One libuv DNS request: its memory, its future, its place in ``Resolver._requests``."""

    __slots__ = ("_resolver", "_loop", "req", "cself", "fut", "keep", "done")

    def __init__(self, resolver: Resolver, ctype: str) -> None:
        self._resolver = resolver
        loop = self._loop = resolver._loop
        self.req = ffi.new(ctype)
        self.cself = ffi.new_handle(self)
        self.req.data = self.cself
        self.fut: asyncio.Future[Any] = loop.create_future()
        self.keep: object = None  # what C reads until the callback: hints, strings, sockaddr
        self.done = False

    def submitted(self, status: int) -> None:
        if status < 0:
            raise convert_error(status)
        self._resolver._requests.add(self)
        self.fut.add_done_callback(self._fut_done)

    def _fut_done(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() and not self.done:
            self.cancel()

    def cancel(self) -> None:
        if not self.done:
            lib.uv_cancel(ffi.cast("uv_req_t*", self.req))

    def _finish(self, status: int) -> Optional[asyncio.Future[Any]]:
        """libuv answered with ``status``: the request leaves the resolver. Returns the future
        to set the result of, or None: a failure is set here, and a future already done
        (cancelled) or a closed loop's takes nothing."""
        self.done = True
        self._resolver._requests.discard(self)
        fut = self.fut
        if fut.done() or self._loop.is_closed():
            return None
        if status < 0:
            fut.set_exception(convert_error(status))
            return None
        return fut

    def _on_getaddrinfo(self, status: int, res: CData) -> None:
        fut = self._finish(status)
        if fut is None:
            return
        out: List[AddrInfo] = []
        ai = res
        while ai != ffi.NULL:
            addr = _sockaddr_to_tuple(ai.ai_addr) if ai.ai_addr != ffi.NULL else None
            if addr is not None:
                canon = ffi.string(ai.ai_canonname).decode() if ai.ai_canonname != ffi.NULL else ""
                out.append((_family(ai.ai_family), _socktype(ai.ai_socktype), ai.ai_protocol, canon, addr))
            ai = ai.ai_next
        fut.set_result(out)

    def _on_getnameinfo(self, status: int, host: CData, service: CData) -> None:
        fut = self._finish(status)
        if fut is not None:
            fut.set_result((ffi.string(host).decode(), ffi.string(service).decode()))


class Resolver:
    """The loop's resolver component (``Loop._resolver``): the DNS requests in flight and the
    calls that make them. ``Loop.getaddrinfo``/``getnameinfo`` delegate here; the loop's
    connection code asks ``ensure_resolved``. ``close()`` (from ``Loop.close()``, before libuv
    is closed) cancels what is still in libuv's threadpool."""

    __slots__ = ("_loop", "_requests")

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        # _Request objects between submission and libuv's callback: their C memory and
        # handle must live until then (see "Request lifetime" above)
        self._requests: Set[_Request] = set()

    async def getaddrinfo(self, host: Union[str, bytes, None], port: Union[str, bytes, int, None], *,
                          family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> List[AddrInfo]:
        """Resolve ``(host, port)`` like ``socket.getaddrinfo``; a list of
        ``(family, type, proto, canonname, sockaddr)``. ``socket.gaierror`` on failure, and the
        socket module's own error for an argument it refuses (``_check_arguments``); if
        cancelled, the libuv request is cancelled too."""
        loop = self._loop
        loop._check_closed()
        if _is_numeric(host, port) and not (isinstance(port, int) and port < 0):
            # no lookup can happen: the C library's exact answer, on this thread
            # (an IP: no (int, bytes) address of AF_PACKET's here)
            return socket.getaddrinfo(host, port, family, type, proto, flags)  # type: ignore[return-value]
        _check_arguments(host, port, family, type, proto, flags)
        family, type_, proto, flags = (_c_int(int(x)) for x in (family, type, proto, flags))
        if host is None:
            node = ffi.NULL
        elif isinstance(host, str):
            node = host.encode("idna")
        else:
            node = host  # bytes: _check_arguments let nothing else through
        if port is None:
            service = ffi.NULL
        elif isinstance(port, str):
            service = port.encode()
        elif isinstance(port, bytes):
            service = port
        else:
            service = str(int(port)).encode()  # an int the socket module took: its digits
        if node == b"" or (node == ffi.NULL and service == ffi.NULL):
            # libuv refuses these (EINVAL); the C library answers "no such name"
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        hints = ffi.new("struct addrinfo*")
        hints.ai_family = family
        hints.ai_socktype = type_
        hints.ai_protocol = proto
        hints.ai_flags = flags
        r = _Request(self, "uv_getaddrinfo_t*")
        r.keep = (hints, node, service)
        r.submitted(lib.uv_getaddrinfo(loop._uv, r.req, lib._uvcffi_on_getaddrinfo, node, service, hints))
        infos: List[AddrInfo] = await r.fut
        return infos

    async def getnameinfo(self, sockaddr: Sockaddr, flags: int = 0) -> Tuple[str, str]:
        """``socket.getnameinfo`` on libuv's threadpool: ``(host, service)``. The socket
        module's errors for a bad ``sockaddr``; ``socket.gaierror`` if the lookup fails; if
        cancelled, the libuv request is cancelled too."""
        loop = self._loop
        loop._check_closed()
        family, addr = _parse_sockaddr(sockaddr, flags)
        h = addr[0].encode()
        if family == socket.AF_INET:
            sin = ffi.new("struct sockaddr_in*")
            lib.uv_ip4_addr(h, addr[1], sin)
        else:
            sin = ffi.new("struct sockaddr_in6*")
            lib.uv_ip6_addr(h, addr[1], sin)
            sin.sin6_flowinfo = socket.htonl(addr[2])
            sin.sin6_scope_id = addr[3]  # the tuple's, even if the text named a zone
        r = _Request(self, "uv_getnameinfo_t*")
        r.keep = sin
        r.submitted(lib.uv_getnameinfo(loop._uv, r.req, lib._uvcffi_on_getnameinfo,
                                       ffi.cast("struct sockaddr*", sin), _c_int(int(flags))))
        names: Tuple[str, str] = await r.fut
        return names

    async def ensure_resolved(self, address: Tuple[Any, ...], *, family: int = 0,
                              type: int = socket.SOCK_STREAM, proto: int = 0,
                              flags: int = 0) -> Sequence[Resolved]:
        """``address`` as addrinfo entries: as written if it is already an IP (asyncio's
        rule), else through ``loop.getaddrinfo`` (which a subclass or test may replace).
        Ends as that call does."""
        host, port = address[:2]
        info = _ipaddr_info(host, port, family, type, proto, *address[2:])
        if info is not None:
            return [info]
        return await self._loop.getaddrinfo(host, port, family=family, type=type, proto=proto,
                                            flags=flags)

    def close(self) -> None:
        """Cancel the requests still in libuv's threadpool; libuv runs their callbacks (with
        ``UV_ECANCELED``) while ``Loop.close()`` closes the loop. Idempotent."""
        for r in list(self._requests):
            r.cancel()
