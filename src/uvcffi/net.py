"""Network and stream APIs of the loop (TCP, unix sockets, pipes, DNS, low-level sockets, TLS).

``NetMixin`` is a base class of ``uvcffi.Loop``.
"""

from __future__ import annotations

__all__ = ["NetMixin"]


class NetMixin:
    """The loop's stream, DNS and socket methods."""
