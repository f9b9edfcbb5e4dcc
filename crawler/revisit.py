"""When a stored page is next worth fetching: an interval per page that follows what its visits saw.

``crawler crawl --db JOB --recrawl --due`` fetches only the pages whose next visit is due. The rule,
applied each time a page is stored (``storage.revisit``):

- a page fetched for the first time gets ``revisit_start`` (1 day);
- fetched again and unchanged (a 304 to the conditional request, or the same status and content
  hash): its interval doubles, up to ``revisit_max`` (30 days);
- changed (another hash or status) or gone (404, 410): its interval halves, down to
  ``revisit_min`` (1 hour);
- anything else (an error answer) keeps the interval it had.

The page is then due at the start of the pass that stored it plus its interval. A page with no
interval yet (stored before this rule existed) is due, and so is a page whose sitemap ``lastmod``
is later than its last fetch. Times are the wall clock's, through ``now`` (tests replace it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bounds:
    """The interval rule's three durations, in seconds."""

    start: float = 86_400.0
    least: float = 3_600.0
    most: float = 30 * 86_400.0

    def problem(self) -> str | None:
        """What is wrong with these bounds in words, or None."""
        if not 0 < self.least <= self.start <= self.most:
            return (f"the revisit intervals must be 0 < revisit_min ({self.least:g} s) <= revisit_start "
                    f"({self.start:g} s) <= revisit_max ({self.most:g} s)")
        return None


def next_interval(interval: float | None, change: str | None, bounds: Bounds) -> float:
    """A page's interval once a fetch found it ``change`` (new, unchanged, changed, gone, or None
    for an answer that says nothing of its content). The same rule as ``storage.revisit``'s SQL."""
    if interval is None:
        return bounds.start
    if change == "unchanged":
        return min(interval * 2, bounds.most)
    if change in ("changed", "gone"):
        return max(interval / 2, bounds.least)
    return interval


def now() -> float:
    """Seconds since the epoch: when a pass starts and what --due compares with."""
    return time.time()


def in_words(seconds: float) -> str:
    """A duration as a person reads it: 45 s, 12 min, 6 h, 3.5 d."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3_600:.0f} h"
    return f"{seconds / 86_400:.1f} d".replace(".0 d", " d")
