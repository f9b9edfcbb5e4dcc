"""Several jobs merged into one record per URL: the rule, in one place, for exports and the report.

The winning fetch of a URL is its latest; between two fetches in the same second, the later job's
on the command line. Both readers apply it in SQL (``LATEST_WINS``), merging the jobs in
command-line order into a scratch table keyed by URL:

    exports      ``Winners``: a table of each URL's winning job, attached to each job's connection,
                 so that each job reads its own winners (``JobReader.keyed_records``) and the
                 filters (``--status``, ``--since``) judge the winner, as they judge a single job
    the report   ``report_scratch``: its ``page`` table, one winner a URL with what the page shows

A job is attached read-only, one at a time (``each_job``); a job being crawled is read as it was
committed when its pass began. The scratch file is temporary and vanishes when it closes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from crawler.storage.jobfile import sqlite_errors
from crawler.storage.read import JobReader

# The rule, as the condition of an upsert into ``table`` (``excluded``: the row of the job being
# merged). Jobs are merged in command-line order, so ``>=`` gives a tie to the later job.
LATEST_WINS = "excluded.fetched_at >= {table}.fetched_at"

# What one job's statements are given: its place on the command line.
Statements = Callable[[int], Sequence[tuple[str, Sequence[Any]]]]

_WINNER = """
CREATE TABLE winner (url TEXT PRIMARY KEY, job INTEGER NOT NULL, url_id INTEGER NOT NULL, fetched_at TEXT NOT NULL)
WITHOUT ROWID;
"""
# ``WHERE true`` keeps SQLite's parser from reading ON CONFLICT as part of the join.
_MERGE = f"""
INSERT INTO winner (url, job, url_id, fetched_at)
SELECT u.url, ?, u.id, p.fetched_at FROM job.pages p JOIN job.urls u ON u.id = p.url_id WHERE true
ON CONFLICT (url) DO UPDATE SET job = excluded.job, url_id = excluded.url_id, fetched_at = excluded.fetched_at
 WHERE {LATEST_WINS.format(table='winner')}
"""


def scratch_file(prefix: str) -> tuple[tempfile.TemporaryDirectory[str], Path, sqlite3.Connection]:
    """A temporary folder, the scratch database in it, and a connection to it tuned for a file that
    nobody needs after a crash."""
    folder = tempfile.TemporaryDirectory(prefix=prefix)
    path = Path(folder.name) / "merge.db"
    try:
        with sqlite_errors(path, "create"):
            conn = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}", uri=True, isolation_level=None)
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-16384"):
                conn.execute(f"PRAGMA {pragma}")   # a scratch file: nothing to recover after a crash
    except BaseException:
        folder.cleanup()
        raise
    return folder, path, conn


def each_job(conn: sqlite3.Connection, jobs: Sequence[JobReader], statements: Statements) -> None:
    """Run ``statements(n)`` (SQL and arguments) on ``conn`` with job ``n`` attached as ``job``, in one
    transaction, for every job in order."""
    for n, job in enumerate(jobs):
        with sqlite_errors(job.path, "read"):
            conn.execute("ATTACH DATABASE ? AS job", (job.uri,))
            try:
                conn.execute("BEGIN")
                for sql, args in statements(n):
                    conn.execute(sql, args)
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("DETACH DATABASE job")


class Winners:
    """Which job holds the winning fetch of each URL of ``jobs``, in a scratch file:
    ``with Winners(jobs) as w, w.attached(jobs[0]): jobs[0].keyed_records(..., merged_job=0)``."""

    def __init__(self, jobs: Sequence[JobReader]) -> None:
        self._folder, self.path, self._conn = scratch_file("crawler-export-")
        try:
            with sqlite_errors(self.path, "write"):
                self._conn.executescript(_WINNER)
            each_job(self._conn, jobs, lambda n: [(_MERGE, (n,))])
            with sqlite_errors(self.path, "write"):
                self._conn.execute("CREATE INDEX winner_job ON winner(job, url)")
            self._conn.close()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Winners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        self._folder.cleanup()

    @contextlib.contextmanager
    def attached(self, job: JobReader) -> Iterator[None]:
        """The winners attached to ``job``'s connection as ``merged``, read-only, while the block runs."""
        with sqlite_errors(job.path, "read"):
            job.conn.execute("ATTACH DATABASE ? AS merged", (f"file:{urllib.parse.quote(str(self.path))}?mode=ro",))
        try:
            yield
        finally:
            with sqlite_errors(job.path, "read"):
                job.conn.execute("DETACH DATABASE merged")
