"""The payloads a WARC export has written so far (``crawler.export.warc``'s ``revisit`` records)."""

from __future__ import annotations

import sqlite3


class PayloadIndex:
    """The payloads a WARC export has written so far, by content hash: where and when each was
    archived and its payload digest, for the ``revisit`` records of later copies. A temporary
    SQLite file (``sqlite3.connect("")``), so that a million pages cost disk, not memory."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect("", isolation_level=None)
        self.conn.execute("PRAGMA cache_size=-2048")   # 2 MiB: the index stays small in memory
        self.conn.execute("CREATE TABLE seen (hash TEXT PRIMARY KEY, uri TEXT, date TEXT, digest TEXT) WITHOUT ROWID")

    def __enter__(self) -> PayloadIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def get(self, content_hash: str) -> tuple[str, str, str] | None:
        """``(uri, date, payload digest)`` of the first archived copy, or None."""
        row = self.conn.execute("SELECT uri, date, digest FROM seen WHERE hash = ?", (content_hash,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def add(self, content_hash: str, uri: str, date: str, digest: str) -> None:
        self.conn.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)", (content_hash, uri, date, digest))
