"""The export stage: stored pages out in a format, to a file (atomically) or to standard output.

    base.py     the Selection (fields, statuses, since; several jobs merged) and the Exporter protocol
    jsonl.py    JSON lines          csv.py      CSV
    parquet.py  Parquet (pyarrow)   links.py    the link graph as CSV
    markdown.py each page's main content as Markdown (html-to-markdown): JSON lines, or a .md file a page
    mirror/     a copy of the site to open from disk, links rewritten (``--out DIR``)
    folder.py   a folder written all or nothing (markdown's DIR/, the mirror)
    fields.py   the extraction's fields (data, data.NAME, jsonld, ...)   file_names.py  safe names for pages
    warc.py     WARC 1.1 (warcio), also per-record gzip (``warc.gz``)

``FORMATS`` maps each ``--format`` name to its exporter; ``write_file`` writes an export to ``--out``
through ``crawler.output`` (a regular file all or nothing, a FIFO or device in place, a symlink followed),
or, for markdown to a folder, a file per page (``markdown.write_dir``), and the mirror to a folder
(``mirror.write_mirror``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from crawler.errors import UsageError
from crawler.export import csv, jsonl, links, markdown, mirror, parquet, warc
from crawler.export.base import EXTRA_FIELDS, FIELDS, Exporter, FieldType, Selection
from crawler.export.fields import DATA, EXTRACTION_FIELDS, is_data_field
from crawler.output import open_output
from crawler.storage import extracted_read
from crawler.storage.read import JobReader
from crawler.storage.schema import stored_time

__all__ = ["EXTRA_FIELDS", "FIELDS", "FORMATS", "STREAMING", "Selection", "check_fields", "check_format", "command",
           "parse_since", "parse_statuses", "write", "write_file"]

FORMATS: dict[str, Exporter] = {"jsonl": jsonl.export, "csv": csv.export, "parquet": parquet.export,
                                "links": links.export, "warc": warc.export, "warc.gz": warc.export_gz,
                                "markdown": markdown.export}
# The formats that can go to standard output (Parquet writes its footer last and needs a file).
STREAMING = frozenset({"jsonl", "csv", "links", "warc", "warc.gz", "markdown"})
# The formats whose records are the exported record, so --fields picks their columns.
WITH_FIELDS = frozenset({"jsonl", "csv", "parquet"})
# The formats written as CSV, whose text cells are escaped for spreadsheets unless --raw-cells.
CSV_CELLS = frozenset({"csv", "links"})
# The formats that write a folder (--out DIR), not a stream.
FOLDERS = frozenset({"mirror"})


def parse_statuses(values: Sequence[str], option: str = "--status") -> tuple[tuple[int, int], ...]:
    """``--status`` (or ``option``) values, a code (``404``) or a class (``4xx``), as inclusive ranges."""
    ranges = []
    for value in values:
        text = value.strip().lower()
        if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
            ranges.append((int(text[0]) * 100, int(text[0]) * 100 + 99))
        elif text.isascii() and text.isdigit() and 100 <= int(text) <= 599:
            ranges.append((int(text), int(text)))
        else:
            raise UsageError(f"bad {option} {value!r}: use an HTTP status such as 404, or a class such as 4xx")
    return tuple(ranges)


def command(dbs: Sequence[str], fmt: str, *options: str) -> str:
    """The ``crawler export`` command line, quoted for a POSIX shell, that writes ``fmt`` of the jobs
    ``dbs`` (merged, in this order) with ``options``: what the report points to for a list it cuts."""
    return shlex.join(["crawler", "export", *(word for db in dbs for word in ("--db", db)), "--format", fmt, *options])


def check_format(fmt: str, *, to_stdout: bool, fields_given: bool, target_status_given: bool = False,
                 raw_cells: bool = False) -> None:
    """Refuse what a format cannot do, before anything is opened or written."""
    if fmt not in FORMATS and fmt not in FOLDERS:
        raise UsageError(f"unknown format {fmt!r}; formats are {', '.join([*FORMATS, *FOLDERS])}")
    if to_stdout and fmt in FOLDERS:
        raise UsageError(f"--format {fmt} needs a folder: give --out DIR")
    if to_stdout and fmt not in STREAMING:
        raise UsageError(f"--format {fmt} needs a file: give --out FILE")
    if fields_given and fmt not in WITH_FIELDS:
        raise UsageError(f"--fields applies to {', '.join(sorted(WITH_FIELDS))}, not to {fmt}")
    if target_status_given and fmt != "links":
        raise UsageError(f"--target-status applies to links (the link graph), not to {fmt}; --status picks pages")
    if raw_cells and fmt not in CSV_CELLS:
        raise UsageError(f"--raw-cells applies to {', '.join(sorted(CSV_CELLS))}, not to {fmt}")


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
    unknown = [f for f in fields if f not in FIELDS + EXTRA_FIELDS and not is_data_field(f)]
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}; fields are {', '.join(FIELDS + EXTRA_FIELDS)} "
                         f"and {DATA}NAME (a field of the extraction rules)")
    return tuple(fields)


# What a data.NAME of each kind of values is exported as (``extracted_read.data_fields``).
_KIND_TYPES: dict[str, FieldType] = {"int": "int", "float": "float", "bool": "bool", "text": "text", "list": "list",
                                     "json": "json"}


def for_jobs(selection: Selection, jobs: Sequence[JobReader], fmt: str) -> Selection:
    """The selection with the fields these jobs' records have: the extraction's where a job stored
    any and no --fields were given (``export.fields``); in CSV and Parquet, ``data`` as a column
    ``data.NAME`` per field of the jobs, typed by its values."""
    fields = selection.fields
    if not selection.chosen and fields == FIELDS and any(extracted_read.has_extraction(job) for job in jobs):
        fields = (*fields, *EXTRACTION_FIELDS)
    kinds: dict[str, FieldType] = {}
    if fmt in ("csv", "parquet") and ("data" in fields or any(is_data_field(f) for f in fields)):
        kinds = {DATA + name: _KIND_TYPES[kind] for name, kind in extracted_read.data_fields(jobs).items()}
        fields = tuple(dict.fromkeys(n for f in fields for n in (kinds if f == "data" else (f,))))
    return dataclasses.replace(selection, fields=fields, data_kinds=tuple(kinds.items()))


def write(out: BinaryIO, fmt: str, dbs: Sequence[str | Path], selection: Selection) -> int:
    """Write the selection of every job in ``dbs`` to ``out`` as ``fmt``; returns how many records.
    A job file named twice is read once."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    with contextlib.ExitStack() as stack:
        jobs = [stack.enter_context(JobReader(db)) for db in dict.fromkeys(Path(d).resolve() for d in dbs)]
        if fmt in WITH_FIELDS:
            selection = for_jobs(selection, jobs, fmt)
        return FORMATS[fmt](out, jobs, selection)


def write_file(path: str | Path, fmt: str, dbs: Sequence[str | Path], selection: Selection) -> int:
    """``write`` to ``path`` as ``crawler.output`` opens it (a regular file all or nothing). A WARC to a name ending in ``.gz`` is
    compressed record by record."""
    if fmt == "warc" and str(path).endswith(".gz"):
        fmt = "warc.gz"
    if fmt in FOLDERS or (fmt == "markdown" and markdown.is_folder(path)):   # a mirror; one .md file per page
        with contextlib.ExitStack() as stack:
            jobs = [stack.enter_context(JobReader(db)) for db in dict.fromkeys(Path(d).resolve() for d in dbs)]
            return (mirror.write_mirror if fmt == "mirror" else markdown.write_dir)(path, jobs, selection)
    with open_output(path) as out:
        return write(out, fmt, dbs, selection)
