"""Datagram, subprocess and signal APIs of the loop.

``OSMixin`` is a base class of ``uvcffi.Loop``.
"""

from __future__ import annotations

__all__ = ["OSMixin"]


class OSMixin:
    """The loop's UDP, subprocess and signal methods."""
