"""The live line on a terminal (pages, rate, queued, in flight, hosts, errors) and the closing summary."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from crawler.printable import printable
from crawler.scheduler import RunStats
from crawler.wording import plural


def line(stats: RunStats) -> str:
    # Hosts active against hosts with work: a crawl waiting on a few slow hosts shows few active.
    text = (f"pages {stats.pages:,}  {stats.rate:,.0f}/s  queued {max(stats.queued, 0):,}  "
            f"in flight {stats.in_flight}  hosts {stats.hosts_active:,} active / {stats.hosts_queued:,} with work  "
            f"errors {stats.errors:,}  retries {stats.retries:,}")
    if (outage := stats.outage) is not None:   # a crawl that stalls says on what, and for how long at most
        text += (f"  {outage.server} not answering for {time.monotonic() - outage.since:.0f} s: "
                 f"retrying, up to {outage.within:g} s")
    return text


async def live(stats: RunStats, console: Console, period: float = 0.25) -> None:
    """Redraw the live line until cancelled. Only called when stderr is a terminal."""
    with Live(Text(line(stats)), console=console, auto_refresh=False, transient=True) as view:
        while True:
            await asyncio.sleep(period)
            view.update(Text(line(stats)), refresh=True)


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
    table.add_row("job", printable(f"{job['db']}: {plural(job['pages'], 'page')}, state {job['state']}"))
    table.add_row("statuses", printable(", ".join(f"{k}: {v:,}" for k, v in job["statuses"].items())) or "-")
    table.add_row("errors", printable(", ".join(f"{k}: {v:,}" for k, v in job["errors"].items())) or "-")
    table.add_row(f"pass {job['pass']}", ", ".join(f"{k} {v:,}" for k, v in job["this_pass"].items()))
    table.add_row("queue", f"{job['queue']['pending']:,} pending, {job['queue']['excluded']:,} excluded")
    return table
