"""crawler.robots: what a robots.txt response means (RFC 9309), and the per-origin cache."""

from __future__ import annotations

import asyncio
import math

import pytest
from fake_clock import FakeClock

from crawler.errors import (
    RobotsDisallowed,
    RobotsUnavailable,
    ServerBusy,
    Timeout,
    TooManyRedirects,
)
from crawler.models import Response
from crawler.robots import RobotsCache, RobotsRules, agent_token, rules_from_response

ORIGIN = "http://h"
ROBOTS = b"""\
User-agent: *
Disallow: /private
Allow: /private/ok
Crawl-delay: 3

User-agent: otherbot
Disallow: /
"""


def robots(status: int, body: bytes = b"") -> Response:
    return Response(f"{ORIGIN}/robots.txt", f"{ORIGIN}/robots.txt", status, "", "HTTP/1.1", (), body, 1)


# --- rules_from_response: pure --------------------------------------------------------------------


def test_rules_from_200_disallow_allow_and_crawl_delay() -> None:
    rules = rules_from_response(robots(200, ROBOTS), now=100.0, retry_after=300.0)
    assert not rules.unavailable
    assert rules.expires == math.inf
    assert not rules.allows(f"{ORIGIN}/private/secret", "crawler")
    assert rules.allows(f"{ORIGIN}/private/ok", "crawler")
    assert rules.allows(f"{ORIGIN}/public", "crawler")
    assert not rules.allows(f"{ORIGIN}/public", "otherbot")
    assert rules.crawl_delay("crawler") == 3.0


def test_rules_for_our_own_agent_group() -> None:
    rules = rules_from_response(robots(200, b"User-agent: crawler\nDisallow: /mine\n"), 0.0, 300.0)
    assert not rules.allows(f"{ORIGIN}/mine/x", "crawler")
    assert rules.allows(f"{ORIGIN}/mine/x", "someoneelse")
    assert rules.crawl_delay("crawler") is None


@pytest.mark.parametrize("status", [404, 401, 403, 410, 301])
def test_4xx_or_unfollowed_redirect_allows_everything_forever(status: int) -> None:
    rules = rules_from_response(robots(status, b"User-agent: *\nDisallow: /\n"), 0.0, 300.0)
    assert rules.allows(f"{ORIGIN}/anything", "crawler")
    assert (rules.unavailable, rules.expires, rules.crawl_delay("crawler")) == (False, math.inf, None)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_unavailable_until_retry_after(status: int) -> None:
    rules = rules_from_response(robots(status), now=100.0, retry_after=300.0)
    assert rules.unavailable
    assert rules.expires == 400.0
    assert not rules.allows(f"{ORIGIN}/", "crawler")


def test_unreachable_is_unavailable_until_retry_after() -> None:
    rules = rules_from_response(None, now=5.0, retry_after=60.0)
    assert (rules.unavailable, rules.expires) == (True, 65.0)
    assert not rules.allows(f"{ORIGIN}/", "crawler")


def test_utf8_bom_does_not_hide_the_first_group() -> None:
    rules = rules_from_response(robots(200, b"\xef\xbb\xbf" + ROBOTS), 0.0, 300.0)
    assert not rules.allows(f"{ORIGIN}/private/secret", "crawler")


@pytest.mark.parametrize(("user_agent", "token"), [
    ("crawler/0.1.0 (+https://github.com/crawler/crawler)", "crawler"),
    ("Mozilla/5.0 (compatible; MyBot/2.1)", "Mozilla"),
    ("MyBot", "MyBot"),
    ("  spaced-bot/1", "spaced-bot"),
    ("", "*"),
    ("   ", "*"),
    ("/1.0", "*"),
])
def test_agent_token(user_agent: str, token: str) -> None:
    assert agent_token(user_agent) == token


# --- RobotsCache ----------------------------------------------------------------------------------


class FakeFetch:
    """Answers robots.txt requests from a script of responses (or exceptions), counting the calls."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.urls: list[str] = []

    async def __call__(self, url: str) -> Response:
        self.urls.append(url)
        await asyncio.sleep(0.01)  # let concurrent callers pile up behind this fetch
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def cache(fetch: FakeFetch, clock: FakeClock | None = None) -> RobotsCache:
    return RobotsCache(fetch, "crawler/0.1 (+https://x)", retry_after=300.0, clock=clock or FakeClock())


def test_concurrent_checks_for_one_origin_fetch_once() -> None:
    fetch = FakeFetch(robots(200, ROBOTS))
    robots_cache = cache(fetch)

    async def go() -> list[RobotsRules]:
        checks = [robots_cache.check(f"{ORIGIN}/page{i}", ORIGIN) for i in range(20)]
        other = robots_cache.check("http://other/x", "http://other")
        return await asyncio.gather(*checks, other)

    results = asyncio.run(go())
    assert fetch.urls == [f"{ORIGIN}/robots.txt", "http://other/robots.txt"]
    assert all(r is results[0] for r in results[:20])
    assert results[0].crawl_delay(robots_cache.agent) == 3.0


def test_disallowed_and_allowed_urls() -> None:
    robots_cache = cache(FakeFetch(robots(200, ROBOTS)))

    async def go() -> None:
        await robots_cache.check(f"{ORIGIN}/public", ORIGIN)
        with pytest.raises(RobotsDisallowed) as info:
            await robots_cache.check(f"{ORIGIN}/private/x", ORIGIN)
        assert (info.value.code, info.value.url, info.value.retryable) == (
            "robots_disallowed", f"{ORIGIN}/private/x", False)

    asyncio.run(go())


@pytest.mark.parametrize("failure", [
    ServerBusy(f"{ORIGIN}/robots.txt", 503, response=robots(503)),
    Timeout(f"{ORIGIN}/robots.txt"),
], ids=["server-busy-503", "timeout"])
def test_robots_unavailable_then_fetched_again_after_expiry(failure: Exception) -> None:
    clock = FakeClock(1000.0)
    fetch = FakeFetch(failure, robots(200, ROBOTS))
    robots_cache = cache(fetch, clock)

    async def go() -> None:
        for _ in range(2):  # the failure is cached: asked once, refused twice
            with pytest.raises(RobotsUnavailable) as info:
                await robots_cache.check(f"{ORIGIN}/public", ORIGIN)
            assert info.value.code == "robots_unavailable"
        clock.advance(299.0)
        with pytest.raises(RobotsUnavailable):
            await robots_cache.check(f"{ORIGIN}/public", ORIGIN)
        assert len(fetch.urls) == 1
        clock.advance(2.0)
        await robots_cache.check(f"{ORIGIN}/public", ORIGIN)
        assert len(fetch.urls) == 2

    asyncio.run(go())


def test_good_rules_are_not_fetched_again() -> None:
    clock = FakeClock()
    fetch = FakeFetch(robots(200, ROBOTS))
    robots_cache = cache(fetch, clock)

    async def go() -> None:
        await robots_cache.check(f"{ORIGIN}/a", ORIGIN)
        clock.advance(10 * 86400.0)
        await robots_cache.check(f"{ORIGIN}/b", ORIGIN)

    asyncio.run(go())
    assert len(fetch.urls) == 1


def test_too_many_redirects_allows_everything() -> None:
    robots_cache = cache(FakeFetch(TooManyRedirects(f"{ORIGIN}/robots.txt")))
    rules = asyncio.run(robots_cache.check(f"{ORIGIN}/private/x", ORIGIN))
    assert (rules.unavailable, rules.parser) == (False, None)


def test_unexpected_error_reaches_every_waiter_and_is_not_cached() -> None:
    fetch = FakeFetch(RuntimeError("bug"), robots(200, ROBOTS))
    robots_cache = cache(fetch)

    async def go() -> list[object]:
        return await asyncio.gather(*(robots_cache.check(f"{ORIGIN}/", ORIGIN) for _ in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(go())
    assert all(isinstance(r, RuntimeError) for r in results)
    asyncio.run(robots_cache.check(f"{ORIGIN}/", ORIGIN))  # the next check asks again
    assert len(fetch.urls) == 2
