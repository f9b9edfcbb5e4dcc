"""The export stage: stored pages out as JSON lines or CSV, the fields of INTERFACE.md in order."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from crawler.errors import UsageError
from crawler.storage import open_readonly

FIELDS = ("url", "final_url", "status", "depth", "content_type", "title", "description", "outlinks",
          "bytes", "elapsed_ms", "fetched_at", "error")
EXTRA_FIELDS = ("canonical", "noindex", "nofollow", "content_hash", "duplicate_of", "etag", "last_modified")
FORMATS = ("jsonl", "csv")

_COLUMN = {"url": "u.url", "depth": "u.depth", "duplicate_of": "(SELECT url FROM urls d WHERE d.id = p.duplicate_of)"}


def parse_since(text: str) -> str:
    """An ISO 8601 time (a date, or a date and time with or without offset; no offset is UTC) as
    the UTC form stored in ``fetched_at``, so that string comparison is time comparison."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"bad --since time {text!r}: use ISO 8601, e.g. 2026-11-28 or 2026-11-28T09:00:00+01:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    if not fields:
        return FIELDS
    unknown = [f for f in fields if f not in FIELDS + EXTRA_FIELDS]
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}; fields are {', '.join(FIELDS + EXTRA_FIELDS)}")
    return tuple(fields)


def records(db: str, fields: Sequence[str], statuses: Sequence[int] = (), since: str | None = None
            ) -> Iterator[dict[str, Any]]:
    """Stream one job's pages as dicts, in fetch order, without loading them all."""
    cols = ", ".join(_COLUMN.get(f, f"p.{f}") for f in fields)
    sql = f"SELECT {cols} FROM pages p JOIN urls u ON u.id = p.url_id"
    where: list[str] = []
    args: list[Any] = []
    if statuses:
        where.append(f"p.status IN ({', '.join('?' * len(statuses))})")
        args.extend(statuses)
    if since:
        where.append("p.fetched_at >= ?")
        args.append(since)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY p.fetched_at, p.url_id"
    conn = open_readonly(db)
    try:
        for row in conn.execute(sql, args):
            rec = dict(zip(fields, row, strict=True))
            for flag in ("noindex", "nofollow"):
                if flag in rec:
                    rec[flag] = bool(rec[flag])
            yield rec
    finally:
        conn.close()


def write(out: TextIO, fmt: str, dbs: Sequence[str], fields: Sequence[str], statuses: Sequence[int] = (),
          since: str | None = None) -> int:
    """Write every record of ``dbs`` to ``out``; returns how many."""
    n = 0
    writer = None
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
    for db in dbs:
        for rec in records(db, fields, statuses, since):
            if writer is not None:
                writer.writerow(["" if v is None else v for v in rec.values()])
            else:
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n
