"""What extraction made of each page, in the job file's ``extracted`` table (schema 6).

A page has a row when the parse stage gave it built-in fields (h1, lang, word count) or an
``Extracted`` (the rules' data with its coverage, structured data); a page without one (a job of
schema 5, a non-HTML page, an error) has none, and exports leave those fields out or null.

Values are JSON text: ``data`` an object (field -> value), ``empty`` and ``bad_type`` arrays of
field names (NULL when there are none, so the common page costs nothing), ``jsonld`` and
``microdata`` arrays, ``opengraph`` an object. Coverage is counted with ``json_each`` over these
small rows (no page body is read): 0.41 s over 100,000 pages of five fields, where a side table of
one row per page and field (``page_fields``) took 0.57 s, 2.6x the writing time and 40% more file.

A page's extraction error (``extract_missing``: a required field matched nothing;
``extract_failed``: a plugin raised) is its ``pages.error``, with ``error_message``, where the page
has no error of its own (a 200 page): ``stats`` and the report count it with the other errors.
Running the rules again rewrites it, never a fetch error: ``replace`` for one batch, in one
transaction; ``Rerun`` for a whole job, all or nothing (a run killed midway leaves every page's
previous values).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from crawler.errors import CrawlError
from crawler.models import Extracted, PageRecord
from crawler.storage.jobfile import JobFile

# The error codes extraction records; a page's other errors (timeout, http_error, ...) are the fetch's.
EXTRACT_ERRORS = ("extract_missing", "extract_failed")

_COLUMNS = ("url_id", "h1", "lang", "word_count", "page_type", "data", "empty", "bad_type", "jsonld", "jsonld_error",
            "opengraph", "microdata")
STORE = f"INSERT OR REPLACE INTO extracted ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
# Rules run again: the extraction's columns are replaced, the built-in fields (the parser's) stay.
_REPLACE = (f"INSERT INTO extracted ({', '.join(c for c in _COLUMNS if c not in ('h1', 'lang', 'word_count'))}) "
            f"VALUES ({', '.join('?' * (len(_COLUMNS) - 3))}) ON CONFLICT (url_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[4:]))
_ERROR_IS_EXTRACTIONS = f"(error IS NULL OR error IN ({', '.join(repr(e) for e in EXTRACT_ERRORS)}))"
_REPLACE_ERROR = (f"UPDATE pages SET error = CASE WHEN {_ERROR_IS_EXTRACTIONS} THEN ?1 ELSE error END, "
                  f"error_message = CASE WHEN {_ERROR_IS_EXTRACTIONS} THEN ?2 ELSE error_message END WHERE url_id = ?3")


def _json(value: Any) -> str | None:
    """JSON text that SQLite's JSON functions read: NaN and infinities (a float field of "NaN", a
    JSON-LD block Python's parser took them from) are null, as JSON has no such numbers."""
    if value is None:
        return None
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _names(names: Sequence[str]) -> str | None:
    return _json(list(names)) if names else None


def _extracted_values(e: Extracted) -> tuple[Any, ...]:
    return (e.page_type, _json(e.data), _names(e.empty), _names(e.bad_type), _json(None if e.jsonld is None else list(e.jsonld)),
            e.jsonld_error, _json(e.opengraph), _json(None if e.microdata is None else list(e.microdata)))


def has_extraction(r: PageRecord) -> bool:
    return r.extracted is not None or r.h1 is not None or r.lang is not None or r.word_count is not None


def page_error(r: PageRecord) -> tuple[str | None, str | None]:
    """The page's ``(error, error_message)`` as stored: its own, else its extraction's."""
    if r.error is None and r.extracted is not None and r.extracted.error is not None:
        return r.extracted.error, r.extracted.error_message
    return r.error, r.error_message


def store_rows(records: Iterable[PageRecord]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``extracted`` for the pages that have something extracted."""
    for r in records:
        if has_extraction(r):
            values = _extracted_values(r.extracted) if r.extracted is not None else (None,) * 8
            yield (r.url_id, r.h1, r.lang, r.word_count, *values)


async def replace(job: JobFile, batch: Sequence[tuple[int, Extracted]]) -> None:
    """Replace what the rules extracted from these stored pages (by url_id), in one transaction: a
    run killed or failing in it leaves every page of the batch as it was. The built-in fields stay;
    the page's error becomes the new extraction's (or none), unless it is a fetch error."""
    if not batch:
        return
    rows = [(url_id, *_extracted_values(e)) for url_id, e in batch]   # serialised before anything is written
    async with job.transaction() as db:
        await db.executemany(_REPLACE, rows)
        await db.executemany(_REPLACE_ERROR, [(e.error, e.error_message, url_id) for url_id, e in batch])


# A run of the rules over a whole job stages its results here, and they replace the job's in one
# transaction at its end: a run killed before leaves every page as it was (and this table, which
# the next run drops).
_STAGED = "extracted_next"
_STAGING = f"""CREATE TABLE {_STAGED} (url_id INTEGER PRIMARY KEY, page_type TEXT, data TEXT, empty TEXT, bad_type TEXT,
    jsonld TEXT, jsonld_error TEXT, opengraph TEXT, microdata TEXT, error TEXT, error_message TEXT)"""
_STAGED_COLUMNS = ", ".join(c for c in _COLUMNS if c not in ("h1", "lang", "word_count"))
_PAGE_ERROR_IS_EXTRACTIONS = _ERROR_IS_EXTRACTIONS.replace("error", "pages.error")
_SWAP = (
    f"INSERT INTO extracted ({_STAGED_COLUMNS}) SELECT {_STAGED_COLUMNS} FROM {_STAGED} WHERE true "
    "ON CONFLICT (url_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[4:]),
    f"UPDATE pages SET error = CASE WHEN {_PAGE_ERROR_IS_EXTRACTIONS} THEN s.error ELSE pages.error END, "
    f"error_message = CASE WHEN {_PAGE_ERROR_IS_EXTRACTIONS} THEN s.error_message ELSE pages.error_message END "
    f"FROM {_STAGED} s WHERE pages.url_id = s.url_id",
    f"DROP TABLE {_STAGED}",
)


def staged_row(url_id: int, e: Extracted | None) -> tuple[Any, ...]:
    """The row ``Rerun`` stages for a page: ``(url_id, page_type, data, empty, bad_type, jsonld,
    jsonld_error, opengraph, microdata, error, error_message)``, values as JSON text; all None when
    nothing applied to the page."""
    return (url_id, *_extracted_values(e), e.error, e.error_message) if e is not None else (url_id, *(None,) * 10)


class Rerun:
    """The rules run again over a whole job, all or nothing: ``async with Rerun(job) as run: await
    run.add(batch)`` for each batch; the new values replace the old ones in one transaction when the
    block ends without an error. Each ``add`` commits to a staging table (so memory holds one batch);
    an error in the block, or a kill, leaves the job's values as they were. A page given None (no page
    type applied) loses what it had. ``remember`` is job metadata (key -> value) set in that same
    transaction: the rules the job extracts with from then on."""

    def __init__(self, job: JobFile, remember: Mapping[str, Any] | None = None) -> None:
        self.job = job
        self.remember = dict(remember or {})

    async def __aenter__(self) -> Rerun:
        async with self.job.transaction() as db:
            await db.execute(f"DROP TABLE IF EXISTS {_STAGED}")   # what a killed run left
            await db.execute(_STAGING)
        return self

    async def add(self, batch: Sequence[tuple[int, Extracted | None]]) -> None:
        await self.add_rows([staged_row(url_id, e) for url_id, e in batch])

    async def add_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """``add`` of rows made by ``staged_row`` (in a worker process, so that the one writer only writes)."""
        async with self.job.transaction() as db:
            await db.executemany(f"INSERT OR REPLACE INTO {_STAGED} VALUES ({', '.join('?' * 11)})", rows)

    async def __aexit__(self, et: type[BaseException] | None, *exc: object) -> None:
        async with self.job.transaction() as db:
            if et is not None:
                with contextlib.suppress(CrawlError):   # the block's error is the one to see
                    await db.execute(f"DROP TABLE {_STAGED}")
                return
            for sql in _SWAP:
                await db.execute(sql)
            for key, value in self.remember.items():
                await self.job.set_meta(key, value)   # joins this transaction
