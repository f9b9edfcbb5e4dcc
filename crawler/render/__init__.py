"""Pages built by JavaScript (``--render auto|always``): a real browser behind the fetch stage, and
behind every rule the crawler keeps.

    fetch (HTTP) ─► heuristic: built by script? ─► browser (Chromium via Playwright) ─► the same parse stage
                                                   every request of the page ─► gate ─► the crawler's fetcher

Modules: ``available`` (is Playwright here, which browser), ``heuristic`` (``--render auto``'s
judgement, pure), ``gate`` (which requests a page may make, pure), ``router`` (Playwright's
``page.route`` through the gate and the fetcher), ``browser`` (one Chromium per process, bounded
and recycled), ``rendering`` (one page), ``visitor`` (the visitor that renders). Only ``visiting``
is imported without the extra ``crawler[render]`` installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from crawler.config import Settings
from crawler.robots import RobotsCache
from crawler.scope import Scope
from crawler.visit import LocalVisitor, Visitor


@contextlib.asynccontextmanager
async def visiting(visitor: LocalVisitor, settings: Settings, scope: Callable[[], Scope],
                   robots: Callable[[], RobotsCache | None], processes: int = 1) -> AsyncIterator[Visitor]:
    """``visitor`` itself with ``--render never``; else a visitor that renders, with this process's
    browser (``processes``: how many processes share ``--render-concurrency``)."""
    if settings.render == "never":
        yield visitor
        return
    from crawler.render.available import check_available
    check_available(settings)   # one line naming what to install, before Playwright is imported
    from crawler.render.visitor import rendering
    async with rendering(visitor, settings, scope, robots, processes) as renderer:
        yield renderer
