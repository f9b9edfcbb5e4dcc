"""What a run learns of each host from its answers, told to the host pool and written to the job
file when it changes, for ``crawler stats --hosts``: reached (it answered, or its robots.txt was
read), slowed down (429, 503, timeouts, answers far slower than usual), parked for failing or for
being unreachable, and back at full pace.

The pace itself (limits, delays, backoff, parks) is ``HostPool``'s, which says what changed
(``pace.Slowed``, ``Parked``, ``Recovered``); this module decides what an answer or a failure means
for the host and writes those changes to the job file, keeping no copy of the pool's state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crawler.clock import Clock
from crawler.config import Settings
from crawler.errors import ConnectFailed, FetchError, ServerBusy, Timeout
from crawler.frontier import Frontier
from crawler.models import FrontierItem
from crawler.observe.base import Observer
from crawler.pace import Parked, Recovered, Slowed
from crawler.peers import Peers
from crawler.politeness import HostPool
from crawler.storage.schema import stored_time


class Hosts:
    """This run's news of each host. ``reached``: hosts that answered in this run; ``parked``:
    hosts parked in this run."""

    def __init__(self, settings: Settings, pool: HostPool, frontier: Frontier, peers: Peers, clock: Clock,
                 observer: Observer | None = None) -> None:
        self._settings = settings
        self.pool = pool
        self._frontier = frontier
        self._peers = peers
        self._clock = clock
        self._observer = observer or Observer()   # hears each change written to the job file
        self.reached: set[str] = set()   # hosts that answered in this run
        self.parked: set[str] = set()    # hosts parked in this run

    async def strained(self, host: str, item: FrontierItem, err: FetchError, answers: int) -> None:
        """A failed request. If the host answered other requests while it ran, the URL failed, not
        the host: only a 429 or 503 slows the host down. Otherwise a 429, a 503 or a timeout slows it
        down (``HostPool.slow_down``), and any retryable failure (a reset, a 500 too) counts against
        it: failures across too many distinct URLs with no good answer between them park it for a
        while, which the job file records for ``crawler stats --hosts``, and its queued URLs go back
        to the frontier meanwhile."""
        if not isinstance(err, ServerBusy | Timeout | ConnectFailed) or host in self.parked:
            return
        retry_after = None
        if isinstance(err, ServerBusy) and err.retry_after is not None:
            retry_after = min(err.retry_after, self._settings.retry_after_max)
        alive = self.pool.answered_since(host, answers)
        busy = isinstance(err, ServerBusy) and err.status in (429, 503)
        strain = busy or (isinstance(err, Timeout) and not alive)
        was_adapted = self.pool.adapted(host)   # then the job file has it backed off already
        change = self.pool.note_failure(host, retry_after, strain=strain, url=None if alive else item.url)
        reason = f"{err.status}" if isinstance(err, ServerBusy) else err.code
        if isinstance(change, Parked):
            await self._record_pace(host, "parked", change.until, reason)
            await self.hand_back(self.pool.give_back(host))
        elif isinstance(change, Slowed) and not was_adapted:
            await self._record_pace(host, "backoff", None, reason)

    async def hand_back(self, dropped: list[FrontierItem]) -> None:
        """Return URLs that were queued here to the frontier (their host is parked: it holds no leases)."""
        self._peers.settled(dropped)
        if dropped:
            await self._frontier.release(dropped)

    async def answered_in(self, host: str, seconds: float) -> None:
        """A response came: the host recovers gradually, or slows down if it answered far slower
        than usual; the job file hears when it is back at full pace."""
        was_adapted = self.pool.adapted(host)
        change = self.pool.note_answer(host, seconds)
        if isinstance(change, Slowed) and not was_adapted:
            await self._record_pace(host, "backoff", None, "slow")
        elif isinstance(change, Recovered):
            await self._record_pace(host, "active", None, None)

    async def _record_pace(self, host: str, state: str, until: float | None, reason: str | None) -> None:
        """Write a host's politeness state to the job file: backed off, parked a while, or active."""
        if state == "active":
            self._observer.host(host, "active", None, None)
            await self._frontier.back_off(host, None)
            return
        limit, delay, _ = self.pool.pace(host)
        if state == "parked":
            wall = stored_time(datetime.now(UTC) + timedelta(seconds=max(0.0, (until or 0.0) - self._clock.time())))
            self._observer.host(host, "parked", detail := f"{reason}, failing", wall)
            await self._frontier.park(host, wall, detail)
        else:
            self._observer.host(host, "backoff", detail := f"{reason}: {limit} in flight, {delay:.3g} s apart", None)
            await self._frontier.back_off(host, detail)

    def answered(self, host: str) -> None:
        """The host is reachable: lift its one-request probe (robots.txt lifts it first, when read)."""
        self.reached.add(host)
        if not self._settings.robots:
            self.pool.learn(host, None)

    async def park(self, host: str, err: FetchError) -> None:
        """A host that never answered in this run (it refuses connections, does not resolve, or
        cannot serve its robots.txt) is parked: no more requests to it now; its URLs stay pending
        for a run after ``robots_retry_after``. Its other queued URLs go back to the frontier."""
        if host in self.parked:
            return
        self.parked.add(host)
        dropped = self.pool.park(host)
        until = stored_time(datetime.now(UTC) + timedelta(seconds=self._settings.robots_retry_after))
        self._observer.host(host, "parked", err.code, until)
        await self._frontier.park(host, until, err.code)
        await self.hand_back(dropped)
