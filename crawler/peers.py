"""The other crawls of a job, if any: a crawl is ``Alone`` with its job file's frontier, or
``Sharing`` a Redis job with other workers (``--frontier redis://...``). The choice is made once,
when the job is opened (``peers_for``); the scheduler and the writer ask the object, never the mode.

What differs:

    joining       Alone: the job file's seed hosts.  Sharing: the job's, waiting up to one lease
                  for a job nobody has given seeds yet.
    leases        Alone: a few URLs of a host at a time.  Sharing: this worker's fair share of the
                  host's --per-host; each URL is held (and its lease renewed) until acknowledged.
    acknowledging Alone: ack.  Sharing: a fenced ack; a URL whose lease ran out went to another
                  worker, whose page counts: this one is forgotten.
    Crawl-delay   Sharing: the whole job keeps to it, not just this worker.
    watching      Alone: the job file, for seeds a ``crawler add`` queued.  Sharing: every host with
                  work (other workers queue URLs and free hosts at any time), and lease renewal.
    the end       Alone: nothing left here.  Sharing: nothing left here and no lease out anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from crawler.clock import Clock, pause
from crawler.config import Settings
from crawler.errors import UsageError
from crawler.frontier import Frontier, SharedFrontier
from crawler.models import FrontierItem
from crawler.politeness import HostPool
from crawler.storage.jobfile import JobFile
from crawler.storage.pages import PageStore


def no_job(db: str) -> UsageError:
    return UsageError(f"no seed URLs given and no job to resume at {db}")


class Peers(Protocol):
    """What a crawl does differently when it shares its job with others."""

    async def join(self, hosts: set[str], stopping: Callable[[], bool]) -> set[str]:
        """The job's seed hosts (the scope), given those of the job file (``hosts``); raises
        ``UsageError`` when there are none."""
        ...

    async def finished_before(self) -> bool:
        """The job was finished before this run began (and nothing was added to it)."""
        ...

    def lease_size(self, pool: HostPool) -> int:
        """How many URLs of one host to lease at a time."""
        ...

    def leased(self, items: Sequence[FrontierItem]) -> None:
        """These URLs are leased to this crawl now."""
        ...

    def settled(self, items: Iterable[FrontierItem]) -> None:
        """These leased URLs are no longer this crawl's: acknowledged, or given back."""
        ...

    async def crawl_delay(self, host: str, seconds: float) -> None:
        """``host``'s robots.txt asks for ``seconds`` between requests."""
        ...

    async def remember(self, pages: PageStore, items: Sequence[FrontierItem]) -> None:
        """Before their records are stored: give URLs leased from elsewhere rows in the job file."""
        ...

    async def ack(self, pages: PageStore, done: Sequence[FrontierItem]) -> tuple[list[FrontierItem], set[str]]:
        """Acknowledge ``done`` (their pages are stored, in the same batch); returns those refused
        (their pages forgotten) and the hosts that have a lease less, job-wide."""
        ...

    async def over(self, wait: float) -> bool:
        """Nothing is left to do here: is the run over for every crawl of the job? (Parked hosts
        whose parks end within ``wait`` seconds count as work.)"""
        ...

    async def watch(self, pool: HostPool, wake: Callable[[], None], added: Callable[[], Awaitable[None]]) -> None:
        """Watch what other processes do to the job, until cancelled when the dispatch ends;
        ``added`` picks up seeds another process added to the job file."""
        ...


def peers_for(settings: Settings, job: JobFile, frontier: Frontier, shared: SharedFrontier | None,
              clock: Clock) -> Peers:
    return Alone(settings, job, frontier) if shared is None else Sharing(settings, shared, clock)


class Alone:
    """A crawl with the job to itself: its frontier is the job file's."""

    def __init__(self, settings: Settings, job: JobFile, frontier: Frontier) -> None:
        self._settings = settings
        self._job = job
        self._frontier = frontier

    async def join(self, hosts: set[str], stopping: Callable[[], bool]) -> set[str]:
        if not hosts:
            raise no_job(self._settings.db)
        return hosts

    async def finished_before(self) -> bool:
        return await self._job.get_meta("state") == "finished" and not await self._frontier.hosts_with_work()

    def lease_size(self, pool: HostPool) -> int:
        return max(self._settings.per_host, 4)

    def leased(self, items: Sequence[FrontierItem]) -> None:
        pass

    def settled(self, items: Iterable[FrontierItem]) -> None:
        pass

    async def crawl_delay(self, host: str, seconds: float) -> None:
        pass

    async def remember(self, pages: PageStore, items: Sequence[FrontierItem]) -> None:
        pass

    async def ack(self, pages: PageStore, done: Sequence[FrontierItem]) -> tuple[list[FrontierItem], set[str]]:
        await self._frontier.ack(done)
        return [], set()

    async def over(self, wait: float) -> bool:
        return True

    async def watch(self, pool: HostPool, wake: Callable[[], None], added: Callable[[], Awaitable[None]]) -> None:
        """Once a second, look whether another process added seeds to the job, and if so pick them
        up. Real time, not the crawl's clock: it watches what other processes write to the job file,
        and on a test's fake clock a poll every second would move the time every wait of a crawl
        alone sees (a crawl sharing a job polls on the clock: ``Sharing``, tested in fake time)."""
        while True:
            await asyncio.sleep(1.0)
            if await self._job.changed_elsewhere():
                await added()
                wake()


class Sharing:
    """A crawl sharing a Redis job with other workers, each storing pages in its own job file."""

    def __init__(self, settings: Settings, shared: SharedFrontier, clock: Clock) -> None:
        self._settings = settings
        self._shared = shared
        self._clock = clock   # its waits are the crawl's: a test drives them in fake time
        self._held: dict[int, FrontierItem] = {}   # leased, not yet acknowledged: their leases are renewed
        self._delayed: set[str] = set()            # hosts whose Crawl-delay the shared frontier knows

    async def join(self, hosts: set[str], stopping: Callable[[], bool]) -> set[str]:
        """The scope is the whole job's, whoever gave the seeds. A worker that joins a job nobody
        has given seeds yet (its workers started together) waits for them, up to one lease."""
        settings, clock = self._settings, self._clock
        deadline = clock.time() + settings.lease
        while True:
            found = await self._shared.join(hosts)
            if found or clock.time() >= deadline or stopping():
                break
            await pause(clock, 0.5)   # another machine's news: nothing here to wait on instead
        if not found:
            raise UsageError(f"job {settings.job!r} at {self._shared.address} got no seeds within {settings.lease:g} s "
                             "(--lease): give seed URLs to start it")
        return found

    async def finished_before(self) -> bool:
        return await self._shared.idle()

    def lease_size(self, pool: HostPool) -> int:
        # A lease is a slot of the host, job-wide: take no more than our share.
        return pool.per_host

    def leased(self, items: Sequence[FrontierItem]) -> None:
        self._held.update((i.id, i) for i in items)

    def settled(self, items: Iterable[FrontierItem]) -> None:
        for item in items:
            self._held.pop(item.id, None)

    async def crawl_delay(self, host: str, seconds: float) -> None:
        if host not in self._delayed:
            self._delayed.add(host)   # the whole job keeps to it, not just this worker
            await self._shared.set_delay(host, seconds)

    async def remember(self, pages: PageStore, items: Sequence[FrontierItem]) -> None:
        await pages.remember(items)

    async def ack(self, pages: PageStore, done: Sequence[FrontierItem]) -> tuple[list[FrontierItem], set[str]]:
        if refused := await self._shared.ack_fenced(done):
            # Their leases ran out and the URLs went to another worker: its pages count, not these.
            await pages.forget([item.id for item in refused])
        return refused, {item.host for item in done}   # a lease less, job-wide: maybe room for ours

    async def over(self, wait: float) -> bool:
        # Other workers may hold leases: their pages may bring work (or their leases expire and
        # their URLs come back).
        return await self._shared.idle(wait)

    async def watch(self, pool: HostPool, wake: Callable[[], None], added: Callable[[], Awaitable[None]]) -> None:
        """Four times a second: offer every host with work (other workers queue URLs and free hosts
        at any time; a host whose lease came back short waits on them), and every ``lease / 3``
        seconds renew the leases this worker holds, which also says it is alive."""
        settings, shared, clock = self._settings, self._shared, self._clock
        await shared.renew([])   # here from the start: the others make room
        renewed = counted = clock.time()
        while True:
            await pause(clock, 0.25)
            now = clock.time()
            if now - counted >= 1.0:
                # A fair share of each host's --per-host: a worker that took every slot would keep
                # them, re-leasing each as it is acknowledged, and starve the others.
                counted = now
                alive = max(1, await shared.workers_alive())
                pool.per_host = max(1, -(-settings.per_host // alive))
            for host in await shared.hosts_with_work():
                pool.offer(host)
            wake()
            if now - renewed >= settings.lease / 3:
                renewed = now
                await shared.renew(list(self._held.values()))
