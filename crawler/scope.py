"""Which URLs a job may fetch: one frozen, picklable ``Scope`` and its ``decide``.

``decide`` runs on every discovered link, so everything it needs is worked out once when the
scope is made: seed hosts normalized, their registrable domains looked up, regexes compiled. The
object then holds only plain values and compiled patterns (which pickle by their source), so it
can be sent to a parse worker process as it is.

Exclusion codes, in the order they are checked (the first that applies is returned):

    off_host      mode "host": the URL's host is not a seed host nor under an allowed domain
    off_domain    mode "domain": not on a seed's registrable domain nor under an allowed domain
    too_deep      the link depth is beyond ``max_depth``
    excluded      an ``exclude`` regex matches the URL
    not_included  ``include`` regexes are given and none matches the URL
    trap_url_length        the URL is longer than ``max_url_length`` characters
    trap_repeated_segment  a path segment appears more than ``max_segment_repeats`` times
                           (``/a/b/a/b/a/b``: relative links that pile up on themselves)
    type_rejected, type_not_accepted   the media type the URL's extension names is not wanted
                           (``types``: --reject-type, --accept-type; ``crawler.content_types``)

One trap rule needs memory of the crawl and so is not here but in ``QueryVariants``:

    trap_query_variants    more than N distinct query strings for one path (``/cal?day=1..∞``)

and ``PatternChains``:

    trap_pattern_chain     a chain of more than N pages of one URL pattern (digits aside), each
                           found on the one before (``/cal/2026-11`` -> ``/cal/2026-12`` -> ...)
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import get_args

from crawler.content_types import ContentTypes
from crawler.errors import ConfigError
from crawler.models import ScopeMode
from crawler.urls import canonicalize, hostname, registrable_domain

__all__ = ["PatternChains", "QueryVariants", "Scope", "validate_patterns"]

_MODES: tuple[str, ...] = get_args(ScopeMode)


def validate_patterns(patterns: Iterable[str], option: str = "") -> tuple[str, ...]:
    """The patterns as a tuple, once each compiles; else ``ConfigError`` naming the bad one.

    ``option`` names where they came from in the message (``bad --include regex '(': ...``).
    """
    return tuple(pattern.pattern for pattern in _compile(patterns, option))


@dataclass(frozen=True, slots=True)
class Scope:
    """The limits of one crawl job. Make it with ``Scope.build`` from the seeds, or directly.

    ``hosts`` are the seeds' hostnames (no port). ``allow_domains`` lets in any host equal to one
    of them or ending in ``"." + one of them``, in every mode. ``include`` and ``exclude`` are
    regex sources searched (``re.search``) in the canonical URL. ``max_depth`` -1 means no limit,
    0 means the seeds only. Host names are compared lower-case, as punycode, without a trailing
    dot, so ``Bücher.DE.`` given by a user matches the canonical ``xn--bcher-kva.de``.
    """

    mode: ScopeMode
    hosts: frozenset[str]
    allow_domains: frozenset[str] = frozenset()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_depth: int = -1
    max_url_length: int = 0          # trap rules; 0 turns one off
    max_segment_repeats: int = 0
    types: ContentTypes = field(default_factory=ContentTypes)   # the media types wanted, judged here from a URL's extension
    # Worked out once in __post_init__; restored by pickle with the other fields.
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _sites: frozenset[str] = field(init=False, repr=False, compare=False)
    _allowed: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _include: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _exclude: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ConfigError(f"scope must be one of {', '.join(_MODES)}; got {self.mode!r}")
        hosts = frozenset(_normalize_host(host, "seed host") for host in self.hosts)
        allowed = frozenset(_normalize_host(name, "--allow-domain") for name in self.allow_domains)
        set_ = object.__setattr__  # the documented way to fill fields of a frozen dataclass
        set_(self, "_hosts", hosts)
        set_(self, "_sites", frozenset(registrable_domain(host) for host in hosts))
        set_(self, "_allowed", tuple(sorted(allowed)))
        set_(self, "_include", _compile(self.include, "--include"))
        set_(self, "_exclude", _compile(self.exclude, "--exclude"))

    @classmethod
    def build(
        cls,
        seeds: Iterable[str],
        mode: ScopeMode = "host",
        *,
        allow_domains: Iterable[str] = (),
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        max_depth: int = -1,
        max_url_length: int = 0,
        max_segment_repeats: int = 0,
    ) -> Scope:
        """The scope of a job crawling from these canonical seed URLs (``mode`` as in config)."""
        return cls(
            mode=mode,
            hosts=frozenset(hostname(seed) for seed in seeds),
            allow_domains=frozenset(allow_domains),
            include=tuple(include),
            exclude=tuple(exclude),
            max_depth=max_depth,
            max_url_length=max_url_length,
            max_segment_repeats=max_segment_repeats,
        )

    def decide(self, url: str, depth: int) -> str | None:
        """None if the canonical ``url`` at link depth ``depth`` may be fetched, else its exclusion code.

        The codes are listed in the module docstring. Mode "any" never gives off_host/off_domain.
        """
        if self.mode != "any":
            host = hostname(url).removesuffix(".")
            if self.mode == "host":
                if host not in self._hosts and not self._is_allowed(host):
                    return "off_host"
            elif registrable_domain(host) not in self._sites and not self._is_allowed(host):
                return "off_domain"
        if 0 <= self.max_depth < depth:
            return "too_deep"
        for pattern in self._exclude:
            if pattern.search(url):
                return "excluded"
        if self._include and not any(pattern.search(url) for pattern in self._include):
            return "not_included"
        trapped = self.trap(url)
        if trapped is not None or not self.types.filters:
            return trapped
        verdict = self.types.judge_url(url)
        return None if verdict is None else verdict[0]

    def trap(self, url: str) -> str | None:
        """The trap rule that ``url`` trips (``trap_url_length``, ``trap_repeated_segment``), or None."""
        if self.max_url_length and len(url) > self.max_url_length:
            return "trap_url_length"
        if self.max_segment_repeats:
            path = url.partition("://")[2].partition("?")[0]
            segments = [s for s in path.split("/")[1:] if s]
            if len(segments) > self.max_segment_repeats and \
                    max(Counter(segments).values()) > self.max_segment_repeats:
                return "trap_repeated_segment"
        return None

    def _is_allowed(self, host: str) -> bool:
        return any(host == name or host.endswith("." + name) for name in self._allowed)


class QueryVariants:
    """The trap rule with a memory: at most ``limit`` distinct query strings per path (scheme, host
    and path), so ``/calendar?day=N`` for every N stops at ``limit``. Kept for the ``paths`` most
    recently seen paths (an LRU of small digests), so memory is bounded on any site; a resumed
    run starts counting afresh."""

    def __init__(self, limit: int, paths: int = 100_000) -> None:
        self.limit = limit
        self._paths = paths
        self._seen: OrderedDict[str, set[bytes]] = OrderedDict()

    def check(self, url: str) -> str | None:
        """``trap_query_variants`` when ``url`` is one query too many for its path, else None (and
        the query is counted)."""
        path, _, query = url.partition("?")
        if not self.limit or not query:
            return None
        queries = self._seen.get(path)
        if queries is None:
            queries = self._seen[path] = set()
            if len(self._seen) > self._paths:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(path)
        digest = hashlib.blake2b(query.encode(), digest_size=8).digest()
        if digest in queries:
            return None
        if len(queries) >= self.limit:
            return "trap_query_variants"
        queries.add(digest)
        return None


_DIGITS = re.compile(r"[0-9]+")


@functools.lru_cache(maxsize=8192)   # a page's own pattern is asked once for each of its links
def url_pattern(url: str) -> str:
    """A URL's pattern: scheme, host and path with every run of digits as ``0``, query dropped."""
    return _DIGITS.sub("0", url.partition("?")[0].partition("#")[0])


class PatternChains:
    """The calendar-trap rule: a page of one pattern (``url_pattern``) found on a page of the same
    pattern continues its chain; a chain longer than ``limit`` pages is a trap. A site's own pages
    (``/p/1`` .. ``/p/100000``, all one pattern) are mostly found a few hops from the top, since
    pages link to many others: 100,000 such pages of the bench site are at most 10 hops from
    ``/``, while a calendar's "next month" link makes one hop per page, without end. Chains are
    remembered for the ``urls`` most recent URLs, by hash (memory is bounded, and does not hold the
    URLs themselves; a resumed run starts afresh)."""

    def __init__(self, limit: int, urls: int = 200_000) -> None:
        self.limit = limit
        self._urls = urls
        self._chain: OrderedDict[int, int] = OrderedDict()

    def check(self, source: str | None, url: str) -> str | None:
        """``trap_pattern_chain`` if ``url``, found on ``source``, makes its chain too long, else None."""
        if not self.limit or source is None or url_pattern(url) != url_pattern(source):
            return None
        chain = self._chain.get(hash(source), 1) + 1
        if chain > self.limit:
            return "trap_pattern_chain"
        key = hash(url)
        if key not in self._chain:
            self._chain[key] = chain
            if len(self._chain) > self._urls:
                self._chain.popitem(last=False)
        return None

    def length(self, url: str) -> int:
        """The chain of ``url`` as far as it is remembered (1: none)."""
        return self._chain.get(hash(url), 1)


def _compile(patterns: Iterable[str], option: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for source in patterns:
        try:
            compiled.append(re.compile(source))
        except re.error as exc:
            where = f"{option} " if option else ""
            raise ConfigError(f"bad {where}regex {source!r}: {exc}") from None
    return tuple(compiled)


def _normalize_host(name: str, what: str) -> str:
    """A host name as it appears in canonical URLs (punycode, lower-case), without trailing dot."""
    name = name.strip().strip(".")
    if not name or any(char in name for char in "/?#@"):
        raise ConfigError(f"bad {what} {name!r}: not a host name")
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"  # a bare IPv6 address, as ``hostname`` returns it
    canonical = canonicalize(f"http://{name}/")
    if canonical is None:
        raise ConfigError(f"bad {what} {name!r}: not a host name")
    return hostname(canonical).removesuffix(".")
