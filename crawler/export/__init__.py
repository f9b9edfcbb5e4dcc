"""The export stage: stored pages out in a format, to a file (atomically) or to standard output.

    base.py   the Selection (fields, statuses, since) and the Exporter protocol every format follows
    jsonl.py  JSON lines        csv.py  CSV

``FORMATS`` maps each ``--format`` name to its exporter; ``write_file`` is the one place that
writes an export to disk: into a temporary file beside the target, renamed over it only once
complete, so an export that fails (a full disk, a broken job file) leaves no half-written file and
never clobbers an earlier good one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from crawler.errors import UsageError
from crawler.export import csv, jsonl
from crawler.export.base import EXTRA_FIELDS, FIELDS, Exporter, Selection
from crawler.storage.read import JobReader
from crawler.storage.schema import stored_time

__all__ = ["EXTRA_FIELDS", "FIELDS", "FORMATS", "Selection", "check_fields", "parse_since", "write", "write_file"]

FORMATS: dict[str, Exporter] = {"jsonl": jsonl.export, "csv": csv.export}


def parse_since(text: str) -> str:
    """An ISO 8601 time (a date, or a date and time with or without offset; no offset is UTC) as
    the UTC form stored in ``fetched_at``, so that string comparison is time comparison."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"bad --since time {text!r}: use ISO 8601, e.g. 2026-11-28 or 2026-11-28T09:00:00+01:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return stored_time(when)


def check_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    if not fields:
        return FIELDS
    unknown = [f for f in fields if f not in FIELDS + EXTRA_FIELDS]
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}; fields are {', '.join(FIELDS + EXTRA_FIELDS)}")
    return tuple(fields)


def write(out: BinaryIO, fmt: str, dbs: Sequence[str | Path], selection: Selection) -> int:
    """Write the selection of every job in ``dbs`` to ``out`` as ``fmt``; returns how many records."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    with contextlib.ExitStack() as stack:
        jobs = [stack.enter_context(JobReader(db)) for db in dbs]
        return FORMATS[fmt](out, jobs, selection)


def write_file(path: str | Path, fmt: str, dbs: Sequence[str | Path], selection: Selection) -> int:
    """``write`` to the file at ``path``, all or nothing."""
    with atomic_output(Path(path)) as out:
        return write(out, fmt, dbs, selection)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``target`` when the block ends without error, and vanishes if not."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp's 0600 is for the temporary file only
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
