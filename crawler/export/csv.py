"""CSV: a header row of the selected fields, then one row per record; null is an empty cell, and text
that a spreadsheet would run as a formula starts with ``'`` unless the selection asks for raw cells
(``crawler.export.cells``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import BinaryIO

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
            writer.writerow(cells(record.values(), selection.raw_cells))
            n += 1
        text.flush()
    finally:
        text.detach()   # the caller owns ``out``
    return n
