"""What every export format is given, and what it must do with it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from crawler.storage.read import JobReader

# The exported record of INTERFACE.md, in order; then the fields --fields may add.
FIELDS = ("url", "final_url", "status", "depth", "content_type", "title", "description", "outlinks",
          "bytes", "elapsed_ms", "fetched_at", "error")
EXTRA_FIELDS = ("canonical", "noindex", "nofollow", "content_hash", "duplicate_of", "etag", "last_modified",
                "error_message")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records, and which of their fields, the user asked for."""

    fields: tuple[str, ...] = FIELDS
    statuses: tuple[int, ...] = ()
    since: str | None = None   # ISO 8601 UTC, as stored in fetched_at

    def records(self, jobs: Sequence[JobReader]) -> Iterator[dict[str, Any]]:
        """The selected records of every job, one job after the other."""
        for job in jobs:
            yield from job.records(self.fields, self.statuses, self.since)


class Exporter(Protocol):
    """One format: write the selection of ``jobs`` to ``out``; return how many records."""

    def __call__(self, out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int: ...
