"""Crawls sharing a Redis frontier (``--frontier redis://... --job NAME``), each with its own job file.

Real subprocess crawls against a site on loopback and a private redis-server (the ``redis_url``
fixture; skipped with the reason where there is none): two workers split one site and their merged
export has every page once; a joining worker whose robots.txt fetch fails once reads it again; a
dead seed is parked and the job still finishes; a worker killed with SIGKILL loses nothing, its
leases expire and the other finishes; ``stats --frontier`` shows the job; a worker joining before
any seeds, or an unreachable Redis, is one line and exit 2; a Redis restarted empty, or one that stops
answering, mid-crawl, is one line and exit 1 with the job file intact (within the retry bound); a
refused ``--recrawl`` changes nothing. And one crawl in-process, whose fenced acknowledgement is
refused: its count of pages is what stayed stored.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import random
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import redis_server
from big_site import PAGES, bigger_site, total_requests, wait_until
from fake_web import page
from site_server import Sequence, Site, html, robots

from crawler.config import Settings
from crawler.scheduler import Crawl

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
        second = cli.in_process("crawl", "--db", tmp_path / "w2.db", *shared)          # joins without seeds
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
        second = cli.in_process("crawl", "--db", tmp_path / "w2.db", *shared)   # its robots.txt: a 503, then read again
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
    done = cli.in_process("crawl", site.url("/"), dead, "--db", tmp_path / "w.db", "--frontier", redis_url, "--job", job,
                          "--retries", "0", "--timeout", "2")
    assert done.returncode == 0, done.stderr
    assert {r["url"]: r["error"] for r in merged(cli, tmp_path / "w.db").values()} == {
        site.url("/"): None, dead: "connect"}
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


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_redis_restarted_empty_mid_crawl_stops_the_crawl_with_one_line_and_exit_1(
        site: Site, cli: Any, tmp_path: Path) -> None:
    bigger_site(site, delay=0.03)
    db, job = tmp_path / "w.db", job_name()
    with redis_server.serve(tmp_path) as url:
        crawl = cli.popen("crawl", site.url("/"), "--db", db, "--frontier", url, "--job", job, "--concurrency", 4)
        try:
            wait_until(lambda: total_requests(site) >= 40 or crawl.poll() is not None)
        except BaseException:
            cli.stop(crawl)
            raise
    try:
        with redis_server.serve(tmp_path, port=urlsplit(url).port):   # the same address, and empty
            _, err = crawl.communicate(timeout=40)
    finally:
        cli.stop(crawl)
    assert crawl.returncode == 1, err
    assert f"no longer holds job '{job}'" in one_line(err)
    stored = cli.export_by_url(db)
    assert 30 <= len(stored) < PAGES     # what was stored stays stored; the crawl did not go on
    assert {r["status"] for r in stored.values()} == {200}


# The crawl's bound on a silent Redis (docs/reliability.md says 16 s), set lower in the test below so
# that it does not wait the whole bound out: the bound itself is the frontier's (test_frontier_redis).
RETRY_FOR = 4.0


def test_a_redis_that_stops_answering_mid_crawl_stops_the_crawl_within_its_retry_bound_with_one_line_and_exit_1(
        site: Site, cli: Any, tmp_path: Path) -> None:
    from crawler.frontier.redis import RedisFrontier

    assert inspect.signature(RedisFrontier).parameters["retry_for"].default == 16.0   # what the docs say
    bigger_site(site, delay=0.03)
    db = tmp_path / "w.db"
    prelude = ("from crawler.frontier.redis import RedisFrontier\n"
               f"RedisFrontier.__init__.__kwdefaults__['retry_for'] = {RETRY_FOR}")
    with redis_server.serve(tmp_path) as url:
        crawl = cli.popen("crawl", site.url("/"), "--db", db, "--frontier", url, "--job", job_name(), "--concurrency", 4,
                          prelude=prelude)
        try:
            wait_until(lambda: total_requests(site) >= 40 or crawl.poll() is not None)
            redis_server.pause(url, signal.SIGSTOP)   # accepts connections, never answers
            stopped = time.monotonic()
            _, err = crawl.communicate(timeout=40)
            took = time.monotonic() - stopped
        finally:
            cli.stop(crawl)
    assert crawl.returncode == 1, err
    assert f"Redis at {url} has not answered for" in one_line(err)
    assert took <= RETRY_FOR + 2, took   # the bound, and the interpreter's exit
    stored = cli.export_by_url(db)
    assert 30 <= len(stored) < PAGES
    assert {r["status"] for r in stored.values()} == {200}


def test_a_refused_recrawl_of_a_redis_job_leaves_the_job_file_and_the_redis_job_as_they_were(
        site: Site, cli: Any, tmp_path: Path, redis_url: str) -> None:
    site.routes["/"] = html("Home", "/a")
    site.routes["/a"] = html("A")
    db, shared = tmp_path / "w.db", ("--frontier", redis_url, "--job", job_name())
    done = cli.in_process("crawl", site.url("/"), "--db", db, *shared)
    assert done.returncode == 0, done.stderr
    job_file, redis_job = cli.stats(db), cli.in_process("stats", *shared, "--json").stdout
    line = cli.fails(2, "crawl", "--db", db, *shared, "--recrawl")
    assert job_file["pass"] == 1
    assert cli.stats(db) == job_file          # the pass is not bumped, nothing else written
    assert cli.in_process("stats", *shared, "--json").stdout == redis_job
    assert "recrawl is not supported" in line


def test_a_page_whose_fenced_ack_is_refused_is_not_counted_in_the_run(
        cli: Any, tmp_path: Path, redis_url: str) -> None:
    from crawler.frontier.redis import RedisFrontier

    job = job_name()
    settings = replace(Settings(), db=str(tmp_path / "w.db"), robots=False, frontier=redis_url, job=job).validated()
    stolen: list[str] = []

    async def scenario() -> int:
        async with RedisFrontier(redis_url, job, "thief") as thief:
            async def server(request: httpx2.Request) -> httpx2.Response:
                if request.url.path == "/p1":
                    # The lease runs out and another worker fetches and acknowledges the URL first:
                    # this worker's acknowledgement will be refused.
                    leased = await thief.client.hgetall(thief.prefix + "leased")
                    ident = next(k for k, v in leased.items() if json.loads(v)[3].endswith(f" {request.url}"))
                    await thief.client.zadd(thief.prefix + "expiry", {ident: 0})
                    taken = await thief.lease(1)
                    stolen.extend(item.url for item in taken)
                    await thief.ack(taken)
                return page(*(f"/p{n}" for n in range(4))) if request.url.path == "/" else page()

            crawl = Crawl(settings, ["http://site.test/"], transport=httpx2.MockTransport(server),
                          rng=random.Random(7))
            async with asyncio.timeout(30):
                return (await crawl.run()).pages

    pages = asyncio.run(scenario())
    assert stolen == ["http://site.test/p1"]
    stored = cli.export_by_url(tmp_path / "w.db")
    assert sorted(stored) == ["http://site.test/", "http://site.test/p0", "http://site.test/p2", "http://site.test/p3"]
    assert pages == len(stored) == 4
