"""What every export format is given, and what it must do with it.

Several jobs are merged here, into one record per URL, by the rule the report merges by as well
(``storage.merge``: the latest fetch wins). Each job reads the URLs whose winning fetch is its own,
in URL order, and the streams are interleaved by URL (``heapq.merge``, one row of each job in
memory). The status and time filters are SQL over the winner, as over the pages of a single job,
so an old 404 that a later job fetched as 200 is not a 404 of the merged jobs. One job is read in
fetch order.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol

from crawler.export.fields import EXTRACTION_EXTRA, shape, stored_fields
from crawler.storage.merge import Winners
from crawler.storage.read import JobReader, Keyed, StatusRanges

# The exported record of INTERFACE.md, in order; then the fields --fields may add.
FIELDS = ("url", "final_url", "status", "depth", "content_type", "title", "description", "outlinks",
          "bytes", "elapsed_ms", "fetched_at", "error")
EXTRA_FIELDS = ("canonical", "noindex", "nofollow", "content_hash", "duplicate_of", "etag", "last_modified",
                "error_message", *EXTRACTION_EXTRA)

# What each field holds, for the formats with real types (Parquet); every one may be null.
# ``json``: JSON text in CSV and Parquet (jsonld, opengraph, microdata; a data.NAME of mixed kinds).
FieldType = Literal["text", "int", "float", "bool", "time", "list", "json"]
FIELD_TYPES: dict[str, FieldType] = {
    **dict.fromkeys(FIELDS + EXTRA_FIELDS, "text"),
    **dict.fromkeys(("status", "depth", "outlinks", "bytes", "elapsed_ms", "word_count"), "int"),
    **dict.fromkeys(("data", "jsonld", "opengraph", "microdata"), "json"),
    "noindex": "bool", "nofollow": "bool", "fetched_at": "time",
}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records, and which of their fields, the user asked for, and how CSV writes them."""

    fields: tuple[str, ...] = FIELDS
    statuses: tuple[tuple[int, int], ...] = ()   # inclusive ranges: 404 is (404, 404), 4xx is (400, 499)
    since: str | None = None   # ISO 8601 UTC, as stored in fetched_at
    target_statuses: tuple[tuple[int, int], ...] = ()   # the link graph: only links whose target answered so
    raw_cells: bool = False    # CSV cells as stored, not escaped for spreadsheets (``crawler.export.cells``)
    chosen: bool = False       # the fields were given (--fields): a job's extraction adds none
    data_kinds: tuple[tuple[str, FieldType], ...] = ()   # what each data.NAME holds, over the jobs (Parquet)
    warc_keep_secrets: bool = False   # WARC request records keep Cookie and Authorization values

    def field_type(self, field: str) -> FieldType:
        return dict(self.data_kinds).get(field) or FIELD_TYPES.get(field, "text")

    def records(self, jobs: Sequence[JobReader]) -> Iterator[dict[str, Any]]:
        """The selected records: one job's in fetch order; several jobs' merged, one per URL."""
        for _, keyed in self.pages(jobs):
            yield shape(self.fields, keyed.record)

    def pages(self, jobs: Sequence[JobReader]) -> Iterator[tuple[JobReader, Keyed]]:
        """``records`` with the job each comes from and its keys (for formats that read more of a page)."""
        stored = stored_fields(self.fields)
        if len(jobs) == 1:
            for keyed in jobs[0].keyed_records(stored, self.statuses, self.since):
                yield jobs[0], keyed
            return
        with Winners(jobs) as winners, contextlib.ExitStack() as attached:
            for job in jobs:
                attached.enter_context(winners.attached(job))
            streams = [_tagged(n, job.keyed_records(stored, self.statuses, self.since, merged_job=n))
                       for n, job in enumerate(jobs)]
            try:
                for _, n, keyed in heapq.merge(*streams, key=_url):   # one job's winners are no other's
                    yield jobs[n], keyed
            finally:
                for stream in streams:   # their cursors closed before the winners are detached
                    stream.close()

    def wants_target(self, status: int | None) -> bool:
        """Whether a link whose target answered ``status`` (None: no answer, or never fetched) passes."""
        return not self.target_statuses or _within(status, self.target_statuses)


def _within(status: int | None, ranges: StatusRanges) -> bool:
    return status is not None and any(lo <= status <= hi for lo, hi in ranges)


def _tagged(n: int, keyed: Generator[Keyed]) -> Generator[tuple[str, int, Keyed]]:
    with contextlib.closing(keyed):
        for page in keyed:
            yield page.url, n, page


def _url(tagged: tuple[str, int, Keyed]) -> str:
    return tagged[0]


class Exporter(Protocol):
    """One format: write the selection of ``jobs`` to ``out``; return how many records."""

    def __call__(self, out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int: ...


__all__ = ["EXTRA_FIELDS", "FIELDS", "FIELD_TYPES", "Exporter", "FieldType", "Selection", "StatusRanges"]
