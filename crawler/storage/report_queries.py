"""Named queries behind ``crawler report``, over one job file or several merged.

The report's numbers come from a scratch database (a temporary SQLite file that vanishes when the
reader closes), filled in a few passes over each job, one job attached at a time, read-only:

    page        the winning fetch of every URL: the latest, and between two fetches in the same
                second the later job on the command line (as exports merge), with what the report
                shows of it
    broken      the pages whose URL answered 4xx or 5xx, or got no answer at all
    ref         every link to a broken page from the winning fetch of its source, with its anchor
    excluded    URLs never fetched, with their exclusion code (one row a URL over all the jobs)
    queued      URLs pending or leased in a job and fetched in none
    host_state  the frontier's word on each host (parked wins over budget, budget over active)
    seed        the URLs at depth 0

Every other query reads the scratch file, so nothing grows in memory with the job: SQLite sorts and
groups on disk, and each query returns at most its limit of rows. A job that is being crawled is
read as it was committed when each pass began.
"""

from __future__ import annotations

import sqlite3
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from crawler.storage.jobfile import sqlite_errors
from crawler.storage.read import JobReader, _host_state
from crawler.storage.schema import EXCLUDED, HOST_BUDGET, LEASED, PENDING

T = TypeVar("T")

# Error codes that are a decision, not a failure: the crawler chose not to fetch or not to keep the
# page, so a link to it is not broken (robots_unavailable: its robots.txt answered 5xx, RFC 9309 keeps
# us off). Any other error without a response is a failed target: a host not reached above all
# (connect, dns, tls, timeout), even where it was its robots.txt that could not be fetched.
NOT_FAILURES = ("robots_disallowed", "robots_unavailable", "out_of_scope", "blocked_scheme", "too_large",
                "header_too_large")
_BROKEN = f"status >= 400 OR (status IS NULL AND error IS NOT NULL AND error NOT IN ({', '.join(map(repr, NOT_FAILURES))}))"
# Depths from this one on share the depth histogram's last bar.
DEPTH_CAP = 50

# A number column of ``page``: a job's value that is no number (a damaged file) fails the merge, in one line.
_NUMBER = "INTEGER CONSTRAINT \"a page's {0} is not a number\" CHECK (typeof({0}) IN ('integer', 'null'))"
_SCRATCH = f"""
CREATE TABLE page (
    url TEXT PRIMARY KEY, job INTEGER NOT NULL, url_id INTEGER NOT NULL, host TEXT NOT NULL,
    depth {_NUMBER.format('depth')} NOT NULL, status {_NUMBER.format('status')}, error TEXT, error_message TEXT,
    elapsed_ms {_NUMBER.format('elapsed_ms')}, bytes {_NUMBER.format('bytes')},
    fetched_at TEXT NOT NULL, at INTEGER NOT NULL,   -- at: fetched_at in seconds since the epoch
    final_url TEXT, content_type TEXT, title TEXT, content_hash TEXT, simhash INTEGER, near_duplicate_of TEXT
);
CREATE TABLE ref (target TEXT NOT NULL, source TEXT NOT NULL, anchor TEXT, PRIMARY KEY (target, source)) WITHOUT ROWID;
CREATE TABLE excluded (url TEXT PRIMARY KEY, host TEXT NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE queued (url TEXT PRIMARY KEY, host TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE host_state (host TEXT PRIMARY KEY, state TEXT, until TEXT, error TEXT) WITHOUT ROWID;
CREATE TABLE seed (url TEXT PRIMARY KEY) WITHOUT ROWID;
"""
_PAGE_COLUMNS = ("job", "url_id", "host", "depth", "status", "error", "error_message", "elapsed_ms", "bytes", "fetched_at",
                 "at", "final_url", "content_type", "title", "content_hash", "simhash", "near_duplicate_of")
# ``WHERE true`` keeps SQLite's parser from reading ON CONFLICT as part of the join.
_MERGE_PAGES = f"""
INSERT INTO page (url, {', '.join(_PAGE_COLUMNS)})
SELECT u.url, ?, u.id, u.host, u.depth, p.status, p.error, p.error_message, p.elapsed_ms, p.bytes,
       p.fetched_at, CAST(strftime('%s', p.fetched_at) AS INTEGER),
       p.final_url, p.content_type, p.title, p.content_hash, p.simhash,
       (SELECT n.url FROM job.urls n WHERE n.id = p.near_duplicate_of)
  FROM job.pages p JOIN job.urls u ON u.id = p.url_id WHERE true
ON CONFLICT (url) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _PAGE_COLUMNS)}
 WHERE excluded.fetched_at >= page.fetched_at
"""
# The links of a job whose target is broken and whose source's winning fetch is this job's. The
# links table has no index by target: CROSS JOIN keeps it the outer loop (one scan), each row
# probing the small broken table, instead of one scan of the links per broken page.
_REFERRERS = """
INSERT OR IGNORE INTO ref (target, source, anchor)
SELECT l.target, su.url, l.anchor
  FROM job.links l CROSS JOIN broken b ON b.url = l.target
  CROSS JOIN job.urls su ON su.id = l.source_id
  CROSS JOIN page sp ON sp.url = su.url AND sp.job = ?
"""
_EXCLUDED = f"""
INSERT OR IGNORE INTO excluded (url, host, reason)
SELECT u.url, u.host, COALESCE(u.exclusion, 'unknown') FROM job.urls u
 WHERE u.state = {EXCLUDED} AND NOT EXISTS (SELECT 1 FROM page WHERE page.url = u.url)
"""
_QUEUED = f"""
INSERT OR IGNORE INTO queued (url, host)
SELECT u.url, u.host FROM job.urls u
 WHERE u.state IN ({PENDING}, {LEASED}) AND NOT EXISTS (SELECT 1 FROM page WHERE page.url = u.url)
"""
_RANK = "CASE {} WHEN 'parked' THEN 2 WHEN 'budget' THEN 1 ELSE 0 END"
_HOST_STATE = f"""
INSERT INTO host_state (host, state, until, error) SELECT host, state, until, error FROM job.hosts WHERE true
ON CONFLICT (host) DO UPDATE SET state = excluded.state, until = excluded.until, error = excluded.error
 WHERE {_RANK.format('excluded.state')} > {_RANK.format('host_state.state')}
"""
_INDEXES = """
CREATE INDEX page_host ON page(host, elapsed_ms);
CREATE INDEX page_hash ON page(content_hash) WHERE content_hash IS NOT NULL;
CREATE INDEX excluded_reason ON excluded(reason, url);
CREATE INDEX queued_host ON queued(host);
"""
# Hosts: those with a URL fetched or to fetch (as ``JobReader.hosts`` counts them), most pages first.
_HOSTS = f"""
WITH fetched AS (SELECT host, COUNT(*) AS pages, COUNT(error) AS errors FROM page GROUP BY host),
     waiting AS (SELECT host, COUNT(*) AS queued FROM queued GROUP BY host),
     budget AS (SELECT host, COUNT(*) AS over FROM excluded WHERE reason = '{HOST_BUDGET}' GROUP BY host),
     hosts AS (SELECT host FROM fetched UNION SELECT host FROM waiting)
SELECT h.host, COALESCE(f.pages, 0), COALESCE(f.errors, 0), COALESCE(w.queued, 0), COALESCE(b.over, 0),
       s.state, s.until, s.error
  FROM hosts h LEFT JOIN fetched f ON f.host = h.host LEFT JOIN waiting w ON w.host = h.host
  LEFT JOIN budget b ON b.host = h.host LEFT JOIN host_state s ON s.host = h.host
 ORDER BY 2 DESC, h.host LIMIT ?
"""
# Latency percentiles by nearest rank: the p-th of n sorted values is the one at rank ceil(p * n / 100).
_PERCENTILES = """
WITH ranked AS (
    SELECT host, elapsed_ms, ROW_NUMBER() OVER (PARTITION BY host ORDER BY elapsed_ms) AS r,
           COUNT(*) OVER (PARTITION BY host) AS n
      FROM page WHERE elapsed_ms IS NOT NULL AND host IN ({})
)
SELECT host, MAX(CASE WHEN r = (n * 50 + 99) / 100 THEN elapsed_ms END),
             MAX(CASE WHEN r = (n * 95 + 99) / 100 THEN elapsed_ms END)
  FROM ranked GROUP BY host
"""


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """The first rows of a long list, and how many it has in all."""

    rows: list[T]
    total: int

    @property
    def left_out(self) -> int:
        return self.total - len(self.rows)


class JobInfo(NamedTuple):
    """One job file as the report's first section shows it."""

    path: str
    state: str
    crawl_pass: int
    pages: int
    queued: int
    excluded: int
    links: int
    first_fetch: str | None
    last_fetch: str | None
    settings: dict[str, Any]
    this_pass: dict[str, int]


class Totals(NamedTuple):
    """The merged set at a glance; ``first`` and ``last`` are fetch times in seconds since the epoch."""

    pages: int
    errors: int
    bytes: int
    hosts: int
    first: int | None
    last: int | None
    queued: int
    excluded: int


class Timeline(NamedTuple):
    """Fetches in buckets of ``width`` seconds from ``start``: ``(pages, errors)`` of each bucket, every
    bucket present (an idle stretch is a run of zeros)."""

    start: int
    width: int
    buckets: list[tuple[int, int]]


class DepthRow(NamedTuple):
    """Pages at one depth by status class (``depth`` DEPTH_CAP stands for that depth and deeper)."""

    depth: int
    ok: int          # 1xx and 2xx
    redirect: int    # 3xx left as the answer (a 304, or redirects not followed)
    client: int      # 4xx
    server: int      # 5xx
    failed: int      # no response


class ErrorRow(NamedTuple):
    code: str
    pages: int
    example_url: str
    example_message: str | None


class HostRow(NamedTuple):
    host: str
    pages: int
    errors: int
    queued: int
    median_ms: int | None
    p95_ms: int | None
    state: str
    parked_until: str | None
    parked_error: str | None


class BrokenLink(NamedTuple):
    """A broken target, what it answered, how many pages link to it and the first of them with the
    link's anchor text."""

    url: str
    status: int | None
    error: str | None
    referrers: int
    linked_from: list[tuple[str, str | None]]


class Redirect(NamedTuple):
    url: str
    final_url: str
    status: int | None


class Destination(NamedTuple):
    """Where redirects end: the final URL, how many URLs redirect there, and what it answered."""

    final_url: str
    urls: int
    status: int | None


class DuplicateGroup(NamedTuple):
    content_hash: str
    pages: int
    urls: list[str]


class Exclusion(NamedTuple):
    reason: str
    urls: int
    examples: list[str]


class PageRow(NamedTuple):
    url: str
    status: int | None
    elapsed_ms: int | None
    bytes: int | None
    content_type: str | None
    title: str | None


class ReportReader:
    """The report's named queries over the jobs at ``paths`` merged (a path named twice is read once):
    ``with ReportReader([a, b]) as r: r.totals()``. StorageError if a job file is missing or broken."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self._jobs: list[JobReader] = []
        self._scratch = tempfile.TemporaryDirectory(prefix="crawler-report-")
        self.path = Path(self._scratch.name) / "report.db"
        try:
            for path in dict.fromkeys(Path(p).resolve() for p in paths):
                self._jobs.append(JobReader(path))   # checks, migrates, and keeps the -wal and -shm files
            with sqlite_errors(self.path, "create"):
                self.conn = sqlite3.connect(f"file:{urllib.parse.quote(str(self.path))}", uri=True, isolation_level=None)
            self._build()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ReportReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if hasattr(self, "conn"):
            self.conn.close()
        for job in self._jobs:
            job.conn.close()
        self._scratch.cleanup()

    def _build(self) -> None:
        """Fill the scratch tables: every job's pages first (so that the winners are known), then
        what depends on the winners: broken pages, their referrers, exclusions, the queue."""
        with sqlite_errors(self.path, "write"):
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-16384"):
                self.conn.execute(f"PRAGMA {pragma}")   # a scratch file: nothing to recover after a crash
            self.conn.executescript(_SCRATCH)
        self._each_job(lambda n: [(_MERGE_PAGES, (n,))])
        with sqlite_errors(self.path, "write"):
            self.conn.execute(f"CREATE TABLE broken AS SELECT url FROM page WHERE {_BROKEN}")
            self.conn.execute("CREATE UNIQUE INDEX broken_url ON broken(url)")
        self._each_job(lambda n: [(_REFERRERS, (n,)), (_EXCLUDED, ()), (_QUEUED, ()), (_HOST_STATE, ()),
                                  ("INSERT OR IGNORE INTO seed SELECT url FROM job.urls WHERE depth = 0", ())])
        with sqlite_errors(self.path, "write"):
            self.conn.executescript(_INDEXES)

    def _each_job(self, statements: Any) -> None:
        """Run ``statements(n)`` (SQL and arguments) with job ``n`` attached as ``job``, in one transaction."""
        for n, job in enumerate(self._jobs):
            with sqlite_errors(job.path, "read"):
                self.conn.execute("ATTACH DATABASE ? AS job", (job.uri,))
                try:
                    self.conn.execute("BEGIN")
                    for sql, args in statements(n):
                        self.conn.execute(sql, args)
                    self.conn.execute("COMMIT")
                finally:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    self.conn.execute("DETACH DATABASE job")

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with sqlite_errors(self.path, "read"):
            return self.conn.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._all(sql, args)[0][0]

    # -- the job ---------------------------------------------------------------------------------

    def jobs(self) -> list[JobInfo]:
        """Each job file: its state, pass, counts, fetch times and settings."""
        found = []
        for job in self._jobs:
            summary, meta = job.summary(), job.meta()
            found.append(JobInfo(str(job.path), summary["state"], summary["pass"], summary["pages"],
                                 summary["queue"]["pending"], summary["queue"]["excluded"], summary["links"],
                                 summary["first_fetch"], summary["last_fetch"], dict(meta.get("job_settings") or {}),
                                 summary["this_pass"]))
        return found

    def seeds(self, limit: int) -> Listing[str]:
        """The URLs at depth 0 (the seeds, and those a ``crawler add`` queued), by URL."""
        return Listing([u for (u,) in self._all("SELECT url FROM seed ORDER BY url LIMIT ?", (limit,))],
                       self._one("SELECT COUNT(*) FROM seed"))

    def totals(self) -> Totals:
        pages, errors, size, first, last = self._all(
            "SELECT COUNT(*), COUNT(error), COALESCE(SUM(bytes), 0), MIN(at), MAX(at) FROM page")[0]
        hosts = self._one("SELECT COUNT(*) FROM (SELECT host FROM page UNION SELECT host FROM queued)")
        return Totals(pages, errors, size, hosts, first, last, self._one("SELECT COUNT(*) FROM queued"),
                      self._one("SELECT COUNT(*) FROM excluded"))

    def timeline(self, max_buckets: int = 120) -> Timeline:
        """Pages and errors (pages with an error code) per bucket, the buckets as narrow as whole
        seconds allow with at most ``max_buckets`` of them."""
        first, last = self._all("SELECT MIN(at), MAX(at) FROM page")[0]
        if first is None:
            return Timeline(0, 1, [])
        span = last - first + 1
        width = -(-span // max_buckets)
        buckets = [(0, 0)] * -(-span // width)
        for bucket, pages, errors in self._all(
                "SELECT (at - ?) / ? AS bucket, COUNT(*), COUNT(error) FROM page GROUP BY bucket", (first, width)):
            buckets[bucket] = (pages, errors)
        return Timeline(first, width, buckets)

    # -- what came back --------------------------------------------------------------------------

    def statuses(self) -> list[tuple[int | None, int]]:
        """``(status, pages)``, by status; None for pages that got no response."""
        return [(s, n) for s, n in self._all("SELECT status, COUNT(*) FROM page GROUP BY status ORDER BY status")]

    def errors(self) -> list[ErrorRow]:
        """Error codes, most frequent first, each with the first URL (by URL) that had it and its message."""
        return [ErrorRow(*row) for row in self._all(
            "SELECT error, COUNT(*), MIN(url), error_message FROM page WHERE error IS NOT NULL "
            "GROUP BY error ORDER BY 2 DESC, error")]

    def depths(self) -> list[DepthRow]:
        return [DepthRow(*row) for row in self._all(
            "SELECT MIN(depth, ?) AS d, SUM(IFNULL(status < 300, 0)), SUM(IFNULL(status BETWEEN 300 AND 399, 0)), "
            "SUM(IFNULL(status BETWEEN 400 AND 499, 0)), SUM(IFNULL(status >= 500, 0)), SUM(status IS NULL) "
            "FROM page GROUP BY d ORDER BY d", (DEPTH_CAP,))]

    def hosts(self, limit: int) -> Listing[HostRow]:
        """The hosts with most pages, with errors, median and 95th-percentile latency, queue and state."""
        rows = self._all(_HOSTS, (limit,))
        names = [row[0] for row in rows]
        latency: dict[str, tuple[int | None, int | None]] = {}
        if names:
            latency = {h: (m, p) for h, m, p in self._all(_PERCENTILES.format(", ".join("?" * len(names))), names)}
        listed = []
        for host, pages, errors, queued, over_budget, table_state, until, error in rows:
            median, p95 = latency.get(host, (None, None))
            parked = table_state == "parked"
            listed.append(HostRow(host, pages, errors, queued, median, p95, _host_state(queued, over_budget, table_state),
                                  until if parked else None, error if parked else None))
        return Listing(listed, self._one("SELECT COUNT(*) FROM (SELECT host FROM page UNION SELECT host FROM queued)"))

    # -- what broke ------------------------------------------------------------------------------

    def broken_links(self, limit: int, referrers: int) -> Listing[BrokenLink]:
        """Broken targets, most linked first (then by URL), each with its first ``referrers`` linking
        pages by URL and their anchor texts."""
        rows = self._all(
            "SELECT b.url, p.status, p.error, (SELECT COUNT(*) FROM ref r WHERE r.target = b.url) AS n "
            "FROM broken b JOIN page p ON p.url = b.url ORDER BY n DESC, b.url LIMIT ?", (limit,))
        listed = [BrokenLink(url, status, error, n, [(s, a) for s, a in self._all(
                      "SELECT source, anchor FROM ref WHERE target = ? ORDER BY source LIMIT ?", (url, referrers))])
                  for url, status, error, n in rows]
        return Listing(listed, self._one("SELECT COUNT(*) FROM broken"))

    def broken_link_count(self) -> int:
        """Links to broken targets (a page linking to two broken targets counts twice)."""
        count: int = self._one("SELECT COUNT(*) FROM ref")
        return count

    def redirects(self, limit: int) -> Listing[Redirect]:
        """URLs that redirected, with where they ended, by final URL and then URL."""
        return Listing([Redirect(*r) for r in self._all(
            "SELECT url, final_url, status FROM page WHERE final_url != url ORDER BY final_url, url LIMIT ?", (limit,))],
            self._one("SELECT COUNT(*) FROM page WHERE final_url != url"))

    def destinations(self, limit: int) -> Listing[Destination]:
        """Where redirects end, most redirected-to first."""
        return Listing([Destination(*r) for r in self._all(
            "SELECT final_url, COUNT(*), MAX(status) FROM page WHERE final_url != url "
            "GROUP BY final_url ORDER BY 2 DESC, final_url LIMIT ?", (limit,))],
            self._one("SELECT COUNT(DISTINCT final_url) FROM page WHERE final_url != url"))

    # -- duplicates, exclusions, outliers --------------------------------------------------------

    def duplicates(self, limit: int, urls: int) -> Listing[DuplicateGroup]:
        """Successful pages (2xx) with the same content hash, largest groups first, each with its first
        ``urls`` URLs. (Error pages sharing a body, such as a site's one 404 page, are not duplicates.)"""
        grouped = ("SELECT content_hash, COUNT(*) AS n FROM page WHERE content_hash IS NOT NULL "
                   "AND status BETWEEN 200 AND 299 GROUP BY content_hash HAVING n > 1")
        rows = self._all(f"SELECT content_hash, n FROM ({grouped}) ORDER BY n DESC, content_hash LIMIT ?", (limit,))
        listed = [DuplicateGroup(h, n, [u for (u,) in self._all(
                      "SELECT url FROM page WHERE content_hash = ? AND status BETWEEN 200 AND 299 ORDER BY url LIMIT ?",
                      (h, urls))]) for h, n in rows]
        return Listing(listed, self._one(f"SELECT COUNT(*) FROM ({grouped})"))

    def duplicate_pages(self) -> int:
        """Pages in a group of exact duplicates, the first of each group included."""
        count: int = self._one("SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM page WHERE content_hash "
                               "IS NOT NULL AND status BETWEEN 200 AND 299 GROUP BY content_hash HAVING n > 1)")
        return count

    def near_duplicates(self, limit: int) -> Listing[tuple[str, str]]:
        """``(url, near duplicate of)`` pairs by simhash, by the earlier page; the total is -1 when no
        page of the jobs has a simhash (``extract_text`` was off)."""
        if self._one("SELECT COUNT(simhash) FROM page") == 0:
            return Listing([], -1)
        return Listing([(u, n) for u, n in self._all(
            "SELECT url, near_duplicate_of FROM page WHERE near_duplicate_of IS NOT NULL "
            "ORDER BY near_duplicate_of, url LIMIT ?", (limit,))],
            self._one("SELECT COUNT(*) FROM page WHERE near_duplicate_of IS NOT NULL"))

    def exclusions(self, examples: int) -> list[Exclusion]:
        """URLs never fetched by exclusion code, most first, each with its first ``examples`` URLs."""
        return [Exclusion(reason, n, [u for (u,) in self._all(
                    "SELECT url FROM excluded WHERE reason = ? ORDER BY url LIMIT ?", (reason, examples))])
                for reason, n in self._all("SELECT reason, COUNT(*) FROM excluded GROUP BY reason ORDER BY 2 DESC, reason")]

    def slowest(self, limit: int) -> list[PageRow]:
        return self._pages("elapsed_ms", limit)

    def largest(self, limit: int) -> list[PageRow]:
        return self._pages("bytes", limit)

    def _pages(self, column: str, limit: int) -> list[PageRow]:
        return [PageRow(*r) for r in self._all(
            f"SELECT url, status, elapsed_ms, bytes, content_type, title FROM page WHERE {column} IS NOT NULL "
            f"ORDER BY {column} DESC, url LIMIT ?", (limit,))]

