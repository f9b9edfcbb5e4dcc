"""The session of one process that makes requests: its fetcher's cookie jar, the login, and the
check of each page against the recipe's "served logged out".

    LocalVisitor.fetch ─► Fetcher.fetch ─► Session.checked: logged out? ─► login once more, fetch again
                                                             still logged out? ─► SessionLost (exit 1)
    after each visit: Session.noticed ─► on_change(cookies) when the jar changed

In a crawl without worker processes there is one ``Session``, the crawl's; with ``--workers`` each
worker has its own (its requests are its own), sends the cookies its responses set to the crawl,
which keeps them (``keeper.Keeper``) and hands them on to the other workers. A page served logged
out is logged in again where it was fetched; ``generation`` counts the jar's renewals, so that
requests that were under way with the old session when another request logged in again fetch
their page again without logging in a second time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin

import httpx2
from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler.config import Settings
from crawler.errors import SessionLost
from crawler.models import Response
from crawler.parser import is_html
from crawler.session.jar import Records, changes, counting_jar, fingerprint, put, records
from crawler.session.recipe import Recipe

OnChange = Callable[[Records, bool], Awaitable[None]]   # (the jar's cookies, urgent: a login)
_ROUNDS = 3   # fetches of a page served logged out, while other workers' logins replace the session
_NOT_SENT = frozenset({"submit", "button", "image", "reset", "file"})


class Session:
    """The cookies of ``client`` (the fetcher's HTTP client) and the login of ``recipe`` (None: no
    login). ``on_change`` hears of the jar's cookies when they change."""

    def __init__(self, client: httpx2.AsyncClient, settings: Settings, recipe: Recipe | None,
                 on_change: OnChange | None = None) -> None:
        self.client = client
        client.cookies = counting_jar(client.cookies.jar)   # an empty jar yet: the session is just made
        self.jar = client.cookies.jar
        self.settings = settings
        self.recipe = recipe
        self.on_change = on_change
        self.logins = 0
        self.generation = 0
        self._lock = asyncio.Lock()
        self._changes = changes(self.jar)
        self._seen = fingerprint(self.jar)

    def load(self, cookies: Records) -> None:
        """Cookies from elsewhere (the job file, a cookies.txt, another worker): a new session."""
        put(self.jar, cookies)
        self._changes, self._seen = changes(self.jar), fingerprint(self.jar)
        self.generation += 1

    async def noticed(self, urgent: bool = False) -> None:
        """Tell ``on_change`` the jar's cookies if they changed since it last heard: looked at only
        when a cookie was set or cleared since (a site may set the same one again on every page)."""
        if changes(self.jar) == self._changes:
            return
        self._changes = changes(self.jar)
        now = fingerprint(self.jar)
        if now != self._seen:
            self._seen = now
            if self.on_change is not None:
                await self.on_change(records(self.jar), urgent)

    # -- logged out? -----------------------------------------------------------------------------

    def logged_out(self, url: str, response: Response) -> bool:
        """Whether ``response`` (to a request for ``url``) was served logged out: sent to a URL the
        recipe's ``logged_out_url`` matches, or a page with its ``logged_out`` selector. The login
        page itself, and a URL that matches ``logged_out_url`` as asked for, are not judged."""
        recipe = self.recipe
        if recipe is None or url == recipe.url:
            return False
        if recipe.logged_out_url and re.search(recipe.logged_out_url, response.final_url) \
                and not re.search(recipe.logged_out_url, url):
            return True
        if recipe.logged_out and response.final_url != recipe.url and is_html(response.header("content-type")):
            return LexborHTMLParser(response.body).css_first(recipe.logged_out) is not None
        return False

    async def checked(self, url: str, response: Response, generation: int,
                      again: Callable[[], Awaitable[Response]]) -> Response:
        """``response`` if it was served logged in; else, after logging in once more (unless a
        request since ``generation``, when this one started, did already), the page fetched
        ``again``. Still logged out with the session this process's login made: ``SessionLost``.
        (With ``--workers``, cookies another worker's login made may replace the jar's while the
        page is fetched again: that is no verdict, and the page is fetched again with them.)"""
        for _ in range(_ROUNDS):
            if not self.logged_out(url, response):
                return response
            async with self._lock:
                if self.generation == generation:
                    await self.login()
                generation = self.generation
            response = await again()
            if self.generation == generation and self.logged_out(url, response):
                break
        if not self.logged_out(url, response):
            return response
        raise SessionLost(f"{url} is still served logged out after logging in again: stopped rather than "
                          f"crawl the rest logged out (check the [check] of {self._source})")

    # -- logging in --------------------------------------------------------------------------------

    @property
    def _source(self) -> str:
        return self.recipe.source if self.recipe is not None else "--login"

    async def login(self) -> None:
        """Fill in and send the recipe's form, and check that it worked; ``SessionLost`` if not."""
        recipe = self.recipe
        if recipe is None:
            return
        page = await self._exchange("GET", recipe.url)
        form = LexborHTMLParser(page.text).css_first(recipe.form) if page.status_code < 400 else None
        if form is None:
            raise SessionLost(f"cannot log in: the login page {recipe.url} (status {page.status_code}) has no form "
                              f"matching {recipe.form!r} ({recipe.source})")
        data = form_values(form)
        data.update(recipe.values())
        action = urljoin(str(page.url), form.attributes.get("action") or "")
        method = (form.attributes.get("method") or "get").upper()
        if method == "POST":
            landed = await self._exchange("POST", action, data=data)
        else:
            landed = await self._exchange("GET", action, params=data)
        if not self._worked(landed):
            raise SessionLost(f"the login at {action} did not work (status {landed.status_code}, at {landed.url}): "
                              f"check the fields of {recipe.source} and the variables they name")
        self.logins += 1
        self.generation += 1
        await self.noticed(urgent=True)

    def _worked(self, landed: httpx2.Response) -> bool:
        recipe = self.recipe
        assert recipe is not None
        if landed.status_code >= 400:
            return False
        if recipe.logged_in_url and not re.search(recipe.logged_in_url, str(landed.url)):
            return False
        return not recipe.logged_in or LexborHTMLParser(landed.text).css_first(recipe.logged_in) is not None

    async def _exchange(self, method: str, url: str, *, data: dict[str, str] | None = None,
                        params: dict[str, str] | None = None) -> httpx2.Response:
        """One request of the login (redirects followed), read whole, under the request deadline."""
        from crawler.fetch_errors import translate_transport_error
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await self.client.request(method, url, data=data, params=params, follow_redirects=True)
        except TimeoutError:
            raise SessionLost(f"cannot log in: no answer from {url} within {self.settings.timeout:g}s") from None
        except Exception as exc:  # the transport's errors, as the fetcher words them
            raise SessionLost(f"cannot log in: {translate_transport_error(exc, url)}") from None


def form_values(form: LexborNode) -> dict[str, str]:
    """What a browser would send of ``form`` as it is: hidden inputs (CSRF tokens) and every other
    named input's value, checked boxes, each select's chosen option; no buttons."""
    data: dict[str, str] = {}
    for node in form.css("input, textarea, select"):
        name = node.attributes.get("name")
        if not name:
            continue
        if node.tag == "input":
            kind = (node.attributes.get("type") or "text").lower()
            if kind in _NOT_SENT or (kind in ("checkbox", "radio") and "checked" not in node.attributes):
                continue
            data[name] = node.attributes.get("value") or ("on" if kind in ("checkbox", "radio") else "")
        elif node.tag == "textarea":
            data[name] = node.text()
        else:
            option = node.css_first("option[selected]") or node.css_first("option")
            data[name] = "" if option is None else (option.attributes.get("value") or option.text())
    return data
