"""One host in the politeness pool (``politeness.HostPool``): its URLs queued here and its
retries, when it may start its next request and which URL goes next (``pick``: the rules for
retries are in ``politeness``'s docstring), and its adaptive pace (``pace.Pace``). Pure: the pool
passes ``now``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from crawler.models import FrontierItem
from crawler.pace import Pace


@dataclass(slots=True)
class HostQueue:
    """One host's URLs queued here, when it may start its next request, and its pace."""

    queue: deque[FrontierItem] = field(default_factory=deque)
    retries: list[tuple[float, int, FrontierItem]] = field(default_factory=list)   # heap: (due, turn, URL to retry)
    active: int = 0
    next_time: float = 0.0     # earliest start of the next request
    delay: float = 0.0         # least time between two request starts
    known: bool = True         # False until the host's robots.txt has been read: one request at a time
    more: bool = False         # the frontier may hold more of its URLs
    offers: int = 0            # times the frontier said so: a lease that raced with an offer proves nothing
    parked: bool = False       # unreachable: no more requests in this run
    scheduled: float | None = None   # its entry's time in the time heap (None: not in it)
    ready: bool = False        # in the ready heap: its time has come, it waits for its turn
    starts: list[float] = field(default_factory=list)   # its latest request starts (per_host of them)
    duration: float = 0.0      # moving average of its requests' times, start to end (``tier``)
    pace: Pace = field(default_factory=Pace)   # adaptive politeness: its limit, extra delay, failures

    @property
    def last_start(self) -> float:
        return self.starts[-1] if self.starts else float("-inf")

    @property
    def has_work(self) -> bool:
        return bool(self.queue) or self.more or bool(self.retries)

    @property
    def tier(self) -> int:
        """How slow the host's requests are: 0 under half a second, then one more for each doubling
        (1 from 0.5 s, 2 from 1 s, 3 from 2 s, ..., at most 6)."""
        return 0 if self.duration < 0.5 else min(6, int(math.log2(self.duration / 0.25)))

    def limit(self, per_host: int) -> int:
        """Requests in flight it may have now: one until its rules are known, then its pace's."""
        return self.pace.limit(per_host) if self.known else 1

    def ready_at(self, limit: int) -> float | None:
        """When it may start its next request, or None if it cannot (no work, parked, at ``limit``)."""
        if not self.has_work or self.parked or self.active >= limit:
            return None
        if self.retries and ((not self.queue and not self.more) or not self.known):
            return max(self.next_time, self.retries[0][0])   # only retries, or a probe's: the first is due then
        return self.next_time

    def pick(self, now: float, limit: int) -> FrontierItem | Literal["lease"] | None:
        """The URL to start now, or "lease" (lease more of the host's URLs first), or None (none is due)."""
        due = bool(self.retries) and self.retries[0][0] <= now
        if self.retries and not self.known:   # a host that has not answered yet: its probe's retry first
            return heapq.heappop(self.retries)[2] if due else None
        if self.queue:
            return self.queue.popleft()
        if due and (limit - self.active > 1 or not self.more):
            return heapq.heappop(self.retries)[2]   # never a host's last free slot while other URLs wait
        return "lease" if self.more else None   # else only retries, not yet due

    def start(self, now: float, per_host: int) -> None:
        """A request starts now: the next may start after its delay and its pace's extra delay."""
        self.active += 1
        self.starts.append(now)
        if len(self.starts) > per_host:
            del self.starts[0]
        self.next_time = now + self.delay + self.pace.backoff

    def finish(self, now: float) -> None:
        """A request is over: its time counts toward the host's ``tier``."""
        if 0 < self.active <= len(self.starts):   # the oldest request in flight is taken to be this one
            took = now - self.starts[-self.active]
            self.duration = took if not self.duration else 0.7 * self.duration + 0.3 * took
        self.active -= 1

    def at_rest(self, delay: float) -> bool:
        """Nothing left and nothing to remember but its time (no work, nothing in flight, known,
        not parked, at the configured ``delay`` and full pace): the pool may forget it once its
        next start is due."""
        return (not self.has_work and self.active == 0 and not self.parked and self.delay == delay
                and self.known and self.pace.settled)

    def drop(self) -> list[FrontierItem]:
        """Empty its queue and retries here: their URLs."""
        dropped = [*self.queue, *(item for *_, item in self.retries)]
        self.queue.clear()
        self.retries.clear()
        self.more = self.more or bool(dropped)
        return dropped
