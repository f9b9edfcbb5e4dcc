"""Seeds queued into a job from outside its crawl: ``crawler add``, and ``crawler crawl`` with seeds
on a job that another process is crawling.

The job file is opened without the job lock (``JobFile(exclusive=False)``): the crawl that holds it
may be live, and SQLite serializes the two writers. The URLs go through the frontier, as a crawl's
seeds do, and their hosts join the job's ``seed_hosts``, which widen its scope; both in one
transaction. A running crawl picks the new URLs up from the frontier; an idle one on its next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crawler.errors import JobLocked
from crawler.frontier import Frontier, NewURL
from crawler.frontier.sqlite import SqliteFrontier
from crawler.storage.jobfile import JobFile, JobLock
from crawler.urls import host_key, hostname
from crawler.wording import plural


@dataclass(frozen=True, slots=True)
class Added:
    """What ``add_seeds`` did: ``queued`` URLs are new in the job's queue, ``known`` were already
    in it (queued, fetched, or excluded for good) and are left as they were."""

    queued: int
    known: int


async def add_seeds(db: str | Path, seeds: Sequence[str]) -> Added:
    """Queue canonical seed URLs in the existing job file ``db``, even while another process crawls it.

    A job that had finished is marked ``stopped`` again when something was queued: unfinished and
    not running, so that ``crawler crawl --db`` resumes it instead of saying it is finished."""
    unique = list(dict.fromkeys(seeds))
    async with JobFile(db, exclusive=False) as job, job.transaction("add seeds to"):
        queued, _ = await queue_seeds(job, SqliteFrontier(job), unique)
        if queued and await job.get_meta("state") == "finished":
            await job.set_meta("state", "stopped")
    return Added(queued, len(unique) - queued)


async def queue_seeds(job: JobFile, frontier: Frontier, seeds: Sequence[str]) -> tuple[int, set[str]]:
    """Queue seeds at depth 0 and add their hosts to the job's ``seed_hosts`` (the scope), in one
    transaction, as a crawl's start and ``crawler add`` both do. Returns how many URLs were queued,
    and the job's seed hosts."""
    async with job.transaction("add seeds to"):
        queued = await frontier.add([NewURL(url, host_key(url), 0) for url in seeds])
        known = set(await job.get_meta("seed_hosts") or [])
        hosts = known | {hostname(url) for url in seeds}
        if hosts != known:
            await job.set_meta("seed_hosts", sorted(hosts))
    return queued, hosts


def crawled_by_another(db: str | Path) -> JobLocked | None:
    """The ``JobLocked`` error naming the process that holds ``db``'s job lock now, or None when
    nobody holds it."""
    lock = JobLock(Path(db))
    try:
        lock.acquire()
    except JobLocked as exc:
        return exc
    lock.release()
    return None


def queue_seeds_line(db: str, seed_urls: list[str]) -> str:
    """Queue the seeds in the job ``db``; the one line that says how many were new."""
    added = asyncio.run(add_seeds(db, seed_urls))
    return f"{plural(added.queued, 'new URL')} queued in {db} ({added.known:,} already known)"
