"""A site of 240 pages for crawls stopped mid-way (kill -9, signals, workers killed or stopped), and
the checks that such a crawl, once resumed, stored every page once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from site_server import Site, Slow, html

PAGES = 240
CONCURRENCY = 8
# Visits hold a slot from dispatch until their page is committed, and there are 2 x concurrency
# slots: that is everything a kill -9 can catch between "requested" and "stored".
IN_FLIGHT_LIMIT = 2 * CONCURRENCY


def links_of(i: int) -> list[str]:
    """A deterministic web: a chain through every page plus a few jumps back and forth."""
    return [f"/p/{j}" for j in sorted({(i + 1) % PAGES, (2 * i + 3) % PAGES, (i * 7 + 5) % PAGES})]


def bigger_site(site: Site, delay: float) -> None:
    site.routes["/"] = html("Home", "/p/0")
    for i in range(PAGES):
        site.routes[f"/p/{i}"] = Slow(delay, html(f"Page {i}", *links_of(i)))


def total_requests(site: Site) -> int:
    return sum(n for path, n in site.counts().items() if path != "/robots.txt")


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.002)


def check_complete(cli: Any, site: Site, db: Path) -> dict[str, dict[str, Any]]:
    records = cli.export_by_url(db)  # fails on a URL stored twice
    assert set(records) == {site.url("/")} | {site.url(f"/p/{i}") for i in range(PAGES)}
    assert {r["status"] for r in records.values()} == {200}
    assert all(r["title"] for r in records.values())
    stats = cli.stats(db)
    assert stats["state"] == "finished"
    assert stats["queue"]["pending"] == 0
    return records
