"""JSON lines: one object per record, its keys the selected fields in order, UTF-8 unescaped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import BinaryIO

from crawler.export.base import Selection
from crawler.storage.read import JobReader


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    n = 0
    for record in selection.records(jobs):
        out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        n += 1
    return n
