"""A clock for tests: time moves only when a test advances it, or when the code under test waits.

Pass ``clock`` (it is callable) where a ``Callable[[], float]`` is wanted (``HostPool``,
``RobotsCache``), or the object itself as the scheduler's ``crawler.clock.Clock``. Its ``wait``
jumps: when the event is not set within a moment of real time (the other tasks, the mock
transport and the job file's thread get their turn first), the clock moves straight to the
deadline, as trio's autojump ``MockClock`` does. A 30-second backoff costs a few milliseconds
and its length can be asserted exactly.

trio's clock jumps only when every task is blocked; "a moment of real time" is a guess at that,
and on a loaded machine a visit or a write to the job file can take longer. So a clock given
``busy`` (``fake_web.crawl`` gives it "a visit in flight or a record not yet committed") keeps
waiting while real work is under way, up to ``patience`` real seconds, before it jumps: a jump past
a host's park while the request that parked it was still being stored let the crawl fetch URLs a
parked host must not get (seen as 6 and 8 of 8 fetched under load, 3 expected).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class FakeClock:
    def __init__(self, now: float = 0.0, *, settle: float = 0.005) -> None:
        self.now = now
        self.settle = settle      # real seconds given to other work before a jump
        self.jumps: list[float] = []
        self.busy: Callable[[], bool] = lambda: False   # real work under way: no jump yet
        self.patience = 10.0      # real seconds a jump waits for that work at most

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
        waited = 0.0
        while not event.is_set() and self.busy() and waited < self.patience:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settle):
                    await event.wait()
            waited += self.settle
        if not event.is_set():
            self.jumps.append(seconds)
            self.now += seconds
