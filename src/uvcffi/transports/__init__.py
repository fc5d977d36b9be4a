"""asyncio transports over libuv: stream (TCP, unix, pipes), datagram, subprocess."""


from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio


async def started(transport: asyncio.BaseTransport, waiter: asyncio.Future[Any]) -> None:
    """Wait until ``transport`` has started (its ``waiter`` is done); if that fails or the caller
    is cancelled, close the transport and re-raise -- what every ``create_*``/``connect_*``
    method and a server's TLS handshake do, as asyncio's."""
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
