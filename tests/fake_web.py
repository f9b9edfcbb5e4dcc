"""The fake web of the in-process crawl tests: a handler for ``httpx2.MockTransport`` on a fake clock.

``FakeWeb(clock, routes)`` answers a request from ``routes``, keyed by full URL
(``http://a.test/p0``) or, for a one-site test, by path (``/p0``); ``special`` maps a host to an
async handler of its own (slow, failing, dead); anything else is a 404. Every request is logged as
``Hit(at, host, path)`` in fake time, the host's own handler's too.

The runner: ``run(crawl(settings, web))`` crawls ``ORIGIN/`` (or the seeds given) to its end, with
the web's clock and a seeded random source; ``stored`` and ``queue`` read the job file back.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx2
from conftest_fetch import reply
from fake_clock import FakeClock

from crawler.config import Settings
from crawler.run_stats import RunStats
from crawler.scheduler import Crawl
from crawler.storage.read import JobReader

ORIGIN = "http://site.test"   # the one site of a one-site test
Routes = dict[str, Callable[[], httpx2.Response]]


def page(*links: str) -> httpx2.Response:
    """A small HTML page, titled ``t``, linking ``links``."""
    body = "".join(f'<a href="{link}">{link}</a>' for link in links)
    return reply(200, f"<!doctype html><title>t</title>{body}".encode(), {"content-type": "text/html"})


def fan_out(pages: int, origin: str = "") -> Routes:
    """``origin/`` linking ``/p0`` .. ``/p{pages-1}``, which link nothing (keyed by path without ``origin``)."""
    routes: Routes = {f"{origin}/": lambda: page(*(f"/p{n}" for n in range(pages)))}
    routes.update({f"{origin}/p{n}": page for n in range(pages)})
    return routes


class Hit(NamedTuple):
    at: float     # fake time
    host: str
    path: str


class FakeWeb:
    """Answers from ``routes`` (full URL first, then path) or ``special[host]``; logs every request."""

    def __init__(self, clock: Any, routes: Routes) -> None:
        self.clock = clock
        self.routes = routes
        self.special: dict[str, Callable[[httpx2.Request], Any]] = {}
        self.log: list[Hit] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        host = request.url.host
        self.log.append(Hit(self.clock.now, host, request.url.path))
        if host in self.special:
            answer: httpx2.Response = await self.special[host](request)
            return answer
        route = self.routes.get(str(request.url)) or self.routes.get(request.url.path)
        return route() if route is not None else reply(404, b"no", {"content-type": "text/plain"})

    def paths(self) -> list[str]:
        return [hit.path for hit in self.log]

    def hosts(self) -> list[str]:
        return [hit.host for hit in self.log]

    def times(self) -> list[float]:
        return [hit.at for hit in self.log]


def crawl(settings: Settings, web: FakeWeb, seeds: list[str] | None = None, *, seed: str = "/",
          rng: int = 7) -> Crawl:
    """A crawl of ``seeds`` (by default ``ORIGIN + seed``) over ``web``, on its clock."""
    job = Crawl(settings, [ORIGIN + seed] if seeds is None else seeds, transport=httpx2.MockTransport(web), clock=web.clock,
                rng=random.Random(rng))
    if isinstance(web.clock, FakeClock):   # no jump while a visit or a write is under way
        web.clock.busy = lambda: job.stats.in_flight > 0 or (job._run is not None and job._run.writer.unflushed > 0)
    return job


def run(job: Crawl, guard: float = 20.0) -> RunStats:
    """Run a crawl to its end; the guard turns a hang into a failure instead of a stuck suite."""
    async def go() -> RunStats:
        async with asyncio.timeout(guard):
            return await job.run()
    return asyncio.run(go())


def stored(settings: Settings) -> dict[str, Any]:
    """URL -> status of every page the job file holds."""
    with JobReader(settings.db) as job:
        return {r["url"]: r["status"] for r in job.records(("url", "status"))}


def queue(settings: Settings) -> dict[str, int]:
    """URL -> state of every URL pending (0) or leased (1)."""
    conn = sqlite3.connect(settings.db)
    try:
        return {url: state for url, state in conn.execute("SELECT url, state FROM urls WHERE state IN (0, 1)")}
    finally:
        conn.close()
