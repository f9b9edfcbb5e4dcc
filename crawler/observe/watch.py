"""A run watched: its observers opened before the crawl starts (a port in use, an events file that
cannot be written: one line, exit 2, before any request), told ``started``, and at the end
``finished`` (the summary), ``stopped`` (SIGINT, SIGTERM: resumable) or ``failed``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from crawler.config import Settings
from crawler.errors import CrawlError
from crawler.observe.base import Observer, Observers
from crawler.run_stats import RunStats


def check(settings: Settings) -> None:
    """What can be checked before the job file or a worker: the address, the client library."""
    if settings.metrics:
        from crawler.observe.metrics import check_available, listen_address
        listen_address(settings.metrics)
        check_available()


def summary(stats: RunStats) -> dict[str, Any]:
    """This run's figures, as the closing summary's first line gives them."""
    urls, hosts, until = stats.parked
    return {"outcome": stats.outcome, "pages": stats.pages, "errors": stats.errors, "retries": stats.retries,
            "unchanged": stats.unchanged, "seconds": round(stats.elapsed, 3),
            "parked": {"urls": urls, "hosts": hosts, "until": until}}


@contextlib.contextmanager
def watching(settings: Settings, stats: RunStats, seeds: Sequence[str], say: Callable[[str], None]) -> Iterator[None]:
    """Open the run's observers (``--metrics``, ``--events``) and make them ``stats.observer`` while
    the body runs the crawl; close them after it."""
    if not (settings.metrics or settings.events):
        yield
        return
    observers: list[Observer] = []
    with contextlib.ExitStack() as owned:
        events = None
        if settings.events:
            from crawler.observe.events import EventStream, open_target
            stream, ours = open_target(settings.events)
            events = EventStream(stream, say, owned=ours)
            owned.callback(events.close)
            observers.append(events)
        if settings.metrics:
            from crawler.observe.metrics import Metrics, listen_address
            metrics = Metrics(stats)
            served = metrics.serve(*listen_address(settings.metrics))
            owned.callback(served.close)
            observers.append(metrics)
            if not settings.quiet:
                say(f"crawler: metrics at {served.url}")
        stats.observer = observers[0] if len(observers) == 1 else Observers(observers)
        if events is not None:
            events.emit("started", db=settings.db, seeds=len(seeds), workers=settings.processes, pid=os.getpid())
        try:
            yield
        except BaseException as exc:
            if events is not None:
                error = str(exc) if isinstance(exc, CrawlError) else f"{type(exc).__name__}: {exc}"
                events.emit("failed", error=error, kind=type(exc).__name__, **summary(stats))
            raise
        if events is not None:
            events.emit("stopped" if stats.outcome == "stopped" else "finished", **summary(stats))
