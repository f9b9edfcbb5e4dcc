"""The link graph as CSV: ``source,target,nofollow,anchor,kind``, a row for every link of every selected page.

The target is the canonical URL, whether the crawl followed it or not (out of scope, nofollow,
never fetched), so broken and external links are visible; ``nofollow`` is 1 or 0; ``anchor`` the
link's text (whitespace collapsed, at most 200 characters; empty for pages crawled before anchors
were kept); ``kind`` what the page uses the target as: ``page`` (an ``<a>`` or ``<area>`` link),
``stylesheet``, ``script``, ``image``, ``iframe``, ``media``, ``font``, ``icon``, ``object``
(``crawler.references``). Merged jobs give the links of each URL's latest fetch. ``--status`` picks the linking
pages; ``--target-status`` the links whose target answered so (its latest fetch over the jobs), so
``--target-status 404`` lists every page that links to a 404. Text cells are escaped for
spreadsheets unless the selection asks for raw cells (``crawler.export.cells``).
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Sequence
from typing import BinaryIO

from crawler.export.base import Selection
from crawler.export.cells import cells
from crawler.storage.read import JobReader

HEADER = ("source", "target", "nofollow", "anchor", "kind")


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    """Returns how many links (rows) were written."""

    @functools.lru_cache(maxsize=65536)   # a page's neighbours share their targets: the nav, the footer
    def target_status(target: str) -> int | None:
        fetches = [(*answer, n) for n, job in enumerate(jobs) if (answer := job.answer(target)) is not None]
        # The latest fetch wins; between two in the same second, the later job on the command line.
        return max(fetches, key=lambda f: (f[0], f[2]))[1] if fetches else None

    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(HEADER)
        n = 0
        for job, page in selection.pages(jobs):
            for target, nofollow, anchor, kind in job.links(page.url_id):
                if selection.target_statuses and not selection.wants_target(target_status(target)):
                    continue
                writer.writerow(cells((page.url, target, int(nofollow), anchor, kind), selection.raw_cells))
                n += 1
        text.flush()
    finally:
        text.detach()   # the caller owns ``out``
    return n
