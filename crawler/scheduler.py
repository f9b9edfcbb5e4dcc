"""The scheduler wires the stages together: frontier → politeness → fetch → parse → storage.

    frontier.lease ─► HostPool ─► (global permit) ─► visit: robots → fetch → parse ─► Writer
    Writer: pages.store ─► Discovery.judge + frontier.add (the links) ─► frontier.ack (the URL)
    (a URL robots.txt rules out only at its visit: frontier.exclude, no request, no page)

Where each part lives: opening the job (settings, frontier, seeds, recrawl) in ``job.py``; the
other crawls of a shared job in ``peers.py``; the dispatch loop and its end in ``dispatch.py``; one
URL's attempt in ``attempt.py``; what a run learns of each host, and the job file's record of its
pace, in ``hosts.py``; the one writer in ``writer.py``; what the progress line reads in
``run_stats.py``. With ``--sitemaps`` a task per seed origin reads its sitemaps and queues their
URLs as links are queued.

The dispatcher hands URLs to visit tasks, owned by a TaskGroup of their own inside the crawl's
group, beside the one writer task that owns every database write. Time and randomness come from
the ``Clock`` and ``random.Random`` the crawl is given, so tests drive it in fake time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx2

from crawler.addresses import AddressPolicy, IPAddress
from crawler.attempt import Attempts
from crawler.clock import Clock, SystemClock
from crawler.config import Settings
from crawler.discovery import Discovery, site_sitemap_urls
from crawler.dispatch import Dispatcher
from crawler.errors import CrawlError, InternalError
from crawler.fetcher import Fetcher
from crawler.frontier import Frontier
from crawler.hosts import Hosts
from crawler.job import open_job
from crawler.models import Outcome
from crawler.parse_stage import ParseOptions, ParseStage
from crawler.politeness import HostPool
from crawler.run_stats import RunStats
from crawler.scope import Scope
from crawler.storage.pages import PageStore
from crawler.urls import origin
from crawler.visit import Visitor, local_visitor, robots_reader
from crawler.writer import Writer, batch_unit

if TYPE_CHECKING:
    from crawler.workers import Started

def _one_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a TaskGroup's failure stands for: the first ``CrawlError`` in it (a storage failure
    is one line for the user), else the first other error, as an ``InternalError``."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for leaf in leaves:
        if isinstance(leaf, CrawlError):
            return leaf
    for leaf in leaves:
        if isinstance(leaf, Exception):
            error = InternalError(f"unexpected {type(leaf).__name__} in the crawl: {leaf}")
            error.__cause__ = leaf   # where the bug is, for a debugger and for the CLI's one line
            return error
    return leaves[0] if leaves else group


class Crawl:
    """One run of a crawl job. ``await Crawl(settings, seeds).run()``; ``request_stop()`` from a signal.

    ``transport``, ``clock`` and ``rng`` are the seams tests use: an ``httpx2.MockTransport``, a
    fake clock, a seeded ``random.Random``."""

    def __init__(self, settings: Settings, seeds: Sequence[str] = (), *, explicit: frozenset[str] = frozenset(),
                 transport: httpx2.AsyncBaseTransport | None = None, clock: Clock | None = None,
                 rng: random.Random | None = None, resolver: object = None,
                 forbidden: Callable[[IPAddress], bool] | None = None, forked: Sequence[Started] = ()) -> None:
        """``resolver`` (an aiohttp resolver in place of getaddrinfo) and ``forbidden`` (which
        addresses the SSRF guard refuses) are for tests, which run on loopback only; ``forked``
        are worker processes started for this crawl (``workers.fork_workers``)."""
        self.settings = settings
        self.seeds = list(seeds)
        self.explicit = explicit
        self.transport = transport
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.forked = forked   # worker processes started for this crawl (``workers.fork_workers``)
        self.stats = RunStats()
        self._stop_requests = 0
        self._wake = asyncio.Event()
        self._visits: set[asyncio.Task[None]] = set()
        self._resolver = resolver
        self._policy = AddressPolicy(forbidden=forbidden) if forbidden is not None else AddressPolicy()
        self._forbidden = forbidden is not None
        self._sitemap_tasks = 0           # sitemap readers still running: they may queue more URLs

    # -- control -------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: stop taking work and let in-flight requests finish. Second: stop at once."""
        self._stop_requests += 1
        if self._stop_requests >= 2:
            for task in self._visits:
                task.cancel()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop_requests > 0

    # -- the job ---------------------------------------------------------------------------------

    async def run(self) -> RunStats:
        async with open_job(self.settings, self.seeds, self.explicit, stopping=lambda: self.stopping,
                            on_outage=lambda outage: setattr(self.stats, "outage", outage)) as opened:
            self._job, self._peers, self._pages_before = opened.job, opened.peers, opened.pages_before
            self.settings = opened.settings
            self._seed_origins = sorted({origin(seed) for seed in self.seeds})
            if opened.early is not None:
                self.stats.outcome = opened.early
                if opened.early == "already_finished":
                    self.stats.parked = await opened.frontier.parked_work()
                return self.stats
            self.stats.queued = await opened.start()
            try:
                outcome = await self._crawl(opened.frontier, opened.pages, self._scope_of(opened.seed_hosts))
            except BaseException:
                await opened.abandon()
                raise
            self.stats.outcome = outcome
            self.stats.parked = await opened.end(outcome)
        return self.stats

    async def _crawl(self, frontier: Frontier, pages: PageStore, scope: Scope) -> Outcome:
        """The crawl proper: the writer task, and the dispatcher with its visits in a nested group.

        An error in a visit or in the writer cancels everything else and comes out of here as one
        exception: a ``CrawlError`` (a storage failure), or an ``InternalError`` (a bug)."""
        settings = self.settings
        options = ParseOptions(scope, settings.sort_query, settings.follow_nofollow, settings.extract_text,
                               settings.session_names)
        self._policy.seed_hosts, self._policy.allow_private = scope.hosts, settings.allow_private
        # What tests inject (a transport, a resolver, an address rule) lives in this process: no workers then.
        injected = self.transport is not None or self._resolver is not None or self._forbidden
        workers = 1 if injected else settings.processes
        try:
            # With worker processes, this process's fetcher reads robots.txt and sitemaps only, and
            # its parse stage sees only the bodies of 5xx answers stored after their last retry.
            async with (Fetcher(settings, self.transport, policy=self._policy, resolver=self._resolver) as fetcher,
                        ParseStage(settings.parse_mode if workers == 1 else "async", settings.parse_workers,
                                   options) as stage,
                        self._visitor(workers, fetcher, stage, options) as visitor,
                        asyncio.TaskGroup() as tg):
                self._fetcher, self._scope, self._stage, self._visitor_ = fetcher, scope, stage, visitor
                # A new host gets one request until it has answered (or its robots.txt was read), so
                # a host that is down costs one connection attempt, not --per-host of them.
                self._pool = HostPool(settings.per_host, settings.delay, self._wake.set, self.clock.time,
                                      probe_first=True, backoff_max=settings.host_backoff_max,
                                      park_after=settings.host_park_after, park_time=settings.host_park_time,
                                      rng=self.rng)
                self._robots = robots_reader(fetcher, settings, self.clock.time)
                dispatcher = Dispatcher(settings, self.clock, self._pool, self._peers, self.stats, self._wake, self._visits,
                                        pages_before=self._pages_before, stopping=lambda: self.stopping,
                                        at_once=lambda: self._stop_requests >= 2, more_coming=lambda: self._sitemap_tasks > 0)
                self._dispatcher = dispatcher
                self._discovery = Discovery(settings, self._policy, self._robots.known, self._robots.agent)
                self._writer = Writer(pages, frontier, self._peers, dispatcher.committed, unit=batch_unit(frontier, pages),
                                      scope=lambda url, depth: self._scope.decide(url, depth), judge=self._discovery.judge)
                self._attempts = Attempts(
                    settings, pool=self._pool, robots=self._robots, visitor=visitor, stage=stage, writer=self._writer,
                    hosts=Hosts(settings, self._pool, frontier, self._peers, self.clock), peers=self._peers,
                    stats=self.stats, rng=self.rng, permits=dispatcher.permits, slots=dispatcher.slots, wake=self._wake,
                    stopping=lambda: self.stopping, unfetched=dispatcher.unfetched)
                writer_task = tg.create_task(self._writer.run())
                try:
                    async with asyncio.TaskGroup() as visits:
                        await self._job.changed_elsewhere()   # the baseline: later changes are another's
                        watcher = visits.create_task(self._peers.watch(
                            self._pool, self._wake.set, lambda: self._pick_up_added(frontier, dispatcher)))
                        if settings.sitemaps:
                            for site in self._seed_origins:
                                self._sitemap_tasks += 1
                                visits.create_task(self._read_sitemaps(site, frontier))
                        try:
                            outcome = await dispatcher.run(frontier, pages, self._writer, visits, self._attempts.visit)
                        finally:
                            watcher.cancel()
                        await dispatcher.wind_down()
                finally:
                    if not writer_task.done():
                        # Whatever ended the visits, what they handed over is written before we go.
                        await self._writer.close()
                        await asyncio.wait({writer_task})
        except BaseExceptionGroup as group:
            error = _one_error(group)
            raise error from error.__cause__   # the group itself says nothing a user needs
        return outcome

    def _visitor(self, workers: int, fetcher: Fetcher, stage: ParseStage,
                 options: ParseOptions) -> AbstractAsyncContextManager[Visitor]:
        """Where URLs are fetched and parsed: here, or in ``workers`` worker processes."""
        if workers > 1:
            from crawler.workers import WorkerPool
            return WorkerPool(self.settings, options, workers, self.forked,
                              lambda: self._robots if self.settings.robots else None)
        from crawler.render import visiting  # --render: a browser behind the fetcher (crawler[render])
        return visiting(local_visitor(fetcher, stage, self.settings, lambda: self._scope, lambda: self._robots),
                        self.settings, lambda: self._scope, lambda: self._robots)

    def _scope_of(self, seed_hosts: frozenset[str]) -> Scope:
        settings = self.settings
        return Scope(settings.scope, seed_hosts, frozenset(settings.allow_domains), settings.include,
                     settings.exclude, settings.max_depth, settings.trap_max_url_length,
                     settings.trap_max_segment_repeats)

    async def _pick_up_added(self, frontier: Frontier, dispatcher: Dispatcher) -> None:
        """Another process added seeds to the job (``crawler add``): widen the scope to their hosts
        and offer their URLs."""
        hosts = frozenset(await self._job.get_meta("seed_hosts") or [])
        if hosts != self._scope.hosts:
            self._scope = self._scope_of(hosts)
            self._stage.options = replace(self._stage.options, scope=self._scope)
            self._policy.seed_hosts = self._scope.hosts   # hosts a seed names may be private
            self._visitor_.update(self._stage.options)
        await dispatcher.offer_work(frontier)

    # -- URLs found outside a page: sitemaps --------------------------------------------------------

    async def _read_sitemaps(self, site: str, frontier: Frontier) -> None:
        """Queue the URLs of the sitemaps of ``site`` (an origin) that are in scope, judged as links
        are, with their lastmod, at depth 1."""
        try:
            async for found in site_sitemap_urls(site, self._fetcher, self._robots if self.settings.robots else None,
                                                 self.settings, lambda: self._scope):
                if self.stopping:
                    break
                judged = self._discovery.judge(None, found, None)
                queued = await frontier.add(judged)
                self._dispatcher.committed((queued, {u.host for u in judged if u.exclusion is None} if queued else set()))
        finally:
            self._sitemap_tasks -= 1
            self._wake.set()
