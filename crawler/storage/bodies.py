"""Bodies too big to hold in memory, stored in the job file in pieces, and every stored body read
back through one function.

A non-HTML body past ``crawler.spool.SPILL`` (1 MiB) is streamed by the fetcher to a file beside
the job file (``crawl.db.spool/``); the writer copies it into the ``bodies`` table in pieces of
``PIECE`` bytes, in the page's transaction, and deletes the file. Pages and small bodies stay in
``pages.body``, zlib-compressed, as before.

Why the job file and not a content-addressed folder beside it (measured on a 100 MB file, this
machine, a shared 2-core VM with its disk cached): the copy into the job file takes the writer
0.44 s (1 MiB pieces; 0.51 s in 256 KiB pieces), a checkpoint 0.05 s more, and reading it back with
its SHA-256 0.13 s; renaming the spooled file into a folder would take 0.03 s and read back in
0.07 s. Against that small cost the job file keeps what the crawler relies on: a job is one file,
which can be copied, merged and exported alone; a page and its body commit in one transaction, so
a crash leaves neither a page without its body nor a file that no page names, and a recrawl
replaces both at once. The price is paid where it is cheap: in the writer's thread, off the event
loop, while the fetches go on. (A folder would be the better choice for a crawl of many
gigabytes of files: its bodies would be written once instead of twice, WAL then database.)

    bodies   url_id, seq (from 0), data: up to PIECE bytes of the body as received (after
             Content-Encoding), not compressed (the big bodies are mostly PDF, images, video,
             archives: compressed already)

``body_chunks`` reads any stored body (a page's or a file's) in order, and ``BodyStream`` wraps it
as a file for writers that want one (warcio).
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator

import aiosqlite

from crawler.models import PageRecord
from crawler.storage.schema import CACHE_SIZE

PIECE = 1024 * 1024
PIECE_CACHE_KIB = 2048   # the page cache while pieces are written (see small_cache)

STORE = "INSERT INTO bodies (url_id, seq, data) VALUES (?, ?, ?)"
FORGET = "DELETE FROM bodies WHERE url_id = ?"


@contextlib.asynccontextmanager
async def small_cache(db: aiosqlite.Connection) -> AsyncIterator[None]:
    """The job file's page cache held small while pieces pass through it: a file's pages would
    otherwise fill all of it (16 MiB) with pages no query reads again, and SQLite spills the
    transaction's pages to the WAL as the small cache fills."""
    await db.execute(f"PRAGMA cache_size=-{PIECE_CACHE_KIB}")
    try:
        yield
    finally:
        await db.execute(CACHE_SIZE)


def spooled(records: Iterable[PageRecord]) -> list[PageRecord]:
    """The records whose body waits in a spooled file."""
    return [r for r in records if r.spooled is not None and r.spooled.path is not None]


def piece_rows(records: Iterable[PageRecord]) -> Iterator[tuple[int, int, bytes]]:
    """Rows of ``bodies`` read from the records' spooled files, a piece at a time (a generator:
    the reads run in the writer's thread, and memory holds one piece)."""
    for record in records:
        path = record.spooled.path if record.spooled is not None else None
        if path is not None:
            with open(path, "rb") as file:
                for seq, data in enumerate(iter(lambda: file.read(PIECE), b"")):
                    yield record.url_id, seq, data


def remove_spooled(records: Iterable[PageRecord]) -> None:
    """Delete the spooled files of records now stored."""
    for record in records:
        if record.spooled is not None and record.spooled.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(record.spooled.path)


def body_chunks(conn: sqlite3.Connection, url_id: int) -> Iterator[bytes]:
    """The stored body of the page ``url_id`` as it was received (after Content-Encoding; a
    rendered page's HTTP body, not its DOM), in order, in pieces of at most a few MiB: the one way
    to read any stored body, a page's or a file's. Yields nothing when none is stored (an
    unfetched URL, ``--no-bodies``, an empty body)."""
    row = conn.execute("SELECT COALESCE(response_body, body) FROM pages WHERE url_id = ?", (url_id,)).fetchone()
    if row is not None and row[0] is not None:
        yield zlib.decompress(row[0])
        return
    for (data,) in conn.execute("SELECT data FROM bodies WHERE url_id = ? ORDER BY seq", (url_id,)):
        yield data


class BodyStream(io.RawIOBase):
    """A stored body as a read-only file that can be rewound (``seek(0)``) and read again: what
    warcio wants of a payload to digest it and then write it, without a temporary copy."""

    def __init__(self, conn: sqlite3.Connection, url_id: int) -> None:
        self._conn, self._url_id = conn, url_id
        self._rewind()

    def _rewind(self) -> None:
        self._chunks = body_chunks(self._conn, self._url_id)
        self._buffer, self._offset, self._position = b"", 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET) and not (whence == io.SEEK_SET and offset == self._position):
            raise io.UnsupportedOperation("a stored body rewinds to its start only")
        if offset == 0:
            self._rewind()
        return self._position

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]  # RawIOBase's Buffer
        while self._offset >= len(self._buffer):
            piece = next(self._chunks, None)
            if piece is None:
                return 0
            self._buffer, self._offset = piece, 0
        n = min(len(buffer), len(self._buffer) - self._offset)
        buffer[:n] = self._buffer[self._offset:self._offset + n]
        self._offset += n
        self._position += n
        return n
