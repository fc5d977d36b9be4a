"""``getaddrinfo``/``getnameinfo`` on libuv's threadpool.

Numeric hosts never leave Python: ``_numeric_addrinfo`` answers ``("127.0.0.1", 80)`` the way
the resolver would (every socket type asked for, ``sockaddr`` tuples as the socket module
builds them). Anything else becomes a ``uv_getaddrinfo`` request; IPv6 zone ids
(``fe80::1%eth0``) go that way too, so the resolver fills ``scope_id``.

Request lifetime. A ``_Request`` owns its ``uv_*_t`` memory and ``ffi.new_handle``; the loop
keeps it in ``loop._dns_requests`` from submission until libuv's callback, so neither can be
freed while the threadpool works. Cancelling the awaiting future calls ``uv_cancel`` (which
succeeds only before a worker picked the request up; otherwise the answer is dropped).
``Loop.close()`` cancels what is pending (``_close_net``) and runs libuv until the callbacks
have run. Failures are ``socket.gaierror`` (through ``_binding.convert_error``).
"""

from __future__ import annotations

import socket

from ._binding import convert_error, ffi, lib

__all__ = ["DnsMixin"]

_SOCKTYPES = (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW)
_PROTO_FOR = {socket.SOCK_STREAM: socket.IPPROTO_TCP, socket.SOCK_DGRAM: socket.IPPROTO_UDP}


def _family(af: int):
    try:
        return socket.AddressFamily(af)
    except ValueError:
        return af


def _socktype(t: int):
    try:
        return socket.SocketKind(t)
    except ValueError:
        return t


def _sockaddr_to_tuple(sa):
    """A ``struct sockaddr*`` as the socket module's address tuple."""
    fam = sa.sa_family
    if fam == socket.AF_INET:
        sin = ffi.cast("struct sockaddr_in*", sa)
        buf = ffi.new("char[64]")
        lib.uv_ip4_name(sin, buf, 64)
        return (ffi.string(buf).decode(), socket.ntohs(sin.sin_port))
    if fam == socket.AF_INET6:
        sin6 = ffi.cast("struct sockaddr_in6*", sa)
        buf = ffi.new("char[64]")
        lib.uv_ip6_name(sin6, buf, 64)
        return (ffi.string(buf).decode(), socket.ntohs(sin6.sin6_port),
                socket.ntohl(sin6.sin6_flowinfo), sin6.sin6_scope_id)
    return None


def _port_to_int(port):
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port == "":
            return 0
        try:
            return int(port)
        except ValueError:
            return None
    if isinstance(port, int):
        return port
    raise OSError("Int or String expected")


def _numeric_addrinfo(host, port, family, type, proto, flags):
    """The resolver's answer for a numeric host, or None to ask the resolver."""
    if host is None or not isinstance(host, (str, bytes)):
        return None
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return None
    if "%" in host:
        return None
    port_num = _port_to_int(port)
    if port_num is None or not 0 <= port_num <= 65535:
        return None
    if type == 0:
        types = [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]
    elif type in _PROTO_FOR or type == socket.SOCK_RAW:
        types = [type]
    else:
        return None
    candidates = []
    if family in (0, socket.AF_INET):
        try:
            socket.inet_pton(socket.AF_INET, host)
            candidates.append((socket.AF_INET, (host, port_num)))
        except OSError:
            pass
    if family in (0, socket.AF_INET6) and not candidates:
        try:
            packed = socket.inet_pton(socket.AF_INET6, host)
            candidates.append((socket.AF_INET6, (socket.inet_ntop(socket.AF_INET6, packed), port_num, 0, 0)))
        except OSError:
            pass
    if not candidates:
        return None
    af, addr = candidates[0]
    result = []
    for t in types:
        if proto and t in _PROTO_FOR and proto != _PROTO_FOR[t]:
            continue
        p = _PROTO_FOR.get(t, 0) if t != socket.SOCK_RAW else proto
        result.append((_family(af), _socktype(t), p, "", addr))
    return result


class _Request:
    """One libuv DNS request: its memory, its future, its place in ``loop._dns_requests``."""

    __slots__ = ("_loop", "req", "cself", "fut", "keep", "done")

    def __init__(self, loop, ctype: str) -> None:
        self._loop = loop
        self.req = ffi.new(ctype)
        self.cself = ffi.new_handle(self)
        self.req.data = self.cself
        self.fut = loop.create_future()
        self.keep = None
        self.done = False

    def submitted(self, status: int) -> None:
        if status < 0:
            raise convert_error(status)
        self._loop._dns_requests.add(self)
        self.fut.add_done_callback(self._fut_done)

    def _fut_done(self, fut) -> None:
        if fut.cancelled() and not self.done:
            self.cancel()

    def cancel(self) -> None:
        if not self.done:
            lib.uv_cancel(ffi.cast("uv_req_t*", self.req))

    def _finish(self):
        self.done = True
        self._loop._dns_requests.discard(self)
        fut = self.fut
        if fut.done() or self._loop.is_closed():
            return None
        return fut

    def _on_getaddrinfo(self, status: int, res) -> None:
        fut = self._finish()
        if fut is None:
            return
        if status < 0:
            fut.set_exception(convert_error(status))
            return
        out = []
        ai = res
        while ai != ffi.NULL:
            addr = _sockaddr_to_tuple(ai.ai_addr) if ai.ai_addr != ffi.NULL else None
            if addr is not None:
                canon = ffi.string(ai.ai_canonname).decode() if ai.ai_canonname != ffi.NULL else ""
                out.append((_family(ai.ai_family), _socktype(ai.ai_socktype), ai.ai_protocol, canon, addr))
            ai = ai.ai_next
        fut.set_result(out)

    def _on_getnameinfo(self, status: int, host, service) -> None:
        fut = self._finish()
        if fut is None:
            return
        if status < 0:
            fut.set_exception(convert_error(status))
            return
        fut.set_result((ffi.string(host).decode(), ffi.string(service).decode()))


class DnsMixin:
    """The loop's resolver methods."""

    _dns_requests: set  # _Request objects between submission and libuv's callback

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        """Resolve ``(host, port)`` like ``socket.getaddrinfo``; a list of
        ``(family, type, proto, canonname, sockaddr)``. ``socket.gaierror`` on failure; if
        cancelled, the libuv request is cancelled too."""
        self._check_closed()
        fast = _numeric_addrinfo(host, port, family, type, proto, flags)
        if fast is not None:
            return fast
        if host is None:
            node = ffi.NULL
        elif isinstance(host, str):
            node = host.encode("idna")
        elif isinstance(host, (bytes, bytearray)):
            node = bytes(host)
        else:
            raise TypeError(f"getaddrinfo() argument 1 must be string or None, not {type(host).__name__}")
        if port is None:
            service = ffi.NULL
        elif isinstance(port, int):
            service = str(port).encode()
        elif isinstance(port, str):
            service = port.encode()
        elif isinstance(port, bytes):
            service = port
        else:
            raise OSError("Int or String expected")
        for name, v in (("family", family), ("type", type), ("proto", proto), ("flags", flags)):
            if not isinstance(v, int):
                raise TypeError(f"'{name}' must be an integer, not {v.__class__.__name__}")
        hints = ffi.new("struct addrinfo*")
        hints.ai_family = family
        hints.ai_socktype = type
        hints.ai_protocol = proto
        hints.ai_flags = flags
        r = _Request(self, "uv_getaddrinfo_t*")
        r.keep = (hints, node, service)
        r.submitted(lib.uv_getaddrinfo(self._uv, r.req, lib._uvcffi_on_getaddrinfo, node, service, hints))
        return await r.fut

    async def getnameinfo(self, sockaddr, flags=0):
        """``socket.getnameinfo`` on libuv's threadpool: ``(host, service)``."""
        self._check_closed()
        if not isinstance(sockaddr, tuple):
            raise TypeError("getnameinfo() argument 1 must be a tuple")
        if not 2 <= len(sockaddr) <= 4:
            raise TypeError("getnameinfo(): illegal sockaddr argument")
        host, port = sockaddr[0], sockaddr[1]
        if not isinstance(host, str) or not isinstance(port, int):
            raise TypeError("getnameinfo(): illegal sockaddr argument")
        if not isinstance(flags, int):
            raise TypeError(f"'flags' must be an integer, not {flags.__class__.__name__}")
        if not 0 <= port <= 65535:
            raise OverflowError("getnameinfo(): port must be 0-65535.")
        flowinfo = sockaddr[2] if len(sockaddr) > 2 else 0
        scope_id = sockaddr[3] if len(sockaddr) > 3 else 0
        if not 0 <= flowinfo <= 0xFFFFF:
            raise OverflowError("getnameinfo(): flowinfo must be 0-1048575.")
        h = host.encode()
        sin = ffi.new("struct sockaddr_in*")
        sin6 = ffi.new("struct sockaddr_in6*")
        if lib.uv_ip4_addr(h, port, sin) == 0 and len(sockaddr) == 2:
            sa = ffi.cast("struct sockaddr*", sin)
        elif lib.uv_ip6_addr(h, port, sin6) == 0:
            sin6.sin6_flowinfo = socket.htonl(flowinfo)
            if scope_id:
                sin6.sin6_scope_id = scope_id
            sa = ffi.cast("struct sockaddr*", sin6)
        else:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        r = _Request(self, "uv_getnameinfo_t*")
        r.keep = (sin, sin6)
        r.submitted(lib.uv_getnameinfo(self._uv, r.req, lib._uvcffi_on_getnameinfo, sa, flags))
        return await r.fut

    async def _ensure_resolved(self, address, *, family=0, type=socket.SOCK_STREAM, proto=0, flags=0):
        host, port = address[:2]
        info = _numeric_addrinfo(host, port, family, type, proto, flags)
        if info is not None:
            if len(address) > 2 and info[0][0] == socket.AF_INET6:
                # keep the caller's flowinfo / scope_id
                info = [(f, t, p, c, (a[0], a[1]) + tuple(address[2:4])) for f, t, p, c, a in info]
            return info
        return await self.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)

    def _close_dns(self) -> None:
        for r in list(self._dns_requests):
            r.cancel()
