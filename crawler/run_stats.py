"""What a run has done so far: the counts the scheduler keeps, and the progress line and the
closing summary read (``progress.py``, ``run_end.py``), without importing the scheduler."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from crawler.frontier import Outage
from crawler.models import Outcome
from crawler.observe.base import Observer


@dataclass(slots=True)
class RunStats:
    """What this run has done so far; read by the progress line and the summary."""

    started: float = field(default_factory=time.monotonic)
    pages: int = 0
    errors: int = 0
    retries: int = 0
    unchanged: int = 0         # answered 304 to a conditional recrawl
    checks: int = 0            # link targets checked (--check-references, --check-external): not pages
    requisites: int = 0        # page requisites fetched (--page-requisites): not pages
    in_flight: int = 0
    queued: int = 0
    hosts_active: int = 0      # hosts with a request in flight
    hosts_queued: int = 0      # hosts with URLs to fetch (in flight, ready or waiting their turn)
    outage: Outage | None = None   # a shared frontier not answering, being retried
    outcome: Outcome = "running"
    parked: tuple[int, int, str | None] = (0, 0, None)   # URLs and hosts left parked at the end, until when
    observer: Observer = field(default_factory=Observer)   # told of each page and host change (--metrics, --events)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.pages / self.elapsed if self.elapsed > 0 else 0.0
