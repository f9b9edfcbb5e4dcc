"""Named read queries over job files, shared by ``stats``, ``export`` and the progress summary.

Readers open a job file with ``open_readonly`` (plain ``sqlite3``, ``query_only``), so they never
block a running crawl and never change a job; the SQL they run lives here and nowhere else. Every
query streams (a cursor, row by row), so an export's memory does not grow with the job.

``PayloadIndex`` is the export's own scratch table (payloads already written to a WARC), in a
temporary SQLite file that vanishes when it closes.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
import zlib
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from crawler.errors import StorageError
from crawler.storage import bodies
from crawler.storage.jobfile import meta_value, sqlite_errors
from crawler.storage.schema import DONE, EXCLUDED, HOST_BUDGET, LEASED, PENDING, SCHEMA_VERSION, prepare, version_of

# Each exportable field of a page record, as a column expression over ``pages p JOIN urls u``.
RECORD_COLUMNS: dict[str, str] = {
    "url": "u.url", "final_url": "p.final_url", "status": "p.status", "depth": "u.depth",
    "content_type": "p.content_type", "title": "p.title", "description": "p.description",
    "outlinks": "p.outlinks", "bytes": "p.bytes", "elapsed_ms": "p.elapsed_ms", "fetched_at": "p.fetched_at",
    "error": "p.error", "canonical": "p.canonical", "noindex": "p.noindex", "nofollow": "p.nofollow",
    "content_hash": "p.content_hash", "duplicate_of": "(SELECT url FROM urls d WHERE d.id = p.duplicate_of)",
    "etag": "p.etag", "last_modified": "p.last_modified", "error_message": "p.error_message",
    # extraction (schema 6; null where the page has no row): JSON text for data, jsonld, opengraph, microdata
    **{f: f"e.{f}" for f in ("h1", "lang", "word_count", "page_type", "data", "jsonld", "jsonld_error", "opengraph",
                             "microdata")},
    # what the exports derive fields from: the stored body (compressed) and response headers
    "body": "p.body", "headers": "p.headers", "near_duplicate_of": "p.near_duplicate_of",
    # the mirror: the body as the server sent it (a rendered page's HTTP body), and whether one is stored
    "http_body": "COALESCE(p.response_body, p.body)",
    "has_body": "(p.body IS NOT NULL OR EXISTS (SELECT 1 FROM bodies b WHERE b.url_id = p.url_id))",
}
_EXTRACTED = " LEFT JOIN extracted e ON e.url_id = p.url_id"
_BOOLEAN = frozenset({"noindex", "nofollow"})
_NUMBERS = frozenset({"status", "depth", "outlinks", "bytes", "elapsed_ms", "word_count"})
# Inclusive ranges of HTTP status: 404 is (404, 404), the class 4xx is (400, 499).
StatusRanges = Sequence[tuple[int, int]]


class Keyed(NamedTuple):
    """A page record with what merging jobs needs to know of it, whatever fields were asked for."""

    url: str
    fetched_at: str
    status: int | None
    url_id: int
    record: dict[str, Any]


class Capture(NamedTuple):
    """One fetch as a WARC holds it: the request sent and the response received, body decompressed."""

    url: str
    final_url: str
    fetched_at: str
    status: int
    http_version: str
    reason_phrase: str
    headers: list[tuple[str, str]]
    request_headers: list[tuple[str, str]]
    ip: str | None
    content_hash: str | None
    body: bytes
    rendered: bytes | None = None   # --render: the rendered DOM (``body`` is then the HTTP body)
    pieces: tuple[int, int] | None = None   # a body in pieces (``storage.bodies``): (url_id, size); ``body`` is b""


def decode_headers(blob: bytes | None) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a stored headers blob (``pages.encode_headers``), in order."""
    if not blob:
        return []
    pairs = []
    for line in zlib.decompress(blob).decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep:
            pairs.append((name, value))
    return pairs

# What ``crawler stats --hosts`` says of a host: parked (unreachable or failing, not tried before
# ``parked_until``), backed off (crawled more slowly than configured: 429s, 503s, timeouts, slow
# answers; ``parked_error`` says why and at what pace), its --max-pages-per-host budget reached,
# URLs still queued (pending or leased), or done.
HostState = Literal["parked", "backed_off", "budget_reached", "queued", "done"]

# A host of the job is one with a URL to fetch or fetched; hosts seen only in excluded links (another
# site's, say) are not. One pass over urls, each URL's page found by its primary key, then the
# frontier's row of the host (missing until something was fetched from it).
_HOSTS = f"""
WITH per_host AS (
    SELECT u.host,
           COUNT(p.url_id) AS pages,
           COUNT(p.error) AS errors,
           SUM(u.state IN ({PENDING}, {LEASED})) AS queued,
           SUM(u.state = {EXCLUDED} AND u.exclusion = '{HOST_BUDGET}') AS over_budget
      FROM urls u LEFT JOIN pages p ON p.url_id = u.id
     GROUP BY u.host
    HAVING SUM(u.state IN ({PENDING}, {LEASED}, {DONE})) > 0
)
SELECT per_host.host, pages, errors, queued, over_budget, h.state, h.until, h.error
  FROM per_host LEFT JOIN hosts h ON h.host = per_host.host
 ORDER BY pages DESC, per_host.host
"""


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a job file; StorageError if it is missing or not a job file.

    A job file of an older schema is migrated first (a write, made once, in one transaction)."""
    return _open(Path(path))[0]


def _open(p: Path) -> tuple[sqlite3.Connection, str]:
    """``open_readonly``, and the URI that opens the job the same way (the report attaches it).

    Not ``mode=ro`` first: a read-only connection to a WAL database must create the -wal and -shm
    files and cannot remove them when it closes; ``query_only`` keeps this connection from writing.
    But where SQLite cannot create those files (the job's folder, or the job, is read-only to us),
    the job is opened ``immutable``: read as the file holds it, with no -wal or -shm at all. That
    is exact only when no -wal file holds commits not yet in the file, so a job with one is refused."""
    if not p.is_file():
        raise StorageError(f"no job file at {p}")
    uri = f"file:{urllib.parse.quote(str(p))}"
    with sqlite_errors(p, "open"):
        try:
            return _checked(sqlite3.connect(p, isolation_level=None), p, writable=True), f"{uri}?mode=ro"
        except sqlite3.Error as exc:
            wal = p.with_name(p.name + "-wal")
            if (exc.sqlite_errorcode & 0xFF) not in _CANNOT_WRITE or (wal.exists() and wal.stat().st_size):
                raise
        uri += "?immutable=1"
        return _checked(sqlite3.connect(uri, uri=True, isolation_level=None), p, writable=False), uri


# What SQLite says where it cannot write beside a job (its -shm file) or to it: SQLITE_READONLY, SQLITE_CANTOPEN.
_CANNOT_WRITE = (8, 14)


def _checked(conn: sqlite3.Connection, p: Path, *, writable: bool) -> sqlite3.Connection:
    """``conn`` once the job on it is known to be a job of the current schema (migrated if it can be)."""
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        version = version_of(conn, p)
        if version is None:
            raise StorageError(f"{p} is not a crawler job file")
        if version < SCHEMA_VERSION and not writable:
            raise StorageError(f"{p} has schema {version}, older than {SCHEMA_VERSION}, and is read-only: "
                               "run any command on it once where it can be written, to upgrade it")
        if version < SCHEMA_VERSION:
            prepare(conn, p, create=False)
        conn.execute("PRAGMA query_only=1")
    except BaseException:
        conn.close()
        raise
    return conn


class JobReader:
    """The named queries of one job file: ``with JobReader(path) as job: job.summary()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn, self.uri = _open(self.path)   # uri: the job read-only, as another connection attaches it

    def __enter__(self) -> JobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with sqlite_errors(self.path, "read"):
            return self.conn.execute(sql, args).fetchone()[0]

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with sqlite_errors(self.path, "read"):
            return self.conn.execute(sql, args).fetchall()

    def meta(self) -> dict[str, Any]:
        return {k: meta_value(self.path, k, v) for k, v in self._all("SELECT key, value FROM meta")}

    def summary(self) -> dict[str, Any]:
        """What ``crawler stats`` shows, as plain JSON-ready values."""
        meta = self.meta()
        states = dict(self._all("SELECT state, COUNT(*) FROM urls GROUP BY state"))
        crawl_pass = int(meta.get("pass", 1))
        changes = dict(self._all("SELECT change, COUNT(*) FROM pages WHERE pass = ? AND fetched_as IS NULL GROUP BY change",
                                (crawl_pass,)))
        return {
            "db": str(self.path),
            "state": meta.get("state", "new"),
            "pages": self._one("SELECT COUNT(*) FROM pages WHERE fetched_as IS NULL"),
            "statuses": {str(s): n for s, n in self._all(
                "SELECT status, COUNT(*) FROM pages WHERE status IS NOT NULL AND fetched_as IS NULL "
                "GROUP BY status ORDER BY status")},
            "errors": dict(self._all("SELECT error, COUNT(*) FROM pages WHERE error IS NOT NULL AND fetched_as IS NULL "
                                     "GROUP BY error ORDER BY 2 DESC")),
            # Link targets checked and page requisites fetched (issue 24), apart from pages: how many, how many broken.
            "references": {kind: {"fetched": n, "broken": broken} for kind, n, broken in self._all(
                "SELECT fetched_as, COUNT(*), SUM(error IS NOT NULL) FROM pages WHERE fetched_as IS NOT NULL "
                "GROUP BY fetched_as ORDER BY 1")},
            "hosts": self.host_count(),
            "bytes": self._one("SELECT COALESCE(SUM(bytes), 0) FROM pages"),
            "duplicates": self._one("SELECT COUNT(*) FROM pages WHERE duplicate_of IS NOT NULL"),
            "links": self._one("SELECT COUNT(*) FROM links"),
            "rendered": dict(zip(("pages", "blocked"), self._all(   # --render: pages a browser rendered, requests refused
                "SELECT COUNT(rendered), COALESCE(SUM(render_blocked), 0) FROM pages")[0], strict=True)),
            "queue": {"pending": states.get(PENDING, 0) + states.get(LEASED, 0), "excluded": states.get(EXCLUDED, 0)},
            "pass": crawl_pass,
            "this_pass": {"fetched": sum(changes.values()),
                          **{k: changes.get(k, 0) for k in ("new", "unchanged", "changed", "gone")}},
            "first_fetch": self._one("SELECT MIN(fetched_at) FROM pages"),
            "last_fetch": self._one("SELECT MAX(fetched_at) FROM pages"),
        }

    def seeds_unreached(self) -> list[tuple[str, int, str, str | None]] | None:
        """Whether no seed could be fetched at all: the job has no page with a status (nothing ever
        answered) and every seed (URL at depth 0) has a page with an error. Then, for each error code
        of the seeds, most common first: the code, how many seeds, and one seed with its message;
        else None."""
        if self._one("SELECT EXISTS (SELECT 1 FROM pages WHERE status IS NOT NULL)"):
            return None
        rows = self._all("SELECT p.error, COUNT(*), MIN(u.url) FROM urls u LEFT JOIN pages p ON p.url_id = u.id "
                         "WHERE u.depth = 0 GROUP BY p.error ORDER BY 2 DESC, 1")
        if not rows or any(error is None for error, _, _ in rows):
            return None
        return [(error, n, url, self._one("SELECT p.error_message FROM pages p JOIN urls u ON u.id = p.url_id "
                                          "WHERE u.url = ?", (url,))) for error, n, url in rows]

    def host_count(self) -> int:
        """How many hosts the job has: those with a URL fetched or to fetch (``hosts`` lists them)."""
        count: int = self._one(f"SELECT COUNT(DISTINCT host) FROM urls WHERE state IN ({PENDING}, {LEASED}, {DONE})")
        return count

    def has_host(self, host: str) -> bool:
        """Whether ``host`` (``host[:port]``) is one of the job's hosts: fetched from, or with a URL
        to fetch. By index only, so it costs nothing on a job of millions of URLs."""
        return bool(self._one(
            f"SELECT EXISTS(SELECT 1 FROM hosts WHERE host = ?1) OR EXISTS(SELECT 1 FROM urls WHERE host = ?1 "
            f"AND state = {PENDING}) OR EXISTS(SELECT 1 FROM urls WHERE state = {LEASED} AND host = ?1)", (host,)))

    def hosts(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The job's hosts, most pages first (then by name), as plain JSON-ready values: ``pages``
        stored, ``errors`` among them, ``queued`` URLs (pending or leased) and the host's ``state``,
        with ``parked_until`` and ``parked_error`` for a parked host. ``limit``: only the first N."""
        sql, args = (_HOSTS, ()) if limit is None else (_HOSTS + " LIMIT ?", (limit,))
        return [
            {"host": host, "pages": pages, "errors": errors, "queued": queued,
             "state": _host_state(queued, over_budget, table_state),
             "parked_until": until if table_state == "parked" else None,
             "parked_error": error if table_state in ("parked", "backoff") else None}
            for host, pages, errors, queued, over_budget, table_state, until, error in self._all(sql, args)
        ]

    def records(self, fields: Sequence[str], statuses: StatusRanges = (), since: str | None = None
                ) -> Iterator[dict[str, Any]]:
        """Stream the job's pages as dicts of ``fields`` (keys of RECORD_COLUMNS), in fetch order."""
        for keyed in self.keyed_records(fields, statuses, since):
            yield keyed.record

    def keyed_records(self, fields: Sequence[str], statuses: StatusRanges = (), since: str | None = None,
                      *, merged_job: int | None = None) -> Generator[Keyed]:
        """``records`` with each one's URL, fetch time, status and id, in fetch order. With
        ``merged_job`` (this job's place among merged jobs, their ``merge.Winners`` attached as
        ``merged``): only the URLs whose winning fetch is this job's, in URL order."""
        columns = ", ".join(["u.url", "p.fetched_at", "p.status", "p.url_id", *(RECORD_COLUMNS[f] for f in fields)])
        where, args = _filter(statuses, since, "w.job = ?" if merged_job is not None else None)
        # Merged: walk the winners of this job by URL (an index) and find each page by its key
        # (CROSS JOIN keeps the winners the outer loop, so there is no sort and no temporary table).
        sql = (f"SELECT {columns} FROM merged.winner w CROSS JOIN urls u ON u.id = w.url_id CROSS JOIN pages p "
               f"ON p.url_id = w.url_id{_EXTRACTED}{where} ORDER BY w.job, w.url" if merged_job is not None else
               f"SELECT {columns} FROM pages p JOIN urls u ON u.id = p.url_id{_EXTRACTED}{where} "
               "ORDER BY p.fetched_at, p.url_id")
        args = [merged_job, *args] if merged_job is not None else args
        numbers = [f for f in fields if f in _NUMBERS]
        with sqlite_errors(self.path, "read"):
            for url, fetched_at, status, url_id, *values in self.conn.execute(sql, args):
                record = dict(zip(fields, values, strict=True))
                # SQLite keeps whatever it was given: a damaged file may hold text where numbers belong.
                if not (status is None or type(status) is int) or any(
                        not (record[f] is None or type(record[f]) is int) for f in numbers):
                    raise self._not_a_number(url, {"status": status} | record)
                for flag in _BOOLEAN.intersection(record):
                    record[flag] = bool(record[flag])
                yield Keyed(url, fetched_at, status, url_id, record)

    def _not_a_number(self, url: str, record: dict[str, Any]) -> StorageError:
        field, value = next((f, v) for f, v in record.items() if f in _NUMBERS and not (v is None or type(v) is int))
        return StorageError(f"{self.path} is a damaged job file: the {field} of {url} is {value!r}, not a number")

    def links(self, url_id: int) -> list[tuple[str, bool, str | None, str]]:
        """``(target, nofollow, anchor, kind)`` of each link on a page, by target (kind: ``page``, ``image``, ...)."""
        rows = self._all("SELECT target, nofollow, anchor, COALESCE(kind, 'page') FROM links WHERE source_id = ? "
                         "ORDER BY target", (url_id,))
        return [(target, bool(nofollow), anchor, kind) for target, nofollow, anchor, kind in rows]

    def answer(self, url: str) -> tuple[str, int | None] | None:
        """``(fetched_at, status)`` of this job's fetch of ``url`` (status None: no response), or None
        where the job never fetched it."""
        rows = self._all("SELECT p.fetched_at, p.status FROM urls u JOIN pages p ON p.url_id = u.id WHERE u.url = ?", (url,))
        return (rows[0][0], rows[0][1]) if rows else None

    def keeps_bodies(self) -> bool:
        """Whether the job stores response bodies (it was not crawled with ``--no-bodies``)."""
        settings = self.meta().get("job_settings") or {}
        return bool(settings.get("bodies", True))

    def captures(self, statuses: StatusRanges = (), since: str | None = None) -> Iterator[Capture]:
        """Every stored fetch that got a response, in fetch order, as a WARC writes it (not a check's:
        it has no body to replay)."""
        where, args = _filter(statuses, since)
        sql = ("SELECT u.url, COALESCE(p.final_url, u.url), p.fetched_at, p.status, COALESCE(p.http_version, 'HTTP/1.1'), "
               "COALESCE(p.reason_phrase, ''), p.headers, p.request_headers, p.ip, p.content_hash, p.body, p.response_body, "
               "CASE WHEN p.body IS NULL AND EXISTS (SELECT 1 FROM bodies b WHERE b.url_id = p.url_id) "
               "THEN p.url_id END, p.bytes FROM pages p JOIN urls u ON u.id = p.url_id"
               + (where + " AND" if where else " WHERE") + " p.status IS NOT NULL AND p.fetched_as IS NOT 'check' "
               "ORDER BY p.fetched_at, p.url_id")
        with sqlite_errors(self.path, "read"):
            for (url, final, at, status, version, phrase, headers, request, ip, digest, body, http, pieces,
                 size) in self.conn.execute(sql, args):
                body = zlib.decompress(body) if body else b""
                body, dom = (zlib.decompress(http), body) if http is not None else (body, None)
                yield Capture(url, final, at, status, version, phrase, decode_headers(headers), decode_headers(request),
                              ip, digest, body, dom, None if pieces is None else (pieces, size))


    def body_chunks(self, url_id: int) -> Iterator[bytes]:
        """A stored body, in pieces, as received (``storage.bodies.body_chunks``): pages and files alike."""
        return bodies.body_chunks(self.conn, url_id)

    def url_facts(self, url: str) -> dict[str, Any] | None:
        """What the job knows of one canonical URL, for ``crawler explain`` (``storage.url_facts``)."""
        from crawler.storage.url_facts import url_facts
        return url_facts(self, url)


def _filter(statuses: StatusRanges, since: str | None, first: str | None = None) -> tuple[str, list[Any]]:
    """A WHERE clause (with its leading space) for the status ranges and the fetch time of the pages
    ``p``, and its arguments; ``first`` a condition before them (its arguments the caller's)."""
    where: list[str] = [first] if first else []
    args: list[Any] = []
    if statuses:
        where.append("(" + " OR ".join("p.status BETWEEN ? AND ?" for _ in statuses) + ")")
        args.extend(bound for pair in statuses for bound in pair)
    if since:
        where.append("p.fetched_at >= ?")
        args.append(since)
    return (" WHERE " + " AND ".join(where) if where else ""), args


def _host_state(queued: int, over_budget: int, table_state: str | None) -> HostState:
    """The frontier's word first (a parked host keeps its queue but is not crawled; a host at its
    budget has URLs excluded with ``host_budget``), then whether the host still has work."""
    if table_state == "parked":
        return "parked"
    if table_state == "backoff" and queued:
        return "backed_off"
    if table_state == "budget" or over_budget:
        return "budget_reached"
    return "queued" if queued else "done"
