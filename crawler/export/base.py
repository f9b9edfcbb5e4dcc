"""What every export format is given, and what it must do with it.

Several jobs are merged here, into one record per URL: each job's pages come in URL order, are
merged as sorted streams (``heapq.merge``, one row of each job in memory) and the latest fetch of
each URL wins. The status and time filters apply to the winner, so an old 404 that a later job
fetched as 200 is not a 404 of the merged jobs. One job is read in fetch order, filtered in SQL.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol

from crawler.storage.read import JobReader, Keyed, StatusRanges

# The exported record of INTERFACE.md, in order; then the fields --fields may add.
FIELDS = ("url", "final_url", "status", "depth", "content_type", "title", "description", "outlinks",
          "bytes", "elapsed_ms", "fetched_at", "error")
EXTRA_FIELDS = ("canonical", "noindex", "nofollow", "content_hash", "duplicate_of", "etag", "last_modified",
                "error_message")

# What each field holds, for the formats with real types (Parquet); every one may be null.
FieldType = Literal["text", "int", "bool", "time"]
FIELD_TYPES: dict[str, FieldType] = {
    **dict.fromkeys(FIELDS + EXTRA_FIELDS, "text"),
    **dict.fromkeys(("status", "depth", "outlinks", "bytes", "elapsed_ms"), "int"),
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

    def records(self, jobs: Sequence[JobReader]) -> Iterator[dict[str, Any]]:
        """The selected records: one job's in fetch order; several jobs' merged, one per URL."""
        for _, keyed in self.pages(jobs):
            yield keyed.record

    def pages(self, jobs: Sequence[JobReader]) -> Iterator[tuple[JobReader, Keyed]]:
        """``records`` with the job each comes from and its keys (for formats that read more of a page)."""
        if len(jobs) == 1:
            for keyed in jobs[0].keyed_records(self.fields, self.statuses, self.since):
                yield jobs[0], keyed
            return
        streams = [_tagged(n, job.keyed_records(self.fields, by_url=True)) for n, job in enumerate(jobs)]
        for _, fetches in itertools.groupby(heapq.merge(*streams, key=_url), key=_url):
            # The latest fetch wins; between two fetches in the same second, the later job on the command line.
            _, n, latest = max(fetches, key=lambda tagged: (tagged[2].fetched_at, tagged[1]))
            if self.wants(latest.status, latest.fetched_at):
                yield jobs[n], latest

    def wants(self, status: int | None, fetched_at: str) -> bool:
        """Whether a page of this status, fetched then, passes the filters."""
        if self.statuses and not _within(status, self.statuses):
            return False
        return self.since is None or fetched_at >= self.since

    def wants_target(self, status: int | None) -> bool:
        """Whether a link whose target answered ``status`` (None: no answer, or never fetched) passes."""
        return not self.target_statuses or _within(status, self.target_statuses)


def _within(status: int | None, ranges: StatusRanges) -> bool:
    return status is not None and any(lo <= status <= hi for lo, hi in ranges)


def _tagged(n: int, keyed: Iterator[Keyed]) -> Iterator[tuple[str, int, Keyed]]:
    for page in keyed:
        yield page.url, n, page


def _url(tagged: tuple[str, int, Keyed]) -> str:
    return tagged[0]


class Exporter(Protocol):
    """One format: write the selection of ``jobs`` to ``out``; return how many records."""

    def __call__(self, out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int: ...


__all__ = ["EXTRA_FIELDS", "FIELDS", "FIELD_TYPES", "Exporter", "FieldType", "Selection", "StatusRanges"]
