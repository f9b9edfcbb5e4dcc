"""``crawler crawl --workers N``: worker processes fetch and parse, one process owns the job.

Real subprocess crawls against a site on loopback: the same records as one process, a worker
killed with SIGKILL costs a retry of what it held and nothing else, Ctrl-C stops the whole crawl
and a resume finishes it, so does SIGTERM to the whole process group (the workers too), a stopped
worker is replaced once its deadline passes, and bad values of ``--workers`` are one line and exit 2.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from big_site import PAGES, bigger_site, check_complete, total_requests, wait_until
from site_server import Site, Slow, html, reply


def worker_pids(pid: int) -> list[int]:
    """The crawl's worker processes: its children."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(c) for c in text]
    return children


def comparable(records: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    # Not the depth: which page finds a URL first depends on timing, with one process or several.
    return {url: (r["status"], r["title"], r["outlinks"], r["bytes"]) for url, r in records.items()}


def test_two_workers_store_the_same_records_as_one_process(site: Site, cli: Any, tmp_path: Path) -> None:
    bigger_site(site, delay=0.0)
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    for db, workers in ((one, "1"), (two, "2")):
        done = cli("crawl", site.url("/"), "--db", db, "--workers", workers, "--concurrency", 16)
        assert done.returncode == 0, done.stderr
    assert comparable(check_complete(cli, site, two)) == comparable(cli.export_by_url(one))


def test_a_503_whose_retries_ran_out_is_stored_by_a_worker_as_by_one_process(site: Site, cli: Any, db: Path) -> None:
    down = b"<html><title>Down for maintenance</title></html>"
    site.routes.update({"/": html("Home", "/down"), "/down": reply(503, down, "text/html")})
    done = cli("crawl", site.url("/"), "--db", db, "--workers", 2, "--retries", 1, "--timeout", 1,
               env={"CRAWLER_RETRY_BACKOFF": "0.01"})
    assert done.returncode == 0, done.stderr
    record = cli.export_by_url(db)[site.url("/down")]
    assert (record["status"], record["error"], record["content_type"], record["bytes"]) == (
        503, "http_error", "text/html", len(down))
    assert site.count("/down") == 2   # the first answer was retried, the second stored


def test_a_worker_killed_with_sigkill_costs_a_retry_of_what_it_held_and_nothing_more(
        site: Site, cli: Any, db: Path) -> None:
    bigger_site(site, delay=0.02)
    proc = cli.popen("crawl", site.url("/"), "--db", db, "--workers", 2, "--concurrency", 8, "--per-host", 8)
    try:
        wait_until(lambda: total_requests(site) >= PAGES // 3 or proc.poll() is not None)
        assert proc.poll() is None, "the crawl ended before a worker could be killed"
        workers = worker_pids(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        cli.stop(proc)
    assert proc.returncode == 0, err
    records = check_complete(cli, site, db)         # every page once, all 200, job finished
    assert not [r for r in records.values() if r["error"]]
    counts = {path: n for path, n in site.counts().items() if path != "/robots.txt"}
    assert max(counts.values()) <= 2, {p: n for p, n in counts.items() if n > 2}
    assert sum(counts.values()) - len(counts) <= 8   # refetched: at most what the dead worker held


def test_ctrl_c_stops_coordinator_and_workers_and_a_resume_finishes(site: Site, cli: Any, db: Path) -> None:
    bigger_site(site, delay=0.02)
    args = ("--db", db, "--workers", 2, "--concurrency", 4, "--per-host", 4)
    proc = cli.popen("crawl", site.url("/"), *args)
    workers: list[int] = []

    def half_way() -> bool:
        wait_until(lambda: total_requests(site) >= PAGES // 4 or proc.poll() is not None)
        workers.extend(worker_pids(proc.pid))
        return proc.poll() is None

    cli.interrupt(proc, half_way, signal.SIGINT)
    assert proc.returncode == 130        # stopped: run again to resume
    time.sleep(0.2)
    assert workers
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    assert not alive, "a worker outlived its crawl"
    done = cli("crawl", *args)
    assert done.returncode == 0, done.stderr
    check_complete(cli, site, db)


def test_sigterm_to_the_process_group_five_times_then_a_resume_stores_every_page_once(
        site: Site, cli: Any, db: Path) -> None:
    # timeout(1), systemd's KillMode=control-group and kill -- -PGID signal the workers too.
    bigger_site(site, delay=0.02)
    args = ("--db", db, "--workers", 2, "--concurrency", 4, "--per-host", 4)
    for run, point in enumerate((20, 60, 100, 140, 180)):
        seeds = (site.url("/"),) if run == 0 else ()
        proc = cli.popen("crawl", *seeds, *args, new_session=True)

        def mid_crawl(p: int = point, c: Any = proc) -> bool:
            wait_until(lambda: total_requests(site) >= p or c.poll() is not None)
            return c.poll() is None

        err = cli.interrupt(proc, mid_crawl, signal.SIGTERM, group=True)
        assert proc.returncode == 130, err   # stopped: run again to resume
    done = cli("crawl", *args)
    assert done.returncode == 0, done.stderr
    records = check_complete(cli, site, db)         # every page once, all 200, job finished
    assert not [url for url, r in records.items() if r["error"] == "worker_died"]


def test_a_stopped_worker_is_replaced_after_its_deadline_and_the_crawl_finishes(
        site: Site, cli: Any, db: Path) -> None:
    bigger_site(site, delay=0.02)
    # A worker holding visits and silent for --timeout + WEDGED_MARGIN seconds is killed. The margin (10 s,
    # for parsing the largest page) is 1.5 s here: the pages are small, and the test need not wait it out.
    proc = cli.popen("crawl", site.url("/"), "--db", db, "--workers", 2, "--concurrency", 4, "--per-host", 4,
                     "--timeout", 0.5, prelude="import crawler.workers\ncrawler.workers.WEDGED_MARGIN = 1.5")
    stopped = 0
    try:
        wait_until(lambda: total_requests(site) >= PAGES // 4 or proc.poll() is not None)
        assert proc.poll() is None, "the crawl ended before a worker could be stopped"
        stopped = worker_pids(proc.pid)[0]
        os.kill(stopped, signal.SIGSTOP)    # it keeps its socket and its visits, and says nothing
        _, err = proc.communicate(timeout=45)
    finally:
        if stopped and proc.poll() is None:   # a stopped worker outlives its crawl, holding its output open
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGKILL)
        cli.stop(proc)
    assert proc.returncode == 0, err
    records = check_complete(cli, site, db)         # the URLs it held too: every page once, all 200
    assert not [r for r in records.values() if r["error"]]


def test_workers_auto_is_one_per_core(site: Site, cli: Any, db: Path) -> None:
    site.routes["/"] = Slow(0.5, html("Home"))
    cores = os.cpu_count() or 1
    proc = cli.popen("crawl", site.url("/"), "--db", db, "--workers", "auto")
    try:   # one core: no worker processes, the crawl runs in its own
        wait_until(lambda: len(worker_pids(proc.pid)) == (cores if cores > 1 else 0) or proc.poll() is not None)
        _, err = proc.communicate(timeout=30)
    finally:
        cli.stop(proc)
    assert proc.returncode == 0, err


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_a_bad_workers_value_is_one_line_and_exit_2(cli: Any, db: Path, value: str) -> None:
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", db, "--workers", value)
    assert "workers" in line
    assert not db.exists()
