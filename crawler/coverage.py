"""Coverage is never silent: for each page type and field of a job's extraction, on how many pages
it matched, matched nothing (empty) or failed its type, and how many pages are ``extract_missing``
(a required field had no value) or ``extract_failed`` (the plugin failed).

The crawl's summary (``run_end``), ``crawler stats`` (text and ``--json``) and ``crawler extract
--db`` print it with ``tell`` (or ``lines`` and ``warnings``); the report draws the same numbers
(``report_sections``). A job without extraction prints nothing. A field that matched nothing on
any page is named in one line on stderr::

    crawler: field "price" of page type "product" matched nothing on 120 pages: check its selector
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.printable import printable
from crawler.storage.extracted_read import Coverage, PageTypeCount, coverage, html_pages, page_types
from crawler.storage.read import JobReader
from crawler.wording import plural


@dataclass(frozen=True, slots=True)
class PageTypeCoverage:
    """One page type (None: pages no page type applied to, with the plugin's data alone), the pages
    it applied to, its extraction errors, and each of its fields' coverage in the rules' order."""

    page_type: str | None
    pages: int
    extract_missing: int
    extract_failed: int
    fields: tuple[Coverage, ...]


def combine(types: list[PageTypeCount], fields: list[Coverage]) -> list[PageTypeCoverage]:
    """The page types (in the order given) with their fields."""
    return [PageTypeCoverage(t.page_type, t.pages, t.extract_missing, t.extract_failed,
                             tuple(f for f in fields if f.page_type == t.page_type)) for t in types]


def job_coverage(path: str | Path) -> list[PageTypeCoverage]:
    """The coverage of the job at ``path``: empty when extraction never ran on its pages."""
    with JobReader(path) as job:
        return combine(page_types(job), coverage(job))


def as_json(found: list[PageTypeCoverage]) -> list[dict[str, Any]]:
    """As ``crawler stats --json`` gives it: a list of page types, each with its fields by name."""
    return [{"page_type": t.page_type, "pages": t.pages, "extract_missing": t.extract_missing,
             "extract_failed": t.extract_failed,
             "fields": {f.field: {"pages": f.pages, "matched": f.matched, "empty": f.empty, "bad_type": f.bad_type}
                        for f in t.fields}}
            for t in found]


def _kind(page_type: str | None) -> str:
    return f'page type "{page_type}"' if page_type is not None else "no page type (the plugin's data alone)"


def lines(found: list[PageTypeCoverage]) -> list[str]:
    """The coverage as aligned text (the label column of ``crawler stats``); none without extraction."""
    out: list[str] = []
    for n, t in enumerate(found):
        errors = [f"{count:,} {code}" for code, count in (("extract_missing", t.extract_missing),
                                                             ("extract_failed", t.extract_failed)) if count]
        head = f"{_kind(t.page_type)}: {plural(t.pages, 'page')}" + (f" ({', '.join(errors)})" if errors else "")
        out.append(f"{'extraction' if n == 0 else '':<13}{head}")
        rows = [("field", "matched", "empty", "bad type")]
        rows += [(f.field, f"{f.matched:,}", f"{f.empty:,}", f"{f.bad_type:,}") for f in t.fields]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        out += [f"{'':<15}{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}"
                for r in rows] if t.fields else []
    return [printable(line) for line in out]


def warnings(found: list[PageTypeCoverage]) -> list[str]:
    """One line for each field that gave no value on any page: a selector, regex or type to check."""
    out = []
    for t in found:
        for f in t.fields:
            if f.matched > 0 or f.pages == 0:
                continue
            what = f'field "{f.field}" of {_kind(t.page_type)}'
            if f.bad_type == 0:
                out.append(f"{what} matched nothing on {plural(f.pages, 'page')}: check its selector")
            elif f.empty == 0:
                out.append(f"{what} failed its type on all {plural(f.pages, 'page')}: check its type and regex")
            else:
                out.append(f"{what} gave no value on {plural(f.pages, 'page')} (matched nothing on {f.empty:,}, "
                           f"failed its type on {f.bad_type:,}): check its selector, regex and type")
    return [printable(line) for line in out]


def tell(path: str | Path, say: Callable[[str], None], rules: str = "") -> list[PageTypeCoverage]:
    """Print the coverage of the job at ``path`` (stdout), and ``say`` (stderr) each field that gave
    no value on any page, as ``crawler: field ...``; with ``rules`` (the rules file the job was
    given), say so too when no page type of it applied to any HTML page. Nothing for a job without
    extraction."""
    with JobReader(path) as job:
        found = combine(page_types(job), coverage(job))
        pages = html_pages(job) if rules and not found else 0
    for line in lines(found):
        print(line)
    for line in warnings(found):
        say(f"crawler: {line}")
    if pages:
        say(printable(f"crawler: no page type of {rules} applied to any of {plural(pages, 'HTML page')}: "
                      "check their match regexes"))
    return found
