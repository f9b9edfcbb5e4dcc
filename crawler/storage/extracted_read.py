"""Named read queries over what extraction stored (``storage.extracted``): the stored HTML bodies
that ``crawler extract --db`` runs rules over again, the fields a job's exports get columns for,
and the coverage that ``stats`` and the report count.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple

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


_COVERAGE = """
WITH fields AS (
    SELECT e.page_type, j.key AS field, COUNT(*) AS pages FROM extracted e, json_each(e.data) j
     WHERE e.data IS NOT NULL GROUP BY 1, 2),
missed AS (
    SELECT e.page_type, j.value AS field, COUNT(*) AS n, 'empty' AS what
      FROM extracted e, json_each(e.empty) j WHERE e.empty IS NOT NULL GROUP BY 1, 2
    UNION ALL
    SELECT e.page_type, j.value, COUNT(*), 'bad_type'
      FROM extracted e, json_each(e.bad_type) j WHERE e.bad_type IS NOT NULL GROUP BY 1, 2)
SELECT f.page_type, f.field, f.pages,
       COALESCE((SELECT n FROM missed m WHERE m.page_type IS f.page_type AND m.field = f.field AND what = 'empty'), 0),
       COALESCE((SELECT n FROM missed m WHERE m.page_type IS f.page_type AND m.field = f.field AND what = 'bad_type'), 0)
  FROM fields f ORDER BY f.page_type, f.field
"""


def coverage(job: JobReader) -> list[Coverage]:
    """For each page type and field: pages, how many matched nothing, how many failed their type."""
    with sqlite_errors(job.path, "read"):
        return [Coverage(*row) for row in job.conn.execute(_COVERAGE)]
