"""CSV cells that a spreadsheet will show, not run.

A page's title, description or link text is whatever its site wrote: ``=HYPERLINK(...)`` or
``=cmd|' /C calc'!A0`` in a CSV cell is a formula to Excel, LibreOffice and Google Sheets. As OWASP
and ASVS 1.2.10 advise, a text cell that starts with ``= + - @``, a tab, a carriage return, a line
feed or a NUL (or the full-width ``＝ ＋ － ＠``, which some spreadsheets read as their ASCII forms)
gets a leading ``'``, which spreadsheets take as "text" and do not show. That alters the data for a
script reading the file, so ``--raw-cells`` writes cells as stored. Numbers are never altered.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: object) -> object:
    """``value``, with a ``'`` before it if it is text that a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def cells(values: Iterable[object], raw: bool) -> list[object]:
    """A CSV row: None as an empty cell; text escaped for spreadsheets unless ``raw``."""
    row = ["" if v is None else v for v in values]
    return row if raw else [safe_cell(v) for v in row]
