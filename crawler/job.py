"""Opening a job: its file and frontier, the settings a run takes from the job it resumes, and what
a run tells the user about the job when that is not what they may think.

``open_job`` opens the job file (the job lock), merges the settings, opens the frontier (the job
file's own, or a shared one: ``--frontier redis://...``), puts back the URLs a run that died had
leased, queues the seeds, joins a shared job, starts a recrawl pass, and says when there is nothing
to crawl (``already_finished``, ``already_at_limit``). ``OpenJob.end`` closes a run.

A job remembers its settings (``JOB_KEYS``) in its file from its first run on, and a later run (a
resume, a recrawl, a run with more seeds) keeps them unless the user sets them again, by flag,
config file or environment. A job's settings are what it crawls and keeps (extraction rules and
plugin among them: their path, read again by each run) and how hard it may
press each site: scope, limits, politeness (delays, requests in flight, backoff, parking), retries
and timeouts. What concerns one run on one machine is not: processes, parse mode, event loop,
transport, grace period, the shared frontier's address and lease, TLS trust (``--ca-bundle``,
``--insecure``), ``--recrawl`` (with ``--older-than``, ``--due``), ``--sitemaps``, ``--wait``.

The notes say what a run did that a user may not expect: seeds of a new site added to an existing
default job, a limit remembered from an earlier run, flags that a crawl of a job another process
runs cannot apply.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import astuple, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler import revisit, spool
from crawler.access.origins import remember_origins
from crawler.clock import Clock, pause
from crawler.config import Settings
from crawler.errors import StorageError
from crawler.frontier import Frontier, Outage, SharedFrontier
from crawler.frontier.sqlite import SqliteFrontier
from crawler.models import Outcome
from crawler.peers import Peers, no_job, peers_for
from crawler.seeding import queue_seeds
from crawler.storage.jobfile import JobFile
from crawler.storage.pages import PageStore
from crawler.storage.read import JobReader
from crawler.storage.revisit import due_urls
from crawler.storage.schema import stored_time
from crawler.urls import host_key

if TYPE_CHECKING:
    from crawler.frontier.redis import RedisFrontier

JOB_KEYS = (
    # what the job crawls
    "scope", "allow_domains", "include", "exclude", "max_depth", "max_pages", "max_pages_per_host", "sort_query",
    "follow_nofollow", "robots", "user_agent", "allow_private", "trap_max_url_length", "trap_max_segment_repeats",
    "trap_max_query_variants", "trap_max_pattern_chain", "session_params", "accept_type", "reject_type",
    "check_references", "check_external", "page_requisites",
    "login",   # a resume logs in as the run it resumes did (the recipe's path; no secret)
    # what it keeps
    "bodies", "extract_text", "structured_data", "microdata", "max_bytes", "extract", "plugin",
    # how hard it presses each site: politeness, retries, timeouts
    "concurrency", "per_host", "delay", "crawl_delay_max", "host_backoff_max", "host_park_after", "host_park_time",
    "timeout", "retries", "retry_backoff", "retry_after_max", "robots_retry_after", "max_redirects",
    # how often it revisits each page (crawler.revisit)
    "revisit_start", "revisit_min", "revisit_max",
)


async def job_settings(job: JobFile, settings: Settings, explicit: frozenset[str]) -> Settings:
    """The settings of this run of ``job``: its remembered ``JOB_KEYS`` but those the user set again
    (``explicit``: by flag, config file or environment), over ``settings``. They are remembered
    again as merged: a flag given once holds for the later runs too."""
    stored = await job.get_meta("job_settings")
    if stored is not None:
        remembered: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in stored.items()
                                      if k in JOB_KEYS and k not in explicit}
        settings = replace(settings, **remembered)
    await job.set_meta("job_settings", {k: getattr(settings, k) for k in JOB_KEYS})
    return settings


@dataclass(slots=True)
class OpenJob:
    """A job opened for a run: its file, its settings as merged, its frontier, its peers (alone, or
    sharing the job with other crawls), its pages, and its seed hosts (the scope). ``early`` says why there is
    nothing to crawl, if so; ``pages_before`` is what this pass has stored already (``--max-pages``
    counts it)."""

    job: JobFile
    settings: Settings
    frontier: Frontier
    peers: Peers
    pages: PageStore
    seed_hosts: frozenset[str]
    pages_before: int = 0
    early: Outcome | None = None

    async def start(self) -> int:
        """The job is running; returns how many URLs it has pending."""
        await self.job.set_meta("state", "running")
        return await self.frontier.pending()

    async def end(self, outcome: Outcome) -> tuple[int, int, str | None]:
        """The run ended with ``outcome``: what it leased and did not fetch (a stop, a limit) is
        pending again. Returns what waits on parked hosts (``Frontier.parked_work``)."""
        await self.frontier.release()
        parked = await self.frontier.parked_work()
        await self.job.set_meta("state", outcome)
        return parked

    async def abandon(self) -> None:
        """The run failed: put its leases back, as far as the job file can be written. Where it
        cannot (a full disk), the next run releases them when it starts."""
        with contextlib.suppress(StorageError):
            await self.frontier.release()


@contextlib.asynccontextmanager
async def open_job(settings: Settings, seeds: Sequence[str], explicit: frozenset[str], *,
                   on_outage: Callable[[Outage | None], None], stopping: Callable[[], bool],
                   clock: Clock) -> AsyncIterator[OpenJob]:
    """Open the job of ``settings.db`` for a run with ``seeds`` (see the module's docstring).
    ``on_outage`` hears of a shared frontier that stops answering, ``stopping`` says whether the
    run was asked to stop (while it waits for a shared job's seeds); a shared job's waits are on
    ``clock``."""
    if not seeds and not settings.frontier and not _is_file(settings.db):
        raise no_job(settings.db)   # before opening it: resuming nothing creates no file
    if settings.wait:
        await _wait_for_lock(settings.db, stopping, clock)
    async with JobFile(settings.db) as job, contextlib.AsyncExitStack() as stack:
        settings = await remember_origins(job, await job_settings(job, settings, explicit), seeds)
        shared: SharedFrontier | None = None
        frontier: Frontier = SqliteFrontier(job, settings.max_pages_per_host)
        if settings.frontier:
            frontier = shared = await stack.enter_async_context(_shared_frontier(settings, on_outage))
        peers = peers_for(settings, job, frontier, shared, clock)
        await frontier.release()   # leased by a run that died: pending again
        stack.callback(spool.clear, spool.folder_of(settings.db), remove=True)   # empty after the run: it goes
        spool.clear(spool.folder_of(settings.db))   # and the bodies it was fetching: fetched again
        new, hosts = await queue_seeds(job, frontier, seeds)   # a `crawler add` may run beside us
        hosts = await peers.join(hosts, stopping)
        # A job started with --no-bodies keeps to it on resume (bodies is a job setting).
        pages = PageStore(job, keep_bodies=settings.bodies, crawl_pass=int(await job.get_meta("pass") or 1),
                          revisit=astuple(settings.revisit), started=revisit.now())
        opened = OpenJob(job, settings, frontier, peers, pages, frozenset(hosts))
        if settings.recrawl:
            pages.crawl_pass += 1
            await job.set_meta("pass", pages.crawl_pass)
            cutoff = (stored_time(datetime.now(UTC) - timedelta(seconds=settings.older_than))
                      if settings.older_than else None)
            await frontier.requeue(await (due_urls(job, pages.started) if settings.due else pages.urls_fetched_before(cutoff)))
        elif new == 0 and await peers.finished_before():
            opened.early = "already_finished"
            yield opened
            return
        # --max-pages counts the pages of this pass: a recrawl may fetch as many again.
        opened.pages_before = await pages.count(pages.crawl_pass)
        if settings.max_pages and opened.pages_before >= settings.max_pages:
            opened.early = "already_at_limit"
        yield opened


async def _wait_for_lock(db: str, stopping: Callable[[], bool], clock: Clock, period: float = 1.0) -> None:
    """``--wait``: until no other process holds the job's lock (or the run is asked to stop), saying so once."""
    from crawler.printable import say
    from crawler.seeding import crawled_by_another
    said = False
    while (holder := crawled_by_another(db)) is not None and not stopping():
        if not said:
            say(f"crawler: {holder}; waiting for it to end (--wait)")
            said = True
        await pause(clock, period)


def _is_file(path: str) -> bool:
    return Path(path).is_file()


def _shared_frontier(settings: Settings, on_outage: Callable[[Outage | None], None]) -> RedisFrontier:
    from crawler.frontier.redis import RedisFrontier
    # A worker is named by its machine and job file: the same crawl run again takes back its leases.
    worker = f"{socket.gethostname()}:{Path(settings.db).resolve()}"
    return RedisFrontier(settings.frontier, settings.job, worker, lease_seconds=settings.lease,
                         per_host=settings.per_host, delay=settings.delay, host_budget=settings.max_pages_per_host,
                         on_outage=on_outage)


def new_site_note(db: str, seeds: Sequence[str]) -> str | None:
    """The line to say before ``seeds`` go into the default job file ``db`` when some are of a site
    the job does not hold while it holds other sites' pages: unsaid, a second site would quietly
    join the first one's job, and every later export and report of it. None when there is nothing
    to say (no such job, no new site), or when ``db`` is no job file (the crawl says so itself)."""
    if not seeds or not Path(db).is_file():
        return None
    try:
        with JobReader(db) as job:
            new = {host: [s for s in seeds if host_key(s) == host] for host in dict.fromkeys(map(host_key, seeds))}
            new = {host: urls for host, urls in new.items() if not job.has_host(host)}
            held = job.hosts() if new else []
            state = job.meta().get("state", "new") if held else ""
    except StorageError:
        return None
    if not held:
        return None
    count = sum(len(urls) for urls in new.values())
    pages = sum(h["pages"] for h in held)
    return (f"adding {_n(count, 'seed')} of {'a new site' if len(new) == 1 else f'{len(new)} new sites'} "
            f"({_names(list(new))}) to existing job {db} ({_n(pages, 'page')} of {_names([h['host'] for h in held])}, "
            f"{state}); use --db to crawl {'it' if len(new) == 1 else 'them'} separately")


def limit_note(db: str, max_pages: int, *, remembered: bool, before: bool) -> str | None:
    """What to say when a run ends at ``--max-pages``: reached ``before`` it fetched anything, or
    during it. A limit ``remembered`` from an earlier run (this one did not give it) says so, and how to
    lift it; one this run gave needs no word when the run merely stopped at it."""
    lift = "give --max-pages N (0: no limit) to go on"
    if remembered:
        reached = "has reached" if before else "stopped at"
        return f"job {db} {reached} its --max-pages {max_pages} (set by an earlier run); {lift}"
    return f"job {db} has reached --max-pages {max_pages}; give a higher --max-pages N (0: no limit) to go on" \
        if before else None


def ignored_flags_note(flags: Sequence[str]) -> str | None:
    """What to say when seeds are handed to a crawl of the job that another process runs: the
    ``flags`` this command was given go nowhere, since that crawl keeps its own settings."""
    if not flags:
        return None
    return (f"ignored {', '.join(flags)}: only the seeds are handed to the running crawl, which keeps its own "
            f"settings (give {'it' if len(flags) == 1 else 'them'} again once it has ended)")


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _names(hosts: Sequence[str], shown: int = 2) -> str:
    """``a, b and 3 more``: the first ``shown`` hosts, and how many others."""
    if len(hosts) <= shown + 1:
        return ", ".join(hosts[:-1]) + (" and " if len(hosts) > 1 else "") + hosts[-1]
    return f"{', '.join(hosts[:shown])} and {len(hosts) - shown:,} more"
