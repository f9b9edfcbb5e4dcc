"""Time as the scheduler sees it: a monotonic clock and a wait that a test can replace.

The scheduler never calls ``time.monotonic`` or sleeps on its own: it asks its ``Clock``. In a
crawl that is ``SystemClock``; in tests it is a fake that jumps to the next deadline instead of
waiting for it (trio's ``MockClock`` with autojump), so a 30-second backoff takes no time at all
and its length can be asserted exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def wait(self, event: asyncio.Event, seconds: float | None) -> None:
        """Return when ``event`` is set or ``seconds`` have passed (None: wait for the event alone)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``asyncio.timeout``."""

    def time(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()


async def pause(clock: Clock, seconds: float) -> None:
    """Wait ``seconds`` on ``clock``, for nothing else: a poll of what other machines do."""
    await clock.wait(asyncio.Event(), seconds)
