"""The live progress line: what a user watching a crawl reads."""

from __future__ import annotations

import time

from crawler.frontier import Outage
from crawler.progress import line
from crawler.scheduler import RunStats


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
