"""CSV: a header row of the selected fields, then one row per record; null is an empty cell."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import BinaryIO

from crawler.export.base import Selection
from crawler.storage.read import JobReader


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(selection.fields)
        n = 0
        for record in selection.records(jobs):
            writer.writerow(["" if v is None else v for v in record.values()])
            n += 1
        text.flush()
    finally:
        text.detach()   # the caller owns ``out``
    return n
