"""Small callbacks that complete a future, shared by the task layer and the transports.

A leaf module: it imports nothing of uvcffi, so any module may use it without making a cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["set_result_unless_cancelled"]


def set_result_unless_cancelled(fut: Any, result: Any) -> None:
    """Set ``fut``'s result unless it was cancelled meanwhile: the scheduled end of a waiter
    (a transport's ``waiter`` once ``connection_made`` has run, ``sleep``'s timer)."""
    if not fut.cancelled():
        fut.set_result(result)
