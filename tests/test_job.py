"""What a job remembers and what a run says about it (crawler/job.py), through the CLI.

A second site crawled into the default job file is announced before its crawl starts; a limit
remembered from an earlier run says where it came from and how to lift it; a resume keeps the
job's politeness. (Flags a crawl of a job that another process runs cannot apply: tests/test_seeding.py.)
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST
from site_server import Site, html


def ten_pages() -> dict[str, Any]:
    routes: dict[str, Any] = {f"/p{i}": html(f"P{i}") for i in range(10)}
    routes["/"] = html("Home", *(f"/p{i}" for i in range(10)))
    return routes


@pytest.fixture
def second() -> Iterator[Site]:
    """Another site on the same address, another port: another host for the crawler."""
    with Site({"/": html("Second", "/s"), "/s": html("S")}) as running:
        yield running


def test_a_second_site_crawled_into_the_default_job_is_announced_before_its_crawl(
        site: Site, second: Site, cli: Any) -> None:
    site.routes.update(ten_pages())
    first = cli.in_process("crawl", site.url("/"), *FAST)   # the README's first crawl: data/crawl.db
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    again = cli.in_process("crawl", site.url("/p3"), *FAST)   # the same site again: nothing to say
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    done = cli.in_process("crawl", second.url("/"), *FAST)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"crawler: adding 1 seed of a new site (127.0.0.1:{second.port}) to existing job data/crawl.db "
        f"(11 pages of 127.0.0.1:{site.port}, finished); use --db to crawl it separately")
    # A job file named with --db is the user's choice: no word.
    cli.in_process("crawl", site.url("/"), "--db", "mine.db", *FAST)
    chosen = cli.in_process("crawl", second.url("/"), "--db", "mine.db", *FAST)
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stderr == ""


def test_a_remembered_max_pages_says_where_it_came_from_and_max_pages_0_lifts_it(
        site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    first = cli.in_process("crawl", site.url("/"), "--db", db, "--max-pages", "3", *FAST)
    assert first.returncode == 0, first.stderr
    assert len(cli.export(db)) == 3
    again = cli.in_process("crawl", "--db", db, *FAST)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (f"job {db} has reached its --max-pages 3 (set by an earlier run); "
                            "give --max-pages N (0: no limit) to go on\n")
    assert len(cli.export(db)) == 3
    higher = cli.in_process("crawl", "--db", db, "--max-pages", "5", *FAST)
    assert higher.returncode == 0, higher.stderr
    assert len(cli.export(db)) == 5
    lifted = cli.in_process("crawl", "--db", db, "--max-pages", "0", *FAST)
    assert lifted.returncode == 0, lifted.stderr
    assert len(cli.export(db)) == 11
    assert "crawl finished" in lifted.stdout


def test_a_run_stopped_by_a_remembered_max_pages_says_so(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    leaf = cli.in_process("crawl", site.url("/p0"), "--db", db, "--max-pages", "3", *FAST)   # one page: /p0 links nowhere
    assert leaf.returncode == 0, leaf.stderr
    more = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert more.returncode == 0, more.stderr
    assert len(cli.export(db)) == 3
    assert (f"job {db} stopped at its --max-pages 3 (set by an earlier run); give --max-pages N (0: no limit) "
            "to go on") in more.stdout.splitlines()


def test_a_resume_after_a_stop_keeps_the_jobs_delay_and_per_host(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    proc = cli.popen("crawl", site.url("/"), "--db", db, "--delay", "0.25", "--per-host", "1", *FAST)

    def two_pages_in() -> bool:
        deadline = time.monotonic() + 20
        while site.count("/p1") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return site.count("/p1") == 1

    err = cli.interrupt(proc, two_pages_in, signal.SIGINT)
    assert proc.returncode == 130, err
    fetched = {hit.path for hit in site.hits}
    assert len(fetched - {"/robots.txt"}) < 11, "the first run was not stopped before the end"
    stopped_at = len(site.hits)
    resumed = cli.in_process("crawl", "--db", db)   # no flag: the job's --delay 0.25 --per-host 1 hold
    assert resumed.returncode == 0, resumed.stderr
    assert len(cli.export(db)) == 11
    arrivals = [hit.at for hit in site.hits[stopped_at:] if hit.path != "/robots.txt"]
    assert len(arrivals) >= 3, site.hits[stopped_at:]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.2, f"requests {min(gaps):.3f} s apart on resume, the job's --delay is 0.25"
    assert site.peak == 1
