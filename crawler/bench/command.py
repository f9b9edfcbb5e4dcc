"""``crawler bench`` itself: check the outputs, run every case, print the table, write JSON and chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from crawler.bench.report import machine, report, table
from crawler.bench.workloads import cases, run_bench
from crawler.errors import UsageError
from crawler.loop import raise_open_files_limit


def check_output(path: str | None, option: str) -> None:
    """Fail before any run, not after minutes of them, when an output file cannot be written."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"{option}: no directory {Path(path).parent} to write {path} in")


def run(quick: bool, out: str | None, plot_path: str | None, console: Console, err: Console) -> dict[str, Any]:
    """``crawler bench``: run, print the table, write the JSON and the chart."""
    check_output(out, "--out")
    check_output(plot_path, "--plot")
    raise_open_files_limit()   # before the sweep's levels are chosen; the site and the crawls inherit it
    chosen = cases(quick)
    repeats = 1 if quick else 3
    host = machine()   # before the runs, whose own load would show in the load average
    if err.is_terminal:
        with err.status("starting", refresh_per_second=4) as status:
            results = run_bench(chosen, repeats, on_run=lambda text: status.update(text))
    else:
        results = run_bench(chosen, repeats)
    doc = report(results, host)
    if not console.is_terminal:
        console.width = 150   # piped or redirected, rich would fold the table to 80 columns
    console.print(table(results))
    if out is not None:
        try:
            Path(out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    if plot_path is not None:
        from crawler.bench.plot import plot
        try:
            plot(doc, plot_path)
        except OSError as exc:
            raise UsageError(f"cannot write {plot_path}: {exc.strerror}") from None
    return doc
