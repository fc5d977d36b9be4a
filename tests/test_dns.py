"""loop.getaddrinfo's argument rules: the running interpreter's socket module decides.

What ``socket.getaddrinfo`` does with a port or number it cannot use changed between
interpreters (CPython 3.12 hands an int port outside a C long to the C library instead of
raising ``OverflowError``, gh-74895; PyPy takes bools and int subclasses and words its errors
its own way), so every case here compares the loop's outcome with the socket module's on the
interpreter that runs the test: the same result, or the same exception (type and errno for a
``gaierror``, type and args otherwise). Hosts: an IP literal (answered on the loop's thread),
``localhost`` and ``None`` (both through the resolver).
"""

from __future__ import annotations

import socket

import pytest
from _support import wait


class IntSub(int):
    pass


HOSTS = ["127.0.0.1", "localhost", None]

PORTS = [
    1 << 70, (1 << 64) + 1, 1 << 64, 1 << 63, (1 << 63) - 1, 1 << 32, 70000, 65536,
    -1, -(1 << 63), -(1 << 63) - 1, -(1 << 64), -(1 << 70),
    True, IntSub(80), IntSub(1 << 70),
    "-1", "99999", str(1 << 64), str(1 << 70), " 80", "\udcff",
    b"-1", str(1 << 70).encode(),
    1.5, bytearray(b"80"), [80],
]


async def _outcome(call):
    try:
        return "result", await wait(call())
    except Exception as exc:  # the comparison is the test
        if isinstance(exc, socket.gaierror):
            return type(exc), exc.errno
        return type(exc), exc.args


async def _socket_module(*args, **kwargs):
    return socket.getaddrinfo(*args, **kwargs)


def _check(loop, args, kwargs):
    async def main():
        expected = await _outcome(lambda: _socket_module(*args, **kwargs))
        got = await _outcome(lambda: loop.getaddrinfo(*args, **kwargs))
        assert got == expected

    loop.run_until_complete(main())


@pytest.mark.parametrize("host", HOSTS, ids=repr)
@pytest.mark.parametrize("port", PORTS, ids=lambda p: f"{type(p).__name__}:{p!r}"[:40])
def test_getaddrinfo_port_like_socket_module(loop, host, port):
    _check(loop, (host, port), dict(family=socket.AF_INET, type=socket.SOCK_STREAM))


ORDER_CASES = [
    # two bad arguments: the socket module's order decides which error is raised
    (("localhost", 1.5), dict(family="x")),
    (("localhost", 1 << 70), dict(flags=1 << 40)),
    ((123, 1.5), {}),
    ((123, 80), dict(type=None)),
    (("\udcff", 1.5), {}),
    (("\udcff", 1 << 70), {}),
    (("\udcff", 80), dict(proto="x")),
    (("\udcff", "80"), {}),
    ((None, 1 << 70), dict(flags=socket.AI_PASSIVE)),
    (("localhost", 80), dict(family=1 << 40)),
    (("localhost", 80), dict(family=-(1 << 40))),
    (("localhost", "80"), dict(flags=1.0)),
]


@pytest.mark.parametrize("args, kwargs", ORDER_CASES, ids=[f"{a!r}-{k!r}" for a, k in ORDER_CASES])
def test_getaddrinfo_error_order_like_socket_module(loop, args, kwargs):
    _check(loop, args, kwargs)
