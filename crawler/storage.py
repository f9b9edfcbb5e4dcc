"""The storage stage: one SQLite file per job, written by one aiosqlite connection.

The frontier lives here from the start: every URL ever seen is a row of ``urls`` (pending, leased,
done, or excluded with a reason), so "seen?" is a unique-index lookup and memory does not grow with
the crawl. A page, the state change of its URL and the URLs and links it found are written in one
transaction (several pages per transaction under load), so a kill at any instant loses at most the
pages still in flight, which are leased and become pending again on the next run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from crawler.errors import JobLocked, StorageError
from crawler.extract import NEAR_BITS, bands, hamming, to_signed
from crawler.models import FrontierItem, PageRecord

SCHEMA_VERSION = 1

PENDING, LEASED, DONE, EXCLUDED = 0, 1, 2, 3

# Set once for every connection, reader or writer.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",      # readers (stats, export) never block the crawl, and vice versa
    "PRAGMA synchronous=NORMAL",    # with WAL: durable up to the last checkpointed commits, never corrupt
    "PRAGMA busy_timeout=5000",     # wait out a reader's short lock instead of failing
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32768",     # 32 MiB page cache: the url index stays hot without unbounded growth
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS urls (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    depth INTEGER NOT NULL,
    state INTEGER NOT NULL,          -- 0 pending, 1 leased, 2 done, 3 excluded (never fetched)
    reason TEXT                      -- why excluded: off_host, too_deep, nofollow, ...
);
CREATE INDEX IF NOT EXISTS urls_pending ON urls(id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS urls_leased ON urls(id) WHERE state = 1;
CREATE TABLE IF NOT EXISTS pages (
    url_id INTEGER PRIMARY KEY REFERENCES urls(id),
    final_url TEXT,
    status INTEGER,
    content_type TEXT,
    title TEXT,
    description TEXT,
    canonical TEXT,
    noindex INTEGER NOT NULL DEFAULT 0,
    nofollow INTEGER NOT NULL DEFAULT 0,
    outlinks INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER,
    elapsed_ms INTEGER,
    fetched_at TEXT NOT NULL,
    error TEXT,
    etag TEXT,
    last_modified TEXT,
    content_hash TEXT,
    duplicate_of INTEGER,            -- the first page with the same content hash
    simhash INTEGER,                 -- of the main text, with extract_text on
    near_duplicate_of INTEGER,       -- the first page whose simhash is at most 3 bits away
    http_version TEXT,
    reason TEXT,
    pass INTEGER NOT NULL DEFAULT 1, -- the crawl pass that last fetched it (--recrawl starts a new one)
    change TEXT,                     -- in that pass: new, unchanged, changed or gone
    headers BLOB,                    -- zlib-compressed "Name: value\\r\\n" lines
    body BLOB                        -- zlib-compressed raw body (after Content-Encoding), unless --no-bodies
);
CREATE INDEX IF NOT EXISTS pages_hash ON pages(content_hash) WHERE content_hash IS NOT NULL;
CREATE TABLE IF NOT EXISTS history (   -- earlier versions of pages that a recrawl found changed
    url_id INTEGER NOT NULL,
    status INTEGER,
    content_hash TEXT,
    fetched_at TEXT NOT NULL,
    pass INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS history_url ON history(url_id);
CREATE TABLE IF NOT EXISTS simhash_bands (  -- near-duplicates share at least one 16-bit band
    band INTEGER NOT NULL,
    value INTEGER NOT NULL,
    url_id INTEGER NOT NULL,
    PRIMARY KEY (band, value, url_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (
    source_id INTEGER NOT NULL,
    target_id INTEGER NOT NULL,
    nofollow INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)
) WITHOUT ROWID;
"""

_PAGE_COLUMNS = ("url_id", "final_url", "status", "content_type", "title", "description", "canonical",
                 "noindex", "nofollow", "outlinks", "bytes", "elapsed_ms", "fetched_at", "error", "etag",
                 "last_modified", "content_hash", "simhash", "http_version", "reason", "headers", "body")
# A page stored again in a later pass says how it changed; the row keeps only the newest version.
_INSERT_PAGE = (
    f"INSERT INTO pages ({', '.join(_PAGE_COLUMNS)}, pass, change) VALUES ({', '.join('?' * len(_PAGE_COLUMNS))}, ?, 'new') "
    "ON CONFLICT(url_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _PAGE_COLUMNS[1:])
    + ", pass = excluded.pass, change = CASE "
    "WHEN pages.status IS excluded.status AND pages.content_hash IS excluded.content_hash THEN 'unchanged' "
    "WHEN excluded.status IN (404, 410) THEN 'gone' ELSE 'changed' END")
_KEEP_HISTORY = """
INSERT INTO history (url_id, status, content_hash, fetched_at, pass)
SELECT url_id, status, content_hash, fetched_at, pass FROM pages
WHERE url_id = ? AND (status IS NOT ? OR content_hash IS NOT ?)
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
# A 304 answer to a conditional recrawl: the stored copy stays, only its freshness changes.
_UNCHANGED = "UPDATE pages SET fetched_at = ?, elapsed_ms = ?, pass = ?, change = 'unchanged' WHERE url_id = ?"
# A URL first seen excluded for a reason that depends on the path to it (too deep, nofollow) is
# queued when a later page links it within bounds; off-host verdicts never change.
_UPSERT_URL = """
INSERT INTO urls (url, host, depth, state, reason) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(url) DO UPDATE SET state = 0, depth = excluded.depth, reason = NULL
WHERE urls.state = 3 AND excluded.state = 0
"""
_INSERT_LINK = "INSERT OR IGNORE INTO links (source_id, target_id, nofollow) SELECT ?, id, ? FROM urls WHERE url = ?"


def content_hash(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    return zlib.compress("".join(f"{k}: {v}\r\n" for k, v in headers).encode("latin-1", "replace"), 6)


def _page_rows(records: Sequence[PageRecord], keep_bodies: bool, crawl_pass: int) -> Iterator[tuple[Any, ...]]:
    """Rows for ``pages``; a generator, so compression runs in aiosqlite's thread, off the event loop."""
    for r in records:
        body = zlib.compress(r.body, 1) if keep_bodies and r.body is not None else None
        yield (r.url_id, r.final_url, r.status, r.content_type, r.title, r.description, r.canonical,
               int(r.noindex), int(r.nofollow), len(r.links), r.size, r.elapsed_ms, r.fetched_at, r.error,
               r.etag, r.last_modified, r.content_hash, None if r.simhash is None else to_signed(r.simhash),
               r.http_version, r.reason,
               encode_headers(r.headers) if r.headers else None, body, crawl_pass)


def _sql_hamming(a: int | None, b: int | None) -> int:
    return 64 if a is None or b is None else hamming(a & (2**64 - 1), b & (2**64 - 1))


class JobLock:
    """One job, one process: an exclusive ``flock`` on ``DB.lock``, released by the kernel when the
    holder dies, so a stale lock from a killed crawler never blocks a resume."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise JobLocked(f"job {self.path.with_suffix('')} is being crawled by process {holder}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Storage:
    """The job file, open for crawling. Use as ``async with Storage(path) as store``."""

    def __init__(self, path: str | Path, *, keep_bodies: bool = True) -> None:
        self.path = Path(path)
        self.keep_bodies = keep_bodies
        self._lock = JobLock(self.path)
        self._db: aiosqlite.Connection | None = None
        self.crawl_pass = 1

    @property
    def db(self) -> aiosqlite.Connection:
        assert self._db is not None, "Storage used outside its async with"
        return self._db

    async def __aenter__(self) -> Storage:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of {self.path}: {exc.strerror}") from None
        self._lock.acquire()
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            for pragma in PRAGMAS:
                await self._db.execute(pragma)
            await self._db.create_function("hamming", 2, _sql_hamming, deterministic=True)
            await self._check_schema()
            await self._db.executescript(SCHEMA)
            await self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.crawl_pass = int(await self.get_meta("pass") or 1)
        except sqlite3.DatabaseError as exc:
            await self._close_quietly()
            self._lock.release()
            if "locked" in str(exc):
                raise JobLocked(f"job file {self.path} is locked by another program") from None
            raise StorageError(f"cannot open job file {self.path}: {exc}") from None
        except BaseException:
            await self._close_quietly()
            self._lock.release()
            raise
        return self

    async def _check_schema(self) -> None:
        tables = {r[0] for r in await self.db.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return
        if "meta" not in tables or "urls" not in tables:
            raise StorageError(f"{self.path} is a SQLite file but not a crawler job")
        rows = list(await self.db.execute_fetchall("SELECT value FROM meta WHERE key='schema_version'"))
        version = int(rows[0][0]) if rows else 0
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path} was written by a newer crawler (schema {version} > {SCHEMA_VERSION})")

    async def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                await self._db.close()
            finally:
                self._db = None

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if self._db is not None:
                await self.release_stale_leases()   # leased and not stored: back to the frontier
                await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await self._close_quietly()
            self._lock.release()

    # -- job metadata -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> Any:
        rows = list(await self.db.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,)))
        return json.loads(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: Any) -> None:
        await self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- the frontier --------------------------------------------------------------------------

    async def release_stale_leases(self) -> int:
        """Leased URLs are pending again: on start, those of a process that died; on exit, our own."""
        cur = await self.db.execute("UPDATE urls SET state = 0 WHERE state = 1")
        return cur.rowcount

    async def add_seeds(self, seeds: Iterable[tuple[str, str]]) -> int:
        """Queue (url, host) seeds at depth 0; seeds already seen are left as they are. Returns new count."""
        await self.db.execute("BEGIN")
        before = self.db.total_changes
        await self.db.executemany(
            "INSERT INTO urls (url, host, depth, state) VALUES (?, ?, 0, 0) "
            "ON CONFLICT(url) DO UPDATE SET state = 0, depth = 0, reason = NULL WHERE urls.state = 3",
            list(seeds))
        await self.db.execute("COMMIT")
        return self.db.total_changes - before

    async def lease(self, limit: int) -> list[FrontierItem]:
        """Take up to ``limit`` pending URLs, oldest first (breadth-first), and mark them leased.
        A URL stored by an earlier pass comes with its validators, for a conditional request."""
        rows = await self.db.execute_fetchall(
            "UPDATE urls SET state = 1 WHERE id IN "
            "(SELECT id FROM urls WHERE state = 0 ORDER BY id LIMIT ?) RETURNING id, url, depth, "
            "(SELECT etag FROM pages WHERE url_id = urls.id AND status = 200), "
            "(SELECT last_modified FROM pages WHERE url_id = urls.id AND status = 200)",
            (limit,))
        return sorted((FrontierItem(r[0], r[1], r[2], 0, r[3], r[4]) for r in rows), key=lambda i: i.id)

    async def start_pass(self, fetched_before: str | None) -> int:
        """Begin a recrawl: every stored page (fetched before the given ISO time, if any) is pending
        again. Returns how many URLs were queued."""
        self.crawl_pass = int(await self.get_meta("pass") or 1) + 1
        await self.db.execute("BEGIN")
        await self.set_meta("pass", self.crawl_pass)
        cur = await self.db.execute(
            "UPDATE urls SET state = 0 WHERE state = 2 AND id IN "
            "(SELECT url_id FROM pages WHERE ? IS NULL OR fetched_at < ?)", (fetched_before, fetched_before))
        await self.db.execute("COMMIT")
        return cur.rowcount

    async def store(self, records: Sequence[PageRecord]) -> int:
        """Write pages, mark their URLs done, queue what they found: one transaction.
        Returns how many URLs this queued (new, or excluded before and in bounds now)."""
        if not records:
            return 0
        db = self.db
        links = [(r, o) for r in records for o in r.links]
        queued = [(o.url, o.host, r.depth + 1, PENDING, None) for r, o in links if not o.reason]
        excluded = [(o.url, o.host, r.depth + 1, EXCLUDED, o.reason) for r, o in links if o.reason]
        link_rows = [(r.url_id, int(o.nofollow), o.url) for r, o in links]
        unchanged = [(r.fetched_at, r.elapsed_ms, self.crawl_pass, r.url_id) for r in records if r.unchanged]
        fetched = [r for r in records if not r.unchanged]
        try:
            await db.execute("BEGIN")
            if self.crawl_pass > 1:
                await db.executemany(_KEEP_HISTORY, [(r.url_id, r.status, r.content_hash) for r in fetched])
                await db.executemany("DELETE FROM links WHERE source_id = ?", [(r.url_id,) for r in fetched])
            if unchanged:
                await db.executemany(_UNCHANGED, unchanged)
            await db.executemany(_INSERT_PAGE, _page_rows(fetched, self.keep_bodies, self.crawl_pass))
            await db.executemany("UPDATE urls SET state = 2 WHERE id = ?", [(r.url_id,) for r in records])
            added = 0
            if queued:
                added = (await db.executemany(_UPSERT_URL, queued)).rowcount
            if excluded:
                await db.executemany(_UPSERT_URL, excluded)
            if link_rows:
                await db.executemany(_INSERT_LINK, link_rows)
            hashed = [(r.url_id,) for r in fetched if r.content_hash]
            if hashed:
                await db.executemany(
                    "UPDATE pages SET duplicate_of = (SELECT MIN(p.url_id) FROM pages p "
                    "WHERE p.content_hash = pages.content_hash AND p.url_id < pages.url_id) WHERE url_id = ?",
                    hashed)
            simhashed = [r for r in fetched if r.simhash is not None]
            if simhashed:
                await db.executemany("INSERT OR IGNORE INTO simhash_bands VALUES (?, ?, ?)",
                                     [(i, v, r.url_id) for r in simhashed for i, v in enumerate(bands(r.simhash or 0))])
                await db.executemany(_NEAR_DUPLICATE, [(r.url_id,) for r in simhashed])
            await db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise StorageError(f"cannot write to {self.path}: {exc}") from None
        return max(added, 0)

    async def count_pages(self, crawl_pass: int) -> int:
        """Pages stored by the given pass."""
        rows = list(await self.db.execute_fetchall("SELECT COUNT(*) FROM pages WHERE pass = ?", (crawl_pass,)))
        return int(rows[0][0])

    async def count_pending(self) -> int:
        rows = list(await self.db.execute_fetchall("SELECT COUNT(*) FROM urls WHERE state IN (0, 1)"))
        return int(rows[0][0])


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for stats and export; raise StorageError if it is not a job file."""
    p = Path(path)
    if not p.is_file():
        raise StorageError(f"no job file at {p}")
    try:
        # Not mode=ro: a read-only connection to a WAL database must create the -wal and -shm files
        # and cannot remove them when it closes. query_only keeps this connection from writing.
        conn = sqlite3.connect(p)
        conn.execute("PRAGMA query_only=1")
        conn.execute("PRAGMA busy_timeout=5000")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"cannot open job file {p}: {exc}") from None
    if not {"meta", "urls", "pages"} <= tables:
        conn.close()
        raise StorageError(f"{p} is not a crawler job file")
    return conn
