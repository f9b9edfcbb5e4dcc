"""The file of each archived URL in a mirror (``crawler.export.mirror``), in a temporary SQLite file.

A name is given once per URL whose content the mirror holds (a page's final URL: a redirect's
target), in the order the export reads the job; a URL that redirected is an alias of its target's
file. Names are compared case-folded, so two URLs never share a file, on a case-insensitive file
system too: a later name that clashes gets ``~HASH`` (``names.with_hash``). Once every name is in,
``settle`` renames each file whose name is also a folder of another file (``/a`` and ``/a/b``).
On disk (``sqlite3.connect("")``), so a million pages cost disk, not memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_TABLES = """
CREATE TABLE files (
    curl TEXT PRIMARY KEY,           -- the URL whose content the file holds
    name TEXT NOT NULL,              -- its path below the mirror's folder
    folded TEXT NOT NULL UNIQUE,     -- the name as a case-insensitive file system sees it
    owner TEXT NOT NULL,             -- the URL whose stored body is written there
    own INTEGER NOT NULL             -- whether the owner is that URL itself (not a redirect to it)
);
CREATE INDEX files_owner ON files(owner);
CREATE TABLE aliases (url TEXT PRIMARY KEY, curl TEXT NOT NULL) WITHOUT ROWID;
"""
_NAME = ("SELECT name FROM files WHERE curl = ?1 UNION ALL "
         "SELECT f.name FROM aliases a JOIN files f ON f.curl = a.curl WHERE a.url = ?1 LIMIT 1")
# A file whose folded name is a folder of another name: some name starts with it and "/" ("/" < "0").
_FOLDERS = ("SELECT curl, name FROM files f WHERE EXISTS (SELECT 1 FROM files g "
            "WHERE g.folded >= f.folded || '/' AND g.folded < f.folded || '0')")


class MirrorIndex:
    """``add`` each archived URL, ``settle``, then ``name`` and ``owned`` answer for the writer."""

    def __init__(self, name_of: Callable[[str, str | None], str], fold: Callable[[str], str],
                 with_hash: Callable[[str, str, int], str]) -> None:
        self.name_of, self.fold, self.with_hash = name_of, fold, with_hash
        self.conn = sqlite3.connect("", isolation_level=None)
        self.conn.execute("PRAGMA cache_size=-2048")   # 2 MiB: the index stays small in memory
        self.conn.executescript(_TABLES)
        self.conn.execute("BEGIN")

    def __enter__(self) -> MirrorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def add(self, url: str, curl: str, media_type: str | None) -> None:
        """``url`` was stored with the content of ``curl`` (itself, or where it redirected)."""
        if url != curl:
            self.conn.execute("INSERT OR IGNORE INTO aliases VALUES (?, ?)", (url, curl))
        row = self.conn.execute("SELECT own FROM files WHERE curl = ?", (curl,)).fetchone()
        if row is not None:
            if url == curl and not row[0]:   # the target's own fetch beats a redirect's copy of it
                self.conn.execute("UPDATE files SET owner = ?, own = 1 WHERE curl = ?", (url, curl))
            return
        self.conn.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                          (curl, *self._free(self.name_of(curl, media_type), curl), url, int(url == curl)))

    def _free(self, name: str, curl: str) -> tuple[str, str]:
        salt = 0
        while self.conn.execute("SELECT 1 FROM files WHERE folded = ?", (self.fold(name),)).fetchone():
            name = self.with_hash(name, curl, salt)
            salt += 1
        return name, self.fold(name)

    def settle(self) -> None:
        """Rename each file whose name is also a folder (a few rounds: a new name is one more chance)."""
        for _ in range(5):
            clashes = self.conn.execute(_FOLDERS).fetchall()
            if not clashes:
                break
            for curl, name in clashes:
                self.conn.execute("UPDATE files SET name = ?, folded = ? WHERE curl = ?",
                                  (*self._free(self.with_hash(name, curl, 0), curl), curl))
        self.conn.execute("COMMIT")

    def name(self, url: str) -> str | None:
        """The file of ``url``'s content (or of where it redirected), or None: not archived."""
        row = self.conn.execute(_NAME, (url,)).fetchone()
        return None if row is None else str(row[0])

    def owned(self, url: str) -> str | None:
        """The file that ``url``'s stored body is written to, or None: another URL's body is."""
        row = self.conn.execute("SELECT name FROM files WHERE owner = ?", (url,)).fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0])
