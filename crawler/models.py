"""Plain, picklable values passed between pipeline stages. No I/O, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Link:
    """A link found on a page: its canonical absolute URL and whether it is ``rel=nofollow``."""

    url: str
    nofollow: bool = False


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What the parse stage extracts from one HTML document."""

    title: str | None
    description: str | None
    canonical: str | None
    noindex: bool
    nofollow: bool
    links: tuple[Link, ...]
    charset: str | None = None


@dataclass(frozen=True, slots=True)
class FrontierItem:
    """A URL leased from the frontier: its row id, canonical URL and depth from the seed."""

    id: int
    url: str
    depth: int
    attempt: int = 0
