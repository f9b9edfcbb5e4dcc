"""``crawler extract``: try extraction rules on one page and print its record as JSON, for writing
rules; or run them again over every page a job stored.

    crawler extract URL --rules FILE                    fetch URL (the crawler's fetcher: timeouts,
                                                        the SSRF guard) and extract
    crawler extract --html FILE --url URL --rules FILE  read the page from a file: no request at all
    crawler extract --db JOB --rules FILE               every stored body of JOB, no request
                                                        (``crawler.extract_db``)

The page goes through the crawl's own parse stage (``visit.record_of``), so what is printed is
what a crawl with ``--extract FILE`` would store for it. robots.txt is not read: this is one page a
user asked for by name, as a browser would fetch it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.extraction.check import check_extraction
from crawler.extraction.rules import Rules
from crawler.models import FrontierItem, PageRecord, Response
from crawler.parse_stage import ParseOptions, ParseStage
from crawler.scope import Scope
from crawler.urls import canonicalize, hostname


def extract(
    url: Annotated[str | None, typer.Argument(metavar="URL", help="The page to fetch and extract.",
                                              show_default=False)] = None,
    rules: Annotated[str | None, typer.Option("--rules", metavar="FILE", help="Extraction rules (TOML), as crawl "
                                              "--extract takes them.", show_default=False)] = None,
    html: Annotated[str | None, typer.Option("--html", metavar="FILE", help="Read the page from this file (with "
                                             "--url): no request.")] = None,
    page_url: Annotated[str | None, typer.Option("--url", metavar="URL", help="With --html: the URL the page was at "
                                                 "(it picks the page type and resolves relative URLs).")] = None,
    plugin: Annotated[str | None, typer.Option(metavar="MODULE:FUNCTION", help="A Python function called with the "
                                               "page; its dict is merged into data.")] = None,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Deadline for the request.")] = 30.0,
    db: Annotated[str | None, typer.Option(metavar="PATH", help="Run the rules again over every page this job "
                                           "stored (no request); the job keeps the new values and rules.",
                                           show_default=False)] = None,
    workers: Annotated[str, typer.Option(metavar="N", help="With --db: worker processes (auto: one per "
                                         "core).")] = "auto",
) -> None:
    """Try extraction rules on one page and print its record as JSON; with --db, run them again over
    every page a job stored."""
    if not rules and not plugin:
        raise UsageError("crawler extract needs --rules FILE (or --plugin MODULE:FUNCTION)")
    found_rules = check_extraction(rules or "", plugin or "")
    if db is not None:
        if url is not None or html is not None or page_url is not None:
            raise UsageError("crawler extract --db JOB reads the job's stored pages: give no URL, --html or --url")
        from crawler import extract_db
        count = extract_db.workers_of(workers)
        print(extract_db.run(db, found_rules, rules or "", plugin or "", count))
        # What the new rules matched, said as a crawl's summary says it.
        from crawler import coverage
        coverage.tell(db, lambda line: print(line, file=sys.stderr), rules=rules or "")
        return
    if html is not None:
        if url is not None or page_url is None:
            raise UsageError("crawler extract --html FILE needs --url URL (the page's address), and no URL argument")
        page = _canonical(page_url, "--url")
        body = _read(html)
        response = Response(page, page, 200, "OK", "HTTP/1.1", (("content-type", "text/html"),), body, 0)
        record = asyncio.run(_record(response, found_rules, plugin or "", page))
    elif url is not None:
        page = _canonical(url, "URL")
        record = asyncio.run(_fetched(page, found_rules, plugin or "", timeout))
    else:
        raise UsageError("give the page: crawler extract URL --rules FILE, or --html FILE --url URL")
    print(json.dumps(as_json(record), ensure_ascii=False, indent=2))


def as_json(record: PageRecord) -> dict[str, Any]:
    """The part of a page record ``crawler extract`` prints: where the page came from and what the
    rules made of it (``data`` null when no page type applied or the page is no HTML)."""
    found = record.extracted
    return {
        "url": record.final_url, "status": record.status, "content_type": record.content_type,
        "page_type": found.page_type if found else None,
        "data": found.data if found else None,
        "empty": list(found.empty) if found else [],
        "bad_type": list(found.bad_type) if found else [],
        "error": (found.error if found else None) or record.error,
        "error_message": (found.error_message if found else None) or record.error_message,
    }


def _canonical(url: str, what: str) -> str:
    page = canonicalize(url)
    if page is None:
        raise UsageError(f"{what} {url!r} is not an absolute http or https URL")
    return page


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --html {path}: {exc.strerror or exc}") from None


def _options(rules: Rules | None, plugin: str, url: str) -> ParseOptions:
    return ParseOptions(Scope("any", frozenset({hostname(url) or ""})), rules=rules, plugin=plugin)


async def _record(response: Response, rules: Rules | None, plugin: str, url: str) -> PageRecord:
    from crawler.visit import record_of
    async with ParseStage("async", 1, _options(rules, plugin, url)) as stage:
        return await record_of(FrontierItem(0, url, 0), response, stage, keep_bodies=False)


async def _fetched(url: str, rules: Rules | None, plugin: str, deadline: float) -> PageRecord:
    """Fetch ``url`` with the crawl's fetcher: its host may be private (a seed's may), a redirect
    to another private host may not."""
    from crawler.addresses import AddressPolicy
    from crawler.fetcher import Fetcher
    settings = Settings(timeout=deadline).validated()
    policy = AddressPolicy(seed_hosts=frozenset({hostname(url) or ""}))
    async with Fetcher(settings, policy=policy) as fetcher:
        response = await fetcher.fetch(url)
    return await _record(response, rules, plugin, url)
