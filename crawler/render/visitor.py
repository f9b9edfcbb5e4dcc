"""The visitor with a browser behind it: fetch over HTTP as always, then render the pages that need
it (``--render always``: every 2xx HTML page; ``auto``: those ``heuristic.looks_scripted`` picks),
and make the record from the rendered DOM through the same parse stage.

The record keeps the HTTP response (status, headers, and its body as ``response_body``); its
``body`` is the rendered DOM, and ``rendered`` says why it was rendered and what its requests came
to (``auto: empty #app; 12 chars of text, 3 scripts; 4 requests, 1 blocked (1 address)``);
``render_blocks`` counts the refused requests by why.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from crawler.config import Settings
from crawler.errors import FetchError
from crawler.models import FrontierItem, PageRecord, RenderBlock
from crawler.parse_stage import ParseOptions
from crawler.render.available import check_available
from crawler.render.heuristic import why_render
from crawler.robots import RobotsCache
from crawler.scope import Scope
from crawler.urls import canonicalize, origin
from crawler.visit import LocalVisitor, Visitor, record_of

if TYPE_CHECKING:
    from crawler.render.browser import Browser
    from crawler.render.router import NavigationCheck


class RenderingVisitor:
    """A ``LocalVisitor`` whose HTML pages a browser renders where ``settings.render`` says so."""

    def __init__(self, inner: LocalVisitor, browser: Callable[[], Awaitable[Browser]], settings: Settings,
                 scope: Callable[[], Scope],
                 robots: Callable[[], RobotsCache | None]) -> None:
        self.inner = inner
        self.browser = browser
        self.settings = settings
        self.scope = scope
        self.robots = robots
        self.blocked_kinds = frozenset(settings.render_block)

    async def visit(self, item: FrontierItem, fetched: Callable[[], None]) -> PageRecord:
        response = await self.inner.fetch(item, fetched)
        why = why_render(self.settings.render, response) if item.fetch_as == "page" else None   # never a check
        if why is None:
            return await self.inner.record(item, response)
        from crawler.render.rendering import render  # Playwright is imported with the first page to render
        rendered = await render(await self.browser(), self.inner.fetcher, response, blocked_kinds=self.blocked_kinds,
                                navigation=self._navigation_check(response.final_url, item.depth),
                                deadline=self.settings.timeout)
        if len(rendered.body) > self.settings.max_bytes:
            record = await self.inner.record(item, response)
            record.rendered = f"{why}; rendered DOM over {self.settings.max_bytes} bytes: the HTTP body is kept"
            return record
        record = await record_of(item, replace(response, body=rendered.body), self.inner.stage, self.inner.settings.bodies)
        record.rendered = f"{why}; {rendered.note()}"
        record.render_blocked = len(rendered.tally.blocked)
        record.render_blocks = rendered.tally.by_why()
        record.response_body = response.body if self.inner.settings.bodies else None
        return record

    def _navigation_check(self, page_url: str, depth: int) -> NavigationCheck:
        async def check(url: str) -> tuple[RenderBlock, str] | None:
            """Why a frame of the page may not load ``url`` (scope, robots.txt on the page's site), or None."""
            canonical = canonicalize(url)
            if canonical is None:
                return "scope", "not a URL the crawler fetches"
            exclusion = self.scope().decide(canonical, depth)
            if exclusion is not None:
                return "scope", f"frame leaves the job's scope ({exclusion})"
            robots = self.robots() if self.settings.robots else None
            if robots is not None and origin(canonical) == origin(page_url):
                try:
                    await robots.check(canonical, origin(canonical))
                except FetchError as err:
                    return "robots.txt", err.code
            return None
        return check

    def update(self, options: ParseOptions) -> None:
        self.inner.update(options)


@contextlib.asynccontextmanager
async def rendering(visitor: LocalVisitor, settings: Settings, scope: Callable[[], Scope],
                    robots: Callable[[], RobotsCache | None], processes: int) -> AsyncIterator[Visitor]:
    """A ``RenderingVisitor`` around ``visitor``, with this process's browser (its share of
    ``--render-concurrency`` among ``processes``), closed on the way out."""
    path = check_available(settings)
    total = settings.render_concurrency or os.cpu_count() or 1
    concurrency = max(1, math.ceil(total / max(1, processes)))
    async with contextlib.AsyncExitStack() as stack:
        browser: Browser | None = None
        starting = asyncio.Lock()

        async def the_browser() -> Browser:
            """This process's browser, made (and Playwright imported) when the first page needs it."""
            nonlocal browser
            async with starting:
                if browser is None:
                    from crawler.render.browser import Browser
                    browser = await stack.enter_async_context(Browser(settings, path, concurrency))
            return browser
        yield RenderingVisitor(visitor, the_browser, settings, scope, robots)
