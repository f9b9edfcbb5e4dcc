"""What a running crawl shows, and the closing summary.

On a terminal, a live line redrawn in place: elapsed time, pages, rate, queued, in flight, hosts,
errors. Without one (nohup, CI, a log file), a plain line on stderr every ``progress_every`` seconds
(a minute by default), as Scrapy's LogStats logs one: the log shows the crawl is alive and how fast
it goes. ``--quiet`` shows neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from crawler.printable import printable
from crawler.run_stats import RunStats
from crawler.stats import references_text
from crawler.wording import plural


def line(stats: RunStats) -> str:
    """Pages and rate, then the state of the crawl (``state``)."""
    return f"pages {stats.pages:,}  {stats.rate:,.0f}/s  {state(stats)}"


def state(stats: RunStats) -> str:
    # Hosts active against hosts with work: a crawl waiting on a few slow hosts shows few active.
    text = (f"queued {max(stats.queued, 0):,}  "
            f"in flight {stats.in_flight}  hosts {stats.hosts_active:,} active / {stats.hosts_queued:,} with work  "
            f"errors {stats.errors:,}  retries {stats.retries:,}")
    if (outage := stats.outage) is not None:   # a crawl that stalls says on what, and for how long at most
        text += (f"  {outage.server} not answering for {time.monotonic() - outage.since:.0f} s: "
                 f"retrying, up to {outage.within:g} s")
    return text


def clock(seconds: float) -> str:
    """Elapsed time as h:mm:ss."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02}:{whole % 60:02}"


def plain_line(stats: RunStats, pages_before: int, period: float) -> str:
    """The line logged every ``period`` seconds without a terminal: the rate is of that period."""
    per_minute = (stats.pages - pages_before) * 60 / period if period > 0 else 0.0
    return printable(f"crawler: {clock(stats.elapsed)} elapsed, pages {stats.pages:,} ({per_minute:,.0f}/min)  "
                     f"{state(stats)}")


async def live(stats: RunStats, console: Console, period: float = 0.25) -> None:
    """Redraw the live line, elapsed time first, until cancelled. Only when stderr is a terminal."""
    def text() -> Text:
        return Text(f"{clock(stats.elapsed)}  {line(stats)}")
    with Live(text(), console=console, auto_refresh=False, transient=True) as view:
        while True:
            await asyncio.sleep(period)
            view.update(text(), refresh=True)


async def logged(stats: RunStats, period: float) -> None:
    """Print ``plain_line`` to stderr every ``period`` seconds until cancelled."""
    before = stats.pages
    while True:
        await asyncio.sleep(period)
        print(plain_line(stats, before, period), file=sys.stderr, flush=True)
        before = stats.pages


@contextlib.asynccontextmanager
async def shown(stats: RunStats, console: Console, *, quiet: bool, period: float) -> AsyncIterator[None]:
    """Show the crawl's progress while the body runs: the live line where ``console`` is a
    terminal, else a plain line every ``period`` seconds (none for 0); nothing with ``quiet``."""
    if quiet or not (console.is_terminal or period > 0):
        yield
        return
    # Owned here: cancelled and awaited on the way out. (No TaskGroup: up to Python 3.11 it would wrap
    # the crawl's own error, a JobLocked for instance, in an ExceptionGroup.)
    view = asyncio.create_task(live(stats, console) if console.is_terminal else logged(stats, period))
    try:
        yield
    finally:
        view.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await view


def summary_lines(stats: RunStats, job: dict[str, Any]) -> list[str]:
    """The summary as plain lines, for output that is not a terminal."""
    table = summary(stats, job)
    rows = zip(*(column.cells for column in table.columns), strict=True)
    return [f"crawl {stats.outcome}"] + [f"{name:<9} {value}" for name, value in rows]


def summary(stats: RunStats, job: dict[str, Any]) -> Table:
    """The table printed when a run ends: this run first, then the job as stored."""
    table = Table(title=f"crawl {stats.outcome}", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    not_modified = f", {stats.unchanged:,} not modified (304)" if stats.unchanged else ""
    table.add_row("this run", f"{plural(stats.pages, 'page')} in {stats.elapsed:.1f}s ({stats.rate:,.0f}/s), "
                  f"{plural(stats.errors, 'error')}, {plural(stats.retries, 'retry', 'retries')}{not_modified}")
    if stats.checks or stats.requisites:   # apart from pages (issue 24)
        table.add_row("references", f"{stats.checks:,} checked, {plural(stats.requisites, 'requisite')} "
                      f"this run; {references_text(job.get('references') or {}) or '-'} in the job")
    table.add_row("job", printable(f"{job['db']}: {plural(job['pages'], 'page')}, state {job['state']}"))
    table.add_row("statuses", printable(", ".join(f"{k}: {v:,}" for k, v in job["statuses"].items())) or "-")
    table.add_row("errors", printable(", ".join(f"{k}: {v:,}" for k, v in job["errors"].items())) or "-")
    table.add_row(f"pass {job['pass']}", ", ".join(f"{k} {v:,}" for k, v in job["this_pass"].items()))
    table.add_row("queue", f"{job['queue']['pending']:,} pending, {job['queue']['excluded']:,} excluded")
    return table
