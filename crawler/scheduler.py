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

``Crawl`` is the run's control (stop requests) and the seams tests inject; once the job is open
and the fetcher and visitor are up, ``_Run`` wires the stages of that run and holds what changes
while it runs (the scope, the sitemap readers at work). The dispatcher hands URLs to visit tasks,
owned by a TaskGroup of their own inside the run's group, beside the one writer task that owns
every database write. Time and randomness come from
the ``Clock`` and ``random.Random`` the crawl is given, so tests drive it in fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx2

from crawler.addresses import AddressPolicy, IPAddress
from crawler.attempt import Attempts
from crawler.clock import Clock, SystemClock
from crawler.config import Settings
from crawler.content_types import ContentTypes
from crawler.discovery import Discovery, site_sitemap_urls
from crawler.dispatch import Dispatcher
from crawler.errors import CrawlError, InternalError
from crawler.extraction.check import check_extraction
from crawler.fetcher import Fetcher
from crawler.hosts import Hosts
from crawler.job import OpenJob, open_job
from crawler.models import Outcome
from crawler.parse_stage import ParseOptions, ParseStage
from crawler.politeness import HostPool
from crawler.references import reference_options
from crawler.robots import RobotsCache
from crawler.run_stats import RunStats
from crawler.scope import Scope
from crawler.session.keeper import Keeper, check_session, guard_of
from crawler.session.login import Session
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
        self.settings = settings          # as given; the run's, merged with the job's, once it is open
        self.seeds = list(seeds)
        self.explicit = explicit
        self.transport = transport
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.forked = forked
        self.stats = RunStats()
        self._stop_requests = 0
        self._wake = asyncio.Event()      # something changed: the dispatcher looks again
        self._visits: set[asyncio.Task[None]] = set()
        self._resolver = resolver
        self._policy = AddressPolicy(forbidden=forbidden) if forbidden is not None else AddressPolicy()
        self._forbidden = forbidden is not None
        self._run: _Run | None = None     # the run's stages, wired once the job is open (kept after it, for tests)

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
        async with open_job(self.settings, self.seeds, self.explicit, stopping=lambda: self.stopping, clock=self.clock,
                            on_outage=lambda outage: setattr(self.stats, "outage", outage)) as opened:
            self.settings = opened.settings
            if opened.early is not None:
                self.stats.outcome = opened.early
                if opened.early == "already_finished":
                    self.stats.parked = await opened.frontier.parked_work()
                return self.stats
            self.stats.queued = await opened.start()
            try:
                outcome = await self._crawl(opened)
            except BaseException:
                await opened.abandon()
                raise
            self.stats.outcome = outcome
            self.stats.parked = await opened.end(outcome)
        return self.stats

    async def _crawl(self, opened: OpenJob) -> Outcome:
        """The crawl proper: the fetcher and the visitor, then the run's stages wired (``_Run``).

        An error in a visit or in the writer cancels everything else and comes out of here as one
        exception: a ``CrawlError`` (a storage failure), or an ``InternalError`` (a bug)."""
        settings = self.settings
        # The rules a resumed job remembers are read again: a file gone or broken stops the run here.
        rules = check_extraction(settings.extract, settings.plugin)
        scope = scope_of(settings, opened.seed_hosts)
        options = ParseOptions(scope, settings.sort_query, settings.follow_nofollow, settings.extract_text,
                               settings.session_names, rules, settings.plugin, settings.structured_data,
                               settings.microdata, *reference_options(settings))
        self._policy.seed_hosts, self._policy.allow_private = scope.hosts, settings.allow_private
        # What tests inject (a transport, a resolver, an address rule) lives in this process: no workers then.
        injected = self.transport is not None or self._resolver is not None or self._forbidden
        workers = 1 if injected else settings.processes
        recipe = check_session(settings)   # the login recipe a resumed job remembers, read again
        try:
            # With worker processes, this process's fetcher reads robots.txt and sitemaps only.
            async with Fetcher(settings, self.transport, policy=self._policy, resolver=self._resolver) as fetcher:
                keeper = Keeper(opened.job, settings, Session(fetcher.client, settings, recipe))
                await keeper.start()   # the stored session, --cookies, the login: before the first request
                robots = robots_reader(fetcher, settings, self.clock.time)
                try:
                    async with self._visitor(workers, fetcher, robots, options, keeper) as visitor:
                        self._run = _Run(settings, opened, fetcher, robots, visitor, options, self.seeds,
                                         clock=self.clock, rng=self.rng, stats=self.stats, wake=self._wake,
                                         visits=self._visits, policy=self._policy, stopping=lambda: self.stopping,
                                         at_once=lambda: self._stop_requests >= 2, guard=guard_of(settings, recipe))
                        outcome = await self._run.go()
                except BaseException:
                    with contextlib.suppress(CrawlError):
                        await keeper.close()
                    raise
                await keeper.close()   # the session as it ends, for the next run
                return outcome
        except BaseExceptionGroup as group:
            error = _one_error(group)
            raise error from error.__cause__   # the group itself says nothing a user needs

    def _visitor(self, workers: int, fetcher: Fetcher, robots: RobotsCache, options: ParseOptions,
                 keeper: Keeper) -> AbstractAsyncContextManager[Visitor]:
        """Where URLs are fetched and parsed: here, or in ``workers`` worker processes (each with a
        session of its own, whose cookies ``keeper`` keeps and shares)."""
        obeyed = robots if self.settings.robots else None
        if workers > 1:
            from crawler.workers import WorkerPool
            return WorkerPool(self.settings, options, workers, self.forked, lambda: obeyed, keeper=keeper)
        return _local_visitor(fetcher, self.settings, options, obeyed, keeper.session)


@contextlib.asynccontextmanager
async def _local_visitor(fetcher: Fetcher, settings: Settings, options: ParseOptions,
                         robots: RobotsCache | None, session: Session) -> AsyncIterator[Visitor]:
    """Visits in this process: the crawl's fetcher, a parse stage of ``--parse-mode``, and with
    ``--render`` a browser behind the fetcher (``crawler.render``, the extra ``crawler[render]``)."""
    from crawler.render import visiting
    async with ParseStage(settings.parse_mode, settings.parse_workers, options) as stage:
        visitor = local_visitor(fetcher, stage, settings, lambda: stage.options.scope, lambda: robots, session)
        async with visiting(visitor, settings, lambda: stage.options.scope, lambda: robots) as chosen:
            yield chosen


def scope_of(settings: Settings, seed_hosts: frozenset[str]) -> Scope:
    return Scope(settings.scope, seed_hosts, frozenset(settings.allow_domains), settings.include,
                 settings.exclude, settings.max_depth, settings.trap_max_url_length,
                 settings.trap_max_segment_repeats, ContentTypes.of(settings.accept_type, settings.reject_type))


class _Run:
    """One run's stages, wired once the job is open and the fetcher and visitor are up: the host
    pool, the dispatcher, the writer, the attempts; and what changes while it runs, the scope (a
    ``crawler add`` widens it) and the sitemap readers still at work. The rest is the crawl's:
    ``wake`` (the dispatcher's), ``visits`` (the tasks a second stop cancels), ``policy`` (the SSRF
    guard, whose seed hosts widen with the scope), ``stopping`` and ``at_once`` (one stop request,
    or two); ``guard``, the session guard of a logged-in crawl (``crawler.session.guard``)."""

    def __init__(self, settings: Settings, opened: OpenJob, fetcher: Fetcher, robots: RobotsCache, visitor: Visitor,
                 options: ParseOptions, seeds: Sequence[str], *, clock: Clock, rng: random.Random, stats: RunStats,
                 wake: asyncio.Event, visits: set[asyncio.Task[None]], policy: AddressPolicy,
                 stopping: Callable[[], bool], at_once: Callable[[], bool],
                 guard: Callable[[str], str | None] | None = None) -> None:
        self.settings = settings
        self.opened = opened
        self.fetcher = fetcher
        self.robots = robots
        self.visitor = visitor
        self.options = options                    # the scope is ``options.scope``: it widens as seeds are added
        self.policy = policy
        self.stopping = stopping
        self.wake = wake
        self.sitemap_tasks = 0                    # sitemap readers still running: they may queue more URLs
        # A new host gets one request until it has answered (or its robots.txt was read), so a host
        # that is down costs one connection attempt, not --per-host of them.
        self.pool = HostPool(settings.per_host, settings.delay, wake.set, clock.time, probe_first=True,
                             backoff_max=settings.host_backoff_max, park_after=settings.host_park_after,
                             park_time=settings.host_park_time, rng=rng)
        self.dispatcher = Dispatcher(settings, clock, self.pool, opened.peers, stats, wake, visits,
                                     pages_before=opened.pages_before, stopping=stopping, at_once=at_once,
                                     more_coming=lambda: self.sitemap_tasks > 0)
        self.discovery = Discovery(settings, self.policy, robots.known, robots.agent, guard)
        frontier, pages = opened.frontier, opened.pages
        self.writer = Writer(pages, frontier, opened.peers, self.dispatcher.committed, unit=batch_unit(frontier, pages),
                             scope=lambda url, depth: self.options.scope.decide(url, depth), judge=self.discovery.judge)
        self.attempts = Attempts(
            settings, pool=self.pool, robots=robots, visitor=visitor, writer=self.writer,
            hosts=Hosts(settings, self.pool, frontier, opened.peers, clock, stats.observer), peers=opened.peers, stats=stats,
            rng=rng, permits=self.dispatcher.permits, slots=self.dispatcher.slots, wake=wake,
            stopping=stopping, unfetched=self.dispatcher.unfetched)
        self.seed_origins = sorted({origin(seed) for seed in seeds})

    async def go(self) -> Outcome:
        """The writer task, and the dispatcher with its visits in a nested group."""
        opened, writer, dispatcher = self.opened, self.writer, self.dispatcher
        async with asyncio.TaskGroup() as tg:
            writer_task = tg.create_task(writer.run())
            try:
                async with asyncio.TaskGroup() as visits:
                    await opened.job.changed_elsewhere()   # the baseline: later changes are another's
                    watcher = visits.create_task(opened.peers.watch(self.pool, self.wake.set, self._pick_up_added))
                    if self.settings.sitemaps:
                        for site in self.seed_origins:
                            self.sitemap_tasks += 1
                            visits.create_task(self._read_sitemaps(site))
                    try:
                        outcome = await dispatcher.run(opened.frontier, opened.pages, writer, visits,
                                                       self.attempts.visit)
                    finally:
                        watcher.cancel()
                    await dispatcher.wind_down()
            finally:
                if not writer_task.done():
                    # Whatever ended the visits, what they handed over is written before we go.
                    await writer.close()
                    await asyncio.wait({writer_task})
        return outcome

    async def _pick_up_added(self) -> None:
        """Another process added seeds to the job (``crawler add``): widen the scope to their hosts
        and offer their URLs."""
        hosts = frozenset(await self.opened.job.get_meta("seed_hosts") or [])
        if hosts != self.options.scope.hosts:
            self.options = replace(self.options, scope=scope_of(self.settings, hosts))
            self.policy.seed_hosts = hosts   # hosts a seed names may be private
            self.visitor.update(self.options)
        await self.dispatcher.offer_work(self.opened.frontier)

    # -- URLs found outside a page: sitemaps --------------------------------------------------------

    async def _read_sitemaps(self, site: str) -> None:
        """Queue the URLs of the sitemaps of ``site`` (an origin) that are in scope, judged as links
        are, with their lastmod, at depth 1."""
        try:
            async for found in site_sitemap_urls(site, self.fetcher, self.robots if self.settings.robots else None,
                                                 self.settings, lambda: self.options.scope):
                if self.stopping():
                    break
                judged = self.discovery.judge(None, found, None)
                queued = await self.opened.frontier.add(judged)
                self.dispatcher.committed((queued, {u.host for u in judged if u.exclusion is None} if queued else set()))
        finally:
            self.sitemap_tasks -= 1
            self.wake.set()
