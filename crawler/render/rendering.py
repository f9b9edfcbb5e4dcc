"""Render one page: its HTTP response into a browser page, every request through the router, wait
until it settles, take the DOM.

The deadline of the render is ``--timeout``, from the page's opening (a browser launched for it
has its own limit, ``browser.OPEN_WITHIN``). The page is loaded from the response already
fetched (no second request for it), then given until ``SETTLE`` of the deadline has passed to
settle: its load event fired and no request of its own under way for ``QUIET`` seconds. A page
that never settles (a poll every second, a stream) is taken as it is then, and its note says so.
A browser that crashes, hangs or misses the deadline fails the page with the retryable
``RenderFailed``; so does a page whose renderer crashes (Chromium's "Aw, Snap!": its process died,
the browser lives on), at once, and the browser takes the next page.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from playwright.async_api import Error as PlaywrightError

from crawler.errors import RenderFailed
from crawler.fetcher import Fetcher
from crawler.models import Response
from crawler.render.browser import Browser, BrowserBroken
from crawler.render.gate import Tally
from crawler.render.router import NavigationCheck, Router

CRASHED = "the page crashed (its renderer died)"
QUIET = 0.5      # seconds without a request of the page's under way: it has settled
SETTLE = 0.75    # the share of the deadline a page may take to settle; the rest is for taking its DOM
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered page: its DOM as UTF-8 (with a byte-order mark, which every HTML decoder reads
    before any header or ``<meta>`` charset), what its requests came to, and whether it settled."""

    body: bytes
    tally: Tally
    settled: bool
    final_url: str

    def note(self) -> str:
        return self.tally.note() + ("" if self.settled else ", did not settle")


async def render(browser: Browser, fetcher: Fetcher, response: Response, *, blocked_kinds: frozenset[str],
                 navigation: NavigationCheck, deadline: float) -> Rendered:
    """Render ``response`` (an HTML page fetched over HTTP) in ``browser`` within ``deadline`` seconds;
    ``RenderFailed`` if it cannot."""
    timeout = deadline
    url = response.final_url
    router = Router(fetcher, response, blocked_kinds, navigation)
    loaded, crashed = asyncio.Event(), asyncio.Event()
    try:
        async with browser.page() as page, asyncio.timeout(timeout):   # the deadline starts with the page open
            started = time.monotonic()
            page.on("load", lambda _: loaded.set())
            page.on("crash", lambda _: crashed.set())
            await page.route("**/*", router.handle)
            await page.route_web_socket("**/*", router.websocket)
            await page.goto(url, wait_until="commit")
            settled = await _settle(router.tally, loaded, crashed, started + SETTLE * timeout)
            html = await page.content()
            final = page.url
    except PageCrashed:
        raise RenderFailed(url, CRASHED) from None
    except TimeoutError:
        raise RenderFailed(url, f"no rendered page within {timeout:g}s") from None
    except BrowserBroken as exc:
        raise RenderFailed(url, str(exc)) from None
    except PlaywrightError as exc:
        if crashed.is_set():
            raise RenderFailed(url, CRASHED) from None
        raise RenderFailed(url, f"the browser failed: {exc.message.splitlines()[0][:200]}") from None
    finally:
        router.cancel_pending()   # requests the page no longer waits for (it crashed, or its deadline passed)
    return Rendered(_BOM + html.encode("utf-8", "replace"), router.tally, settled, final)


class PageCrashed(Exception):
    """The page's renderer died while it settled."""


async def _settle(tally: Tally, loaded: asyncio.Event, crashed: asyncio.Event, until: float) -> bool:
    """Wait for the load event and ``QUIET`` seconds without a request under way, until ``until``
    (monotonic); whether the page settled. ``PageCrashed`` as soon as its renderer dies: a request
    still under way would otherwise hold a dead page until ``until``."""
    while True:
        if crashed.is_set():
            raise PageCrashed
        now = time.monotonic()
        if loaded.is_set() and tally.in_flight == 0 and now - tally.last_change >= QUIET:
            return True
        if now >= until:
            return False
        await asyncio.sleep(min(0.05, until - now))
