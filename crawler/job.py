"""Opening a job: the settings a run takes from the job it resumes, and what a run tells the user
about the job when that is not what they may think.

A job remembers its settings (``JOB_KEYS``) in its file from its first run on, and a later run (a
resume, a recrawl, a run with more seeds) keeps them unless the user sets them again, by flag,
config file or environment. A job's settings are what it crawls and keeps and how hard it may
press each site: scope, limits, politeness (delays, requests in flight, backoff, parking), retries
and timeouts. What concerns one run on one machine is not: processes, parse mode, event loop,
transport, grace period, the shared frontier's address and lease, TLS trust (``--ca-bundle``,
``--insecure``), ``--recrawl``, ``--sitemaps``.

The notes say what a run did that a user may not expect: seeds of a new site added to an existing
default job, a limit remembered from an earlier run, flags that a crawl of a job another process
runs cannot apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from crawler.config import Settings
from crawler.errors import StorageError
from crawler.storage.jobfile import JobFile
from crawler.storage.read import JobReader
from crawler.urls import host_key

JOB_KEYS = (
    # what the job crawls
    "scope", "allow_domains", "include", "exclude", "max_depth", "max_pages", "max_pages_per_host", "sort_query",
    "follow_nofollow", "robots", "user_agent", "allow_private", "trap_max_url_length", "trap_max_segment_repeats",
    "trap_max_query_variants", "trap_max_pattern_chain", "session_params",
    # what it keeps
    "bodies", "extract_text", "max_bytes",
    # how hard it presses each site: politeness, retries, timeouts
    "concurrency", "per_host", "delay", "crawl_delay_max", "host_backoff_max", "host_park_after", "host_park_time",
    "timeout", "retries", "retry_backoff", "retry_after_max", "robots_retry_after", "max_redirects",
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
