"""The dispatch loop: it leases URLs for hosts that come ready, starts a visit for each as soon as
its host and a global permit allow, and says when the run is over (``Dispatcher.finished``).

Nothing here sleeps while holding a slot: a URL waits for its host first, takes a global permit
second, and a URL to retry goes back to its host's queue with a backoff instead of sleeping in a
visit. Permits bound requests in flight; slots bound visits alive (fetching, or holding a body for
the parse stage), so a slow parse stage slows fetching instead of growing memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from crawler.clock import Clock
from crawler.config import Settings
from crawler.frontier import Frontier
from crawler.models import FrontierItem, Outcome
from crawler.peers import Peers
from crawler.politeness import HostPool, Wanted
from crawler.run_stats import RunStats
from crawler.storage.pages import PageStore
from crawler.writer import Writer

# When only hosts parked for failing have URLs left, a run waits for them only if a park ends within
# this many seconds; otherwise it ends and a later run (a resume) tries them.
PARK_WAIT = 30.0


class Dispatcher:
    """Hands the URLs of ``pool``'s ready hosts to visits, in tasks kept in ``visits``.
    ``pages_before`` is what this pass stored before this run (``--max-pages`` counts it);
    ``stopping`` says whether the run was asked to stop, ``at_once`` whether twice; ``more_coming``
    whether something other than a page (a sitemap) may still queue URLs."""

    def __init__(self, settings: Settings, clock: Clock, pool: HostPool, peers: Peers, stats: RunStats,
                 wake: asyncio.Event, visits: set[asyncio.Task[None]], *, pages_before: int,
                 stopping: Callable[[], bool], at_once: Callable[[], bool], more_coming: Callable[[], bool]) -> None:
        self._settings = settings
        self._clock = clock
        self._pool = pool
        self._peers = peers
        self._stats = stats
        self._wake = wake
        self._visits = visits
        self._pages_before = pages_before
        self._stopping = stopping
        self._at_once = at_once
        self._more_coming = more_coming
        self.permits = asyncio.Semaphore(settings.concurrency)
        self.slots = asyncio.Semaphore(2 * settings.concurrency)
        self._fetches = 0   # URLs dispatched in this run, less those excluded without a request

    def committed(self, queued: tuple[int, set[str]]) -> None:
        """URLs were queued (``queued``: how many, and their hosts): offer the hosts."""
        count, hosts = queued
        self._stats.queued += count
        for host in hosts:
            self._pool.offer(host)
        self._wake.set()

    def unfetched(self) -> None:
        self._fetches -= 1   # no request was made: --max-pages counts fetched pages only

    async def offer_work(self, frontier: Frontier) -> None:
        """Offer every host the frontier has work for (offering a host already known costs nothing)."""
        for host in await frontier.hosts_with_work():
            self._pool.offer(host)

    def finished(self, writer: Writer) -> bool:
        """The crawl is over when nothing can produce another URL to fetch: no host has work (URLs
        queued here, URLs the frontier may still hold for it, retries waiting out a backoff, or a
        request in flight), and no record is waiting to be written (its links would be new work).
        Every commit offers the hosts it queued URLs for before ``unflushed`` can reach zero, so
        this cannot miss a link. "No host is ready right now" is not finished: hosts may be in
        their delay or backoff. Parked hosts are not work: a host parked for the run (unreachable)
        has none here, and when the only hosts with work are parked a while for failing, the run
        waits for them only if a park ends within ``PARK_WAIT`` seconds; their URLs wait for a
        later run otherwise (the summary says how many, and when)."""
        if self._stats.in_flight or writer.unflushed or self._more_coming():
            return False
        return not self._pool.busy or self._pool.parked_beyond(self._clock.time() + PARK_WAIT)

    async def _lease(self, frontier: Frontier, pages: PageStore, want: Wanted) -> None:
        """A few URLs of a ready host; in a recrawl, each with the validators of its stored copy."""
        asked = self._peers.lease_size(self._pool)
        items = await frontier.lease(asked, want.host)
        self._peers.leased(items)
        if pages.crawl_pass > 1 and items:
            known = await pages.validators([i.id for i in items])
            items = [replace(i, etag=known[i.id][0], last_modified=known[i.id][1]) if i.id in known else i
                     for i in items]
        self._pool.leased(want, items, asked)

    async def run(self, frontier: Frontier, pages: PageStore, writer: Writer, visits: asyncio.TaskGroup,
                  visit: Callable[[str, FrontierItem], Coroutine[Any, Any, None]]) -> Outcome:
        settings, stats, pool, wake, clock = self._settings, self._stats, self._pool, self._wake, self._clock
        await self.offer_work(frontier)
        while True:
            wake.clear()
            stats.hosts_active, stats.hosts_queued = len(pool.active), len(pool.busy)
            if self._stopping():
                return "stopped"
            if settings.max_pages and self._pages_before + self._fetches >= settings.max_pages:
                if stats.in_flight:
                    # A visit in flight may still turn out excluded (robots.txt): it would give its
                    # place back, so the limit is only final once they are all in.
                    await wake.wait()
                    continue
                return "limit"
            if self.finished(writer):
                if await self._peers.over(PARK_WAIT):
                    return "finished"
                # Other workers hold leases: their pages may bring work (or their leases expire and
                # their URLs come back). Wait for what ``Peers.watch`` finds.
                await clock.wait(wake, 0.25)
                continue
            if self.permits.locked() or self.slots.locked():
                # Choose the next host only when its request can start: a choice made early is made
                # on stale news (a host whose links were committed meanwhile would lose its turn).
                await wake.wait()
                continue
            ready = pool.take_ready()
            if isinstance(ready, Wanted):
                await self._lease(frontier, pages, ready)
                continue
            if isinstance(ready, tuple):
                await self.slots.acquire()
                await self.permits.acquire()
                host, item = ready
                if item.attempt == 0:
                    self._fetches += item.fetch_as == "page"   # --max-pages counts pages, not checks or requisites
                    stats.queued -= 1
                stats.in_flight += 1
                task = visits.create_task(visit(host, item))
                self._visits.add(task)
                task.add_done_callback(self._visits.discard)
                continue
            # Nothing can start now: wait for a request to end, a commit, or the next host's time.
            await clock.wait(wake, None if ready is None else max(0.0, ready - clock.time()))

    async def wind_down(self) -> None:
        """Let in-flight visits finish within the grace period, then cancel what is left. The
        visits' group waits for the cancelled ones when it closes."""
        if not self._visits:
            return
        grace = self._settings.grace_period if not self._at_once() else 0.0
        _, pending = await asyncio.wait(set(self._visits), timeout=grace)
        for task in pending:
            task.cancel()
