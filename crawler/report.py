"""``crawler report``: one self-contained HTML page of what a crawl found.

    gather(reader) -> Report       the numbers, through ``storage.report_queries`` (the one reader)
    render(report) -> str chunks   pure: numbers in, HTML out; every text from the crawl escaped
                                   (the sections in ``report_sections``, the style and script in
                                   ``report_style``, the charts in ``report_svg``)
    write_report(dbs, path)        both, into ``--out`` (``crawler.output``: a regular file atomically)

The page needs nothing from the network. Its CSS, SVG charts (``report_svg``) and a small script
that sorts tables are inline, and its Content-Security-Policy allows only those two blocks (by
hash) and nothing else: no image, font, frame or connection, so even markup that slipped past the
escaping could fetch nothing. Titles, URLs, anchors and error messages are hostile input: each is
escaped where it is written, and only http(s) URLs become links.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from crawler.coverage import PageTypeCoverage, combine
from crawler.output import open_output
from crawler.report_sections import CHARTS, SECTIONS, shown
from crawler.report_style import CSP, CSS, SCRIPT
from crawler.storage.report_queries import ReportReader
from crawler.storage.report_rows import (
    BrokenLink,
    DepthRow,
    Destination,
    DuplicateGroup,
    ErrorRow,
    Exclusion,
    HostRow,
    JobInfo,
    Listing,
    PageRow,
    Redirect,
    Rendering,
    Timeline,
    Totals,
)

__all__ = ["CHARTS", "SECTIONS", "Report", "gather", "render", "write_report"]

# How much of each list the page shows; the rest is counted ("... and N more").
HOSTS, BROKEN, REFERRERS, REDIRECTS, DESTINATIONS = 50, 2_000, 5, 200, 20
DUPLICATE_GROUPS, DUPLICATE_URLS, NEAR_DUPLICATES, EXAMPLES, OUTLIERS, SEEDS = 50, 5, 100, 3, 25, 20
RENDER_FAILED = 20
TIMELINE_BUCKETS = 120


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the page shows, as plain values."""

    generated: str
    jobs: list[JobInfo]
    seeds: Listing[str]
    totals: Totals
    timeline: Timeline
    statuses: list[tuple[int | None, int]]
    errors: list[ErrorRow]
    depths: list[DepthRow]
    hosts: Listing[HostRow]
    broken: Listing[BrokenLink]
    broken_links: int
    redirects: Listing[Redirect]
    destinations: Listing[Destination]
    duplicates: Listing[DuplicateGroup]
    duplicate_pages: int
    near_duplicates: Listing[tuple[str, str]]
    extraction: list[PageTypeCoverage]
    exclusions: list[Exclusion]
    slowest: list[PageRow]
    largest: list[PageRow]
    rendering: Rendering | None = None   # None: no page was rendered (--render never), and the page has no such section


def gather(reader: ReportReader, generated: datetime | None = None) -> Report:
    """Run every query the page needs, each returning at most what the page shows."""
    when = (generated or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Report(
        when, reader.jobs(), reader.seeds(SEEDS), reader.totals(), reader.timeline(TIMELINE_BUCKETS),
        reader.statuses(), reader.errors(), reader.depths(), reader.hosts(HOSTS),
        reader.broken_links(BROKEN, REFERRERS), reader.broken_link_count(), reader.redirects(REDIRECTS),
        reader.destinations(DESTINATIONS), reader.duplicates(DUPLICATE_GROUPS, DUPLICATE_URLS),
        reader.duplicate_pages(), reader.near_duplicates(NEAR_DUPLICATES),
        combine(reader.page_types(), reader.coverage()), reader.exclusions(EXAMPLES),
        reader.slowest(OUTLIERS), reader.largest(OUTLIERS), reader.rendering(RENDER_FAILED))


def write_report(dbs: Sequence[str | Path], path: str | Path) -> Report:
    """The report of the jobs ``dbs`` (merged) written to ``path``, all or nothing. The output file
    is opened first, so an unwritable ``path`` fails before any job is read."""
    with open_output(path) as out, ReportReader(dbs) as reader:
        report = gather(reader)
        for chunk in render(report):
            out.write(chunk.encode("utf-8"))
    return report


def render(report: Report) -> Iterator[str]:
    """The page, in chunks (a section each)."""
    sections = shown(report)
    name = ", ".join(Path(job.path).name for job in report.jobs)
    yield (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
           '<meta name="referrer" content="no-referrer"><meta name="viewport" content="width=device-width,initial-scale=1">'
           f"<title>Crawl report: {escape(name)}</title><style>{CSS}</style></head><body>\n"
           f"<h1>Crawl report</h1><p class=\"muted\">{escape(name)}, made {escape(report.generated)}</p>\n<nav>"
           + "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title, _ in sections) + "</nav>\n")
    for _, _, section in sections:
        yield section(report) + "\n"
    yield f"<script>{SCRIPT}</script></body></html>\n"
