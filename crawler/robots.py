"""robots.txt: fetched once per host, parsed by protego, cached, and asked before every request.

RFC 9309 decides what a failed fetch means: a 4xx robots.txt (there is none) allows everything;
a 5xx or an unreachable server disallows the whole host *for now*, and we ask again after
``robots_retry_after`` seconds. Redirects are followed (up to five hops, as the RFC asks).

A host whose robots.txt could not be fetched because the host itself could not be reached (refused,
reset, a name that does not resolve, a TLS failure, no answer in time) is recorded as that failure
(``unreachable``): its pages were not put off limits by a robots.txt, they were not reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protego import Protego

from crawler.errors import (
    BlockedAddress,
    ConnectFailed,
    DnsFailed,
    FetchError,
    RobotsDisallowed,
    RobotsUnavailable,
    ServerBusy,
    Timeout,
    TlsFailed,
    TooManyRedirects,
)
from crawler.models import Response

ROBOTS_MAX_BYTES = 512 * 1024   # RFC 9309: parse at least 500 KiB
Fetch = Callable[[str], Awaitable[Response]]
# The failures of a robots.txt fetch that say its host could not be reached, by code.
UNREACHABLE: dict[str, type[FetchError]] = {e.code: e for e in (ConnectFailed, DnsFailed, TlsFailed, Timeout)}


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: 'crawler/0.1 (+...)' -> 'crawler'."""
    words = user_agent.split("/", 1)[0].split()
    return words[0] if words else "*"


@dataclass(slots=True)
class RobotsRules:
    """What one host's robots.txt says; ``parser`` None means allow all, ``unavailable`` deny all."""

    parser: Protego | None
    unavailable: bool
    expires: float
    cause: str | None = None   # why it is unavailable: the status, or the fetch's error

    def allows(self, url: str, agent: str) -> bool:
        if self.unavailable:
            return False
        return self.parser is None or bool(self.parser.can_fetch(url, agent))

    def matching_line(self, url: str, agent: str) -> str | None:
        """The robots.txt rule that decides ``url`` for ``agent`` (``Disallow: /private``), for
        ``crawler explain``; None where no rule matches or protego cannot say."""
        if self.parser is None:
            return None
        try:   # protego keeps its rules private: read them, and say nothing if that ever changes
            from protego._utils import _quote_path
            rules = self.parser._get_matching_rule_set(agent)
            if rules is None:
                return None
            quoted = _quote_path(url)
            for rule in rules._rules:
                if rule.value.match(quoted):
                    return f"{rule.field.capitalize()}: {rule.value._pattern}"
        except (AttributeError, ImportError, TypeError):
            return None
        return None

    def sitemaps(self) -> list[str]:
        """The ``Sitemap:`` URLs of this robots.txt."""
        return list(self.parser.sitemaps) if self.parser is not None else []

    def crawl_delay(self, agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return float(delay) if delay is not None else None


def rules_from_response(response: Response | None, now: float, retry_after: float,
                        cause: str | None = None) -> RobotsRules:
    """Pure: the rules that a robots.txt response (or None: unreachable, for ``cause``) stands for."""
    never = float("inf")
    if response is None or response.status >= 500:
        why = cause if response is None else f"status {response.status}"
        return RobotsRules(None, True, now + retry_after, why)
    if not 200 <= response.status < 300:
        return RobotsRules(None, False, never)   # 4xx, or a redirect we did not follow: no rules
    text = response.body.decode("utf-8-sig", errors="replace")   # a BOM must not hide the first group
    return RobotsRules(Protego.parse(text), False, never)


def unreachable(url: str, rules: RobotsRules) -> FetchError | None:
    """Where ``rules`` are unavailable because robots.txt's host could not be reached (the fetch's
    error is in ``UNREACHABLE``), that error for ``url``: what kept the page from being fetched.
    None for a robots.txt that answered (a 5xx), or any other failure."""
    code, _, message = (rules.cause or "").partition(": ") if rules.unavailable else ("", "", "")
    error = UNREACHABLE.get(code)
    return error(url, f"robots.txt not fetched: {message}" if message else "robots.txt not fetched") if error else None


class RobotsCache:
    """Per-host robots rules; concurrent requests for one host share a single fetch."""

    def __init__(self, fetch: Fetch, user_agent: str, retry_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self.agent = agent_token(user_agent)
        self._retry_after = retry_after
        self._clock = clock
        self._rules: dict[str, RobotsRules] = {}
        self._pending: dict[str, asyncio.Future[RobotsRules]] = {}

    async def rules(self, origin: str) -> RobotsRules:
        """Rules for ``origin`` ('http://host:port'), fetching robots.txt if not cached or expired."""
        cached = self._rules.get(origin)
        if cached is not None and cached.expires > self._clock():
            return cached
        waiting = self._pending.get(origin)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[RobotsRules] = asyncio.get_running_loop().create_future()
        self._pending[origin] = future
        try:
            cause = None
            try:
                response: Response | None = await self._fetch(origin + "/robots.txt")
            except ServerBusy as busy:
                response = busy.response
            except TooManyRedirects:
                response = Response(origin, origin, 310, "", "", (), b"", 0)  # RFC 9309: as if 4xx
            except FetchError as error:
                response, cause = None, f"{error.code}: {error.message}" if error.message else error.code
            rules = rules_from_response(response, self._clock(), self._retry_after, cause)
            self._rules[origin] = rules
            future.set_result(rules)
            return rules
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: a cancelled fetch must not warn if nobody waited
            raise
        finally:
            del self._pending[origin]

    def learn(self, origin: str, rules: RobotsRules) -> None:
        """Take ``origin``'s rules as read elsewhere (a worker process gets them from its crawl)."""
        self._rules[origin] = rules

    def forget_unavailable(self, origin: str) -> None:
        """Drop ``origin``'s verdict if it is "unavailable", so the next request reads robots.txt
        again (a URL's retry after a failed robots.txt fetch)."""
        cached = self._rules.get(origin)
        if cached is not None and cached.unavailable:
            del self._rules[origin]

    def known(self, origin: str) -> RobotsRules | None:
        """The rules of ``origin`` if they have been read and still hold; never fetches."""
        cached = self._rules.get(origin)
        return cached if cached is not None and cached.expires > self._clock() else None

    async def check(self, url: str, origin: str) -> RobotsRules:
        """Raise RobotsDisallowed / RobotsUnavailable (or BlockedAddress) unless ``url`` may be
        fetched; return the rules."""
        return self.check_rules(url, await self.rules(origin))

    def check_rules(self, url: str, rules: RobotsRules) -> RobotsRules:
        """As ``check``, with the origin's rules already in hand. Where robots.txt could not be read
        because the SSRF guard refused its address, that is the error (``BlockedAddress``): not
        "robots.txt unavailable"."""
        if rules.unavailable:
            cause = rules.cause or ""
            if cause.startswith(BlockedAddress.code):
                raise BlockedAddress(url, cause.partition(": ")[2])
            why = f" ({cause})" if cause else ""
            raise RobotsUnavailable(url, f"robots.txt answered 5xx or could not be fetched{why}")
        if not rules.allows(url, self.agent):
            raise RobotsDisallowed(url)
        return rules
