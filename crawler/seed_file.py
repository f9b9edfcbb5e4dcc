"""Seed files as people save them: one URL a line, or a table that a spreadsheet wrote.

The rules, in order (docs/usage.md says the same to the user):

- The file is UTF-8. A byte-order mark (Excel and Notepad write one) is dropped; a byte that is not
  UTF-8 becomes U+FFFD, so that its line is reported rather than the whole file refused.
- Blank lines and lines starting with ``#`` are skipped.
- A table: when each of the first 100 other lines has two fields or more split at tabs (else at
  commas, else at semicolons; quoted fields as the csv module reads them), the file is a table and the
  first column of each line is its URL. One note says so. A file of URLs that all hold a comma
  would be read as a table too: the note is there so that such a user sees it.
- A header: a first line whose first field is a name, not a URL (``url``, ``URL``, ``Address``:
  letters, digits, spaces, ``_`` and ``-``) is skipped with a note.
- A URL with a space inside (``http://example.com/a b``) is skipped with a warning. A browser would
  send ``%20``, but in a seed file a space more often ends the URL and starts something else (a
  title, a comment), and only the file's author knows which: they can write ``%20``.
- Bad lines: the first ``REPORTED`` are reported one a line with their number; the rest are counted
  in one closing line, so a file of 100,000 bad lines prints 11 lines, not 100,000.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from crawler.errors import InvalidURL, UsageError
from crawler.urls import parse_seed
from crawler.wording import plural

REPORTED = 10   # bad lines reported one by one; the rest are counted
_SAMPLE = 100   # lines that decide whether a file is a table
_DELIMITERS = {"\t": "tab", ",": "comma", ";": "semicolon"}
_HEADER = re.compile(r"[A-Za-z][\w \-]*")


def seed_urls(urls: Sequence[str] | None, seeds_file: str | None, warn: Callable[[str], object]) -> list[str]:
    """The seeds of ``crawl`` and ``add``: URL arguments (a bad one is an error), then the seeds file
    (a bad line is reported and skipped)."""
    found = [parse_seed(u) for u in urls or []]
    if seeds_file is not None:
        found += load_seeds_file(seeds_file, warn)
    return found


def load_seeds_file(path: str, warn: Callable[[str], object]) -> list[str]:
    """The valid seeds of the file ``path`` (``-``: stdin); UsageError when it cannot be read or holds none."""
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read seeds file {path}: {exc.strerror}") from None
    found = read_seed_lines(lines, "stdin" if path == "-" else path, warn)
    if not found:
        raise UsageError(f"no valid URL in seeds file {path}")
    return found


def read_seed_lines(lines: Sequence[str], source: str, warn: Callable[[str], object]) -> list[str]:
    """The valid seeds among ``lines`` of the seeds file named ``source``; notes and warnings (at most
    ``REPORTED`` + 3 lines, each starting ``crawler: SOURCE``) go to ``warn``."""
    if lines:
        lines = [lines[0].removeprefix("\ufeff"), *lines[1:]]
    numbered = [(n, line.strip()) for n, line in enumerate(lines, 1)]
    numbered = [(n, text) for n, text in numbered if text and not text.startswith("#")]
    delimiter = _table_delimiter([text for _, text in numbered[:_SAMPLE]])
    if delimiter is not None:
        warn(f"crawler: {source}: read as a {_DELIMITERS[delimiter]}-separated table: "
             "the first column of each line is its URL")
    seeds: list[str] = []
    bad = 0
    for index, (number, text) in enumerate(numbered):
        field = _first_field(text, delimiter)
        if index == 0 and _HEADER.fullmatch(field):
            warn(f"crawler: {source}:{number}: header line {text!r} skipped")
            continue
        try:
            seed = parse_seed(field)
            if any(c.isspace() for c in field):
                raise InvalidURL(f"a URL holds no space: {field!r} (write %20 for a space that belongs to it)")
        except InvalidURL as exc:
            bad += 1
            if bad <= REPORTED:
                warn(f"crawler: {source}:{number}: {exc} (skipped)")
            continue
        seeds.append(seed)
    if bad > REPORTED:
        warn(f"crawler: {source}: ... and {plural(bad - REPORTED, 'more bad line')} (skipped)")
    return seeds


def _table_delimiter(sample: list[str]) -> str | None:
    """The delimiter that splits every line of ``sample`` in two fields or more, or None."""
    for delimiter in _DELIMITERS:
        if sample and all(len(_fields(text, delimiter)) >= 2 for text in sample):
            return delimiter
    return None


def _first_field(text: str, delimiter: str | None) -> str:
    return text if delimiter is None else (_fields(text, delimiter) or [""])[0].strip()


def _fields(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:   # a stray quote, say: not a line of a table
        return [text]
