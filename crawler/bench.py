"""``crawler bench``: what asyncio, threads and processes each buy the parse stage, in real crawls.

    workload × mode ─► bench site (own process) ─► ``python -m crawler crawl`` (own process tree,
                       fresh job file) ─► sampled every 50 ms: CPU seconds and RSS of the tree

Two workloads: ``io``, small pages each answered after a delay, so a crawl waits on the network and
the parse stage has little to do; ``cpu``, large pages with thousands of links and text extraction
on, so the parse stage is the work. Every parse mode crawls each workload's whole site with the
same settings, as a separate ``crawler crawl`` command, and is measured from the outside:

- ``seconds``: wall time of the whole command, interpreter and pool start-up included;
- ``cpu_percent``: user + system CPU seconds of the crawler's process tree / wall seconds × 100,
  so 200 is two full cores. The crawler's own process is counted exactly (its rusage, taken when
  it is reaped); its descendants (the forkserver and the pool's workers, which nobody in the tree
  waits for) as last sampled, which misses at most one sampling period of each;
- ``peak_rss_mb``: the largest sum of the tree's resident sizes seen in one sample (pages shared
  by a forked worker and its parent count twice, as RSS does);
- ``other_cpu_percent``: CPU the machine spent outside the crawler meanwhile (the bench site, this
  sampler, and anything else running), a warning sign when it is large.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from rich import box
from rich.console import Console
from rich.table import Table

from crawler import __version__
from crawler.bench_site import BenchSite, SiteSpec, page
from crawler.errors import CrawlError, UsageError

MODES = ("async", "thread", "process")
SAMPLE_EVERY = 0.05


@dataclass(frozen=True, slots=True)
class Workload:
    """One site and the crawl settings that every parse mode gets on it."""

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
    """The two standard workloads; ``quick`` crawls smaller sites (about a minute for all six runs)."""
    return [
        # 64 requests in flight, each answered after 50 ms: the crawl waits on the network.
        Workload("io", "I/O-bound", SiteSpec(pages=3000 if quick else 5000, delay=0.05),
                 concurrency=64),
        # ~300 KB pages of 2,000 anchors (to 8 pages of the site and 4 off it, each spelled many ways,
        # so the site keeps its size) and ~230 KB of text to extract and simhash.
        Workload("cpu", "CPU-bound", SiteSpec(pages=200 if quick else 400, anchors=2000, targets=8, offsite=4, text_kb=230),
                 concurrency=16, extract_text=True),
    ]


@dataclass(frozen=True, slots=True)
class Run:
    """One measured crawl."""

    pages: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    other_cpu_percent: float
    errors: int

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_percent(self) -> float:
        return self.cpu_seconds / self.seconds * 100

    def row(self) -> dict[str, Any]:
        return {"pages": self.pages, "seconds": round(self.seconds, 3), "pages_per_s": round(self.pages_per_s, 1),
                "cpu_percent": round(self.cpu_percent, 1), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "other_cpu_percent": round(self.other_cpu_percent, 1), "errors": self.errors}


@dataclass(frozen=True, slots=True)
class Result:
    """Every run of one parse mode on one workload; ``median`` is the run the report shows."""

    workload: str
    mode: str
    runs: tuple[Run, ...]

    @property
    def median(self) -> Run:
        """The run with the median rate (the lower middle one of an even count)."""
        ordered = sorted(self.runs, key=lambda r: r.pages_per_s)
        return ordered[(len(ordered) - 1) // 2]


# -- measuring ------------------------------------------------------------------------------------


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy, all cores."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


@dataclass(frozen=True, slots=True)
class Usage:
    """What one command cost, measured from outside."""

    seconds: float             # wall time, start to exit
    cpu_seconds: float         # user + system, the whole process tree
    peak_rss_mb: float         # largest total RSS of the tree in one sample
    other_cpu_seconds: float   # CPU the rest of the machine used meanwhile


def measure(command: Sequence[str], env: dict[str, str], cwd: str) -> Usage:
    """Run ``command`` to its end, sampling its process tree; raise CrawlError if it fails."""
    err_path = Path(cwd) / "stderr.txt"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = _busy_seconds()
    descendants: dict[tuple[int, float], float] = {}   # (pid, start time) -> CPU seconds last seen
    peak = 0
    with open(err_path, "wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
        ended = started
        done = threading.Event()

        def wait() -> None:   # reaps the crawler the moment it exits, so its end time is exact
            nonlocal ended
            proc.wait()
            ended = time.monotonic()
            done.set()

        waiter = threading.Thread(target=wait, name="bench-wait", daemon=True)
        waiter.start()
        try:
            root = psutil.Process(proc.pid)
            while not done.wait(SAMPLE_EVERY):
                peak = max(peak, _sample(root, descendants))
        except psutil.NoSuchProcess:
            pass
        finally:
            if not done.is_set():   # interrupted: leave no crawler behind
                proc.terminate()
            waiter.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = ended - started
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = own + sum(descendants.values())
    other = max(0.0, _busy_seconds() - busy_before - cpu)
    if proc.returncode != 0:
        tail = err_path.read_text(encoding="utf-8", errors="replace")[-2000:].strip()
        raise CrawlError(f"bench crawl exited with code {proc.returncode}: {' '.join(command)}\n{tail}")
    return Usage(seconds, cpu, peak / 2**20, other)


def _sample(root: psutil.Process, descendants: dict[tuple[int, float], float]) -> int:
    """Record the CPU time of every descendant of ``root``; return the tree's total RSS in bytes."""
    rss = 0
    for proc in (root, *root.children(recursive=True)):
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                rss += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if proc.pid != root.pid:   # the root is counted exactly from its rusage instead
            descendants[proc.pid, proc.create_time()] = times.user + times.system
    return rss


def crawl_env(workload: Workload) -> dict[str, str]:
    """Our environment without any CRAWLER_* setting (the bench fixes every setting), plus the workload's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLER_")}
    if workload.extract_text:
        env["CRAWLER_EXTRACT_TEXT"] = "1"
    return env


def crawl_once(workload: Workload, mode: str, url: str) -> Run:
    """Crawl the whole bench site once with a fresh job file, as its own ``crawler crawl`` command."""
    from crawler.stats import job_stats

    with tempfile.TemporaryDirectory(prefix="crawler-bench-") as folder:
        db = str(Path(folder) / "job.db")
        command = [sys.executable, "-m", "crawler", "crawl", url, "--db", db, "--parse-mode", mode,
                   "--concurrency", str(workload.concurrency), "--per-host", str(workload.concurrency)]
        used = measure(command, crawl_env(workload), folder)
        stored = job_stats(db)
    return Run(stored["pages"], used.seconds, used.cpu_seconds, used.peak_rss_mb,
               used.other_cpu_seconds / used.seconds * 100, sum(stored["errors"].values()))


def run_bench(chosen: Iterable[Workload], modes: Sequence[str] = MODES, repeats: int = 1,
              on_run: Callable[[str], None] | None = None) -> list[Result]:
    """Crawl every workload in every mode ``repeats`` times. Runs alternate between modes, so a slow
    spell of the machine spreads over all of them instead of falling on one."""
    chosen = list(chosen)
    total = len(chosen) * len(modes) * repeats
    results = []
    n = 0
    for workload in chosen:
        runs: dict[str, list[Run]] = {mode: [] for mode in modes}
        with BenchSite(workload.site) as site:
            for repeat in range(repeats):
                for mode in modes:
                    n += 1
                    if on_run is not None:
                        again = f", repeat {repeat + 1}/{repeats}" if repeats > 1 else ""
                        on_run(f"run {n}/{total}: {workload.name} workload, {mode} mode{again}")
                    runs[mode].append(crawl_once(workload, mode, site.url))
        results += [Result(workload.name, mode, tuple(runs[mode])) for mode in modes]
    return results


# -- reporting ------------------------------------------------------------------------------------


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


def speedups(results: Sequence[Result]) -> dict[tuple[str, str], float]:
    """Each mode's median rate over the async mode's, within its workload."""
    base = {r.workload: r.median.pages_per_s for r in results if r.mode == "async"}
    return {(r.workload, r.mode): r.median.pages_per_s / base[r.workload]
            for r in results if r.workload in base}


def report(results: Sequence[Result], chosen: Iterable[Workload], host: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document: machine, workloads, and one row per workload and mode (its median run)."""
    ratio = speedups(results)
    rows = []
    for r in results:
        row: dict[str, Any] = {"workload": r.workload, "mode": r.mode, **r.median.row()}
        if (r.workload, r.mode) in ratio:
            row["speedup_vs_async"] = round(ratio[r.workload, r.mode], 2)
        if len(r.runs) > 1:
            row["runs"] = [run.row() for run in r.runs]
        rows.append(row)
    return {"machine": host or machine(), "workloads": {w.name: w.describe() for w in chosen}, "results": rows}


def table(results: Sequence[Result]) -> Table:
    """Workload × mode, the median run of each."""
    ratio = speedups(results)
    repeats = max(len(r.runs) for r in results)
    out = Table(title="crawler bench" + (f" (medians of {repeats} runs)" if repeats > 1 else ""),
                box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True,
                caption="cpu%: the crawler's processes (100 = one core); peak MB: their total RSS;\n"
                        "other%: the rest of the machine meanwhile (the bench site, anything else)")
    for name in ("workload", "mode", "pages", "wall s", "pages/s", "×async", "cpu%", "peak MB", "other%"):
        out.add_column(name, justify="left" if name in ("workload", "mode") else "right", no_wrap=True)
    for r in results:
        m = r.median
        speed = ratio.get((r.workload, r.mode))
        out.add_row(r.workload, r.mode, f"{m.pages:,}" + (f" ({m.errors} err)" if m.errors else ""),
                    f"{m.seconds:.2f}", f"{m.pages_per_s:,.1f}", "-" if speed is None else f"{speed:.2f}",
                    f"{m.cpu_percent:.0f}", f"{m.peak_rss_mb:.0f}", f"{m.other_cpu_percent:.0f}")
    return out


def can_plot() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


_COLOURS = {"async": "#4C72B0", "thread": "#DD8452", "process": "#55A868"}


def plot(doc: dict[str, Any], path: str) -> None:
    """A PNG: pages/s per mode, one panel per workload, and the CPU use of every run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["results"]
    names = list(dict.fromkeys(r["workload"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    by = {(r["workload"], r["mode"]): r for r in rows}
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.2 * (len(names) + 1), 4.8), layout="constrained")
    for ax, name in zip(axes, names, strict=False):
        present = [m for m in modes if (name, m) in by]
        values = [by[name, m]["pages_per_s"] for m in present]
        bars = ax.bar(present, values, color=[_COLOURS.get(m, "grey") for m in present])
        labels = [f"{v:,.0f}" if v >= 100 else f"{v:,.1f}" for v in values]
        if "async" in present:
            labels = [f"{text}\n{by[name, m]['speedup_vs_async']:.2f}× async" for text, m in zip(labels, present, strict=True)]
        ax.bar_label(bars, labels, padding=3, fontsize=9)
        ax.set_ylim(0, max(values) * 1.25)
        title = doc["workloads"].get(name, {}).get("title", name)
        ax.set_title(title.replace(": ", ":\n", 1), fontsize=10)
        ax.set_xlabel("parse mode")
        ax.set_ylabel("pages per second (higher is better)")
    ax = axes[-1]
    width = 0.8 / len(modes)
    for k, mode in enumerate(modes):
        xs = [i + (k - (len(modes) - 1) / 2) * width for i, name in enumerate(names) if (name, mode) in by]
        values = [by[name, mode]["cpu_percent"] for name in names if (name, mode) in by]
        bars = ax.bar(xs, values, width, label=mode, color=_COLOURS.get(mode, "grey"))
        ax.bar_label(bars, [f"{v:.0f}%" for v in values], padding=2, fontsize=8)
    cores = doc["machine"].get("cpu_count") or 1
    ax.axhline(100 * cores, color="grey", linestyle="--", linewidth=1)
    ax.text(0.98, 100 * cores, f"all {cores} cores", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
            fontsize=8, color="grey")
    ax.set_ylim(0, 100 * cores * 1.4)
    ax.set_xticks(range(len(names)), [f"{n} workload" for n in names])
    ax.set_ylabel("CPU of the crawler's processes (%)")
    ax.set_title("CPU use (100% = one core)", fontsize=10)
    ax.legend(title="parse mode", fontsize=8, title_fontsize=8, loc="upper left", ncols=len(modes))
    info = doc["machine"]
    fig.suptitle(f"crawler {info.get('crawler')} bench: parse modes on {cores} cores "
                 f"({info.get('cpu_model') or platform.machine()}, Python {info.get('python')})", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the command ----------------------------------------------------------------------------------


def check_output(path: str | None, option: str) -> None:
    """Fail before any run, not after minutes of them, when an output file cannot be written."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"{option}: no directory {Path(path).parent} to write {path} in")


def run(quick: bool, out: str | None, plot_path: str | None, console: Console, err: Console) -> dict[str, Any]:
    """``crawler bench``: run, print the table, write the JSON and the chart."""
    check_output(out, "--out")
    check_output(plot_path, "--plot")
    chosen = workloads(quick)
    repeats = 1 if quick else 3
    host = machine()   # before the runs, whose own load would show in the load average
    if err.is_terminal:
        with err.status("starting", refresh_per_second=4) as status:
            results = run_bench(chosen, MODES, repeats, on_run=lambda text: status.update(text))
    else:
        results = run_bench(chosen, MODES, repeats)
    doc = report(results, chosen, host)
    console.print(table(results))
    if out is not None:
        try:
            Path(out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from None
    if plot_path is not None:
        try:
            plot(doc, plot_path)
        except OSError as exc:
            raise UsageError(f"cannot write {plot_path}: {exc.strerror}") from None
    return doc

