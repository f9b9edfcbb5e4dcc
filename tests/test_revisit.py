"""Recrawls that learn: each page's interval follows what its visits saw, and ``--recrawl --due``
fetches only the pages whose next visit is due (crawler.revisit)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI
from site_server import Behaviour, Hit, Reply, Site, html, html_doc

from crawler import revisit
from crawler.revisit import Bounds, next_interval

DAY = 86_400.0
PAGES = 100
CHANGING = 10   # /p/0 .. /p/9 change before every pass: 10% of the site


@dataclass
class Changing(Behaviour):
    """A page whose text is the site's current version: it changes whenever the test says so."""

    version: list[int]

    def respond(self, site: Site, hit: Hit) -> Reply:
        return Reply(200, (("Content-Type", "text/html"),),
                     html_doc(f"changing {hit.path}", extra=f"<p>version {self.version[0]}</p>").encode())


def build(site: Site) -> list[int]:
    version = [0]
    site.routes["/"] = html("home", *[f"/p/{i}" for i in range(PAGES)])
    for i in range(PAGES):
        site.routes[f"/p/{i}"] = Changing(version) if i < CHANGING else html(f"page {i}")
    return version


def page_hits(site: Site) -> int:
    return sum(1 for h in site.hits if h.path.startswith("/p/"))


def test_the_interval_doubles_when_unchanged_halves_when_changed_within_its_bounds() -> None:
    b = Bounds(start=DAY, least=3_600.0, most=4 * DAY)
    assert next_interval(None, "new", b) == DAY
    assert next_interval(DAY, "unchanged", b) == 2 * DAY
    assert next_interval(3 * DAY, "unchanged", b) == 4 * DAY   # up to the most
    assert next_interval(DAY, "changed", b) == DAY / 2
    assert next_interval(5_000.0, "gone", b) == 3_600.0        # down to the least
    assert next_interval(DAY, None, b) == DAY                  # an error answer says nothing of the content
    assert Bounds(start=10.0, least=20.0, most=30.0).problem() is not None


def test_five_due_passes_fetch_the_changing_pages_each_time_and_cost_at_most_half_of_full_recrawls(
        tmp_path: Path, site: Site, cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    version = build(site)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(revisit, "now", lambda: clock[0])
    due, full = tmp_path / "due.db", tmp_path / "full.db"
    for db in (due, full):
        assert cli.in_process("crawl", site.url("/"), "--db", db, "--quiet").returncode == 0
    fetched: dict[str, list[int]] = {"due": [], "full": []}
    per_page: dict[str, int] = {}
    for _ in range(5):
        version[0] += 1
        clock[0] += DAY
        for name, db, extra in (("due", due, ["--due"]), ("full", full, [])):
            before = len(site.hits)
            done = cli.in_process("crawl", "--db", db, "--recrawl", *extra, "--quiet")
            assert done.returncode == 0, done.stderr
            hits = site.hits[before:]
            fetched[name].append(sum(1 for h in hits if h.path.startswith("/p/")))
            if name == "due":
                for h in hits:
                    per_page[h.path] = per_page.get(h.path, 0) + 1
    assert fetched["full"] == [PAGES] * 5
    assert all(per_page[f"/p/{i}"] == 5 for i in range(CHANGING))           # every pass
    unchanged = [per_page.get(f"/p/{i}", 0) for i in range(CHANGING, PAGES)]
    assert max(unchanged) <= 2                                                # less and less often
    assert fetched["due"][-2:] == [CHANGING, CHANGING]                        # the last passes: only them
    assert sum(fetched["due"]) <= sum(fetched["full"]) / 2, fetched

    report = cli.in_process("explain", site.url("/p/50"), "--db", due)
    assert "revisit  every 4 d, next due" in report.stdout, report.stdout
    answer: dict[str, Any] = json.loads(cli.in_process("explain", site.url("/p/0"), "--db", due, "--json").stdout)
    assert answer["page"]["revisit_interval"] < DAY


def test_due_without_recrawl_is_one_line_and_exit_2(tmp_path: Path, cli: CLI) -> None:
    done = cli.in_process("crawl", "--db", tmp_path / "job.db", "--due", "http://127.0.0.1:9/")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["crawler: error: --due chooses the pages of a recrawl: give it with "
                                                "--recrawl (from command line)"]


def test_a_second_run_waits_for_the_first_with_wait_and_says_so_once(tmp_path: Path, site: Site, cli: CLI) -> None:
    build(site)
    db = tmp_path / "job.db"
    assert cli.in_process("crawl", site.url("/"), "--db", db, "--quiet").returncode == 0
    from crawler.storage.jobfile import JobLock
    held = JobLock(db)
    held.acquire()
    try:
        refused = cli.in_process("crawl", "--db", db, "--recrawl", "--quiet")
    finally:
        held.release()
    assert refused.returncode == 2
    assert "is being crawled by process" in refused.stderr
    held.acquire()
    threading.Timer(1.5, held.release).start()
    waited = cli.in_process("crawl", "--db", db, "--recrawl", "--wait", "--quiet")
    assert waited.returncode == 0, waited.stderr
    assert waited.stderr.count("waiting for it to end (--wait)") == 1
