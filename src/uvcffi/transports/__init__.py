"""asyncio transports over libuv: stream (TCP, unix, pipes), datagram, subprocess."""


async def started(transport, waiter) -> None:
    """Wait until ``transport`` has started (its ``waiter`` is done); if that fails or the caller
    is cancelled, close the transport and re-raise -- what every ``create_*``/``connect_*``
    method and a server's TLS handshake do, as asyncio's."""
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
