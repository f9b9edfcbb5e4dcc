"""What a mirror is built from: the archived resources of the jobs, through one adapter.

``mirror_entries`` (no bodies: the index pass) and ``mirror_bodies`` (the write pass) are the only
readers of stored bodies in the mirror; both read the same rows in the same order. A resource is
archived where it answered 2xx and its body was stored: a page's body is a zlib blob in the job's
``pages`` table (``Selection.pages``, several jobs merged by the latest fetch); a file too big to
hold in memory is in the job's ``bodies`` table, in pieces, read by ``JobReader.body_chunks``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from crawler.export.base import Selection
from crawler.storage.read import JobReader, decode_headers

_ENTRY = ("final_url", "content_type", "has_body")
_BODY = ("final_url", "content_type", "has_body", "headers", "http_body")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """An archived resource: ``url`` was fetched, ``final_url`` answered (a redirect's target, or itself)."""

    url: str
    final_url: str
    media_type: str | None   # the stored content type, e.g. text/html


@dataclass(frozen=True, slots=True)
class Stored:
    """An archived resource with its body: ``chunks`` streams it, ``read`` holds it (HTML and CSS only)."""

    entry: Entry
    content_type: str | None   # the Content-Type header as received (its charset)
    blob: bytes | None         # a page's zlib-compressed body; None: a file stored in pieces
    job: JobReader
    url_id: int

    def chunks(self) -> Iterator[bytes]:
        if self.blob is None:   # a big file, streamed into the job file (storage.bodies)
            yield from self.job.body_chunks(self.url_id)
            return
        inflate = zlib.decompressobj()
        for at in range(0, len(self.blob), _CHUNK):
            if piece := inflate.decompress(self.blob[at:at + _CHUNK]):
                yield piece
        if rest := inflate.flush():
            yield rest

    def read(self) -> bytes:
        return b"".join(self.chunks())


def _archived(status: int | None, record: dict[str, object]) -> bool:
    return status is not None and 200 <= status < 300 and bool(record["has_body"])


def mirror_entries(jobs: Sequence[JobReader], selection: Selection) -> Iterator[Entry]:
    """Every archived resource of ``jobs`` (the selection's statuses and time applied), without bodies."""
    for _, keyed in replace(selection, fields=_ENTRY, chosen=True).pages(jobs):
        if _archived(keyed.status, keyed.record):
            yield _entry(keyed.url, keyed.record)


def mirror_bodies(jobs: Sequence[JobReader], selection: Selection) -> Iterator[Stored]:
    """``mirror_entries`` with their bodies, one at a time."""
    for job, keyed in replace(selection, fields=_BODY, chosen=True).pages(jobs):
        r = keyed.record
        if _archived(keyed.status, r):
            declared = next((v for k, v in decode_headers(r["headers"]) if k.lower() == "content-type"), None)
            yield Stored(_entry(keyed.url, r), declared or r["content_type"], r["http_body"], job, keyed.url_id)


def _entry(url: str, record: dict[str, object]) -> Entry:
    final = record["final_url"]
    media = record["content_type"]
    return Entry(url, final if isinstance(final, str) and final else url, media if isinstance(media, str) else None)
