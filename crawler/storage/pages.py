"""Pages, their history and their links: what a crawl found, written by the one writer task.

``store`` writes a batch of page records in one transaction: the page rows (the newest version of
each URL; a recrawl keeps the one it replaces in ``history`` when it changed), their link rows,
exact duplicates by content hash and near-duplicates by simhash. It touches nothing of the
frontier: the scheduler stores a page, then adds its links to the frontier, then acknowledges its
URL, and each of the three is safe to repeat after a crash (an upsert, an insert-if-new, a state
change), so a kill between any two loses nothing and doubles nothing.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from crawler.extract import NEAR_BITS, bands, to_signed
from crawler.models import FrontierItem, PageRecord
from crawler.storage import bodies, extracted
from crawler.storage.jobfile import JobFile
from crawler.storage.revisit import schedule
from crawler.storage.schema import DONE

_PAGE_COLUMNS = ("url_id", "final_url", "status", "content_type", "title", "description", "canonical",
                 "noindex", "nofollow", "outlinks", "bytes", "elapsed_ms", "fetched_at", "error", "error_message",
                 "etag", "last_modified", "content_hash", "simhash", "http_version", "reason_phrase", "headers",
                 "request_headers", "ip", "body", "rendered", "render_blocked", "response_body", "fetched_as",
                 "render_blocks")
# A page stored again in a later pass says how it changed; the row keeps only the newest version.
_INSERT_PAGE = (
    f"INSERT INTO pages ({', '.join(_PAGE_COLUMNS)}, pass, change) VALUES ({', '.join('?' * len(_PAGE_COLUMNS))}, ?, 'new') "
    "ON CONFLICT(url_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _PAGE_COLUMNS[1:])
    + ", pass = excluded.pass, change = CASE "
    "WHEN pages.pass = excluded.pass THEN pages.change "   # the same pass stored again (after a crash)
    "WHEN pages.status IS excluded.status AND pages.content_hash IS excluded.content_hash THEN 'unchanged' "
    "WHEN excluded.status IN (404, 410) THEN 'gone' ELSE 'changed' END")
_KEEP_HISTORY = """
INSERT INTO history (url_id, status, content_hash, fetched_at, pass)
SELECT url_id, status, content_hash, fetched_at, pass FROM pages
WHERE url_id = ? AND pass < ? AND (status IS NOT ? OR content_hash IS NOT ?)
"""
# The first earlier page sharing a band with this one and at most NEAR_BITS bits away. The index
# (band, value, url_id) is walked in url_id order, so the search stops at the first match.
_NEAR_DUPLICATE = f"""
UPDATE pages SET near_duplicate_of = (
    SELECT o.url_id FROM simhash_bands b
    JOIN simhash_bands o ON o.band = b.band AND o.value = b.value AND o.url_id < b.url_id
    JOIN pages op ON op.url_id = o.url_id
    WHERE b.url_id = pages.url_id AND hamming(op.simhash, pages.simhash) <= {NEAR_BITS}
    ORDER BY o.url_id LIMIT 1)
WHERE url_id = ?
"""
_DUPLICATE = ("UPDATE pages SET duplicate_of = (SELECT MIN(p.url_id) FROM pages p "
              "WHERE p.content_hash = pages.content_hash AND p.url_id < pages.url_id) WHERE url_id = ?")
# A 304 answer to a conditional recrawl: the stored copy stays, only its freshness changes.
_UNCHANGED = "UPDATE pages SET fetched_at = ?, elapsed_ms = ?, pass = ?, change = 'unchanged' WHERE url_id = ?"


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    return zlib.compress("".join(f"{k}: {v}\r\n" for k, v in headers).encode("latin-1", "replace"), 6)


def _page_rows(records: Sequence[PageRecord], keep_bodies: bool, crawl_pass: int) -> Iterator[tuple[Any, ...]]:
    """Rows for ``pages``; a generator, so compression runs in aiosqlite's thread, off the event loop."""
    for r in records:
        body = zlib.compress(r.body, 1) if keep_bodies and r.body is not None else None
        error, message = extracted.page_error(r)   # a 200 page's extract_missing or extract_failed
        yield (r.url_id, r.final_url, r.status, r.content_type, r.title, r.description, r.canonical,
               int(r.noindex), int(r.nofollow), sum(o.kind == "page" for o in r.links), r.size, r.elapsed_ms, r.fetched_at, error,
               message, r.etag, r.last_modified, r.content_hash,
               None if r.simhash is None else to_signed(r.simhash), r.http_version, r.reason_phrase,
               encode_headers(r.headers) if r.headers else None,
               encode_headers(r.request_headers) if r.request_headers else None, r.ip, body,
               r.rendered, r.render_blocked if r.rendered else None,
               zlib.compress(r.response_body, 1) if keep_bodies and r.response_body is not None else None,
               None if r.fetched_as == "page" else r.fetched_as,
               json.dumps({why: [n, url] for why, n, url in r.render_blocks}) if r.render_blocks else None, crawl_pass)


class PageStore:
    """The pages of one job file. ``crawl_pass`` is the pass new pages are stored in."""

    def __init__(self, job: JobFile, *, keep_bodies: bool = True, crawl_pass: int = 1,
                 revisit: tuple[float, float, float] = (86_400.0, 3_600.0, 2_592_000.0), started: float | None = None) -> None:
        self.job = job
        self.keep_bodies = keep_bodies
        self.crawl_pass = crawl_pass
        self.revisit = revisit      # crawler.revisit.Bounds: each stored page's next visit
        # this pass's start (crawler.revisit.now): what a page's next visit counts from
        self.started = time.time() if started is None else started

    async def store(self, records: Sequence[PageRecord]) -> None:
        """Write pages with their link rows, duplicates and history: one transaction."""
        if not records:
            return
        fetched = [r for r in records if not r.unchanged]
        unchanged = [(r.fetched_at, r.elapsed_ms, self.crawl_pass, r.url_id) for r in records if r.unchanged]
        async with self.job.transaction() as db:
            if self.crawl_pass > 1:   # a page fetched again: its old links go, the ones it has now come
                await db.executemany(_KEEP_HISTORY, [(r.url_id, self.crawl_pass, r.status, r.content_hash)
                                                     for r in fetched])
                await db.executemany("DELETE FROM links WHERE source_id = ?", [(r.url_id,) for r in fetched])
            if unchanged:
                await db.executemany(_UNCHANGED, unchanged)
            await db.executemany(_INSERT_PAGE, _page_rows(fetched, self.keep_bodies, self.crawl_pass))
            files = bodies.spooled(fetched) if self.keep_bodies else []
            if files or self.crawl_pass > 1:   # a body stored again (a recrawl; a batch repeated after a crash)
                await db.executemany(bodies.FORGET, [(r.url_id,) for r in (fetched if self.crawl_pass > 1 else files)])
            if files:   # read from their files a piece at a time, in the database's thread
                async with bodies.small_cache(db):
                    await db.executemany(bodies.STORE, bodies.piece_rows(files))
            await db.executemany(extracted.STORE, extracted.store_rows(fetched))
            if self.crawl_pass > 1:   # fetched again with nothing extracted (now an error page): the old row goes
                await db.executemany("DELETE FROM extracted WHERE url_id = ?",
                                     [(r.url_id,) for r in fetched if not extracted.has_extraction(r)])
            link_rows = [(r.url_id, o.url, int(o.nofollow), o.anchor or None, None if o.kind == "page" else o.kind)
                         for r in fetched for o in r.links]
            if link_rows:
                await db.executemany("INSERT OR IGNORE INTO links (source_id, target, nofollow, anchor, kind) "
                                     "VALUES (?, ?, ?, ?, ?)", link_rows)
            hashed = [(r.url_id,) for r in fetched if r.content_hash]
            if hashed:
                await db.executemany(_DUPLICATE, hashed)
            simhashed = [r for r in fetched if r.simhash is not None]
            if simhashed:
                await db.executemany("INSERT OR IGNORE INTO simhash_bands VALUES (?, ?, ?)",
                                     [(i, v, r.url_id) for r in simhashed for i, v in enumerate(bands(r.simhash or 0))])
                await db.executemany(_NEAR_DUPLICATE, [(r.url_id,) for r in simhashed])
            await schedule(db, [r.url_id for r in records], self.revisit, self.started)
        bodies.remove_spooled(fetched)   # stored (or, with --no-bodies, never to be)

    async def remember(self, items: Sequence[FrontierItem]) -> None:
        """Rows in ``urls`` for URLs leased from a shared frontier, under the frontier's ids, so this
        job file's pages name their URLs as the embedded frontier's would."""
        async with self.job.transaction() as db:
            await db.executemany(f"INSERT OR IGNORE INTO urls (id, url, host, depth, state) VALUES (?, ?, ?, ?, {DONE})",
                                 [(i.id, i.url, i.host, i.depth) for i in items])

    async def forget(self, url_ids: Sequence[int]) -> None:
        """Drop the pages of these URLs (a shared frontier refused their acknowledgement)."""
        async with self.job.transaction() as db:
            await db.executemany("DELETE FROM pages WHERE url_id = ?", [(i,) for i in url_ids])
            await db.executemany("DELETE FROM links WHERE source_id = ?", [(i,) for i in url_ids])
            await db.executemany("DELETE FROM extracted WHERE url_id = ?", [(i,) for i in url_ids])
            await db.executemany(bodies.FORGET, [(i,) for i in url_ids])

    async def count(self, crawl_pass: int) -> int:
        """Pages stored by the given pass."""
        rows = await self.job.fetchall("SELECT COUNT(*) FROM pages WHERE pass = ? AND fetched_as IS NULL", (crawl_pass,))
        return int(rows[0][0])

    async def validators(self, url_ids: Sequence[int]) -> dict[int, tuple[str | None, str | None]]:
        """(ETag, Last-Modified) of the stored 200 copies of these URLs, for conditional requests."""
        found: dict[int, tuple[str | None, str | None]] = {}
        for start in range(0, len(url_ids), 500):
            chunk = url_ids[start:start + 500]
            rows = await self.job.fetchall(
                f"SELECT url_id, etag, last_modified FROM pages WHERE status = 200 "
                f"AND (etag IS NOT NULL OR last_modified IS NOT NULL) AND url_id IN ({', '.join('?' * len(chunk))})",
                chunk)
            found.update((r[0], (r[1], r[2])) for r in rows)
        return found

    async def urls_fetched_before(self, cutoff: str | None) -> list[str]:
        """Canonical URLs of the stored pages fetched before ``cutoff`` (all of them with None)."""
        rows = await self.job.fetchall(
            "SELECT u.url FROM pages p JOIN urls u ON u.id = p.url_id WHERE ? IS NULL OR p.fetched_at < ? "
            "ORDER BY p.url_id", (cutoff, cutoff))
        return [r[0] for r in rows]
