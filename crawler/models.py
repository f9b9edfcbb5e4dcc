"""Plain, picklable values passed between pipeline stages. No I/O, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, NamedTuple, TypeVar

_T = TypeVar("_T")


def pickled_by_fields(cls: type[_T]) -> type[_T]:
    """Pickle instances as their class and field values. Worker processes (``--workers``) send
    records with dozens of links each; the default for slotted dataclasses goes through
    ``dataclasses.fields`` for every object, a third of the receiving process's time."""
    names = cls.__match_args__  # type: ignore[attr-defined]  # every dataclass has it
    values = attrgetter(*names) if len(names) > 1 else (lambda obj: (getattr(obj, names[0]),))

    def __reduce__(self: _T) -> tuple[type[_T], tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Link:
    """A link found on a page: its canonical absolute URL, whether it is ``rel=nofollow``, and its
    anchor text (whitespace collapsed, at most 200 characters; an ``<area>``'s alt)."""

    url: str
    nofollow: bool = False
    anchor: str = ""
    kind: LinkKind = "page"          # what the page uses it as (crawler.references): page, stylesheet, image, ...


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What the parse stage extracts from one HTML document."""

    title: str | None
    description: str | None
    canonical: str | None
    noindex: bool
    nofollow: bool
    links: tuple[Link, ...]
    simhash: int | None = None         # of the main text, when text extraction is on
    h1: str | None = None              # built-in fields: the first <h1>'s text,
    lang: str | None = None            # the page's language (<html lang>, else Content-Language),
    word_count: int | None = None      # and the words of its main text


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Extracted:
    """What extraction (``crawler.extraction``) made of one page.

    ``data`` holds every field of the page type that applied (``None`` where nothing matched or the
    value did not convert to its type), plus what a plugin returned. ``empty`` names the fields
    that matched nothing, ``bad_type`` those whose value did not convert: the coverage that the
    summary, ``stats`` and the report count. ``error`` is ``extract_missing`` (a required field
    empty) or ``extract_failed`` (a plugin raised), with ``error_message`` in words.
    """

    page_type: str | None = None                  # the [[page]] that applied: its name, or "page N"
    data: dict[str, Any] = field(default_factory=dict)
    empty: tuple[str, ...] = ()
    bad_type: tuple[str, ...] = ()
    error: str | None = None
    error_message: str | None = None
    jsonld: tuple[Any, ...] | None = None         # every JSON-LD block that parsed, in document order
    jsonld_error: str | None = None               # the first block that did not, in words
    opengraph: dict[str, str | list[str]] | None = None   # og:* and twitter:* meta, by property name
                                                          # (ogp.me's arrays, og:image..., a list)
    microdata: tuple[Any, ...] | None = None      # items, where a library reads them


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FrontierItem:
    """A URL leased from the frontier: its row id, canonical URL and depth from the seed. ``attempt``
    counts this run's retries of it; ``token`` identifies the lease itself."""

    id: int
    url: str
    depth: int
    attempt: int = 0
    etag: str | None = None            # validators of the stored copy, for a conditional recrawl
    last_modified: str | None = None
    host: str = ""                     # its host key (politeness and the frontier's per-host queues)
    token: int = 0                     # the lease's attempt id (fencing token): a shared frontier refuses
                                       # the acknowledgement of a lease that expired and went to another
    fetch_as: FetchAs = "page"         # a page (parsed), a check (its status only) or a page's requisite


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Spooled:
    """A body too big to hold in memory, streamed to a file beside the job file as it came
    (``crawler.spool``): the writer moves it into the job file. ``path`` is None when bodies are
    not kept (``--no-bodies``): it was only measured and hashed."""

    path: str | None
    size: int
    content_hash: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response as the fetcher delivers it: body decompressed and within the size cap."""

    url: str
    final_url: str
    status: int
    reason_phrase: str
    http_version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    elapsed_ms: int
    request_headers: tuple[tuple[str, str], ...] = ()   # as sent for final_url (what a WARC request record holds)
    ip: str | None = None                                # the server's address, where the transport says
    waited_ms: int | None = None                         # request to response headers (the server's own delay)
    spooled: Spooled | None = None                       # the body, when streamed to a file (``body`` is then b"")

    def header(self, name: str) -> str | None:
        """First value of a header, by case-insensitive name."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


class Outlink(NamedTuple):
    """A link on a stored page, with the scope's verdict on it: ``exclusion`` is the code of the rule
    that keeps it from being fetched (``off_host``, ``too_deep``, ``nofollow``, ...), None = queue it.
    A named tuple, not a dataclass: a page has dozens, and they cross process boundaries."""

    url: str
    host: str
    nofollow: bool
    exclusion: str | None
    anchor: str = ""
    kind: LinkKind = "page"            # what the page uses it as (crawler.references)
    fetch_as: FetchAs = "page"         # how it is fetched, when it is (exclusion None)


@dataclass(slots=True)
class PageRecord:
    """Everything stored about one fetched URL; the storage stage writes it in one transaction."""

    url_id: int
    depth: int
    fetched_at: str
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    title: str | None = None
    description: str | None = None
    canonical: str | None = None
    noindex: bool = False
    nofollow: bool = False
    size: int | None = None          # body bytes after decompression (exported as `bytes`)
    elapsed_ms: int | None = None
    error: str | None = None          # the short error code of INTERFACE.md
    error_message: str | None = None  # what went wrong, in words
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    simhash: int | None = None
    http_version: str | None = None
    reason_phrase: str | None = None  # of the HTTP status line
    headers: tuple[tuple[str, str], ...] = ()
    request_headers: tuple[tuple[str, str], ...] = ()
    ip: str | None = None
    body: bytes | None = None
    links: tuple[Outlink, ...] = ()
    waited_ms: int | None = None      # request to response headers: what adaptive politeness watches (not stored)
    unchanged: bool = False
    h1: str | None = None             # built-in fields (ParsedPage)
    lang: str | None = None
    word_count: int | None = None
    extracted: Extracted | None = None   # the extraction step's result, when rules or structured data are on
    rendered: str | None = None       # --render: why a browser rendered the page ("auto: ..."); None: not rendered
    render_blocked: int = 0           # the rendered page's requests that the crawler's rules refused
    response_body: bytes | None = None   # a rendered page's HTTP body (``body`` is then the rendered DOM)
    spooled: Spooled | None = None    # a big non-HTML body streamed to a file, for the writer to store (``body`` None)
    fetched_as: FetchAs = "page"      # a page, a check of a link's target (status only), or a page's requisite
    render_blocks: tuple[tuple[RenderBlock, int, str], ...] = ()   # its refused requests by why: (why, how many, the first URL)

    def __reduce__(self) -> tuple[Any, ...]:
        # Its links travel as plain tuples: pickle handles those in C, named tuples with a Python
        # call each way, and a page has dozens (worker processes send every record).
        values = list(_RECORD_VALUES(self))
        values[_LINKS] = tuple(map(tuple, self.links))
        return _record_from, (tuple(values),)


_RECORD_VALUES = attrgetter(*PageRecord.__match_args__)
_LINKS = PageRecord.__match_args__.index("links")


def _record_from(values: tuple[Any, ...]) -> PageRecord:
    record = PageRecord(*values)
    record.links = tuple(map(Outlink._make, record.links))
    return record


# --- choices --------------------------------------------------------------------------------
# The values a setting or a run's result can take, as types: mypy checks every use, and
# config validates user input against the same lists (``typing.get_args``).

ScopeMode = Literal["host", "domain", "any"]
ParseMode = Literal["async", "thread", "process"]
TransportKind = Literal["aiohttp", "httpcore"]
EventLoopKind = Literal["auto", "asyncio", "uvloop"]
RenderMode = Literal["never", "auto", "always"]   # --render: which HTML pages a browser renders
# What a link is to the page that has it (crawler.references), and how a URL is fetched.
LinkKind = Literal["page", "stylesheet", "script", "image", "iframe", "media", "font", "icon", "object"]
FetchAs = Literal["page", "check", "requisite"]
# Why the crawler refused a request of a rendered page (``render.gate``): not http(s); the main frame
# sent away; not GET; a frame out of the job's scope; a frame robots.txt disallows; the SSRF guard
# refused the address; a WebSocket.
RenderBlock = Literal["scheme", "navigation", "method", "scope", "robots.txt", "address", "websocket"]
# How a run of a crawl ended (``crawl`` prints it in its summary).
Outcome = Literal["running", "finished", "stopped", "limit", "already_finished", "already_at_limit"]
