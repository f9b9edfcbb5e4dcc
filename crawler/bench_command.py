"""``crawler bench``: the command line of the concurrency lesson (``crawler.bench.command`` runs it)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

EXIT_USAGE = 2


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller sites, fewer levels and one run of each (under a "
                                                        "minute), not the median of three (under 10 minutes).")] = False,
    out: Annotated[str | None, typer.Option(metavar="FILE", help="Write the results as JSON to this file.")] = None,
    plot: Annotated[str | None, typer.Option(metavar="FILE", help="Draw a PNG chart to this file (needs matplotlib).")] = None,
) -> None:
    """Measure asyncio, threads and processes: parse modes and worker processes on an I/O-bound and a
    CPU-bound workload, and blocking (sequential, thread pool) against asyncio fetching at 1 to 2,048
    requests in flight."""
    from crawler.bench.plot import can_plot
    if plot is not None and not can_plot():
        _say("crawler: --plot needs matplotlib: pip install 'crawler[plot]'")
        raise typer.Exit(EXIT_USAGE)
    from crawler.bench.command import run as run_bench
    run_bench(quick, out, plot, Console(), Console(stderr=True))
