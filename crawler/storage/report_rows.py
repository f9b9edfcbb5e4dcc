"""The rows ``crawler report``'s named queries (``report_queries``) return: plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")

# Depths from this one on share the depth histogram's last bar.
DEPTH_CAP = 50


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """The first rows of a long list, and how many it has in all."""

    rows: list[T]
    total: int

    @property
    def left_out(self) -> int:
        return self.total - len(self.rows)


class JobInfo(NamedTuple):
    """One job file as the report's first section shows it."""

    path: str
    state: str
    crawl_pass: int
    pages: int
    queued: int
    excluded: int
    links: int
    first_fetch: str | None
    last_fetch: str | None
    settings: dict[str, Any]
    this_pass: dict[str, int]


class Totals(NamedTuple):
    """The merged set at a glance; ``first`` and ``last`` are fetch times in seconds since the epoch."""

    pages: int
    errors: int
    bytes: int
    hosts: int
    first: int | None
    last: int | None
    queued: int
    excluded: int


class Timeline(NamedTuple):
    """Fetches in buckets of ``width`` seconds from ``start``: ``(pages, errors)`` of each bucket, every
    bucket present (an idle stretch is a run of zeros)."""

    start: int
    width: int
    buckets: list[tuple[int, int]]


class DepthRow(NamedTuple):
    """Pages at one depth by status class (``depth`` DEPTH_CAP stands for that depth and deeper)."""

    depth: int
    ok: int          # 1xx and 2xx
    redirect: int    # 3xx left as the answer (a 304, or redirects not followed)
    client: int      # 4xx
    server: int      # 5xx
    failed: int      # no response


class ErrorRow(NamedTuple):
    code: str
    pages: int
    example_url: str
    example_message: str | None


class HostRow(NamedTuple):
    host: str
    pages: int
    errors: int
    queued: int
    median_ms: int | None
    p95_ms: int | None
    state: str
    parked_until: str | None
    parked_error: str | None


class BrokenLink(NamedTuple):
    """A broken target, what it answered, how many pages link to it and the first of them with the
    link's anchor text."""

    url: str
    status: int | None
    error: str | None
    referrers: int
    linked_from: list[tuple[str, str | None]]
    kind: str = "page"     # what the pages use it as: page, stylesheet, script, image, iframe, ... (crawler.references)


class Redirect(NamedTuple):
    url: str
    final_url: str
    status: int | None


class Destination(NamedTuple):
    """Where redirects end: the final URL, how many URLs redirect there, and what it answered."""

    final_url: str
    urls: int
    status: int | None


class DuplicateGroup(NamedTuple):
    content_hash: str
    pages: int
    urls: list[str]


class Exclusion(NamedTuple):
    reason: str
    urls: int
    examples: list[str]


class PageRow(NamedTuple):
    url: str
    status: int | None
    elapsed_ms: int | None
    bytes: int | None
    content_type: str | None
    title: str | None


class RenderReason(NamedTuple):
    """Pages a browser rendered for one reason: ``--render always``, or what ``auto`` saw."""

    mode: str          # auto or always
    reason: str        # "empty #app", "little text", ...; "every HTML page" under always
    pages: int


class RenderRefusal(NamedTuple):
    """Requests of rendered pages the crawler refused for one reason (a ``models.RenderBlock``)."""

    why: str
    requests: int
    pages: int
    example_url: str


@dataclass(frozen=True, slots=True)
class Rendering:
    """What browsers did in the jobs (``--render``): pages rendered, why, their refused requests, and
    the pages whose rendering failed (``render_failed``, each with its message)."""

    pages: int
    reasons: list[RenderReason]
    unsettled: int               # taken as they were at their deadline ("did not settle")
    blocked: int                 # requests refused, over every rendered page
    refusals: list[RenderRefusal]   # the same by why (short of ``blocked`` for pages rendered before why was kept)
    failed: Listing[tuple[str, str | None]]   # render_failed pages: (URL, message), by URL
