"""Decisions made when a URL is found, beyond the scope's: decide early, so that a URL ruled out is
an exclusion with its reason, never queued, never fetched, never a page.

    page links ─► parse stage (Scope.decide: host, depth, filters, URL length, repeated segment)
               ─► Discovery.judge: SSRF guard on IP literals, the session guard (logged in: no
                  logout or delete links), robots.txt (once read), query variants, pattern chains,
                  rel=canonical ─► frontier.add (queued, or excluded with code and detail)

A page and its ``rel=canonical`` target count once: a fetched page that names another URL as its
canonical stands for it, so that URL, if it is new, is excluded (``canonical``) and so is every
later link to it in this run.

``Discovery`` holds what this run has learnt (robots.txt rules through ``known_rules``, query
strings per path, chains of one pattern); it does no I/O. ``sitemap_urls`` turns a site's sitemaps
into found URLs, through the ``fetch`` it is given.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from crawler import sitemaps
from crawler.addresses import AddressPolicy
from crawler.config import Settings
from crawler.frontier import NewURL
from crawler.scope import PatternChains, QueryVariants, Scope
from crawler.urls import canonicalize, host_key, hostname, origin, strip_params

if TYPE_CHECKING:
    from crawler.fetcher import Fetcher
    from crawler.robots import RobotsCache, RobotsRules

__all__ = ["Discovery", "origin", "site_sitemap_urls", "sitemap_urls"]


class Discovery:
    """Judges found URLs as far as this run knows. ``known_rules(origin)`` gives a host's robots.txt
    rules if they have been read (None otherwise: the URL is judged at its visit instead)."""

    def __init__(self, settings: Settings, policy: AddressPolicy,
                 known_rules: Callable[[str], RobotsRules | None], agent: str,
                 guard: Callable[[str], str | None] | None = None) -> None:
        """``guard`` is the session guard of a logged-in crawl (``crawler.session.guard``): the
        detail of a URL that could end the session, else None."""
        self.settings = settings
        self._guard = guard
        self.policy = policy
        self._known_rules = known_rules
        self._agent = agent
        self._queries = QueryVariants(settings.trap_max_query_variants)
        self._chains = PatternChains(settings.trap_max_pattern_chain)
        self._canonicals: OrderedDict[str, str] = OrderedDict()   # canonical URL -> the page fetched for it

    def judge(self, source: str | None, found: list[NewURL], canonical: NewURL | None = None) -> list[NewURL]:
        """``found`` (on the page ``source``; None: a sitemap), each URL the scope let through judged
        again: excluded with a code and a detail, or left to be queued. ``canonical`` is the page's
        rel=canonical target (with the scope's verdict), when it names another URL."""
        judged = []
        if canonical is not None and source is not None and canonical.exclusion is None:
            url = strip_params(canonical.url, self.settings.session_names)
            if url != source:
                self._canonicals[url] = source
                if len(self._canonicals) > 100_000:
                    self._canonicals.popitem(last=False)
                judged.append(canonical._replace(url=url, exclusion="canonical",
                                      detail=f"the rel=canonical of {source}, which was fetched"))
        for new in found:
            if new.exclusion is None:
                verdict = self.decide(source, new.url)
                if verdict is not None:
                    new = new._replace(exclusion=verdict[0], detail=verdict[1])
            judged.append(new)
        return judged

    def decide(self, source: str | None, url: str) -> tuple[str, str | None] | None:
        """(exclusion code, detail) for a found URL the scope allows, or None to queue it."""
        refusal = self.policy.refusal(hostname(url))
        if refusal is not None:
            return "blocked_address", refusal
        if self._guard is not None and (detail := self._guard(url)) is not None:
            return "session_guard", detail
        stands_for = self._canonicals.get(url)
        if stands_for is not None and stands_for != url:
            return "canonical", f"the rel=canonical of {stands_for}, which was fetched"
        if self.settings.robots:
            rules = self._known_rules(origin(url))
            if rules is not None and not rules.unavailable and not rules.allows(url, self._agent):
                return "robots_disallowed", rules.matching_line(url, self._agent)
        trap = self._queries.check(url)
        if trap is not None:
            limit = self.settings.trap_max_query_variants
            return trap, f"more than {limit} distinct query strings for {url.partition('?')[0]}"
        trap = self._chains.check(source, url)
        if trap is not None and source is not None:
            return trap, f"found on {source}, the end of a chain of {self._chains.length(source)} pages of one pattern"
        return None


async def sitemap_urls(first: Iterable[str], fetch: Callable[[str], Awaitable[bytes]], settings: Settings,
                       scope: Callable[[], Scope], batch: int = 1000) -> AsyncIterator[list[NewURL]]:
    """The URLs of the sitemaps ``first`` names (through their indexes), in batches, canonical and
    without session ids, at depth 1, each with the scope's verdict (``scope()`` is asked per batch:
    it may widen meanwhile) and its ``lastmod``."""
    found: list[NewURL] = []
    async for entry in sitemaps.read_sitemaps(first, fetch):
        url = canonicalize(entry.loc, sort_query=settings.sort_query)
        if url is None:
            continue
        url = strip_params(url, settings.session_names)
        found.append(NewURL(url, host_key(url), 1, scope().decide(url, 1), lastmod=entry.lastmod))
        if len(found) >= batch:
            yield found
            found = []
    if found:
        yield found


async def site_sitemap_urls(site: str, fetcher: Fetcher, robots: RobotsCache | None, settings: Settings,
                            scope: Callable[[], Scope]) -> AsyncIterator[list[NewURL]]:
    """``sitemap_urls`` of the sitemaps of ``site`` (an origin): those its robots.txt names in
    ``Sitemap:`` lines (with ``robots``, the crawl's rules), and /sitemap.xml. Their fetches are few
    and made outside the host's queue; a sitemap that cannot be read is skipped."""
    first = (await robots.rules(site)).sitemaps() if robots is not None else []

    async def fetch(url: str) -> bytes:
        response = await fetcher.fetch(url, max_bytes=sitemaps.MAX_BYTES, max_redirects=5)
        if response.status != 200:
            raise sitemaps.SitemapError(f"status {response.status}")
        return response.body

    async for found in sitemap_urls([*first, site + "/sitemap.xml"], fetch, settings, scope):
        yield found
