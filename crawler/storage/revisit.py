"""Each stored page's revisit interval and due time in the job file (``pages.revisit_interval``,
``pages.due_at``, seconds), set in the transaction that stores the page; the rule is
``crawler.revisit``'s, written here in SQL so that a batch is one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from crawler.storage.jobfile import JobFile

# ``change`` is what the store just recorded for this pass (storage.pages): new, unchanged, changed, gone.
_INTERVAL = """UPDATE pages SET revisit_interval = CASE
    WHEN revisit_interval IS NULL THEN :start
    WHEN change = 'unchanged' THEN MIN(revisit_interval * 2, :most)
    WHEN change IN ('changed', 'gone') THEN MAX(revisit_interval / 2, :least)
    ELSE revisit_interval END WHERE url_id = :url_id"""
_DUE = "UPDATE pages SET due_at = :started + revisit_interval WHERE url_id = :url_id"

# Due: no interval yet, its time has come, or a sitemap dated the URL after the page's last fetch.
_DUE_URLS = """SELECT u.url FROM pages p JOIN urls u ON u.id = p.url_id
WHERE p.due_at IS NULL OR p.due_at <= ? OR (u.lastmod IS NOT NULL AND u.lastmod > p.fetched_at)
ORDER BY p.url_id"""


async def schedule(db: aiosqlite.Connection, url_ids: Sequence[int], bounds: tuple[float, float, float],
                   started: float) -> None:
    """Set the interval and due time of these just-stored pages (inside the store's transaction);
    ``bounds`` are ``crawler.revisit.Bounds``' start, least and most."""
    if not url_ids:
        return
    values: dict[str, Any] = dict(zip(("start", "least", "most"), bounds, strict=True))
    await db.executemany(_INTERVAL, [values | {"url_id": i} for i in url_ids])
    await db.executemany(_DUE, [{"started": started, "url_id": i} for i in url_ids])


async def due_urls(job: JobFile, when: float) -> list[str]:
    """Canonical URLs of the stored pages due at ``when`` (seconds since the epoch)."""
    return [r[0] for r in await job.fetchall(_DUE_URLS, (when,))]
