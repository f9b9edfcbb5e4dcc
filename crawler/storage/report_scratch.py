"""The scratch database behind ``crawler report``: one job file or several, merged.

A temporary SQLite file that vanishes when it closes, filled in a few passes over each job, one
job attached at a time, read-only:

    fetch       the winning fetch of every URL (``merge.LATEST_WINS``, the rule exports merge by),
                with what the report shows of it: pages, link targets checked and page requisites
                (rendering by a browser included)
    page        a view of the fetches that are pages (what every page count and list reads)
    broken      the fetches whose URL answered 4xx or 5xx, or got no answer at all
    ref         every link to a broken page from the winning fetch of its source, with its anchor
    excluded    URLs never fetched, with their exclusion code (one row a URL over all the jobs)
    queued      URLs pending or leased in a job and fetched in none
    host_state  the frontier's word on each host (parked wins over budget, budget over active)
    seed        the URLs at depth 0
    coverage_types, coverage_fields
                what extraction matched on the winning fetches, counted in each job
                (``extracted_read.coverage_queries``), to be summed

Every query of the report (``report_queries``) reads this file, so nothing grows in memory with the
job: SQLite sorts and groups on disk. A job that is being crawled is read as it was committed when
each pass began.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crawler.storage.extracted_read import coverage_queries
from crawler.storage.jobfile import sqlite_errors
from crawler.storage.merge import LATEST_WINS, each_job, scratch_file
from crawler.storage.read import JobReader
from crawler.storage.schema import EXCLUDED, LEASED, PENDING

# Error codes that are a decision, not a failure: the crawler chose not to fetch or not to keep the
# page, so a link to it is not broken (robots_unavailable: its robots.txt answered 5xx, RFC 9309 keeps
# us off). Any other error without a response is a failed target: a host not reached above all
# (connect, dns, tls, timeout), even where it was its robots.txt that could not be fetched.
NOT_FAILURES = ("robots_disallowed", "robots_unavailable", "out_of_scope", "blocked_scheme", "too_large",
                "header_too_large")
_BROKEN = f"status >= 400 OR (status IS NULL AND error IS NOT NULL AND error NOT IN ({', '.join(map(repr, NOT_FAILURES))}))"

# A number column of ``page``: a job's value that is no number (a damaged file) fails the merge, in one line.
_NUMBER = "INTEGER CONSTRAINT \"a page's {0} is not a number\" CHECK (typeof({0}) IN ('integer', 'null'))"
_SCRATCH = f"""
CREATE TABLE fetch (
    url TEXT PRIMARY KEY, job INTEGER NOT NULL, url_id INTEGER NOT NULL, host TEXT NOT NULL,
    depth {_NUMBER.format('depth')} NOT NULL, status {_NUMBER.format('status')}, error TEXT, error_message TEXT,
    elapsed_ms {_NUMBER.format('elapsed_ms')}, bytes {_NUMBER.format('bytes')},
    fetched_at TEXT NOT NULL, at INTEGER NOT NULL,   -- at: fetched_at in seconds since the epoch
    final_url TEXT, content_type TEXT, title TEXT, content_hash TEXT, simhash INTEGER, near_duplicate_of TEXT,
    fetched_as TEXT,                                 -- check, requisite (NULL: a page)
    rendered TEXT, render_blocked INTEGER, render_blocks TEXT   -- --render: why, requests refused (how many, by why)
);
CREATE VIEW page AS SELECT * FROM fetch WHERE fetched_as IS NULL;
CREATE TABLE ref (target TEXT NOT NULL, source TEXT NOT NULL, anchor TEXT, kind TEXT,  -- kind: NULL for a page link
                  PRIMARY KEY (target, source)) WITHOUT ROWID;
CREATE TABLE excluded (url TEXT PRIMARY KEY, host TEXT NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE queued (url TEXT PRIMARY KEY, host TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE host_state (host TEXT PRIMARY KEY, state TEXT, until TEXT, error TEXT) WITHOUT ROWID;
CREATE TABLE seed (url TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE coverage_types (page_type TEXT, pages INTEGER, extract_missing INTEGER, extract_failed INTEGER);
CREATE TABLE coverage_fields (page_type TEXT, field TEXT, pages INTEGER, empty INTEGER, bad_type INTEGER, place INTEGER);
"""
# Coverage of a job's winning fetches (``page``, the job numbered ?1).
_COVERAGE_TYPES, _COVERAGE_FIELDS = coverage_queries("job.extracted", "page", " AND p.job = ?1")
_PAGE_COLUMNS = ("job", "url_id", "host", "depth", "status", "error", "error_message", "elapsed_ms", "bytes", "fetched_at",
                 "at", "final_url", "content_type", "title", "content_hash", "simhash", "near_duplicate_of", "fetched_as",
                 "rendered", "render_blocked", "render_blocks")
# ``WHERE true`` keeps SQLite's parser from reading ON CONFLICT as part of the join.
_MERGE_PAGES = f"""
INSERT INTO fetch (url, {', '.join(_PAGE_COLUMNS)})
SELECT u.url, ?, u.id, u.host, u.depth, p.status, p.error, p.error_message, p.elapsed_ms, p.bytes,
       p.fetched_at, CAST(strftime('%s', p.fetched_at) AS INTEGER),
       p.final_url, p.content_type, p.title, p.content_hash, p.simhash,
       (SELECT n.url FROM job.urls n WHERE n.id = p.near_duplicate_of), p.fetched_as, p.rendered, p.render_blocked,
       p.render_blocks
  FROM job.pages p JOIN job.urls u ON u.id = p.url_id WHERE true
ON CONFLICT (url) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _PAGE_COLUMNS)}
 WHERE {LATEST_WINS.format(table='fetch')}
"""
# The links of a job whose target is broken and whose source's winning fetch is this job's. The
# links table has no index by target: CROSS JOIN keeps it the outer loop (one scan), each row
# probing the small broken table, instead of one scan of the links per broken page.
_REFERRERS = """
INSERT OR IGNORE INTO ref (target, source, anchor, kind)
SELECT l.target, su.url, l.anchor, l.kind
  FROM job.links l CROSS JOIN broken b ON b.url = l.target
  CROSS JOIN job.urls su ON su.id = l.source_id
  CROSS JOIN fetch sp ON sp.url = su.url AND sp.job = ?
"""
_EXCLUDED = f"""
INSERT OR IGNORE INTO excluded (url, host, reason)
SELECT u.url, u.host, COALESCE(u.exclusion, 'unknown') FROM job.urls u
 WHERE u.state = {EXCLUDED} AND NOT EXISTS (SELECT 1 FROM fetch WHERE fetch.url = u.url)
"""
_QUEUED = f"""
INSERT OR IGNORE INTO queued (url, host)
SELECT u.url, u.host FROM job.urls u
 WHERE u.state IN ({PENDING}, {LEASED}) AND NOT EXISTS (SELECT 1 FROM fetch WHERE fetch.url = u.url)
"""
_RANK = "CASE {} WHEN 'parked' THEN 2 WHEN 'budget' THEN 1 ELSE 0 END"
_HOST_STATE = f"""
INSERT INTO host_state (host, state, until, error) SELECT host, state, until, error FROM job.hosts WHERE true
ON CONFLICT (host) DO UPDATE SET state = excluded.state, until = excluded.until, error = excluded.error
 WHERE {_RANK.format('excluded.state')} > {_RANK.format('host_state.state')}
"""
_INDEXES = """
CREATE INDEX page_host ON fetch(host, elapsed_ms);
CREATE INDEX page_hash ON fetch(content_hash) WHERE content_hash IS NOT NULL;
CREATE INDEX excluded_reason ON excluded(reason, url);
CREATE INDEX queued_host ON queued(host);
"""


class MergedJobs:
    """The jobs at ``paths`` (a path named twice is read once) merged into a scratch file: ``jobs``
    their readers, ``all`` and ``one`` its queries. StorageError if a job file is missing or broken."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.jobs: list[JobReader] = []
        try:
            for path in dict.fromkeys(Path(p).resolve() for p in paths):
                self.jobs.append(JobReader(path))   # checks, migrates, and keeps the -wal and -shm files
            self._scratch, self.path, self.conn = scratch_file("crawler-report-")
            self._build()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if hasattr(self, "conn"):
            self.conn.close()
            self._scratch.cleanup()
        for job in self.jobs:
            job.conn.close()

    def _build(self) -> None:
        """Fill the scratch tables: every job's pages first (so that the winners are known), then
        what depends on the winners: broken pages, their referrers, exclusions, the queue."""
        with sqlite_errors(self.path, "write"):
            self.conn.executescript(_SCRATCH)
        each_job(self.conn, self.jobs, lambda n: [(_MERGE_PAGES, (n,))])
        with sqlite_errors(self.path, "write"):
            self.conn.execute(f"CREATE TABLE broken AS SELECT url FROM fetch WHERE {_BROKEN}")
            self.conn.execute("CREATE UNIQUE INDEX broken_url ON broken(url)")
        each_job(self.conn, self.jobs, lambda n: [
            (_REFERRERS, (n,)), (_EXCLUDED, ()), (_QUEUED, ()), (_HOST_STATE, ()),
            ("INSERT OR IGNORE INTO seed SELECT url FROM job.urls WHERE depth = 0", ()),
            (f"INSERT INTO coverage_types {_COVERAGE_TYPES}", (n,)), (f"INSERT INTO coverage_fields {_COVERAGE_FIELDS}", (n,))])
        with sqlite_errors(self.path, "write"):
            self.conn.executescript(_INDEXES)

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with sqlite_errors(self.path, "read"):
            return self.conn.execute(sql, args).fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.all(sql, args)[0][0]
