"""The job file, open for crawling: its lock, its one connection, and the one boundary for SQLite errors.

Every statement a crawl runs on the job file goes through ``JobFile``: ``transaction()`` for writes
(one asyncio lock, so the writer's batch and the dispatcher's lease never interleave inside one
transaction), ``fetchall()`` for reads. Both translate ``sqlite3.Error`` into ``StorageError`` in
``sqlite_errors``, the only place that does, after rolling back whatever was open: a full disk is
one line for the user and a job file that is intact (as httpx's ``map_httpcore_exceptions`` does
for transport errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from crawler.errors import CrawlError, JobLocked, StorageError
from crawler.extract import hamming
from crawler.storage.schema import PRAGMAS, prepare, version_of


@contextlib.contextmanager
def sqlite_errors(path: Path, doing: str) -> Iterator[None]:
    """Translate ``sqlite3.Error`` raised inside into ``StorageError`` (or ``JobLocked``)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, path, doing) from None


def translate(exc: sqlite3.Error, path: Path, doing: str) -> CrawlError:
    """The one message for a SQLite failure: what we were doing, which file, what SQLite said."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return JobLocked(f"job file {path} is locked by another program")
    if "disk is full" in text or "disk I/O error" in text:
        # SQLite rolled the transaction back: the file holds every commit before it.
        return StorageError(f"cannot {doing} job file {path}: {text}; the job is intact: make room "
                            "(or copy it with its -wal file to a larger disk) and run the same command to resume")
    if isinstance(exc, sqlite3.IntegrityError) and doing == "read":
        # A read copies the job's rows into a typed scratch table (the report): a row that breaks its
        # constraints holds what no crawler wrote.
        return StorageError(f"{path} is a damaged job file: {text.removeprefix('CHECK constraint failed: ')}")
    return StorageError(f"cannot {doing} job file {path}: {text}")


def meta_value(path: Path, key: str, text: Any) -> Any:
    """A value of the job's ``meta`` table (stored as JSON); StorageError for one no crawler wrote."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise StorageError(f"{path} is a damaged job file: its {key} is {text!r}, not a stored value") from None


def _sql_hamming(a: int | None, b: int | None) -> int:
    return 64 if a is None or b is None else hamming(a & (2**64 - 1), b & (2**64 - 1))


class JobLock:
    """One job, one process: an exclusive ``flock`` on ``DB.lock``, released by the kernel when the
    holder dies, so a stale lock from a killed crawler never blocks a resume.

    The holder deletes ``DB.lock`` when it releases the lock, while it still holds it, so that no
    lock file is left beside a job (or beside a file refused as no job). That is safe because a
    process that wins the ``flock`` then checks that the path still names the file it locked: one
    that opened the file just before the holder deleted it wins a lock on a file nobody else can
    reach, sees that, and tries again on the path's new file."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        while (fd := self._try_acquire()) is None:
            pass   # the file we locked had been deleted by its last holder: lock the path's new one
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            pass  # the pid is only a courtesy for the message above; the flock is what locks
        self._fd = fd

    def _try_acquire(self) -> int | None:
        """The descriptor of the locked lock file; None when it is no longer the file at the path."""
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
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        locked = os.fstat(fd)
        if current is None or (current.st_dev, current.st_ino) != (locked.st_dev, locked.st_ino):
            os.close(fd)
            return None
        return fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):   # gone already, or a read-only folder: the flock still goes
                os.unlink(self.path)
            os.close(self._fd)
            self._fd = None


class JobFile:
    """The job file, open for crawling: ``async with JobFile(path) as job``. A new file is a new job.

    ``exclusive=False`` opens it beside a crawl that may be live (``crawler add`` queueing seeds):
    without the job lock, since SQLite's own locking serializes the two writers (every write is a
    ``BEGIN IMMEDIATE`` transaction, and ``busy_timeout`` waits out the other's), and without the
    closing checkpoint, which would wait on the live writer and is the crawl's to do."""

    def __init__(self, path: str | Path, *, exclusive: bool = True) -> None:
        self.path = Path(path)
        self.exclusive = exclusive
        self._lock = JobLock(self.path)
        self._db: aiosqlite.Connection | None = None
        self._writing = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None   # the task whose transaction is open
        self._data_version: int | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        assert self._db is not None, "JobFile used outside its async with"
        return self._db

    async def __aenter__(self) -> JobFile:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of {self.path}: {exc.strerror}") from None
        if self.exclusive:
            self._lock.acquire()
        try:
            with sqlite_errors(self.path, "open"):
                self._prepare()
                self._db = await aiosqlite.connect(self.path, isolation_level=None)
                for pragma in PRAGMAS:
                    await self._db.execute(pragma)
                await self._db.create_function("hamming", 2, _sql_hamming, deterministic=True)
        except BaseException:
            await self._close_quietly()
            self._lock.release()
            raise
        return self

    def _prepare(self) -> None:
        """Create or migrate the schema with a short-lived plain connection, before the crawl's own."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            version_of(conn, self.path)   # a file that is no job is refused before anything is written
            for pragma in PRAGMAS:
                conn.execute(pragma)
            prepare(conn, self.path, create=True)
        finally:
            conn.close()

    async def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                await self._db.close()
            except sqlite3.Error:
                pass  # closing rolls back what was open; SQLite keeps the file consistent either way
            finally:
                self._db = None

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            if self._db is not None and self.exclusive:
                # Fold the WAL into the main file, so that the job is one file again. Best effort:
                # where this fails (a full disk), the WAL keeps every commit and SQLite replays it
                # on the next open, so nothing is lost by going on without it.
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await self._close_quietly()
            self._lock.release()

    # -- the two ways in -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self, doing: str = "write to") -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: commit on success, roll back on any failure or cancellation.

        Re-entrant within a task: a transaction opened inside another one of the same task joins
        it (no BEGIN, no COMMIT of its own), so that steps which stand alone against a remote
        frontier commit together when everything lives in the job file."""
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            yield self.db
            return
        async with self._writing:
            db = self.db
            self._owner = task
            try:
                with sqlite_errors(self.path, doing):
                    await db.execute("BEGIN IMMEDIATE")
                    yield db
                    await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await db.execute("ROLLBACK")
                raise
            finally:
                self._owner = None

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        """Rows of one read statement."""
        with sqlite_errors(self.path, "read"):
            return list(await self.db.execute_fetchall(sql, tuple(args)))

    async def changed_elsewhere(self) -> bool:
        """Whether another connection (``crawler add``) committed to the job file since the last
        call. ``PRAGMA data_version`` changes with every commit but this connection's own."""
        version = (await self.fetchall("PRAGMA data_version"))[0][0]
        changed = self._data_version is not None and version != self._data_version
        self._data_version = version
        return bool(changed)

    # -- job metadata ---------------------------------------------------------------------------

    async def get_meta(self, key: str) -> Any:
        rows = await self.fetchall("SELECT value FROM meta WHERE key = ?", (key,))
        return meta_value(self.path, key, rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: Any) -> None:
        async with self.transaction() as db:
            await db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
