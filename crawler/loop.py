"""What a run's process is set up with: its event loop (uvloop's where it is installed,
``crawler[fast]``, or asked for) and its open-files limit."""

from __future__ import annotations

import asyncio
import resource
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


def raise_open_files_limit() -> tuple[int, int]:
    """Lift the soft limit on open files to the hard one, for this process and the ones it starts:
    a crawl over thousands of hosts holds a socket per connection, and 1,024 (a common default) runs
    out. Returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft, soft   # not allowed here: the run goes on with what it has
        return soft, hard
    return soft, soft
