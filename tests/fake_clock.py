"""A clock for tests: time moves only when a test advances it, or when the code under test waits.

Pass ``clock`` (it is callable) where a ``Callable[[], float]`` is wanted (``HostPool``,
``RobotsCache``), or the object itself as the scheduler's ``crawler.clock.Clock``. Its ``wait``
jumps: when the event is not set within a moment of real time (the other tasks, the mock
transport and the job file's thread get their turn first), the clock moves straight to the
deadline, as trio's autojump ``MockClock`` does. A 30-second backoff costs a few milliseconds
and its length can be asserted exactly.
"""

from __future__ import annotations

import asyncio
import contextlib


class FakeClock:
    def __init__(self, now: float = 0.0, *, settle: float = 0.005) -> None:
        self.now = now
        self.settle = settle      # real seconds given to other work before a jump
        self.jumps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def wait(self, event: asyncio.Event, seconds: float | None) -> None:
        if seconds is None:
            await event.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(seconds, self.settle)):
                await event.wait()
                return
        if not event.is_set():
            self.jumps.append(seconds)
            self.now += seconds
