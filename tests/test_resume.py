"""Crash-proof jobs: kill -9 at any instant, Ctrl-C twice, grace periods, and recrawls.

Each crawl runs as a real ``python -m crawler`` subprocess against a site on loopback. Kill points
are chosen by how many requests the server has seen, and after every kill the same job is resumed
with ``crawler crawl --db SAME`` and no seeds.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from big_site import CONCURRENCY, IN_FLIGHT_LIMIT, bigger_site, check_complete, total_requests, wait_until
from site_server import Conditional, Sequence, Site, Slow, html, reply


def test_kill_9_three_times_then_resume_loses_nothing_and_refetches_only_what_was_in_flight(
        site: Site, cli: Any, db: Path) -> None:
    bigger_site(site, delay=0.01)
    args = ("--db", db, "--concurrency", CONCURRENCY, "--per-host", CONCURRENCY, "--retries", "0")
    kill_points = (40, 110, 180)
    for run, point in enumerate(kill_points):
        seeds = (site.url("/"),) if run == 0 else ()   # after the first run: no seeds, just resume
        proc = cli.popen("crawl", *seeds, *args)

        def at_kill_point(p: int = point, c: Any = proc) -> bool:
            wait_until(lambda: total_requests(site) >= p or c.poll() is not None)
            return c.poll() is None   # False: the crawl finished first, so make the site slower

        cli.interrupt(proc, at_kill_point, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL
    done = cli.in_process("crawl", *args)
    assert done.returncode == 0, done.stderr
    check_complete(cli, site, db)
    counts = {path: n for path, n in site.counts().items() if path != "/robots.txt"}
    refetched = sum(counts.values()) - len(counts)
    assert refetched <= len(kill_points) * IN_FLIGHT_LIMIT, counts
    assert max(counts.values()) <= 2, {p: n for p, n in counts.items() if n > 2}
    print(f"kill -9 x{len(kill_points)}: {sum(counts.values())} requests for {len(counts)} URLs, {refetched} refetched")
    # A kill mid-crawl is a dead lease, never a half-written page: every stored page has its links.
    conn = sqlite3.connect(db)
    try:
        orphans = conn.execute(
            "SELECT COUNT(*) FROM pages p WHERE p.outlinks > 0 AND NOT EXISTS "
            "(SELECT 1 FROM links l WHERE l.source_id = p.url_id)").fetchone()[0]
        leased = conn.execute("SELECT COUNT(*) FROM urls WHERE state = 1").fetchone()[0]
    finally:
        conn.close()
    assert (orphans, leased) == (0, 0)


def test_a_second_ctrl_c_stops_at_once_and_the_job_still_resumes(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/slow", "/b"), "/slow": Slow(30.0, html("Slow"), only_first=1),
                        "/b": html("B")})
    args = ("--db", db, "--timeout", "60", "--retries", "0", "--per-host", "1")
    proc = cli.popen("crawl", site.url("/"), *args)
    started = time.monotonic()
    err = cli.interrupt(proc, lambda: site.wait_for("/slow"), signal.SIGINT, signal.SIGINT)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10, "the second Ctrl-C did not stop the crawl at once"
    assert "Traceback" not in err
    assert [r["title"] for r in cli.export(db)] == ["Home"]   # /slow was cut off, not stored
    resumed = cli.in_process("crawl", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["title"] for r in cli.export(db)) == ["B", "Home", "Slow"]


def test_in_flight_work_past_the_grace_period_goes_back_to_the_frontier(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/slow"), "/slow": Slow(30.0, html("Slow"), only_first=1)})
    args = ("--db", db, "--timeout", "60", "--retries", "0")
    proc = cli.popen("crawl", site.url("/"), *args, env={"CRAWLER_GRACE_PERIOD": "0.5"})
    err = cli.interrupt(proc, lambda: site.wait_for("/slow"), signal.SIGTERM)
    assert proc.returncode == 130, err
    stats = cli.stats(db)
    assert (stats["pages"], stats["queue"]["pending"], stats["state"]) == (1, 1, "stopped")
    resumed = cli.in_process("crawl", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["title"] for r in cli.export(db)) == ["Home", "Slow"]


@pytest.fixture
def changing_site(site: Site) -> Site:
    """Pass 1 and pass 2 of one site: one page answers 304, one changes, one vanishes, one is new."""
    site.routes.update({
        "/": Conditional('"v1"', html("Same", "/changes", "/vanishes")),
        "/changes": Sequence((html("Old title"), html("New title", "/new"))),
        "/vanishes": Sequence((html("Here"), reply(410))),
        "/new": html("New page"),
    })
    return site


def test_recrawl_reports_unchanged_changed_gone_and_follows_new_links(changing_site: Site, cli: Any,
                                                                        db: Path) -> None:
    site = changing_site
    first = cli.in_process("crawl", site.url("/"), "--db", db)
    assert first.returncode == 0, first.stderr
    assert cli.stats(db)["this_pass"] == {"fetched": 3, "new": 3, "unchanged": 0, "changed": 0, "gone": 0}
    again = cli.in_process("crawl", "--db", db)
    assert again.returncode == 0
    assert "already finished" in again.stdout
    recrawl = cli.in_process("crawl", "--db", db, "--recrawl")
    assert recrawl.returncode == 0, recrawl.stderr
    for counted in ("unchanged 1", "changed 1", "gone 1"):
        assert counted in recrawl.stdout
    stats = cli.stats(db)
    assert stats["pass"] == 2
    assert stats["this_pass"] == {"fetched": 4, "new": 1, "unchanged": 1, "changed": 1, "gone": 1}
    assert site.requests("/")[-1].header("If-None-Match") == '"v1"'
    records = cli.export_by_url(db)
    assert records[site.url("/")]["title"] == "Same"             # kept from pass 1 on the 304
    assert records[site.url("/changes")]["title"] == "New title"
    assert records[site.url("/vanishes")]["status"] == 410
    assert records[site.url("/new")]["title"] == "New page"
    conn = sqlite3.connect(db)
    try:
        history = conn.execute("SELECT u.url, h.status, h.pass FROM history h JOIN urls u ON u.id = h.url_id "
                               "ORDER BY u.url").fetchall()
    finally:
        conn.close()
    assert history == [(site.url("/changes"), 200, 1), (site.url("/vanishes"), 200, 1)]
