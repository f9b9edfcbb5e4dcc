"""One URL's visit after politeness has let it go: fetch it, parse it, make its page record.

A ``Visitor`` does this either here (``LocalVisitor``: the crawl's fetcher and parse stage) or in
worker processes (``crawler.workers.WorkerPool``, with ``--workers``), which run a
``LocalVisitor`` of their own. The scheduler does not care which: it asks for a record and is told,
through ``fetched``, when the request is over, so it frees the host and the global permit before
the page is parsed.

Every answer's record is made here, by ``record_of``: a page, a 404, a 304, and a 429 or 5xx on
the URL's last attempt (the retry policy gives up on it: ``fetcher.gives_up``), which the visitor
hands back on the ``ServerBusy`` it raises so that the scheduler both stores it and tells its
host's pace of the strain. A 5xx with retries left is raised bare: nothing parses a body that will
not be stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from crawler.checks import check
from crawler.config import Settings
from crawler.content_types import ContentTypes
from crawler.errors import OutOfScope, ParseFailed, ServerBusy
from crawler.fetcher import Fetcher, HopCheck, gives_up
from crawler.models import FrontierItem, PageRecord, Response
from crawler.parse_stage import ParseOptions, ParseStage
from crawler.parser import is_html, media_type
from crawler.requisites import reference_record
from crawler.robots import RobotsCache
from crawler.scope import Scope
from crawler.session.jar import redacted
from crawler.spool import Spool, folder_of
from crawler.storage.schema import stored_time
from crawler.urls import origin

if TYPE_CHECKING:
    from crawler.session.login import Session


class Visitor(Protocol):
    async def visit(self, item: FrontierItem, fetched: Callable[[], None]) -> PageRecord:
        """Fetch ``item`` (following redirects, each hop checked), parse it and return its record.
        Call ``fetched()`` once the request is over, before parsing, where that is known apart
        (the scheduler calls it itself when the visit ends, so a visitor may leave it to that).
        Raise ``FetchError`` when the request failed (the scheduler's retry policy decides what
        happens next): a 429 or 5xx on the URL's last attempt is a ``ServerBusy`` whose ``record``
        is the answer's, to store."""
        ...

    def update(self, options: ParseOptions) -> None:
        """The job's scope changed (another process added seeds)."""
        ...


def redirect_check(scope: Callable[[], Scope], robots: RobotsCache | None, depth: int) -> HopCheck:
    """What every redirect hop of a URL at ``depth`` must pass: the job's scope (as it is when the
    hop comes) and, when obeyed, the target's robots.txt. A check or a requisite (``depth``
    ``REFERENCE_DEPTH``) is one hop past the scope: its hops pass robots.txt only."""
    async def check(url: str) -> None:
        exclusion = None if depth == REFERENCE_DEPTH else scope().decide(url, depth)
        if exclusion is not None:
            raise OutOfScope(url, f"redirect leaves the job's scope ({exclusion})")
        if robots is not None:
            await robots.check(url, origin(url))
    return check


REFERENCE_DEPTH = -1   # what the hop check of a check or a requisite is asked for (redirect_check)


def robots_reader(fetcher: Fetcher, settings: Settings, now: Callable[[], float]) -> RobotsCache:
    """The robots.txt reader of a crawl, and of each worker process: through their fetcher, at most
    five redirects and 512 KiB."""
    return RobotsCache(lambda u: fetcher.fetch(u, max_redirects=5, max_bytes=512 * 1024),
                       settings.user_agent, settings.robots_retry_after, now)


def local_visitor(fetcher: Fetcher, stage: ParseStage, settings: Settings, scope: Callable[[], Scope],
                  robots: Callable[[], RobotsCache | None], session: Session | None = None) -> LocalVisitor:
    """The visitor of a crawl without worker processes, and of each worker process: every redirect
    hop checked against the scope (``scope()``, as it is then) and, when obeyed, robots.txt; each
    page checked against the ``session``'s "served logged out" (``crawler.session``)."""
    return LocalVisitor(fetcher, stage, lambda depth: redirect_check(scope, robots() if settings.robots else None, depth),
                        settings, session)


def conditional_headers(item: FrontierItem) -> dict[str, str] | None:
    """The validators of the stored copy, for a conditional recrawl."""
    headers = {}
    if item.etag:
        headers["If-None-Match"] = item.etag
    if item.last_modified:
        headers["If-Modified-Since"] = item.last_modified
    return headers or None


async def record_of(item: FrontierItem, response: Response, stage: ParseStage, keep_bodies: bool) -> PageRecord:
    """The page record of a response, through the parse stage (a check's and a requisite's beside it:
    ``crawler.requisites``)."""
    if item.fetch_as != "page":
        return reference_record(item, response, stage.options, keep_bodies)
    if response.status == 304 and (item.etag or item.last_modified):
        return PageRecord(item.id, item.depth, stored_time(), status=304,
                          elapsed_ms=response.elapsed_ms, unchanged=True)
    ctype = response.header("content-type")
    spooled = response.spooled   # a big body that is no page, in a file: only its hash and size are read here
    record = PageRecord(
        item.id, item.depth, stored_time(), final_url=response.final_url, status=response.status,
        content_type=media_type(ctype), size=len(response.body) if spooled is None else spooled.size,
        elapsed_ms=response.elapsed_ms,
        error="http_error" if response.status >= 400 else None, etag=response.header("etag"),
        last_modified=response.header("last-modified"), http_version=response.http_version,
        # No cookie value is kept: a job file is often shared, and a session cookie is a password.
        reason_phrase=response.reason_phrase, headers=redacted(response.headers),
        request_headers=redacted(response.request_headers), ip=response.ip,
        body=response.body if keep_bodies and spooled is None else None, waited_ms=response.waited_ms, spooled=spooled)
    html = 200 <= response.status < 300 and is_html(ctype)
    headers = {k.lower(): v for k, v in response.headers} if html else {}
    try:
        found = await stage.analyze(response.final_url, headers, response.body, item.depth, html, response.status)
    except ParseFailed as err:
        record.error, record.error_message = err.code, err.message[:500]
        return record
    record.content_hash = found.content_hash if spooled is None else spooled.content_hash
    if found.page is not None:
        page = found.page
        record.title, record.description, record.canonical = page.title, page.description, page.canonical
        record.noindex, record.nofollow, record.simhash = page.noindex, page.nofollow, page.simhash
        record.h1, record.lang, record.word_count = page.h1, page.lang, page.word_count
        record.links = found.outlinks
    record.extracted = found.extracted
    return record


class LocalVisitor:
    """Visits in this process, with the given fetcher and parse stage. ``hop_check(depth)`` makes
    the check of a redirect hop (``redirect_check``); ``settings`` say whether bodies are kept and
    how many retries a URL has."""

    def __init__(self, fetcher: Fetcher, stage: ParseStage, hop_check: Callable[[int], HopCheck],
                 settings: Settings, session: Session | None = None) -> None:
        self.fetcher = fetcher
        self.stage = stage
        self.hop_check = hop_check
        self.settings = settings
        self.session = session
        # The types wanted, judged on each answer's header; the bodies that are no pages, spooled.
        self.spool = Spool(ContentTypes.of(settings.accept_type, settings.reject_type),
                           folder_of(settings.db) if settings.bodies else None)

    async def visit(self, item: FrontierItem, fetched: Callable[[], None]) -> PageRecord:
        response = await self.fetch(item, fetched)
        if self.session is not None:
            await self.session.noticed()   # the cookies the response set, kept
        return await self.record(item, response)

    async def fetch(self, item: FrontierItem, fetched: Callable[[], None]) -> Response:
        """The request (redirects followed, each hop checked; conditional on a recrawl), then
        ``fetched()``. A 5xx on the URL's last attempt is raised with its record, made as every
        answer's is (``record``), before ``fetched()``: the caller notes the host's strain as soon
        as this raises, before the host's slot can go to another URL."""
        def request() -> Awaitable[Response]:
            return self.fetcher.fetch(item.url, check=self.hop_check(item.depth), headers=conditional_headers(item),
                                      spool=self.spool)

        try:
            if item.fetch_as == "check":
                return await check(self.fetcher, item.url, self.hop_check(REFERENCE_DEPTH))
            if item.fetch_as == "requisite":
                return await self.fetcher.fetch(item.url, check=self.hop_check(REFERENCE_DEPTH),
                                                headers=conditional_headers(item), spool=self.spool)
            if self.session is None:
                return await request()
            generation = self.session.generation
            return await self.session.checked(item.url, await request(), generation, request)
        except ServerBusy as busy:
            if busy.response is not None and gives_up(busy, item.attempt, self.settings):
                busy.record = await self.record(item, busy.response)
            raise
        finally:
            fetched()

    async def record(self, item: FrontierItem, response: Response) -> PageRecord:
        """The page record of ``response``, through the parse stage."""
        return await record_of(item, response, self.stage, self.settings.bodies)

    def update(self, options: ParseOptions) -> None:
        self.stage.options = options
