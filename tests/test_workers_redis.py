"""Crawls sharing a Redis frontier (``--frontier redis://... --job NAME``), each with its own job file.

Real subprocess crawls against a site on loopback and a private redis-server (the ``redis_url``
fixture; skipped with the reason where there is none): two workers split one site and their merged
export has every page once; a joining worker whose robots.txt fetch fails once reads it again; a
dead seed is parked and the job still finishes; a worker killed with SIGKILL loses nothing, its
leases expire and the other finishes; ``stats --frontier`` shows the job; a worker joining before
any seeds, or an unreachable Redis, is one line and exit 2.
"""

from __future__ import annotations

import itertools
import signal
import socket
from pathlib import Path
from typing import Any

from site_server import Sequence, Site, html, robots
from test_resume import PAGES, bigger_site, total_requests, wait_until

_jobs = itertools.count()


def job_name() -> str:
    return f"t{next(_jobs)}-{id(object())}"


def merged(cli: Any, *dbs: Path) -> dict[str, dict[str, Any]]:
    args = [a for db in dbs for a in ("--db", db)]
    done = cli.in_process("export", *args, "--format", "jsonl", "--out", "-")
    assert done.returncode == 0, done.stderr
    import json
    records: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        assert record["url"] not in records, f"{record['url']} exported twice"
        records[record["url"]] = record
    return records


def every_page(site: Site) -> set[str]:
    return {site.url("/")} | {site.url(f"/p/{i}") for i in range(PAGES)}


def test_two_workers_share_a_site_and_their_merged_export_has_every_page_once(
        site: Site, cli: Any, tmp_path: Path, redis_url: str) -> None:
    bigger_site(site, delay=0.03)
    job = job_name()
    shared = ("--frontier", redis_url, "--job", job, "--concurrency", 4, "--per-host", 4)
    first = cli.popen("crawl", site.url("/"), "--db", tmp_path / "w1.db", *shared)
    try:
        wait_until(lambda: total_requests(site) >= 5 or first.poll() is not None)
        second = cli("crawl", "--db", tmp_path / "w2.db", *shared)          # joins without seeds
        _, err = first.communicate(timeout=60)
    finally:
        cli.stop(first)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    records = merged(cli, tmp_path / "w1.db", tmp_path / "w2.db")
    assert set(records) == every_page(site)
    assert {r["status"] for r in records.values()} == {200}
    counts = {p: n for p, n in site.counts().items() if p != "/robots.txt"}
    assert max(counts.values()) == 1          # nothing fetched twice
    assert min(len(merged(cli, tmp_path / db)) for db in ("w1.db", "w2.db")) > 0   # both worked
    assert site.peak <= 4                     # --per-host holds for the job, not per worker
    stats = cli.in_process("stats", "--frontier", redis_url, "--job", job, "--json")
    assert stats.returncode == 0, stats.stderr
    assert '"done": 241' in stats.stdout
    assert '"queued": 0' in stats.stdout


def test_a_joining_worker_whose_robots_txt_fetch_fails_once_neither_parks_the_host_nor_stalls_the_job(
        site: Site, cli: Any, tmp_path: Path, redis_url: str) -> None:
    bigger_site(site, delay=0.03)
    site.routes["/robots.txt"] = Sequence((robots(""), robots("busy", status=503), robots("")))
    shared = ("--frontier", redis_url, "--job", job_name(), "--concurrency", 4, "--per-host", 4)
    first = cli.popen("crawl", site.url("/"), "--db", tmp_path / "w1.db", *shared)
    try:
        wait_until(lambda: total_requests(site) >= 5 or first.poll() is not None)
        second = cli("crawl", "--db", tmp_path / "w2.db", *shared)   # its robots.txt: a 503, then read again
        _, err = first.communicate(timeout=60)
    finally:
        cli.stop(first)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert set(merged(cli, tmp_path / "w1.db", tmp_path / "w2.db")) == every_page(site)
    assert site.counts()["/robots.txt"] == 3


def test_a_job_with_a_dead_seed_finishes_and_leaves_its_urls_parked_for_a_later_run(
        site: Site, cli: Any, tmp_path: Path, redis_url: str) -> None:
    site.routes["/"] = html("Home")
    with socket.socket() as sock:     # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    job = job_name()
    done = cli("crawl", site.url("/"), dead, "--db", tmp_path / "w.db", "--frontier", redis_url, "--job", job,
               "--retries", "0", "--timeout", "2", timeout=30)
    assert done.returncode == 0, done.stderr
    assert {r["url"]: r["error"] for r in merged(cli, tmp_path / "w.db").values()} == {
        site.url("/"): None, dead: "robots_unavailable"}
    stats = cli.in_process("stats", "--frontier", redis_url, "--job", job, "--json")
    assert stats.returncode == 0, stats.stderr
    assert '"queued": 1' in stats.stdout
    assert '"parked"' in stats.stdout


def test_a_worker_killed_with_sigkill_loses_nothing_and_the_other_finishes(
        site: Site, cli: Any, tmp_path: Path, redis_url: str) -> None:
    bigger_site(site, delay=0.02)
    shared = ("--frontier", redis_url, "--job", job_name(), "--concurrency", 4, "--per-host", 8, "--lease", 2)
    doomed = cli.popen("crawl", site.url("/"), "--db", tmp_path / "w1.db", *shared)
    wait_until(lambda: total_requests(site) >= 1 or doomed.poll() is not None)   # the job has its seeds
    survivor = cli.popen("crawl", "--db", tmp_path / "w2.db", *shared)
    try:
        wait_until(lambda: total_requests(site) >= PAGES // 2 or doomed.poll() is not None)
        assert doomed.poll() is None, "the crawl ended before a worker could be killed"
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=10)
        _, err = survivor.communicate(timeout=90)
    finally:
        cli.stop(doomed, survivor)
    assert survivor.returncode == 0, err
    records = merged(cli, tmp_path / "w1.db", tmp_path / "w2.db")
    assert set(records) == every_page(site)
    counts = {p: n for p, n in site.counts().items() if p != "/robots.txt"}
    assert max(counts.values()) <= 2, {p: n for p, n in counts.items() if n > 2}


def test_a_worker_joining_a_job_that_gets_no_seeds_within_a_lease_is_one_line_and_exit_2(cli: Any, tmp_path: Path,
                                                                     redis_url: str) -> None:
    line = cli.fails(2, "crawl", "--db", tmp_path / "w.db", "--frontier", redis_url, "--job", job_name(), "--lease", 1)
    assert "got no seeds within 1 s" in line


def test_an_unreachable_redis_is_one_line_and_exit_2(cli: Any, tmp_path: Path) -> None:
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", tmp_path / "w.db",
                     "--frontier", "redis://127.0.0.1:9/0", "--job", "x")
    assert "cannot reach the Redis frontier at redis://127.0.0.1:9/0" in line


def test_a_shared_frontier_needs_a_job_name(cli: Any, tmp_path: Path) -> None:
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--db", tmp_path / "w.db", "--frontier", "redis://127.0.0.1:9/0")
    assert "--job NAME" in line
