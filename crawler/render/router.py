"""Every request of a rendered page, routed through the gate (``gate.judge``) and made by the
crawler's fetcher; the answer handed back to the browser (Playwright's ``page.route``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Route, WebSocketRoute

from crawler.errors import BlockedAddress, FetchError, ServerBusy
from crawler.fetcher import Fetcher
from crawler.models import RenderBlock, Response
from crawler.render.gate import Ask, Blocked, Tally, judge

# Headers that described the bytes on the wire: the fetcher hands over the body decoded and whole.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"})
# Request headers the browser sets that the fetched answer may depend on; cookies stay the fetcher's.
_PASSED_ON = ("accept", "accept-language", "referer", "range")

# Why a frame may not load a URL (scope, robots.txt), and the rule's words; None: it may.
NavigationCheck = Callable[[str], Awaitable[tuple[RenderBlock, str] | None]]


def browser_headers(response: Response) -> dict[str, str]:
    """A response's headers as the browser is to see them (several of one name joined, as HTTP allows;
    Set-Cookie lines kept apart by newlines, which Playwright splits)."""
    out: dict[str, str] = {}
    for name, value in response.headers:
        key = name.lower()
        if key in _WIRE_HEADERS:
            continue
        out[key] = f"{out[key]}{chr(10) if key == 'set-cookie' else ', '}{value}" if key in out else value
    return out


class Router:
    """The route handler of one page: ``document`` is its HTTP response, ``navigation`` checks a
    frame's navigation (scope, robots.txt) and says why it is refused, or None."""

    def __init__(self, fetcher: Fetcher, document: Response, blocked_kinds: frozenset[str],
                 navigation: NavigationCheck) -> None:
        self.fetcher = fetcher
        self.document = document
        self.blocked_kinds = blocked_kinds
        self.navigation = navigation
        self.tally = Tally(last_change=time.monotonic())
        self.served = False
        self._pending: set[asyncio.Task[object]] = set()

    async def handle(self, route: Route) -> None:
        # Playwright runs each handler in a task of its own: nothing may escape from here, and a
        # page closed under a request (the deadline, the page done) ends the request quietly.
        tally = self.tally
        tally.in_flight += 1
        tally.last_change = time.monotonic()
        task = asyncio.current_task()
        if task is not None:
            self._pending.add(task)
        try:
            await self._answer(route)
        except PlaywrightError:
            pass   # the page went away while we fetched: nobody is waiting for this answer
        finally:
            if task is not None:
                self._pending.discard(task)
            tally.in_flight -= 1
            tally.last_change = time.monotonic()

    def cancel_pending(self) -> None:
        """Cancel the requests still under way once the page is done with (closed, crashed, past its
        deadline): no fetch for a page that is gone holds a connection until its own timeout."""
        for task in self._pending:
            task.cancel()

    async def _answer(self, route: Route) -> None:
        request = route.request
        frame = request.frame if request.is_navigation_request() else None
        ask = Ask(request.url, request.method, request.resource_type, request.is_navigation_request(),
                  frame is not None and frame.parent_frame is None)
        verdict, blocked = judge(ask, document_served=self.served, blocked_kinds=self.blocked_kinds)
        if verdict == "document":
            self.served = True
            doc = self.document
            await route.fulfill(status=doc.status, headers=browser_headers(doc), body=doc.body)
            return
        if verdict == "navigate":
            refused = await self.navigation(ask.url)
            if refused is not None:
                verdict, blocked = "block", Blocked(refused[0], ask.url, refused[1])
        if verdict == "skip":
            self.tally.skipped += 1
            await route.abort("blockedbyclient")
            return
        if blocked is not None:
            self.tally.blocked.append(blocked)
            await route.abort("blockedbyclient")
            return
        await self._fetch(route, ask)

    async def _fetch(self, route: Route, ask: Ask) -> None:
        sent = {k: v for k, v in route.request.headers.items() if k.lower() in _PASSED_ON}
        try:
            response = await self.fetcher.fetch(ask.url, headers=sent or None)
        except ServerBusy as err:   # a 429 or 5xx is an answer for the page's script to see
            if err.response is None:
                raise
            response = err.response
        except BlockedAddress as err:
            self.tally.blocked.append(Blocked("address", ask.url, err.message or err.code))
            await route.abort("blockedbyclient")
            return
        except FetchError:
            self.tally.failed += 1
            await route.abort("failed")
            return
        self.tally.fetched += 1
        await route.fulfill(status=response.status, headers=browser_headers(response), body=response.body)

    async def websocket(self, ws: WebSocketRoute) -> None:
        """A WebSocket is never connected: the fetcher cannot carry one through the gate."""
        self.tally.blocked.append(Blocked("websocket", ws.url, "WebSocket"))
        with contextlib.suppress(PlaywrightError):
            await ws.close(code=1008, reason="blocked by the crawler")
