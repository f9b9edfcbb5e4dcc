"""The frontier: every URL a job has seen, and the queue of those still to fetch.

A frontier hands out work by lease: ``lease`` takes pending URLs and marks them leased, ``ack``
marks them done once their page is stored, ``release`` puts leased URLs back (a run that stops, a
run that died). A leased URL is never handed out twice while its lease holds, and a URL is queued
at most once however often it is found: "seen" is the frontier's business.

Backends implement ``Frontier`` and pass the contract suite in ``tests/test_frontier.py``:

    sqlite.py  the ``urls`` table of the job file (the embedded default)
    redis.py   a job shared by workers on many machines (``crawler[redis]``): leases that expire,
               are renewed and carry a fencing token; per-host limits that hold for the job;
               its Lua scripts in lua/*.lua (loaded by redis_scripts.py), its retries bounded in
               time and its errors in redis_link.py, what ``stats --frontier`` reads in redis_stats.py

The scheduler's order makes any backend safe across a crash: store the page, then ``add`` its
links, then ``ack`` its URL; each step may be repeated after a kill without losing or doubling work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from crawler.models import FetchAs, FrontierItem


class NewURL(NamedTuple):
    """A URL found by a page, a sitemap or given as a seed. ``exclusion`` is the code of the rule that
    keeps it from being fetched (``off_host``, ``too_deep``, ``nofollow``, ...); None queues it.
    ``detail`` says what decided it in words, ``source`` is the id of the page that linked it, and
    ``lastmod`` a sitemap's date for it. (A named tuple: a batch of pages brings tens of thousands.)"""

    url: str
    host: str
    depth: int
    exclusion: str | None = None
    source: int | None = None
    detail: str | None = None
    lastmod: str | None = None
    fetch_as: FetchAs = "page"   # a page, a check (status only) or a requisite (crawler.references)


@dataclass(frozen=True, slots=True)
class Outage:
    """A shared frontier that stopped answering and is being retried, for the progress line: which
    ``server``, ``since`` when (``time.monotonic()``), and for how long in all (``within`` seconds)
    before the crawl stops."""

    server: str
    since: float
    within: float


class Frontier(Protocol):
    """What the scheduler needs of a frontier, and no more: ``add``, ``lease``, ``ack``, ``exclude``,
    ``hosts_with_work``, ``park``, ``parked_work``, ``back_off``, ``release``, ``requeue`` and
    ``pending``. Every method may raise ``StorageError``."""

    async def add(self, urls: Sequence[NewURL]) -> int:
        """Record URLs: new ones are queued (or recorded as excluded, with their exclusion); a URL
        seen before is left alone, except that one excluded before is queued when it comes again
        without an exclusion (found within bounds by another path, or given as a seed). Returns how
        many were queued."""
        ...

    async def lease(self, limit: int, host: str | None = None) -> list[FrontierItem]:
        """Up to ``limit`` pending URLs (of ``host`` only, if given), breadth-first (oldest first),
        now leased to the caller. With a per-host budget, a host's leases stop where its fetched and
        leased URLs reach the budget."""
        ...

    async def ack(self, items: Sequence[FrontierItem]) -> None:
        """These leased URLs are done: their pages are stored. Repeating it is harmless. A host
        whose budget this reaches has the rest of its URLs excluded (``host_budget``)."""
        ...

    async def exclude(self, items: Sequence[tuple[FrontierItem, str, str | None]]) -> None:
        """These leased URLs will not be fetched after all (robots.txt, read only once they were
        queued, rules them out): each is excluded with its code and detail, and is no page."""
        ...

    async def hosts_with_work(self) -> list[str]:
        """Hosts with pending URLs, except those parked until later or out of budget."""
        ...

    async def park(self, host: str, until: str, error: str) -> None:
        """``host`` is unreachable (``error``): leave its URLs pending, and out of
        ``hosts_with_work`` until ``until`` (ISO 8601 UTC)."""
        ...

    async def parked_work(self) -> tuple[int, int, str | None]:
        """What waits on parked hosts: (URLs, hosts, the earliest end of their parks, ISO 8601 UTC),
        counting hosts parked until later that have URLs pending; (0, 0, None) when there are none."""
        ...

    async def back_off(self, host: str, reason: str | None) -> None:
        """``host`` is crawled more slowly than configured (``reason``: why, and at what pace), or with
        None at full pace again. Only recorded, for ``crawler stats --hosts``: the host keeps its work."""
        ...

    async def release(self, items: Sequence[FrontierItem] | None = None) -> int:
        """Leased URLs are pending again: these, or with None every leased URL (at the start of a
        run, those of a run that died; at its end, its own). Returns how many."""
        ...

    async def requeue(self, urls: Sequence[str]) -> int:
        """URLs that are done are pending again (a recrawl), and every host starts the pass afresh
        (no budget spent, none parked). Returns how many."""
        ...

    async def pending(self) -> int:
        """URLs queued or leased: what is left of the job."""
        ...


class SharedFrontier(Frontier, Protocol):
    """A frontier that several crawls share (``redis.py``), each storing pages in its own job file.
    Its leases expire unless renewed, and an acknowledgement carries the lease's token, so the
    result of a worker whose lease ran out (and whose URL went to another) is refused."""

    address: str

    async def ack_fenced(self, items: Sequence[FrontierItem]) -> list[FrontierItem]:
        """``ack``; returns the items refused for a stale lease (another worker has the URL now)."""
        ...

    async def renew(self, items: Sequence[FrontierItem]) -> list[FrontierItem]:
        """Extend the leases of ``items`` and say this worker is alive; returns the leases lost."""
        ...

    async def workers_alive(self) -> int:
        """How many workers share the job now (their heartbeats are fresh)."""
        ...

    async def set_delay(self, host: str, seconds: float) -> None:
        """Keep at least ``seconds`` between two leases of ``host``, job-wide (a Crawl-delay)."""
        ...

    async def join(self, seed_hosts: Iterable[str] = ()) -> set[str]:
        """Join the job, creating it with ``seed_hosts`` if it has none; returns the job's seed hosts
        (the scope every worker crawls in; none yet: nobody has given seeds). From the first join
        that finds the job, an operation that finds the job gone raises ``StorageError``: a frontier
        that lost the job (a Redis restarted without persistence) must not read as finished."""
        ...

    async def idle(self, wait: float = 0.0) -> bool:
        """Whether this run of the job is over for every worker: no lease is out, and the only URLs
        queued are those of hosts parked for more than ``wait`` seconds yet (a later run's)."""
        ...
