"""Sitemaps: the URLs a site lists for crawlers, read safely.

    robots.txt ``Sitemap:`` lines + /sitemap.xml ─► fetch ─► gunzip (capped) ─► parse (no entities)
        ─► <sitemapindex>: more sitemaps to read    <urlset>: (loc, lastmod) to queue

``parse`` is pure: bytes in, a ``Sitemap`` out. XML is parsed by defusedxml, which refuses any
entity declaration (a billion-laughs document is an error, not 3 GB of "lol") and never fetches an
external DTD or entity. The sitemaps.org limits hold: at most ``MAX_URLS`` (50,000) URLs and
``MAX_BYTES`` (50 MB, after decompression) per sitemap; what lies past them is ignored.

``read_sitemaps`` walks from the first sitemap URLs through indexes (``MAX_SITEMAPS`` files at
most, so an index of indexes cannot loop or grow without end) with the ``fetch`` it is given.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

MAX_URLS = 50_000
MAX_BYTES = 50 * 1024 * 1024
MAX_SITEMAPS = 200          # files read per job start (indexes included)
_GZIP_MAGIC = b"\x1f\x8b"


class SitemapError(ValueError):
    """A sitemap that cannot be read: not XML, entities declared, too large once inflated."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``<url>`` of a urlset, or one ``<sitemap>`` of an index: where, and ``lastmod`` as given."""

    loc: str
    lastmod: str | None = None


@dataclass(frozen=True, slots=True)
class Sitemap:
    """A parsed sitemap: an index (``entries`` are sitemaps) or a urlset (``entries`` are pages)."""

    index: bool
    entries: tuple[Entry, ...]
    truncated: bool = False   # more than MAX_URLS entries: the rest were ignored


def gunzip(body: bytes, limit: int = MAX_BYTES) -> bytes:
    """``body`` inflated if it is gzip (a ``.xml.gz`` sent as is), never past ``limit`` bytes."""
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise SitemapError(f"bad gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise SitemapError(f"over {limit:,} bytes once inflated")
    return out


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse(body: bytes) -> Sitemap:
    """Parse a sitemap (XML, or gzip of it). Raises ``SitemapError`` for what cannot be read."""
    data = gunzip(body)
    if len(data) > MAX_BYTES:
        raise SitemapError(f"over {MAX_BYTES:,} bytes")
    entries: list[Entry] = []
    index: bool | None = None
    loc: str | None = None
    lastmod: str | None = None
    truncated = False
    try:
        # Stream: each finished element is cleared, so memory follows the body, not the tree.
        for event, element in iterparse(io.BytesIO(data), events=("start", "end"),
                                        forbid_dtd=False, forbid_entities=True, forbid_external=True):
            tag = _local(element.tag)
            if event == "start":
                if index is None:
                    if tag not in ("urlset", "sitemapindex"):
                        raise SitemapError(f"not a sitemap: the root element is <{tag}>")
                    index = tag == "sitemapindex"
                continue
            if tag == "loc":
                loc = (element.text or "").strip()
            elif tag == "lastmod":
                lastmod = (element.text or "").strip()[:40] or None
            elif tag in ("url", "sitemap"):
                if loc:
                    if len(entries) >= MAX_URLS:
                        truncated = True
                        break
                    entries.append(Entry(loc, lastmod))
                loc = lastmod = None
                element.clear()
    except DefusedXmlException as exc:
        raise SitemapError(f"refused: {type(exc).__name__} (entities are never expanded)") from None
    except SyntaxError as exc:   # ElementTree.ParseError
        raise SitemapError(f"not XML: {exc}") from None
    return Sitemap(bool(index), tuple(entries), truncated)


Fetch = Callable[[str], Awaitable[bytes]]


async def read_sitemaps(first: Iterable[str], fetch: Fetch, *,
                        on_error: Callable[[str, Exception], None] = lambda url, exc: None,
                        limit: int = MAX_SITEMAPS) -> AsyncIterator[Entry]:
    """Every page entry of the sitemaps ``first`` names, through their indexes, each sitemap read
    once and at most ``limit`` in all. A sitemap that cannot be fetched or read is passed to
    ``on_error`` and skipped (``fetch`` raises what it raises; any ``Exception`` counts)."""
    todo = list(dict.fromkeys(first))
    seen = set(todo)
    read = 0
    while todo and read < limit:
        url = todo.pop(0)
        read += 1
        try:
            sitemap = parse(await fetch(url))
        except Exception as exc:   # one bad sitemap must not stop the others
            on_error(url, exc)
            continue
        if sitemap.index:
            for entry in sitemap.entries:
                if entry.loc not in seen:
                    seen.add(entry.loc)
                    todo.append(entry.loc)
            continue
        for entry in sitemap.entries:
            yield entry
