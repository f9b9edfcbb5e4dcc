"""Many hosts in-process: hosts take turns, a slow or backed-off host slows only itself, a host
budget stops at exactly N, and a dead host is recorded once and parked. MockTransport, fake clock."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import fake_web
import httpx2
from conftest_fetch import reply
from fake_clock import FakeClock
from fake_web import FakeWeb, Routes, fan_out, page, run

from crawler.config import Settings
from crawler.run_stats import RunStats


def site(host: str, pages: int) -> Routes:
    """``http://host/`` linking ``/p0`` .. ``/p{pages-1}``, which link nothing."""
    return fan_out(pages, f"http://{host}")


def settings(tmp_path: Path, **changes: Any) -> Settings:
    return replace(Settings(), db=str(tmp_path / "job.db"), robots=False, **changes).validated()


def crawl(config: Settings, web: FakeWeb, seeds: list[str]) -> RunStats:
    return run(fake_web.crawl(config, web, seeds, rng=3))


def sql(config: Settings, query: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(config.db)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def test_hosts_take_turns_breadth_first_within_each(tmp_path: Path) -> None:
    routes = {**site("a.test", 3), **site("b.test", 3), **site("c.test", 3)}
    web = FakeWeb(FakeClock(), routes)
    stats = crawl(settings(tmp_path, concurrency=1, per_host=1), web,
                  ["http://a.test/", "http://b.test/", "http://c.test/"])
    assert stats.outcome == "finished"
    order = web.log
    assert [host for _, host, _ in order[:3]] == ["a.test", "b.test", "c.test"]   # every seed first
    for host in ("a.test", "b.test", "c.test"):
        assert [path for _, h, path in order if h == host] == ["/", "/p0", "/p1", "/p2"]
    # and no host runs ahead of the others by more than one turn
    seen = {"a.test": 0, "b.test": 0, "c.test": 0}
    for _, host, _ in order:
        seen[host] += 1
        assert max(seen.values()) - min(seen.values()) <= 1, order


def test_a_host_in_backoff_holds_no_leases_and_delays_nobody(tmp_path: Path) -> None:
    clock = FakeClock()
    routes = {**site("a.test", 6), **site("b.test", 6), **site("c.test", 6)}
    web = FakeWeb(clock, routes)
    answers = iter([reply(503, b"later", {"retry-after": "100"})])

    async def busy_once(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/p0":
            answer = next(answers, None)
            if answer is not None:
                return answer
        return routes[str(request.url)]()

    web.special["a.test"] = busy_once
    config = settings(tmp_path, concurrency=4, per_host=2, retries=1, retry_after_max=100)
    stats = crawl(config, web, ["http://a.test/", "http://b.test/", "http://c.test/"])
    assert stats.outcome == "finished"
    retry_at = [t for t, host, path in web.log if host == "a.test" and path == "/p0"][1]
    assert retry_at >= 100
    others = [t for t, host, _ in web.log if host != "a.test"]
    assert len(others) == 14
    assert max(others) < 100   # b and c were done long before a's retry
    assert len(sql(config, "SELECT 1 FROM pages")) == 21


def test_a_slow_host_keeps_its_slots_and_the_others_use_the_rest(tmp_path: Path) -> None:
    clock = FakeClock()
    routes = {**site("slow.test", 4), **site("b.test", 8), **site("c.test", 8)}
    web = FakeWeb(clock, routes)
    others_done = asyncio.Event()
    in_flight = {"now": 0, "most": 0}

    async def slow(request: httpx2.Request) -> httpx2.Response:
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        try:
            await others_done.wait()   # answers only once every other host is finished
        finally:
            in_flight["now"] -= 1
        return routes[str(request.url)]()

    async def counting(request: httpx2.Request) -> httpx2.Response:
        answer = routes[str(request.url)]()
        if sum(1 for _, h, _ in web.log if h != "slow.test") == 18:
            others_done.set()
        return answer

    web.special.update({"slow.test": slow, "b.test": counting, "c.test": counting})
    stats = crawl(settings(tmp_path, concurrency=4, per_host=2), web,
                  ["http://slow.test/", "http://b.test/", "http://c.test/"])
    assert stats.outcome == "finished"
    assert in_flight["most"] <= 2                 # the slow host never had more than --per-host
    assert len([h for h in web.hosts() if h == "slow.test"]) == 5
    first_slow_answer = web.hosts().index("slow.test")
    assert web.hosts()[first_slow_answer:].count("b.test") > 0   # others went on while it hung


def test_a_host_budget_stops_at_exactly_n_and_excludes_the_rest(tmp_path: Path) -> None:
    routes = {**site("a.test", 12), **site("b.test", 2)}
    web = FakeWeb(FakeClock(), routes)
    config = settings(tmp_path, concurrency=8, per_host=4, max_pages_per_host=5)
    stats = crawl(config, web, ["http://a.test/", "http://b.test/"])
    assert stats.outcome == "finished"
    assert web.hosts().count("a.test") == 5
    assert web.hosts().count("b.test") == 3
    assert sql(config, "SELECT COUNT(*) FROM urls WHERE host = 'a.test' AND exclusion = 'host_budget'") == [(8,)]
    assert sql(config, "SELECT state FROM hosts WHERE host = 'a.test'") == [("budget",)]
    # a resume does not spend more of it
    assert crawl(config, web, []).outcome == "already_finished"
    assert web.hosts().count("a.test") == 5


def test_a_dead_host_is_recorded_once_parked_and_tried_again_later(tmp_path: Path) -> None:
    routes = {**site("live.test", 3)}
    web = FakeWeb(FakeClock(), routes)

    async def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    web.special["dead.test"] = refuse
    config = settings(tmp_path, retries=1)
    stats = crawl(config, web, ["http://live.test/", "http://dead.test/", "http://dead.test/other"])
    assert stats.outcome == "finished"
    assert web.hosts().count("dead.test") == 2          # one URL, 1 + retries; the other never tried
    assert sql(config, "SELECT u.url, p.error FROM pages p JOIN urls u ON u.id = p.url_id WHERE u.host = 'dead.test'") == [
        ("http://dead.test/", "connect")]
    assert sql(config, "SELECT state, error FROM hosts WHERE host = 'dead.test'") == [("parked", "connect")]
    assert sql(config, "SELECT COUNT(*) FROM urls WHERE host = 'dead.test' AND state = 0") == [(2,)]
    assert len(sql(config, "SELECT 1 FROM pages p JOIN urls u ON u.id = p.url_id WHERE u.host = 'live.test'")) == 4

    # Before its time is up, a resume leaves it alone.
    assert crawl(config, web, []).outcome == "already_finished"
    assert web.hosts().count("dead.test") == 2
    # Once it is (here: moved into the past), a resume tries it again, and now it answers.
    conn = sqlite3.connect(config.db)
    conn.execute("UPDATE hosts SET until = '2000-01-01T00:00:00Z' WHERE host = 'dead.test'")
    conn.commit()
    conn.close()
    del web.special["dead.test"]
    web.routes.update(site("dead.test", 0))
    web.routes["http://dead.test/other"] = page
    assert crawl(config, web, []).outcome == "finished"
    assert sql(config, "SELECT u.url, p.status, p.error FROM pages p JOIN urls u ON u.id = p.url_id "
                       "WHERE u.host = 'dead.test' ORDER BY u.url") == [
        ("http://dead.test/", 200, None), ("http://dead.test/other", 200, None)]
    assert sql(config, "SELECT state FROM hosts WHERE host = 'dead.test'") == [("active",)]
