"""The embedded frontier: the ``urls`` table of the job file, one row per URL ever seen.

"Seen?" is the unique index on ``url``, so memory does not grow with the crawl; the queue is the
partial index of pending rows in id order, which is discovery order, so leasing oldest first is
breadth-first. A lease is the row's state: a run that dies leaves its URLs leased, and the next
run's ``release()`` puts them back.
"""

from __future__ import annotations

from collections.abc import Sequence

from crawler.frontier import NewURL
from crawler.models import FrontierItem
from crawler.storage.jobfile import JobFile
from crawler.storage.schema import DONE, EXCLUDED, LEASED, PENDING

# A URL first seen excluded for a reason that depends on the path to it (too deep, nofollow) is
# queued when a later page links it within bounds (or a seed names it); off-host verdicts never
# change, since the same URL is off host from every page.
_UPSERT = f"""
INSERT INTO urls (url, host, depth, state, exclusion) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(url) DO UPDATE SET state = {PENDING}, depth = excluded.depth, exclusion = NULL
WHERE urls.state = {EXCLUDED} AND excluded.state = {PENDING}
"""
_LEASE = f"""
UPDATE urls SET state = {LEASED} WHERE id IN
(SELECT id FROM urls WHERE state = {PENDING} ORDER BY id LIMIT ?) RETURNING id, url, depth
"""


class SqliteFrontier:
    """``Frontier`` over the job file's ``urls`` table."""

    def __init__(self, job: JobFile) -> None:
        self.job = job

    async def add(self, urls: Sequence[NewURL]) -> int:
        if not urls:
            return 0
        queued = [(u.url, u.host, u.depth, PENDING, None) for u in urls if u.exclusion is None]
        excluded = [(u.url, u.host, u.depth, EXCLUDED, u.exclusion) for u in urls if u.exclusion is not None]
        async with self.job.transaction() as db:
            before = db.total_changes
            if queued:
                await db.executemany(_UPSERT, queued)
            added = db.total_changes - before
            if excluded:
                await db.executemany(_UPSERT, excluded)
        return added

    async def lease(self, limit: int) -> list[FrontierItem]:
        async with self.job.transaction() as db:
            rows = await db.execute_fetchall(_LEASE, (limit,))
        return sorted((FrontierItem(r[0], r[1], r[2]) for r in rows), key=lambda i: i.id)

    async def ack(self, items: Sequence[FrontierItem]) -> None:
        if items:
            async with self.job.transaction() as db:
                await db.executemany(f"UPDATE urls SET state = {DONE} WHERE id = ?", [(i.id,) for i in items])

    async def release(self, items: Sequence[FrontierItem] | None = None) -> int:
        async with self.job.transaction() as db:
            before = db.total_changes
            if items is None:
                await db.execute(f"UPDATE urls SET state = {PENDING} WHERE state = {LEASED}")
            else:
                await db.executemany(f"UPDATE urls SET state = {PENDING} WHERE id = ? AND state = {LEASED}",
                                     [(i.id,) for i in items])
            return db.total_changes - before

    async def requeue(self, urls: Sequence[str]) -> int:
        async with self.job.transaction() as db:
            before = db.total_changes
            await db.executemany(f"UPDATE urls SET state = {PENDING} WHERE url = ? AND state = {DONE}",
                                 [(u,) for u in urls])
            return db.total_changes - before

    async def pending(self) -> int:
        rows = await self.job.fetchall(f"SELECT COUNT(*) FROM urls WHERE state IN ({PENDING}, {LEASED})")
        return int(rows[0][0])

    async def finished(self) -> bool:
        rows = await self.job.fetchall(f"SELECT EXISTS (SELECT 1 FROM urls WHERE state IN ({PENDING}, {LEASED}))")
        return not rows[0][0]
