"""The writer: the one task that writes a run's records to the job file, and what it remembers
of the URLs it has given the frontier (``Recorded``), so that a link found again is not judged,
built and sent again.

    visit ─► Writer.write ─► batch: pages.store ─► Discovery.judge + frontier.add (the links)
                                   ─► frontier.exclude (robots.txt at the visit) ─► frontier.ack (the URLs)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal

from crawler.frontier import Frontier, NewURL
from crawler.frontier.sqlite import SqliteFrontier
from crawler.models import FrontierItem, PageRecord
from crawler.peers import Peers
from crawler.storage.pages import PageStore
from crawler.urls import host_key


@dataclass(frozen=True, slots=True)
class Excluded:
    """A leased URL decided against when its visit began (robots.txt read only then): no request was
    made, and it is recorded as an exclusion with its ``code`` and ``detail``, not as a page."""

    code: str
    detail: str | None = None


Judge = Callable[[str | None, list[NewURL], NewURL | None], list[NewURL]]
def batch_unit(frontier: Frontier, pages: PageStore) -> Callable[[], AbstractAsyncContextManager[object]]:
    """What a batch's three steps run in: the job file's transaction when the frontier keeps its
    queue in the same file, else nothing (each step is safe to repeat on its own)."""
    if isinstance(frontier, SqliteFrontier) and frontier.job is pages.job:
        return pages.job.transaction
    return contextlib.nullcontext


Then = Literal["ack", "release", "hold"]   # what becomes of a URL once its record is written (Writer.write)


class Writer:
    """The one task that writes to the job file, in batches of whatever accumulated meanwhile.

    Each batch is three steps, in an order that holds for a remote frontier too: the pages are
    stored, then their links are added to the frontier, then their URLs are acknowledged. A crash
    between two steps leaves the URLs leased; the next run fetches them again and repeats the steps,
    each of which is safe to repeat. Where the frontier lives in the job file, ``unit`` is the job
    file's transaction and the three steps commit as one (a third of the commits, and a failed
    batch leaves nothing behind).

    ``write`` returns once the record is committed, so a visit holds its slot until its page is
    safe on disk: what a kill -9 can lose is bounded by the number of slots."""

    def __init__(self, pages: PageStore, frontier: Frontier, peers: Peers, on_commit: Callable[[tuple[int, set[str]]], None],
                 unit: Callable[[], AbstractAsyncContextManager[object]] = contextlib.nullcontext,
                 maxsize: int = 512, scope: Callable[[str, int], str | None] = lambda url, depth: None,
                 judge: Judge = lambda source, found, canonical: found) -> None:
        self._pages = pages
        self._frontier = frontier
        self._judge = judge   # decisions made when a link is found: robots.txt, trap rules, the SSRF guard
        self._scope = scope   # the scope's verdict on a URL at a depth (for rel=canonical targets)
        self._peers = peers   # when shared: its URLs get rows here, its acks are fenced
        self._recorded = Recorded()   # what this run has given the frontier: the frontier is asked less
        self._unit = unit   # what the three steps of a batch run in: the job file's transaction, when shared
        self._queue: asyncio.Queue[tuple[FrontierItem, PageRecord | Excluded, Then, asyncio.Future[bool]] | None] = \
            asyncio.Queue(maxsize)
        self._on_commit = on_commit
        self.unflushed = 0   # records handed over and not yet committed

    async def write(self, item: FrontierItem, record: PageRecord | Excluded, *, then: Then = "ack") -> bool:
        """Hand ``record`` (of the leased ``item``) to the writer and wait until it is committed.
        ``then`` is what becomes of the URL: acknowledged (done); with "release" it goes back to the
        frontier (its host is parked: the error is recorded, and a later run tries again); with
        "hold" it stays leased until the run ends, and is pending again then (a failure that says
        nothing of the URL: a later run tries again, this one does not). An ``Excluded`` is
        recorded as the URL's exclusion, not as a page. Returns whether the record stays stored:
        not when a shared frontier refused its acknowledgement (another worker's copy counts)."""
        committed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.unflushed += 1
        await self._queue.put((item, record, then, committed))
        return await committed

    async def close(self) -> None:
        await self._queue.put(None)

    def _canonical(self, item: FrontierItem, record: PageRecord) -> NewURL | None:
        """The rel=canonical target of a good page, when it names a URL other than the page's own."""
        target = record.canonical
        if target is None or record.status != 200 or target in (item.url, record.final_url):
            return None
        return NewURL(target, host_key(target), record.depth, self._scope(target, record.depth), source=record.url_id)

    async def run(self) -> None:
        closing = False
        while not closing:
            batch: list[tuple[FrontierItem, PageRecord | Excluded, Then, asyncio.Future[bool]]] = []
            entry = await self._queue.get()
            while True:
                if entry is None:
                    closing = True
                    break
                batch.append(entry)
                if self._queue.empty() or len(batch) >= 2000:
                    break
                entry = self._queue.get_nowait()
            try:
                queued, refused = await self._commit(batch)
            except BaseException as exc:
                for *_, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
                raise
            self.unflushed -= len(batch)
            for item, _, _, waiter in batch:
                if not waiter.done():
                    waiter.set_result(item.id not in refused)
            self._on_commit(queued)

    async def _commit(self, batch: Sequence[tuple[FrontierItem, PageRecord | Excluded, Then, object]]
                      ) -> tuple[tuple[int, set[str]], set[int]]:
        """Store, add links, acknowledge; returns how many URLs the links queued and their hosts, and
        the ids of the pages forgotten for a refused acknowledgement."""
        records = [record for _, record, _, _ in batch if isinstance(record, PageRecord)]
        excluded = [(item, record.code, record.detail) for item, record, _, _ in batch if isinstance(record, Excluded)]
        # A page links mostly to URLs the job has queued already (a site's menu on every page): those
        # are dropped before they are judged, built or sent to the frontier.
        recorded = self._recorded
        found: list[NewURL] = []
        for item, record, _, _ in batch:
            if isinstance(record, PageRecord):
                links = [NewURL(link.url, link.host, record.depth + 1, link.exclusion, source=record.url_id,
                                fetch_as=link.fetch_as) for link in record.links if not recorded.queued(link.url)]
                found += self._judge(item.url, links, self._canonical(item, record))
        found = recorded.news(found)
        done = [item for item, record, then, _ in batch if then == "ack" and isinstance(record, PageRecord)]
        async with self._unit():
            await self._peers.remember(self._pages, [item for item, *_ in batch])
            await self._pages.store(records)
            queued = await self._frontier.add(found)
            await self._frontier.exclude(excluded)
            refused, freed = await self._peers.ack(self._pages, done)   # shared: refused pages are forgotten
            back = [item for item, _, then, _ in batch if then == "release"]
            if back:
                await self._frontier.release(back)
        recorded.note((u.url for u in found if u.exclusion is None), (u.url for u in found if u.exclusion is not None))
        for item, _, _ in excluded:
            recorded.excluded(item.url)
        hosts = {u.host for u in found if u.exclusion is None} if queued else set()
        hosts |= freed   # shared: their hosts have a lease less, job-wide: maybe room for ours
        return (queued, hosts), {item.id for item in refused}


class Recorded:
    """The URLs a run has given its frontier (by hash) and whether as excluded, so that what the
    frontier would leave alone is not sent again: a page links mostly to URLs the job has seen (a
    site's menu on every page), and judging and adding them was most of the writer's work on a
    site. Bounded: cleared when full, after which the frontier decides as before."""

    def __init__(self, most: int = 250_000) -> None:   # about 25 MB at most
        self.most = most
        self._known: dict[int, bool] = {}

    def queued(self, url: str) -> bool:
        """Given to the frontier without an exclusion: found again, it changes nothing."""
        return self._known.get(hash(url)) is False

    def news(self, urls: Sequence[NewURL]) -> list[NewURL]:
        """``urls`` less those the backend would leave alone: recorded already (queued, or excluded
        and excluded again), or repeated within ``urls`` (the first stays, in its place; one that
        queues wins over one that excludes)."""
        known = self._known
        fresh: dict[str, NewURL] = {}
        for u in urls:
            excluded = known.get(hash(u.url))
            if excluded is False or (excluded and u.exclusion is not None):
                continue
            before = fresh.get(u.url)
            if before is None or (before.exclusion is not None and u.exclusion is None):
                fresh[u.url] = u
        return list(fresh.values())

    def note(self, queued: Iterable[str], excluded: Iterable[str]) -> None:
        """These URLs are now recorded: queued (or leased, or done), or excluded."""
        known = self._known
        if len(known) > self.most:
            known.clear()
        for url in queued:
            known[hash(url)] = False
        for url in excluded:
            known.setdefault(hash(url), True)   # unknown before: maybe queued by an earlier run

    def excluded(self, url: str) -> None:
        """A recorded URL is excluded after all (ruled out at its visit)."""
        self._known[hash(url)] = True

    def clear(self) -> None:
        self._known.clear()
