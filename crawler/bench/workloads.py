"""What ``crawler bench`` measures: workloads, the cases run on them, and the runs.

Two workloads: ``io``, small pages each answered after a delay, so a crawl waits on the network;
``cpu``, large pages with thousands of links and text extraction on, so parsing is the work. Each
case is one row of the report, a whole site crawled one way, as separate commands measured from
outside (``measure``), each with fresh job files:

- parse modes (``mode`` ``async``, ``thread``, ``process``) on both workloads: ``crawler crawl
  --parse-mode M --workers 1``, where the parse stage runs;
- fetch models (``mode`` ``fetch``, ``fetch`` ``sequential``, ``threads`` or ``asyncio``) on the
  I/O-bound workload, at a sweep of concurrency: ``python -m crawler.bench --fetch F``, how requests
  wait; each level crawls a site sized so that a run lasts a few seconds;
- worker processes (``mode`` ``workers``, ``workers`` K) on both workloads: ``crawler crawl
  --workers K``, the crawl process keeping the job file and K processes fetching and parsing; the
  concurrency is the crawl's total, as without workers.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from crawler.bench.fetch_models import FETCH_MODELS, FetchModel
from crawler.bench.measure import measure
from crawler.bench.site import BenchSite, SiteSpec, page

ParseMode = Literal["async", "thread", "process"]
MODES: tuple[ParseMode, ...] = ("async", "thread", "process")
Mode = Literal["async", "thread", "process", "fetch", "workers"]


@dataclass(frozen=True, slots=True)
class Workload:
    """One site and the crawl settings that every case gets on it."""

    name: str
    kind: str
    site: SiteSpec
    concurrency: int
    extract_text: bool = False

    def describe(self) -> dict[str, Any]:
        """The workload as the report shows it, with a one-line title."""
        kb = len(page(0, self.site)) / 1024
        delay = round(self.site.delay * 1000)
        title = (f"{self.kind}: {kb:,.0f} KB pages, {self.site.anchors:,} links" + (f", {delay} ms latency" if delay else "")
                 + (", text extraction" if self.extract_text else ""))
        return {"title": title, "pages": self.site.pages + 1, "page_kb": round(kb, 1), "anchors_per_page": self.site.anchors,
                "delay_ms": delay, "concurrency": self.concurrency, "per_host": self.concurrency,
                "parse_workers": os.cpu_count() or 1, "extract_text": self.extract_text}


def workloads(quick: bool) -> list[Workload]:
    """The two standard workloads; ``quick`` crawls smaller sites."""
    return [
        # 64 requests in flight, each answered after 50 ms: the crawl waits on the network.
        Workload("io", "I/O-bound", SiteSpec(pages=600 if quick else 3000, delay=0.05), concurrency=64),
        # ~300 KB pages of 2,000 anchors (to 8 pages of the site and 4 off it, each spelled many ways,
        # so the site keeps its size) and ~230 KB of text to extract and simhash: ~75 ms of parsing
        # each. ``quick`` keeps 80: a parse pool's start (a forkserver, its workers' imports) and the
        # crawl's own start do not spread over cores, and on 20 pages they hid the second core
        # (process over thread 1.3x on 2 cores; about 1.6x on 80).
        Workload("cpu", "CPU-bound", SiteSpec(pages=80 if quick else 100, anchors=2000, targets=8, offsite=4, text_kb=230),
                 concurrency=16, extract_text=True),
    ]


def sweep_levels(quick: bool) -> tuple[int, ...]:
    """Requests in flight for the fetch models: 2,048 where this process may open enough files
    (each connection is a socket at both ends of loopback, and the bench site is one process)."""
    from crawler.bench.measure import open_files_limit

    levels = (1, 8, 64) if quick else (1, 8, 64, 512, 2048)
    return tuple(c for c in levels if 2 * c + 200 <= open_files_limit())


def sweep_pages(concurrency: int, quick: bool) -> int:
    """Pages of the site crawled at a level: enough for a run of a few seconds (``quick``: one or two)
    at the rate the level can reach: ``concurrency`` / 50 ms, or what one core allows (500 to 1,000
    pages/s on the 2-core machines we measured on)."""
    per_request = 20 if quick else 40
    return max(per_request, min(concurrency * per_request, 600 if quick else 3000))


@dataclass(frozen=True, slots=True)
class Case:
    """One row of the report: ``workload`` crawled one way."""

    workload: Workload
    mode: Mode
    concurrency: int
    fetch: FetchModel | None = None   # the fetch model of a ``fetch`` row
    workers: int = 1                  # crawling processes

    @property
    def label(self) -> str:
        if self.mode == "fetch":
            return f"{self.fetch} fetch, {self.concurrency:,} in flight"
        if self.mode == "workers":
            return f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        return f"{self.mode} parse mode"

    def commands(self, url: str, folder: Path) -> tuple[list[list[str]], list[Path]]:
        """The commands of one run, started together, and the job files they write."""
        crawl = [sys.executable, "-m", "crawler", "crawl"]
        if self.mode == "fetch":
            assert self.fetch is not None
            db = folder / "job.db"
            return [[sys.executable, "-m", "crawler.bench", url, "--fetch", self.fetch, "--concurrency",
                     str(self.concurrency), "--db", str(db)]], [db]
        if self.mode == "workers":   # crawler crawl --workers K: the crawl process and K workers
            db = folder / "job.db"
            return [[*crawl, url, "--db", str(db), "--workers", str(self.workers), "--concurrency",
                     str(self.concurrency), "--per-host", str(self.concurrency)]], [db]
        db = folder / "job.db"
        return [[*crawl, url, "--db", str(db), "--parse-mode", self.mode, "--workers", "1",
                 "--concurrency", str(self.concurrency), "--per-host", str(self.concurrency)]], [db]


def parse_cases(chosen: Iterable[Workload]) -> list[Case]:
    return [Case(w, mode, w.concurrency) for w in chosen for mode in MODES]


def fetch_cases(io: Workload, levels: Sequence[int], pages: Callable[[int], int]) -> list[Case]:
    """The fetch models at every level of the sweep, on a site of ``pages(level)`` pages of the
    ``io`` workload (sequential only at 1: it has one request in flight)."""
    cases = []
    for level in levels:
        sized = replace(io, site=replace(io.site, pages=pages(level) - 1), concurrency=level)
        cases += [Case(sized, "fetch", level, fetch) for fetch in FETCH_MODELS if fetch != "sequential" or level == 1]
    return cases


def worker_cases(chosen: Iterable[Workload], cores: int) -> list[Case]:
    """1 to ``cores`` crawling processes (at most 8), the workload's concurrency shared among them."""
    return [Case(w, "workers", w.concurrency, workers=k) for w in chosen for k in range(1, min(cores, 8) + 1)]


def cases(quick: bool) -> list[Case]:
    """Every case of a ``crawler bench`` run, in the order the report shows them."""
    chosen = workloads(quick)
    io = next(w for w in chosen if w.name == "io")
    sweep = fetch_cases(io, sweep_levels(quick), lambda level: sweep_pages(level, quick))
    return parse_cases(chosen) + sweep + worker_cases(chosen, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run of a case."""

    pages: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    other_cpu_percent: float
    errors: int
    threads: int = 0      # the most OS threads the run's processes had at once
    open_files: int = 0   # the most file descriptors they had open at once (sockets, mostly)

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_percent(self) -> float:
        return self.cpu_seconds / self.seconds * 100

    def row(self) -> dict[str, Any]:
        return {"pages": self.pages, "seconds": round(self.seconds, 3), "pages_per_s": round(self.pages_per_s, 1),
                "cpu_percent": round(self.cpu_percent, 1), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "threads": self.threads, "open_files": self.open_files,
                "other_cpu_percent": round(self.other_cpu_percent, 1), "errors": self.errors}


@dataclass(frozen=True, slots=True)
class Result:
    """Every run of one case; ``median`` is the run the report shows."""

    case: Case
    runs: tuple[Run, ...]

    @property
    def median(self) -> Run:
        """The run with the median rate (the lower middle one of an even count)."""
        ordered = sorted(self.runs, key=lambda r: r.pages_per_s)
        return ordered[(len(ordered) - 1) // 2]


def crawl_env(workload: Workload) -> dict[str, str]:
    """Our environment without any CRAWLER_* setting (the bench fixes every setting), plus the workload's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    if workload.extract_text:
        env["CRAWLER_EXTRACT_TEXT"] = "1"
    return env


def run_once(case: Case, url: str) -> Run:
    """Crawl the whole site once, as the case's commands, with fresh job files."""
    from crawler.stats import job_stats

    with tempfile.TemporaryDirectory(prefix="crawler-bench-") as name:
        folder = Path(name)
        commands, dbs = case.commands(url, folder)
        used = measure(commands, crawl_env(case.workload), name)
        stored = [job_stats(db) for db in dbs]
    return Run(sum(s["pages"] for s in stored), used.seconds, used.cpu_seconds, used.peak_rss_mb,
               used.other_cpu_seconds / used.seconds * 100, sum(sum(s["errors"].values()) for s in stored),
               used.peak_threads, used.peak_open_files)


def run_bench(chosen: Sequence[Case], repeats: int = 1, on_run: Callable[[str], None] | None = None) -> list[Result]:
    """Run every case ``repeats`` times, one site at a time (cases on the same site share its server).
    Runs alternate between the cases of a site, so a slow spell of the machine spreads over all of them
    instead of falling on one. Results come in the order of ``chosen``."""
    by_site: dict[SiteSpec, list[Case]] = {}
    for case in chosen:
        by_site.setdefault(case.workload.site, []).append(case)
    runs: dict[Case, list[Run]] = {case: [] for case in chosen}
    total = len(chosen) * repeats
    n = 0
    for spec, group in by_site.items():
        with BenchSite(spec) as site:
            for repeat in range(repeats):
                for case in group:
                    n += 1
                    if on_run is not None:
                        again = f", repeat {repeat + 1}/{repeats}" if repeats > 1 else ""
                        on_run(f"run {n}/{total}: {case.workload.name} workload, {case.label}{again}")
                    runs[case].append(run_once(case, site.url))
    return [Result(case, tuple(runs[case])) for case in chosen]
