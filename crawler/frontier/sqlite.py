"""The embedded frontier: the ``urls`` table of the job file, one row per URL ever seen, organised by host.

"Seen?" is the unique index on ``url``, so memory does not grow with the crawl. Each host's queue
is the partial index of its pending rows, ``(host, id) WHERE state = pending``, in id order, which
is discovery order: leasing a host's oldest first is breadth-first within the host, and costs
O(log URLs) whatever the number of hosts. A lease is the row's state: a run that dies leaves its
URLs leased, and the next run's ``release()`` puts them back. Per-host state (URLs fetched this
pass, parked, budget reached) is the ``hosts`` table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from crawler.frontier import NewURL
from crawler.models import FetchAs, FrontierItem
from crawler.storage.jobfile import JobFile
from crawler.storage.schema import DONE, EXCLUDED, HOST_BUDGET, LEASED, PENDING, stored_time

# A URL first seen excluded for a reason that depends on the path to it (too deep, nofollow) is
# queued when a later page links it within bounds (or a seed names it); off-host verdicts never
# change, since the same URL is off host from every page.
_UPSERT = f"""
INSERT INTO urls (url, host, depth, state, exclusion, source, detail, lastmod, fetch_as) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(url) DO UPDATE SET state = {PENDING}, depth = excluded.depth, exclusion = NULL, detail = NULL,
source = excluded.source, lastmod = COALESCE(excluded.lastmod, urls.lastmod), fetch_as = excluded.fetch_as
WHERE urls.state = {EXCLUDED} AND excluded.state = {PENDING}
"""
_LEASE = f"""
UPDATE urls SET state = {LEASED} WHERE id IN
(SELECT id FROM urls WHERE state = {PENDING} ORDER BY id LIMIT ?) RETURNING id, url, depth, host, fetch_as
"""
_LEASE_HOST = f"""
UPDATE urls SET state = {LEASED} WHERE id IN
(SELECT id FROM urls WHERE host = ? AND state = {PENDING} ORDER BY id LIMIT ?) RETURNING id, url, depth, host, fetch_as
"""
# A host whose park is over and answers again is no longer parked (the failure that parked it is
# counted too, and leaves it parked); a backed-off host stays so, with its reason, until the scheduler
# says it is back at full pace. ?3 is now.
_COUNT_FETCHED = """
INSERT INTO hosts (host, fetched) VALUES (?, ?) ON CONFLICT(host) DO UPDATE SET fetched = fetched + excluded.fetched,
state = CASE WHEN state = 'parked' AND until <= ?3 THEN 'active' ELSE state END,
until = CASE WHEN state = 'parked' AND until > ?3 THEN until END,
error = CASE WHEN state = 'backoff' OR (state = 'parked' AND until > ?3) THEN error END
"""
_HOSTS_WITH_WORK = f"""
SELECT DISTINCT u.host FROM urls u WHERE u.state = {PENDING} AND NOT EXISTS
(SELECT 1 FROM hosts h WHERE h.host = u.host AND ((h.state = 'parked' AND h.until > ?) OR h.state = 'budget'))
"""


_EXCLUDE_REST = f"UPDATE urls SET state = {EXCLUDED}, exclusion = ? WHERE host = ? AND state = {PENDING}"


def _stored(fetch_as: FetchAs) -> str | None:
    """How ``urls.fetch_as`` holds it: NULL for a page."""
    return None if fetch_as == "page" else fetch_as


class SqliteFrontier:
    """``Frontier`` over the job file's ``urls`` and ``hosts`` tables. ``host_budget`` (0: none) is
    ``--max-pages-per-host``."""

    def __init__(self, job: JobFile, host_budget: int = 0) -> None:
        self.job = job
        self.host_budget = host_budget
        self._spent: set[str] | None = None   # hosts whose budget is reached, read once

    async def _spent_hosts(self) -> set[str]:
        if self._spent is None:
            rows = await self.job.fetchall("SELECT host FROM hosts WHERE state = 'budget'")
            self._spent = {r[0] for r in rows}
        return self._spent

    async def add(self, urls: Sequence[NewURL]) -> int:
        if not urls:
            return 0
        spent = await self._spent_hosts() if self.host_budget else set()
        queued = [(u.url, u.host, u.depth, PENDING, None, u.source, None, u.lastmod, _stored(u.fetch_as)) for u in urls
                  if u.exclusion is None and u.host not in spent]
        excluded = [(u.url, u.host, u.depth, EXCLUDED, u.exclusion or HOST_BUDGET, u.source, u.detail, u.lastmod, None)
                    for u in urls if u.exclusion is not None or u.host in spent]
        async with self.job.transaction() as db:
            before = db.total_changes
            if queued:
                await db.executemany(_UPSERT, queued)
            added = db.total_changes - before
            if excluded:
                await db.executemany(_UPSERT, excluded)
        return added

    async def lease(self, limit: int, host: str | None = None) -> list[FrontierItem]:
        async with self.job.transaction() as db:
            if host is None:
                rows = await db.execute_fetchall(_LEASE, (limit,))
            else:
                if self.host_budget:
                    limit = min(limit, await self._budget_left(host))
                rows = await db.execute_fetchall(_LEASE_HOST, (host, limit)) if limit > 0 else []
        return sorted((FrontierItem(r[0], r[1], r[2], host=r[3], fetch_as=r[4] or "page") for r in rows),
                      key=lambda i: i.id)

    async def _budget_left(self, host: str) -> int:
        """What ``host`` may still lease: its budget less what it fetched this pass and holds leased."""
        db = self.job.db
        fetched = list(await db.execute_fetchall("SELECT fetched FROM hosts WHERE host = ?", (host,)))
        leased = list(await db.execute_fetchall(f"SELECT COUNT(*) FROM urls WHERE state = {LEASED} AND host = ?",
                                                (host,)))
        return self.host_budget - (fetched[0][0] if fetched else 0) - int(leased[0][0])

    async def ack(self, items: Sequence[FrontierItem]) -> None:
        if not items:
            return
        async with self.job.transaction() as db:
            before = db.total_changes
            done = [(i.id,) for i in items]
            await db.executemany(f"UPDATE urls SET state = {DONE} WHERE id = ? AND state = {LEASED}", done)
            if db.total_changes == before:
                return   # all acknowledged already
            per_host = Counter(i.host for i in items if i.host)
            now = stored_time()
            await db.executemany(_COUNT_FETCHED, [(host, count, now) for host, count in per_host.items()])
            if self.host_budget:
                spent = await self._spent_hosts()
                for host in per_host:
                    rows = list(await db.execute_fetchall("SELECT fetched FROM hosts WHERE host = ?", (host,)))
                    if rows and rows[0][0] >= self.host_budget and host not in spent:
                        await db.execute("UPDATE hosts SET state = 'budget' WHERE host = ?", (host,))
                        await db.execute(_EXCLUDE_REST, (HOST_BUDGET, host))
                        spent.add(host)

    async def exclude(self, items: Sequence[tuple[FrontierItem, str, str | None]]) -> None:
        if not items:
            return
        async with self.job.transaction() as db:
            await db.executemany(f"UPDATE urls SET state = {EXCLUDED}, exclusion = ?, detail = ? "
                                 f"WHERE id = ? AND state = {LEASED}",
                                 [(code, detail, item.id) for item, code, detail in items])

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
            await db.execute("UPDATE hosts SET fetched = 0, state = 'active', until = NULL, error = NULL")
            self._spent = set()
            before = db.total_changes
            await db.executemany(f"UPDATE urls SET state = {PENDING} WHERE url = ? AND state = {DONE}",
                                 [(u,) for u in urls])
            return db.total_changes - before

    async def hosts_with_work(self) -> list[str]:
        return [r[0] for r in await self.job.fetchall(_HOSTS_WITH_WORK, (stored_time(),))]

    async def park(self, host: str, until: str, error: str) -> None:
        async with self.job.transaction() as db:
            await db.execute(
                "INSERT INTO hosts (host, state, until, error) VALUES (?, 'parked', ?, ?) "
                "ON CONFLICT(host) DO UPDATE SET state = 'parked', until = excluded.until, error = excluded.error",
                (host, until, error))

    async def parked_work(self) -> tuple[int, int, str | None]:
        rows = await self.job.fetchall(
            "SELECT COUNT(*), COUNT(DISTINCT u.host), MIN(h.until) FROM urls u JOIN hosts h ON h.host = u.host "
            f"WHERE u.state IN ({PENDING}, {LEASED}) AND h.state = 'parked' AND h.until > ?", (stored_time(),))
        urls, hosts, until = rows[0]
        return int(urls), int(hosts), until if urls else None

    async def back_off(self, host: str, reason: str | None) -> None:
        async with self.job.transaction() as db:
            if reason is None:
                await db.execute("UPDATE hosts SET state = 'active', error = NULL WHERE host = ? AND state = 'backoff'",
                                 (host,))
            else:
                await db.execute(
                    "INSERT INTO hosts (host, state, error) VALUES (?, 'backoff', ?) ON CONFLICT(host) DO UPDATE "
                    "SET state = 'backoff', until = NULL, error = excluded.error WHERE hosts.state != 'budget'",
                    (host, reason))

    async def pending(self) -> int:
        rows = await self.job.fetchall(f"SELECT COUNT(*) FROM urls WHERE state IN ({PENDING}, {LEASED})")
        return int(rows[0][0])
