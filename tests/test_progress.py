"""The live progress line: what a user watching a crawl reads; and the plain lines a crawl without a
terminal logs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from typing import Any

from rich.console import Console
from site_server import Site, Slow, html

from crawler.frontier import Outage
from crawler.progress import line, live
from crawler.run_stats import RunStats


def test_the_live_line_shows_hosts_active_against_hosts_with_work() -> None:
    stats = RunStats(started=time.monotonic() - 10, pages=12_000, errors=3, retries=1, in_flight=64, queued=40_000,
                     hosts_active=4, hosts_queued=1_020)
    assert line(stats) == ("pages 12,000  1,200/s  queued 40,000  in flight 64  hosts 4 active / 1,020 with work  "
                           "errors 3  retries 1")


def test_a_run_that_has_not_started_shows_zeros_not_negatives() -> None:
    stats = RunStats(queued=-1)   # line() clamps the queue count at zero
    assert line(stats) == "pages 0  0/s  queued 0  in flight 0  hosts 0 active / 0 with work  errors 0  retries 0"


def test_the_live_line_says_while_a_shared_frontier_is_being_retried() -> None:
    outage = Outage("Redis at redis://127.0.0.1:6379/0", since=time.monotonic() - 5.2, within=16.0)
    stats = RunStats(started=time.monotonic() - 10, pages=40, outage=outage)
    assert line(stats).endswith("retries 0  Redis at redis://127.0.0.1:6379/0 not answering for 5 s: retrying, up to 16 s")
    assert "not answering" not in line(RunStats())


def test_on_a_terminal_the_live_line_shows_the_elapsed_time_first() -> None:
    stats = RunStats(started=time.monotonic() - 3725, pages=12)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)

    async def show() -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                await live(stats, console, period=0.05)
    asyncio.run(show())
    assert "1:02:05  pages 12  0/s  queued 0" in screen.getvalue()


# A progress line every 0.3 s, in place of a minute; the crawl's only page takes 1.2 s.
EVERY = {"CRAWLER_PROGRESS_EVERY": "0.3"}
PROGRESS = re.compile(r"crawler: 0:00:0\d elapsed, pages \d+ \(\d+/min\)  queued \d+  in flight \d+  hosts .*")


def test_without_a_terminal_a_crawl_prints_a_progress_line_every_period_and_none_with_quiet(cli: Any,
                                                                                            site: Site) -> None:
    site.routes["/"] = Slow(1.2, html("Slow"))
    done = cli.in_process("crawl", site.url("/"), "--db", "job.db", env=EVERY)
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if PROGRESS.fullmatch(line)]
    assert len(progress) >= 2, done.stderr
    assert progress == done.stderr.splitlines()   # nothing else on stderr
    quiet = cli.in_process("crawl", site.url("/"), "--db", "quiet.db", "--quiet", env=EVERY)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.startswith("crawl finished")
