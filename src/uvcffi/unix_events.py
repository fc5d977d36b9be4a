"""Datagram and subprocess APIs of the loop (signals: ``signals.py``).

``OSMixin`` is a base class of ``uvcffi.Loop``.

Datagrams: ``create_datagram_endpoint`` resolves and creates the socket in Python, as asyncio
does, and wraps it in ``transports.datagram.DatagramTransport`` (why a poll and not
``uv_udp_t``: that module's essay).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import subprocess
import sys
import warnings

from .transports.datagram import DatagramTransport
from .transports.subprocess import SubprocessTransport

__all__ = ["OSMixin"]

logger = logging.getLogger("asyncio")

_unset = object()
_HAS_IPV6 = hasattr(socket, "AF_INET6")


class OSMixin:
    """The loop's UDP and subprocess methods."""

    # ------------------------------------------------------------------ subprocesses
    async def subprocess_exec(self, protocol_factory, program, *args, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=False, shell=False, bufsize=0, encoding=None,
                              errors=None, text=None, **kwargs):
        """Run ``program`` with ``args`` (no shell); returns ``(transport, protocol)`` once the
        pipes are connected. ``ValueError`` for text-mode/buffering/shell arguments, as
        asyncio; ``OSError`` (``FileNotFoundError``, ``PermissionError``) from a failed spawn,
        with nothing left open. Cancelled while connecting: the child is killed and reaped."""
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")
        protocol = protocol_factory()
        return await self._make_subprocess(protocol, (program,) + args, False, stdin, stdout,
                                           stderr, kwargs)

    async def subprocess_shell(self, protocol_factory, cmd, *, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=False, shell=True, bufsize=0, encoding=None,
                               errors=None, text=None, **kwargs):
        """Run ``cmd`` with ``/bin/sh -c``; as ``subprocess_exec`` otherwise."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")
        protocol = protocol_factory()
        return await self._make_subprocess(protocol, cmd, True, stdin, stdout, stderr, kwargs)

    async def _make_subprocess(self, protocol, args, shell, stdin, stdout, stderr, kwargs):
        self._check_closed()
        waiter = self.create_future()
        transport = SubprocessTransport(self, protocol, args, shell, stdin, stdout, stderr,
                                        waiter=waiter, **kwargs)
        try:
            await waiter
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        return transport, protocol

    # ------------------------------------------------------------------ datagrams
    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None, *,
                                       family=0, proto=0, flags=0, reuse_address=_unset,
                                       reuse_port=None, allow_broadcast=None, sock=None):
        """Create a datagram endpoint; returns ``(transport, protocol)``.

        As asyncio: ``sock`` excludes every other socket argument (``ValueError``) and must be a
        ``SOCK_DGRAM`` socket; ``family=AF_UNIX`` takes path strings (a stale socket file at
        ``local_addr`` is removed); host addresses are resolved and each ``(family, proto)``
        tried in turn, the first failure raised if all fail. ``reuse_address`` is rejected:
        ``TypeError`` on Python 3.11+ (where asyncio removed it), ``ValueError`` if true on
        older versions. Cancellation while resolving leaves nothing open."""
        if reuse_address is not _unset:
            if sys.version_info >= (3, 11):
                raise TypeError("create_datagram_endpoint() got an unexpected keyword argument "
                                "'reuse_address'")
            if reuse_address:
                raise ValueError("Passing `reuse_address=True` is no longer supported, as the usage "
                                 "of SO_REUSEPORT in UDP poses a significant security concern.")
            warnings.warn("The *reuse_address* parameter has been deprecated as of 3.5.10 and "
                          "is scheduled for removal in 3.11.", DeprecationWarning, stacklevel=2)
        self._check_closed()
        r_addr = None
        if sock is not None:
            if sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            given = dict(local_addr=local_addr, remote_addr=remote_addr, family=family, proto=proto,
                         flags=flags, reuse_port=reuse_port, allow_broadcast=allow_broadcast)
            problems = ", ".join(f"{k}={v}" for k, v in given.items() if v)
            if problems:
                raise ValueError("socket modifier keyword arguments can not be used when sock is "
                                 f"specified. ({problems})")
            sock.setblocking(False)
        else:
            pairs = await self._datagram_address_pairs(local_addr, remote_addr, family, proto, flags)
            errors = []
            for (fam, pro), (local_address, remote_address) in pairs:
                sock = None
                try:
                    sock = socket.socket(family=fam, type=socket.SOCK_DGRAM, proto=pro)
                    if reuse_port:
                        if not hasattr(socket, "SO_REUSEPORT"):
                            raise ValueError("reuse_port not supported by socket module")
                        try:
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                        except OSError:
                            raise ValueError("reuse_port not supported by socket module, "
                                             "SO_REUSEPORT defined but not implemented.") from None
                    if allow_broadcast:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                    sock.setblocking(False)
                    if local_addr:
                        sock.bind(local_address)
                    if remote_addr:
                        if not allow_broadcast:
                            sock.connect(remote_address)  # datagram connect never blocks
                        r_addr = remote_address
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    errors.append(exc)
                except BaseException:
                    if sock is not None:
                        sock.close()
                    raise
                else:
                    break
            else:
                raise errors[0]

        try:
            protocol = protocol_factory()
        except BaseException:
            sock.close()
            raise
        waiter = self.create_future()
        transport = DatagramTransport(self, sock, protocol, r_addr, waiter)
        if self._debug:
            logger.debug("Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                         local_addr, remote_addr, transport, protocol)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _datagram_address_pairs(self, local_addr, remote_addr, family, proto, flags):
        """``[((family, proto), (local_address, remote_address)), ...]`` to try in order."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), (None, None))]
        if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr and local_addr[0] not in (0, "\x00"):
                try:
                    if stat.S_ISSOCK(os.stat(local_addr).st_mode):
                        os.remove(local_addr)  # a stale socket file from an earlier run
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to check or remove stale UNIX socket %r: %r", local_addr, err)
            return [((family, proto), (local_addr, remote_addr))]
        infos_by_key: dict = {}  # insertion-ordered: the resolver's preference
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await self._resolve_datagram(addr, family, proto, flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                infos_by_key.setdefault((fam, pro), [None, None])[idx] = address
        pairs = [(key, pair) for key, pair in infos_by_key.items()
                 if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _resolve_datagram(self, addr, family, proto, flags):
        host, port = addr[:2]
        numeric = _numeric_address(host, port, family, proto)
        if numeric is not None:
            return [numeric]
        getaddrinfo = getattr(self, "getaddrinfo", None)
        if getaddrinfo is None or type(self).getaddrinfo is asyncio.AbstractEventLoop.getaddrinfo:
            return await self.run_in_executor(None, lambda: socket.getaddrinfo(
                host, port, family, socket.SOCK_DGRAM, proto, flags))
        return await getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM, proto=proto,
                                 flags=flags)


def _numeric_address(host, port, family, proto):
    """The getaddrinfo entry for an already numeric host, without resolving (asyncio's rule)."""
    if proto not in (0, socket.IPPROTO_UDP) or host is None:
        return None
    if port is None or port == b"" or port == "":
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None  # a service name
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str) or "%" in host:
        return None
    families = [family] if family else ([socket.AF_INET, socket.AF_INET6] if _HAS_IPV6 else [socket.AF_INET])
    for af in families:
        try:
            socket.inet_pton(af, host)
        except (OSError, ValueError):
            continue
        if _HAS_IPV6 and af == socket.AF_INET6:
            return af, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", (host, port, 0, 0)
        return af, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", (host, port)
    return None
