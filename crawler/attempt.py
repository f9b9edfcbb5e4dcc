"""One URL's attempt, read top to bottom: its host's robots.txt verdict, the fetch (here or in a
worker process), a retry or a park on failure, and its record handed to the writer.

    Attempts.visit: robots verdict ─► Visitor.visit (fetch, parse) ─► Writer.write (ack, release or hold)
                    a type not wanted (--accept-type, --reject-type; judged on the answer's header):
                    recorded as an exclusion, as robots.txt's
                    on failure: retry later (the host's queue, with a backoff), or record the error,
                    or the last 5xx answer's record (the visitor made it); the host hears of it
                    (``hosts.Hosts``)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace

from crawler.config import Settings
from crawler.errors import (
    ConnectFailed,
    FetchError,
    RobotsUnavailable,
    ServerBusy,
    StorageError,
    Timeout,
    TlsFailed,
    TypeRejected,
    WorkerDied,
)
from crawler.fetcher import retry_delay
from crawler.hosts import Hosts
from crawler.models import FrontierItem, PageRecord
from crawler.peers import Peers
from crawler.politeness import HostPool
from crawler.robots import RobotsCache, unreachable
from crawler.run_stats import RunStats
from crawler.storage.schema import stored_time
from crawler.urls import origin
from crawler.visit import Visitor
from crawler.writer import Excluded, Then, Writer


class Attempts:
    """Visits of URLs the dispatcher took from their hosts' queues, each in its own task. A visit
    holds a slot (``slots``) until its record is written, and its host and a global permit
    (``permits``) only while its request is under way."""

    def __init__(self, settings: Settings, *, pool: HostPool, hosts: Hosts, robots: RobotsCache, visitor: Visitor,
                 writer: Writer, peers: Peers, stats: RunStats, rng: random.Random,
                 permits: asyncio.Semaphore, slots: asyncio.Semaphore, wake: asyncio.Event,
                 stopping: Callable[[], bool], unfetched: Callable[[], None]) -> None:
        """``stopping`` says whether the run is stopping; ``unfetched`` hears of a URL dispatched
        that made no request (excluded by robots.txt at its visit): ``--max-pages`` does not count it."""
        self._settings = settings
        self._pool = pool
        self._hosts = hosts
        self._robots = robots
        self._visitor = visitor
        self._writer = writer
        self._peers = peers
        self._stats = stats
        self._rng = rng
        self._permits = permits
        self._slots = slots
        self._wake = wake
        self._stopping = stopping
        self._unfetched = unfetched

    async def visit(self, host: str, item: FrontierItem) -> None:
        """Visit ``item``, which the dispatcher took from ``host``'s queue with a slot and a permit."""
        over = False
        answers = self._pool.answers(host)   # did the host answer others while this request ran?

        def request_over() -> None:
            """The request is over (said by whoever knows first): its host and its global permit go
            to the next URL; parsing and storing are not requests."""
            nonlocal over
            if not over:
                over = True
                self._pool.release(host)
                self._permits.release()
                self._wake.set()

        try:
            outcome = await self._fetch(host, item, request_over, answers)
            request_over()
            if isinstance(outcome, Excluded):
                if item.attempt == 0 and item.fetch_as == "page":
                    self._unfetched()   # no request was made: --max-pages counts fetched pages only
                await self._writer.write(item, outcome)
                self._peers.settled([item])
                return
            record = outcome
            if record is not None:
                # A failure that parked its host is recorded, and its URL stays pending for a later run;
                # so is a URL whose worker process died with it every time (the next run tries again).
                # A check's failure is its answer: a dead link to another site is what it was to find.
                then: Then = ("release" if record.error and host in self._hosts.parked and item.fetch_as != "check"
                              else "hold" if record.error == WorkerDied.code else "ack")
                if await self._writer.write(item, record, then=then):
                    if item.fetch_as == "check":   # checks and requisites are counted apart from pages
                        self._stats.checks += 1
                    elif item.fetch_as == "requisite":
                        self._stats.requisites += 1
                    else:
                        self._stats.pages += 1   # stored, and kept: a refused acknowledgement forgot it
                        self._stats.errors += record.error is not None
                    self._stats.unchanged += record.unchanged
                    self._stats.observer.page(item.url, record)
                self._peers.settled([item])
        except StorageError:
            pass  # the writer failed: its own task reports that, through the crawl's TaskGroup
        finally:
            request_over()
            self._slots.release()
            self._stats.in_flight -= 1
            self._wake.set()

    async def _fetch(self, host: str, item: FrontierItem, request_over: Callable[[], None],
                     answers: int) -> PageRecord | Excluded | None:
        """Fetch one URL: its record to store (of a page or of a failure), an exclusion (robots.txt
        rules it out, read only now), or None when it went back to its host's queue for a retry.
        ``answers`` is the host's count of good answers when the request started."""
        settings = self._settings
        try:
            if settings.robots:
                excluded = await self._robots_verdict(host, item)
                if excluded is not None:
                    return excluded
            elif host in self._hosts.reached:   # known to answer, even if the pool forgot it while it had no work
                self._pool.learn(host, None)
            record = await self._visitor.visit(item, request_over)
        except FetchError as err:
            request_over()
            if isinstance(err, TypeRejected):   # its type, read from its header, is not wanted: no failure
                self._hosts.answered(host)
                return Excluded(err.code, err.message)
            delay = retry_delay(err, item.attempt, settings, self._rng)
            await self._hosts.strained(host, item, err, answers)
            if delay is not None:
                if self._stopping():
                    # A stop is no verdict on the URL (its worker process may have died of the same
                    # signal): it stays leased, and is pending again for the resume.
                    return None
                if settings.robots:   # robots.txt unavailable (5xx, or its host unreached): the retry reads it again
                    self._robots.forget_unavailable(origin(err.url))
                self._stats.retries += 1
                self._pool.retry(host, replace(item, attempt=item.attempt + 1), delay)
                return None
            if isinstance(err, ServerBusy) and err.record is not None:
                return err.record   # the answer to store: its visitor made its record
            # A host never reached parks: refused, unresolved, robots.txt unavailable; or, with robots.txt
            # read before any page (so the failure was robots.txt's), no TLS or no answer in time.
            if host not in self._hosts.reached and (isinstance(err, ConnectFailed | RobotsUnavailable) or (
                    settings.robots and isinstance(err, Timeout | TlsFailed))):
                await self._hosts.park(host, err)
            else:
                self._hosts.answered(host)
                if err.responded and not err.retryable:
                    self._pool.responded(host)
            return PageRecord(item.id, item.depth, stored_time(), error=err.code, error_message=err.message[:500],
                              fetched_as=item.fetch_as)
        self._hosts.answered(host)
        # How long the server took to answer, not to send: a host that sends slowly but steadily
        # (a big page, a thin pipe) is not a host under strain.
        waited = record.waited_ms if record.waited_ms is not None else record.elapsed_ms
        await self._hosts.answered_in(host, (waited or 0) / 1000)
        return record

    async def _robots_verdict(self, host: str, item: FrontierItem) -> Excluded | None:
        """Read the host's robots.txt (once) and judge ``item`` by it: an ``Excluded`` when it is
        disallowed; ``RobotsUnavailable`` (or the SSRF guard's ``BlockedAddress``, which kept
        robots.txt from being fetched) raised when the host is off limits."""
        rules = await self._robots.rules(origin(item.url))
        crawl_delay = rules.crawl_delay(self._robots.agent)
        if not rules.unavailable:   # a host whose robots.txt cannot be read stays unreached, at one request
            self._hosts.reached.add(host)
            self._pool.learn(host, min(crawl_delay, self._settings.crawl_delay_max) if crawl_delay else None)
        if crawl_delay:
            await self._peers.crawl_delay(host, min(crawl_delay, self._settings.crawl_delay_max))
        if rules.unavailable:
            if (failed := unreachable(item.url, rules)) is not None:
                raise failed   # the host was not reached: that is the page's error (connect, dns, tls, timeout)
            self._robots.check_rules(item.url, rules)   # raises RobotsUnavailable (or BlockedAddress)
        if not rules.allows(item.url, self._robots.agent):
            return Excluded("robots_disallowed", rules.matching_line(item.url, self._robots.agent))
        return None
