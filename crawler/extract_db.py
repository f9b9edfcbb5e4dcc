"""``crawler extract --db JOB --rules FILE``: the rules run again over every stored body of a job.

No request to anyone: the bodies a crawl stored (2xx HTML pages, those its parse stage extracted
from) are read in batches, in url_id order, and sent to a pool of worker processes (forkserver, as
the parse stage's), a bounded number of batches in flight, so memory stays flat however large the
job. A batch travels as stored (its bodies zlib-compressed) and is inflated in the worker: that
keeps the one parent process, which reads, sends and writes, off the critical path. Each worker
runs ``extraction.apply.extract_body``, the crawl's own code path, so the same rules give the
values the crawl stored. Results are staged in the job file (``storage.extracted.Rerun``) and
replace the old values in one transaction at the end: a run killed midway leaves the previous
values. The job then remembers the rules (and plugin) it was run with, for its next crawl.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from crawler.errors import StorageError, UsageError
from crawler.extraction.apply import Extraction, extract_body
from crawler.extraction.rules import Rules
from crawler.progress import clock
from crawler.storage.extracted import Rerun, staged_row
from crawler.storage.extracted_read import html_bodies, html_body_count
from crawler.storage.jobfile import JobFile
from crawler.storage.read import JobReader
from crawler.wording import plural

# Pages a batch holds at most; a small job is cut finer, so that every worker has batches to take.
_BATCH = 250
# Batches in flight per worker: one being worked on, one waiting, so that no worker idles.
_IN_FLIGHT = 2

# One stored page as a worker gets it: url_id, final URL, status, headers, body (zlib).
Row = tuple[int, str, int, tuple[tuple[str, str], ...], bytes]


@dataclass(slots=True)
class Tally:
    """What a run did: pages read again, those a page type applied to, their extraction errors."""

    pages: int = 0
    typed: int = 0
    missing: int = 0
    failed: int = 0

    def count(self, row: tuple[Any, ...]) -> None:
        """Count a page by its staged row (``storage.extracted.staged_row``)."""
        self.pages += 1
        self.typed += row[1] is not None
        self.missing += row[9] == "extract_missing"
        self.failed += row[9] == "extract_failed"


def extract_batch(how: Extraction, rows: list[Row]) -> list[tuple[Any, ...]]:
    """What extraction makes of each stored page of a batch, as the rows ``Rerun`` stages (in a worker
    process: the JSON text is made here, so that the parent, the one writer, only writes)."""
    found = []
    for url_id, url, status, headers, body in rows:
        lower = {k.lower(): v for k, v in headers}   # as the crawl hands them to its parse stage
        found.append(staged_row(url_id, extract_body(how, url, status, lower, zlib.decompress(body))))
    return found


def workers_of(value: str) -> int:
    """``--workers``: a number of processes, or ``auto`` (one per core)."""
    if value == "auto":
        return os.cpu_count() or 1
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise UsageError(f"--workers {value!r}: give a number of processes (1 or more), or auto")
    return workers


def run(db: str, rules: Rules | None, rules_file: str, plugin: str, workers: int) -> str:
    """Run the rules over every stored body of the job ``db``; the closing line."""
    path = Path(db)
    if not path.is_file():
        raise UsageError(f"no job file at {db}")
    try:
        with JobReader(path) as reader:
            if not reader.keeps_bodies():
                raise UsageError(f"job {db} was crawled with --no-bodies: it has no stored pages to extract from")
            total = html_body_count(reader)
            settings = reader.meta().get("job_settings") or {}
    except StorageError as exc:   # not a job file: the user named the wrong file
        raise UsageError(str(exc)) from None
    started = time.monotonic()
    # Structured data as the job's crawl read it (its settings), so that every column it stored is the crawl's.
    how = Extraction(rules, plugin, bool(settings.get("structured_data", True)), bool(settings.get("microdata", False)))
    remembered = {"extract": os.path.abspath(rules_file) if rules_file else "", "plugin": plugin}
    tally = asyncio.run(_rerun(path, how, remembered, workers, total))
    seconds = time.monotonic() - started
    return (f"extracted {plural(tally.pages, 'page')} in {seconds:.1f} s ({tally.pages / max(seconds, 1e-9):,.0f}/s): "
            f"{tally.typed:,} with a page type, {tally.missing:,} extract_missing, {tally.failed:,} extract_failed; "
            f"the job now extracts with {_what(rules_file, plugin)}")


def _what(rules_file: str, plugin: str) -> str:
    return " and ".join(part for part in (rules_file and f"rules {rules_file}", plugin and f"plugin {plugin}") if part)


async def _rerun(path: Path, how: Extraction, remembered: dict[str, str], workers: int, total: int) -> Tally:
    tally = Tally()
    batch = max(1, min(_BATCH, math.ceil(total / (workers * 4))))
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
    try:
        async with JobFile(path) as job:
            settings = dict(await job.get_meta("job_settings") or {})
            settings.update(remembered)   # the rules the user fixed are the ones the job crawls with next
            async with Rerun(job, remember={"job_settings": settings}) as rerun, _shown(tally, total):
                pending: deque[asyncio.Future[list[tuple[Any, ...]]]] = deque()

                async def take_one() -> None:
                    rows = await pending.popleft()
                    await rerun.add_rows(rows)
                    for row in rows:
                        tally.count(row)

                with JobReader(path) as reader:
                    for stored in html_bodies(reader, batch, decompress=False):
                        rows = [(s.url_id, s.final_url, s.status or 200, tuple(s.headers), s.body) for s in stored]
                        pending.append(loop.run_in_executor(pool, partial(extract_batch, how, rows)))
                        if len(pending) >= workers * _IN_FLIGHT:
                            await take_one()
                    while pending:
                        await take_one()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return tally


@contextlib.asynccontextmanager
async def _shown(tally: Tally, total: int) -> AsyncIterator[None]:
    """A live line on a terminal (pages, rate, time left) while the body runs; nothing otherwise."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    view = asyncio.create_task(_live(tally, total, console))
    try:
        yield
    finally:
        view.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await view


def progress_line(done: int, total: int, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    left = f"{clock((total - done) / rate)} left" if rate > 0 else "starting"
    return f"{clock(seconds)}  pages {done:,} / {total:,}  {rate:,.0f}/s  {left}"


async def _live(tally: Tally, total: int, console: Console, period: float = 0.25) -> None:
    started = time.monotonic()
    with Live(Text(progress_line(0, total, 0.0)), console=console, auto_refresh=False, transient=True) as view:
        while True:
            await asyncio.sleep(period)
            view.update(Text(progress_line(tally.pages, total, time.monotonic() - started)), refresh=True)

