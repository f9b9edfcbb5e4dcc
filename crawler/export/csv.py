"""CSV: a header row of the selected fields, then one row per record; null is an empty cell, lists
and objects (the extraction's) are JSON text, and text that a spreadsheet would run as a formula
starts with ``'`` unless the selection asks for raw cells (``crawler.export.cells``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, BinaryIO

from crawler.export.base import Selection
from crawler.export.cells import cells
from crawler.storage.read import JobReader


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(selection.fields)
        n = 0
        for record in selection.records(jobs):
            writer.writerow(cells(map(_cell, record.values()), selection.raw_cells))
            n += 1
        text.flush()
    finally:
        text.detach()   # the caller owns ``out``
    return n


def _cell(value: Any) -> Any:
    """Lists and objects (jsonld, opengraph, a data.NAME of many values) as JSON text."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value
