"""What ``crawler bench`` shows: the JSON document and the table, from the results of its runs.

Each row is the median run of a case, with the fields every row has (``workload``, ``mode``,
``pages``, ``seconds``, ``pages_per_s``, ``cpu_percent``, ``peak_rss_mb``, ``concurrency``,
``threads``, ``workers``; ``open_files`` too: the most descriptors open at once, sockets mostly),
``fetch`` on the rows of a fetch model, and its rate against its baseline:
``speedup_vs_async`` (parse modes, within a workload), ``speedup_vs_sequential`` (fetch models) or
``speedup_vs_1_worker`` (worker processes, within a workload).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from crawler import __version__
from crawler.bench.workloads import Case, Result

SPEEDUP_FIELD = {"async": "speedup_vs_async", "thread": "speedup_vs_async", "process": "speedup_vs_async",
                 "fetch": "speedup_vs_sequential", "workers": "speedup_vs_1_worker"}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "crawler": __version__,
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}


def _is_baseline(case: Case) -> bool:
    return (case.mode == "async" or (case.mode == "fetch" and case.fetch == "sequential")
            or (case.mode == "workers" and case.workers == 1))


def _family(case: Case) -> tuple[str, str]:
    """Rows compared with one baseline: parse modes and workers within a workload, fetch models together."""
    group = "parse" if case.mode in ("async", "thread", "process") else case.mode
    return group, case.workload.name


def speedups(results: Sequence[Result]) -> dict[Case, float]:
    """Each case's median rate over its baseline's (see the module docstring), where it has one."""
    base = {_family(r.case): r.median.pages_per_s for r in results if _is_baseline(r.case)}
    return {r.case: r.median.pages_per_s / base[_family(r.case)] for r in results if _family(r.case) in base}


def row(result: Result, speedup: float | None) -> dict[str, Any]:
    case, m = result.case, result.median
    out: dict[str, Any] = {"workload": case.workload.name, "mode": case.mode}
    if case.fetch is not None:
        out["fetch"] = case.fetch
    out |= m.row()
    out |= {"concurrency": case.concurrency, "workers": case.workers}
    if speedup is not None:
        out[SPEEDUP_FIELD[case.mode]] = round(speedup, 2)
    if len(result.runs) > 1:
        out["runs"] = [run.row() for run in result.runs]
    return out


def report(results: Sequence[Result], host: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document: machine, workloads, and one row per case (its median run)."""
    ratio = speedups(results)
    described: dict[str, Any] = {}
    sweep: dict[int, int] = {}
    for r in results:
        if r.case.mode == "fetch":
            sweep[r.case.concurrency] = r.case.workload.site.pages + 1
        else:
            described.setdefault(r.case.workload.name, r.case.workload.describe())
    doc: dict[str, Any] = {"machine": host or machine(), "workloads": described}
    if sweep:
        doc["fetch_sweep"] = {"concurrency": list(sweep), "pages": list(sweep.values()),
                              "workload": "the I/O-bound pages, a site of `pages` at each level of `concurrency`"}
    doc["results"] = [row(r, ratio.get(r.case)) for r in results]
    return doc


def table(results: Sequence[Result]) -> Table:
    """One line per case, its median run."""
    ratio = speedups(results)
    repeats = max(len(r.runs) for r in results)
    out = Table(title="crawler bench" + (f" (medians of {repeats} runs)" if repeats > 1 else ""),
                box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True,
                caption="×base: rate over the async parse mode, the sequential fetch, or 1 worker; cpu%: the crawl's\n"
                        "processes (100 = one core); peak MB: their total RSS; threads, files: the most OS threads and open\n"
                        "descriptors (sockets, mostly) they had; other%: the rest of the machine meanwhile (the bench site,\n"
                        "anything else)")
    for name in ("workload", "case", "in flight", "pages", "wall s", "pages/s", "×base", "cpu%", "peak MB", "threads",
                 "files", "other%"):
        out.add_column(name, justify="left" if name in ("workload", "case") else "right", no_wrap=True)
    for r in results:
        m = r.median
        speed = ratio.get(r.case)
        label = r.case.label.removesuffix(f", {r.case.concurrency:,} in flight")
        out.add_row(r.case.workload.name, label, f"{r.case.concurrency:,}",
                    f"{m.pages:,}" + (f" ({m.errors} err)" if m.errors else ""),
                    f"{m.seconds:.2f}", f"{m.pages_per_s:,.1f}", "-" if speed is None else f"{speed:.2f}",
                    f"{m.cpu_percent:.0f}", f"{m.peak_rss_mb:.0f}", f"{m.threads:,}", f"{m.open_files:,}",
                    f"{m.other_cpu_percent:.0f}")
    return out
