"""The link graph as CSV: ``source,target,nofollow,anchor``, a row for every link of every selected page.

The target is the canonical URL, whether the crawl followed it or not (out of scope, nofollow,
never fetched), so broken and external links are visible; ``nofollow`` is 1 or 0; ``anchor`` the
link's text (whitespace collapsed, at most 200 characters; empty for pages crawled before anchors
were kept). Merged jobs give the links of each URL's latest fetch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import BinaryIO

from crawler.export.base import Selection
from crawler.storage.read import JobReader

HEADER = ("source", "target", "nofollow", "anchor")


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    """Returns how many links (rows) were written."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(HEADER)
        n = 0
        for job, page in selection.pages(jobs):
            for target, nofollow, anchor in job.links(page.url_id):
                writer.writerow((page.url, target, int(nofollow), anchor or ""))
                n += 1
        text.flush()
    finally:
        text.detach()   # the caller owns ``out``
    return n
