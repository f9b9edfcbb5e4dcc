"""The same gate for the browser: which requests a rendered page may make. Pure, no I/O.

The browser has no network of its own (``browser.LAUNCH_ARGS``: every name resolves to nothing,
every connection goes to a proxy where nothing listens). Each request the page makes is
intercepted and judged here; one that passes is made by the crawler's own fetcher, so it meets the
SSRF guard on the address actually connected to, the body cap, the deadline, and each redirect
hop's checks, exactly as a page fetch does. In order:

1. the page's own document (the first navigation of the main frame) is answered with the HTTP
   response already fetched: no second request;
2. a scheme other than http or https (``file:``, ``data:``, ``blob:``, ``chrome:``...) is refused;
3. any other navigation of the main frame (the script sending the browser away) is refused;
4. a resource type in ``--render-block`` (images, media and fonts by default) is not loaded;
5. a method other than GET is refused: a crawler reads, it does not submit;
6. a frame's navigation must be in the job's scope, and obey robots.txt on the page's own site
   (checked by the router, which has the scope and robots.txt at hand: ``"navigate"``);
7. everything else is fetched by the crawler's fetcher (``"fetch"``), whose SSRF guard refuses a
   private or loopback address no seed named (IP literals before the request, names once resolved).

A refused request is counted on the page (``render_blocked``, and by why: ``render_blocks``, a
``models.RenderBlock``), never an error of the page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from crawler.models import RenderBlock
from crawler.wording import plural

Verdict = Literal["document", "fetch", "navigate", "skip", "block"]


@dataclass(frozen=True, slots=True)
class Ask:
    """A request a rendered page makes, as the browser tells it."""

    url: str
    method: str
    kind: str                  # Playwright's resource type: document, script, fetch, image, ...
    navigation: bool
    main_frame: bool


class Blocked(NamedTuple):
    """A refused request: why (a ``RenderBlock``), its URL, and the rule's words."""

    why: RenderBlock
    url: str
    detail: str


def judge(ask: Ask, *, document_served: bool, blocked_kinds: frozenset[str]) -> tuple[Verdict, Blocked | None]:
    """What to do with ``ask``, and for a ``block`` why."""
    scheme = urlsplit(ask.url).scheme.lower()
    if ask.navigation and ask.main_frame and not document_served:
        return "document", None
    if scheme not in ("http", "https"):
        return "block", Blocked("scheme", ask.url, f"{scheme}: URL")
    if ask.navigation and ask.main_frame:
        return "block", Blocked("navigation", ask.url, "navigation away from the page")
    if ask.kind in blocked_kinds:
        return "skip", None
    if ask.method.upper() != "GET":
        return "block", Blocked("method", ask.url, f"{ask.method.upper()} request")
    if ask.navigation:
        return "navigate", None
    return "fetch", None


@dataclass(slots=True)
class Tally:
    """What one page's requests came to, and whether any is still under way (the page settles when
    none has been for a while)."""

    fetched: int = 0
    skipped: int = 0
    failed: int = 0
    blocked: list[Blocked] = field(default_factory=list)   # in order
    in_flight: int = 0
    last_change: float = 0.0

    def note(self) -> str:
        """For the record's ``rendered`` text: ``3 requests, 1 blocked, 4 not loaded``."""
        parts = [plural(self.fetched, "request")]
        if self.blocked:
            parts.append(f"{len(self.blocked)} blocked (" + ", ".join(f"{n} {why}" for why, n, _ in self.by_why()) + ")")
        if self.skipped:
            parts.append(f"{self.skipped} not loaded")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def by_why(self) -> tuple[tuple[RenderBlock, int, str], ...]:
        """The refused requests by why, most first: (why, how many, the first URL refused so)."""
        counts = Counter(b.why for b in self.blocked)
        first: dict[RenderBlock, str] = {}
        for b in self.blocked:
            first.setdefault(b.why, b.url[:500])
        return tuple((why, n, first[why]) for why, n in counts.most_common())
