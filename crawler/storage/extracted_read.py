"""Named read queries over what extraction stored (``storage.extracted``): the stored HTML bodies
that ``crawler extract --db`` runs rules over again, the fields a job's exports get columns for,
the coverage that the crawl's summary, ``stats`` and the report count (``crawler.coverage`` says
it), and what ``explain`` tells of one page.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple

from crawler.storage.jobfile import sqlite_errors
from crawler.storage.read import JobReader, decode_headers

# The media types whose bodies the parse stage reads (pages.content_type holds it without parameters).
HTML_TYPES = ("text/html", "application/xhtml+xml")


class StoredBody(NamedTuple):
    """A stored page as extraction reads it again: no request, the body as it was fetched."""

    url_id: int
    url: str
    final_url: str
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes


# The pages the crawl's parse stage extracts from: a 2xx answer of an HTML type with a stored body.
_HTML_PAGES = (f"p.body IS NOT NULL AND p.status BETWEEN 200 AND 299 "
               f"AND p.content_type IN ({', '.join(repr(t) for t in HTML_TYPES)})")


def html_bodies(job: JobReader, batch: int = 500, *, decompress: bool = True) -> Iterator[list[StoredBody]]:
    """The stored HTML pages with a body (2xx answers: those the crawl extracted from), ``batch`` at a
    time, in url_id order. Each batch is its own short read (keyset pagination), so a writer on the
    job (the rules' results) is never held back by one long read, and memory holds one batch of
    bodies. ``decompress=False`` leaves each body as stored (zlib), for a worker process to inflate."""
    after = -1
    sql = ("SELECT p.url_id, u.url, COALESCE(p.final_url, u.url), p.status, p.headers, p.body FROM pages p "
           f"JOIN urls u ON u.id = p.url_id WHERE p.url_id > ? AND {_HTML_PAGES} ORDER BY p.url_id LIMIT ?")
    while True:
        with sqlite_errors(job.path, "read"):
            rows = job.conn.execute(sql, (after, batch)).fetchall()
        if not rows:
            return
        yield [StoredBody(url_id, url, final, status, decode_headers(headers),
                          zlib.decompress(body) if decompress else body)
               for url_id, url, final, status, headers, body in rows]
        after = rows[-1][0]


def html_pages(job: JobReader) -> int:
    """How many stored pages are HTML that answered 2xx: the pages extraction runs on."""
    with sqlite_errors(job.path, "read"):
        count: int = job.conn.execute(
            f"SELECT COUNT(*) FROM pages WHERE status BETWEEN 200 AND 299 AND content_type IN "
            f"({', '.join('?' * len(HTML_TYPES))})", HTML_TYPES).fetchone()[0]
    return count


def html_body_count(job: JobReader) -> int:
    """How many pages ``html_bodies`` gives."""
    with sqlite_errors(job.path, "read"):
        return int(job.conn.execute(f"SELECT COUNT(*) FROM pages p WHERE {_HTML_PAGES}").fetchone()[0])


def has_extraction(job: JobReader) -> bool:
    """Whether the job stored anything extracted (a job of schema 5 or before never did)."""
    with sqlite_errors(job.path, "read"):
        return bool(job.conn.execute("SELECT EXISTS (SELECT 1 FROM extracted)").fetchone()[0])


# What a field's values are across a job, from the JSON types SQLite sees (json_each's ``type``).
ValueKind = Literal["int", "float", "bool", "text", "list", "json"]
_KINDS: dict[frozenset[str], ValueKind] = {
    frozenset({"integer"}): "int", frozenset({"integer", "real"}): "float", frozenset({"real"}): "float",
    frozenset({"true"}): "bool", frozenset({"false"}): "bool", frozenset({"true", "false"}): "bool",
    frozenset({"text"}): "text",
}
_FIELDS = """
SELECT j.key, j.type, MIN(e.url_id) FROM extracted e, json_each(e.data) j
 WHERE e.data IS NOT NULL GROUP BY j.key, j.type
"""
# Lists of text only are typed as lists; a list holding anything else is JSON text.
_LISTS = """
SELECT DISTINCT j.key FROM extracted e, json_each(e.data) j, json_each(j.value) v
 WHERE e.data IS NOT NULL AND j.type = 'array' AND v.type != 'text'
"""


def data_fields(jobs: Sequence[JobReader]) -> dict[str, ValueKind]:
    """The fields of ``data`` over ``jobs``, first seen first (each page's in its rules' order), with
    the kind of their values: the columns ``data.NAME`` of CSV and Parquet. A field that is always
    null is text; one whose values differ in kind (a number here, text there) is JSON text."""
    types: dict[str, set[str]] = {}
    first: dict[str, tuple[int, int, int]] = {}   # (job, url_id, place in that page's data)
    mixed_lists: set[str] = set()
    for n, job in enumerate(jobs):
        with sqlite_errors(job.path, "read"):
            rows = job.conn.execute(_FIELDS).fetchall()
            mixed_lists.update(r[0] for r in job.conn.execute(_LISTS))
            firsts: dict[str, int] = {}
            for key, kind, url_id in rows:
                types.setdefault(key, set()).add(kind)
                firsts[key] = min(firsts.get(key, url_id), url_id)
            places = {url_id: list(json.loads(job.conn.execute("SELECT data FROM extracted WHERE url_id = ?",
                                                               (url_id,)).fetchone()[0]))
                      for url_id in set(firsts.values())}
        for key, url_id in firsts.items():
            first.setdefault(key, (n, url_id, places[url_id].index(key)))
    kinds: dict[str, ValueKind] = {}
    for key in sorted(first, key=first.__getitem__):
        seen = types[key] - {"null"}
        if seen == {"array"}:
            kinds[key] = "json" if key in mixed_lists else "list"
        else:
            kinds[key] = _KINDS.get(frozenset(seen), "json" if seen else "text")
    return kinds


class Coverage(NamedTuple):
    """One field of one page type: on how many pages it was a field, matched nothing, failed its type."""

    page_type: str | None
    field: str
    pages: int
    empty: int
    bad_type: int

    @property
    def matched(self) -> int:
        return self.pages - self.empty - self.bad_type


class PageTypeCount(NamedTuple):
    """One page type (None: pages no page type applied to, with a plugin's data alone): on how many
    pages it applied, and how many of them are ``extract_missing`` or ``extract_failed``."""

    page_type: str | None
    pages: int
    extract_missing: int
    extract_failed: int


# The pages extraction ran on (a page type applied, or a plugin ran: ``data`` is set; built-in fields
# or structured data alone are not), as ``x(page_type, data, empty, bad_type, error)``. ``{extracted}``
# and ``{pages}`` name the tables, ``{only}`` adds a condition on the page ``p``: the report reads
# each job's winning fetches only. NOT MATERIALIZED: each use reads the tables in place, rather than
# SQLite copying every page's data into a temporary table first (about as fast as the query over
# ``extracted`` alone: 1.3-2 s for the fields of 100,000 pages of five fields on a loaded machine).
_EXTRACTED_PAGES = """x AS NOT MATERIALIZED (
    SELECT e.page_type, e.data, e.empty, e.bad_type, p.error FROM {extracted} e JOIN {pages} p ON p.url_id = e.url_id
     WHERE (e.page_type IS NOT NULL OR e.data IS NOT NULL){only})"""
# Per page type: (page_type, pages, extract_missing, extract_failed), most pages first.
_PAGE_TYPES = """WITH {x}
SELECT page_type, COUNT(*), SUM(error IS 'extract_missing'), SUM(error IS 'extract_failed') FROM x
 GROUP BY 1 ORDER BY 2 DESC, 1"""
# Per page type and field: (page_type, field, pages, empty, bad_type, place). ``place`` orders a page
# type's fields as its rules do: every page holds them in that order, so the smallest json_each id of
# a later field is larger than that of an earlier one.
_FIELD_COVERAGE = """WITH {x},
fields AS (
    SELECT x.page_type, j.key AS field, COUNT(*) AS pages, MIN(j.id) AS place FROM x, json_each(x.data) j
     WHERE x.data IS NOT NULL GROUP BY 1, 2),
missed AS (
    SELECT x.page_type, j.value AS field, 1 AS empty, 0 AS bad FROM x, json_each(x.empty) j WHERE x.empty IS NOT NULL
    UNION ALL
    SELECT x.page_type, j.value, 0, 1 FROM x, json_each(x.bad_type) j WHERE x.bad_type IS NOT NULL),
counted AS (SELECT page_type, field, SUM(empty) AS empty, SUM(bad) AS bad FROM missed GROUP BY 1, 2)
SELECT f.page_type, f.field, f.pages, COALESCE(c.empty, 0), COALESCE(c.bad, 0), f.place
  FROM fields f LEFT JOIN counted c ON c.page_type IS f.page_type AND c.field = f.field"""


def coverage_queries(extracted: str = "extracted", pages: str = "pages", only: str = "") -> tuple[str, str]:
    """The two coverage queries (page types, fields) over the tables named: a job's own, or (the
    report's merge) an attached job's ``extracted`` and the winning fetches."""
    x = _EXTRACTED_PAGES.format(extracted=extracted, pages=pages, only=only)
    return _PAGE_TYPES.format(x=x), _FIELD_COVERAGE.format(x=x)


_JOB_PAGE_TYPES, _JOB_FIELDS = coverage_queries()


def coverage(job: JobReader) -> list[Coverage]:
    """For each page type and field (in the rules' order): pages, how many matched nothing, how many
    failed their type."""
    with sqlite_errors(job.path, "read"):
        rows = job.conn.execute(_JOB_FIELDS + " ORDER BY 1, 6").fetchall()
    return [Coverage(*row[:5]) for row in rows]


def page_types(job: JobReader) -> list[PageTypeCount]:
    """For each page type, most pages first: pages, and how many are extract_missing or extract_failed."""
    with sqlite_errors(job.path, "read"):
        return [PageTypeCount(*row) for row in job.conn.execute(_JOB_PAGE_TYPES)]


def page_extraction(job: JobReader, url: str) -> dict[str, Any] | None:
    """What extraction made of the page of ``url`` (canonical): its ``page_type``, the fields that
    were ``empty`` or failed their type (``bad_type``); None when it ran on no such page."""
    with sqlite_errors(job.path, "read"):
        row = job.conn.execute(
            "SELECT e.page_type, e.empty, e.bad_type FROM extracted e JOIN urls u ON u.id = e.url_id "
            "WHERE u.url = ? AND (e.page_type IS NOT NULL OR e.data IS NOT NULL)", (url,)).fetchone()
    if row is None:
        return None
    page_type, empty, bad_type = row
    return {"page_type": page_type, "empty": json.loads(empty) if empty else [],
            "bad_type": json.loads(bad_type) if bad_type else []}
