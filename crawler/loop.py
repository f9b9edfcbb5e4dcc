"""The event loop a run uses: uvloop's where it is installed (``crawler[fast]``) or asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from crawler.errors import UsageError
from crawler.models import EventLoopKind


def event_loop_factory(kind: EventLoopKind) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for, or when ``auto`` and it is installed; None: asyncio's own."""
    if kind == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise UsageError("event_loop = uvloop needs uvloop: pip install 'crawler[fast]'") from None
        return None
    return uvloop.new_event_loop
