"""The hostile web, in-process: the scheduler against ``httpx2.MockTransport`` sites that misbehave,
in fake time. Decide early and count right, trap rules, adaptive politeness, sitemaps."""

from __future__ import annotations

import asyncio
import collections
import gzip
import itertools
import json
import random
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest_fetch import reply
from fake_clock import FakeClock
from fake_web import ORIGIN, FakeWeb, Hit, crawl, page, queue, run, stored

from crawler.config import Settings
from crawler.dispatch import PARK_WAIT
from crawler.explain import explain
from crawler.politeness import HostPool
from crawler.scheduler import Crawl
from crawler.storage.read import JobReader
from crawler.writer import Writer


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    """Settings for a job in ``tmp_path``; robots.txt off unless a test turns it on."""
    return replace(Settings(), db=str(tmp_path / "job.db"), **({"robots": False} | changes)).validated()


def pool(job: Crawl) -> HostPool:
    """The crawl's host pool, where it keeps each host's pace (once the job is open)."""
    assert job._run is not None, "the crawl has not opened its job yet"
    return job._run.pool


def rows(settings: Any, sql: str) -> list[Any]:
    conn = sqlite3.connect(settings.db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def exclusions(settings: Any) -> dict[str, str]:
    return dict(rows(settings, "SELECT url, exclusion FROM urls WHERE state = 3"))


def robots_txt(text: str) -> Callable[[], httpx2.Response]:
    return lambda: reply(200, text.encode(), {"content-type": "text/plain"})


# -- decide early, count right ----------------------------------------------------------------------


def test_links_robots_txt_disallows_are_exclusions_not_pages_and_max_pages_counts_fetches(tmp_path: Path) -> None:
    disallowed = [f"/private/{n}" for n in range(500)]
    routes = {"/robots.txt": robots_txt("User-agent: *\nDisallow: /private/\n"),
              "/": lambda: page(*disallowed, "/a", "/b", "/c"), "/a": page, "/b": page, "/c": page}
    server = FakeWeb(FakeClock(), routes)
    settings = make_settings(tmp_path, robots=True, max_pages=4)
    stats = run(crawl(settings, server))
    assert stats.outcome == "limit"
    assert sorted(server.paths()) == ["/", "/a", "/b", "/c", "/robots.txt"]   # four pages, none disallowed
    assert set(stored(settings)) == {ORIGIN + p for p in ("/", "/a", "/b", "/c")}
    excluded = exclusions(settings)
    assert len(excluded) == 500
    assert set(excluded.values()) == {"robots_disallowed"}
    answer = explain(settings.db, ORIGIN + "/private/7")
    assert (answer["decision"], answer["fetched"], answer["first_linked_from"]) == ("robots_disallowed", False, ORIGIN + "/")
    assert "Disallow: /private/" in answer["reason"]


def test_a_url_found_before_its_hosts_robots_txt_is_excluded_at_its_visit_and_gives_its_place_back(
        tmp_path: Path) -> None:
    other = "http://other.test"
    routes = {"/": lambda: page(f"{other}/no", f"{other}/yes"),
              "/robots.txt": robots_txt("User-agent: *\nDisallow: /no\n")}

    async def handler(request: httpx2.Request) -> httpx2.Response:
        return await server(request)
    server = FakeWeb(FakeClock(), routes)
    routes["/no"] = routes["/yes"] = page
    settings = make_settings(tmp_path, robots=True, scope="any", max_pages=2)
    stats = run(crawl(settings, server))
    # other.test's robots.txt is read only when its first URL is visited: /no is then excluded, and
    # --max-pages 2 still gets its second page.
    assert stats.outcome == "limit"
    assert set(stored(settings)) == {ORIGIN + "/", other + "/yes"}
    assert exclusions(settings) == {other + "/no": "robots_disallowed"}


def test_the_calendar_trap_is_cut_by_its_pattern_chain(tmp_path: Path) -> None:
    """/trap/N links /trap/N+1 and /trap/N+2?session=N, without end (the issue's calendar trap)."""
    class Calendar(FakeWeb):
        async def __call__(self, request: httpx2.Request) -> httpx2.Response:
            self.log.append(Hit(self.clock.now, request.url.host, request.url.path))
            n = int(request.url.path.rsplit("/", 1)[1])
            return page(f"/trap/{n + 1}", f"/trap/{n + 2}?session={n}")

    server = Calendar(FakeClock(), {})
    settings = make_settings(tmp_path, max_depth=40)
    run(crawl(settings, server, seed="/trap/0"))
    fetched = len(server.log)
    assert fetched <= 2 * settings.trap_max_pattern_chain   # Scrapy: 75 at this depth
    assert len(set(server.paths())) == fetched             # the session id made no URL twice
    assert set(exclusions(settings).values()) == {"trap_pattern_chain"}
    without = make_settings(tmp_path / "off", trap_max_pattern_chain=0, session_params=(), max_depth=40)
    (tmp_path / "off").mkdir()
    server_off = Calendar(FakeClock(), {})
    run(crawl(without, server_off, seed="/trap/0"), guard=60)
    assert len(server_off.log) > 2 * fetched


def test_trap_rules_exclude_with_their_reason(tmp_path: Path) -> None:
    long = "/x" + "a" * 3000
    queries = [f"/cal?day={n}" for n in range(60)]
    routes = {"/": lambda: page(long, "/a/b/a/b/a/b", *queries)}
    server = FakeWeb(FakeClock(), routes)
    settings = make_settings(tmp_path)
    run(crawl(settings, server))
    excluded = exclusions(settings)
    assert excluded[ORIGIN + long] == "trap_url_length"
    assert excluded[ORIGIN + "/a/b/a/b/a/b"] == "trap_repeated_segment"
    assert sorted(excluded.values()).count("trap_query_variants") == 10
    assert sum(1 for p in server.paths() if p == "/cal") == 50


# -- adaptive politeness ------------------------------------------------------------------------------


def test_a_host_answering_429_backs_off_obeys_retry_after_and_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    answers = iter([reply(429, b"slow down", {"retry-after": "30"})])

    def first_busy() -> httpx2.Response:
        return next(answers, None) or page()
    routes: dict[str, Callable[[], httpx2.Response]] = {"/": lambda: page(*(f"/p{n}" for n in range(30)))}
    routes.update({f"/p{n}": page for n in range(30)})
    routes["/p0"] = first_busy
    server = FakeWeb(clock, routes)
    settings = make_settings(tmp_path, per_host=4, retries=2)
    job = crawl(settings, server)
    stats = run(job)
    assert stats.outcome == "finished"
    times = dict((p, t) for t, _, p in reversed(server.log))
    after = [t for t, _, p in server.log if t > times["/p0"]]
    assert min(after) - times["/p0"] >= 30.0        # Retry-After: nothing to the host for 30 s
    assert server.paths().count("/p0") == 2
    assert pool(job).pace("site.test") == (4, 0.0, 0.0)   # back at full pace by the end


def test_a_live_host_with_a_few_bad_urls_is_never_parked_and_each_bad_url_gets_its_retries(tmp_path: Path) -> None:
    # 60 good pages; 3 URLs that time out and 2 that answer 503 twice before they recover, side by
    # side (as links to broken pages often are): each failure is its URL's, not the host's.
    good = [f"/p{n}" for n in range(60)]
    links = ["/t0", "/t1", "/t2", "/b0", "/b1", *good]
    routes: dict[str, Callable[[], httpx2.Response]] = {"/": lambda: page(*links, "http://dead.test/x")}
    routes.update({path: page for path in good})

    def busy_twice() -> Callable[[], httpx2.Response]:
        answers = iter([reply(503, b"busy"), reply(503, b"busy")])
        return lambda: next(answers, None) or page()

    clock = FakeClock()
    routes.update({"/b0": busy_twice(), "/b1": busy_twice()})
    server = FakeWeb(clock, routes)

    async def web(request: httpx2.Request) -> httpx2.Response:
        if request.url.host == "dead.test":   # a host refusing every connection
            server.log.append(Hit(clock.now, "dead.test", "dead.test" + request.url.path))
            raise httpx2.ConnectError("connection refused", request=request)
        if request.url.path.startswith("/t"):   # hangs until the deadline, while the host answers others
            server.log.append(Hit(clock.now, request.url.host, request.url.path))
            answered = pool(job).answers("site.test")

            def others_wait() -> bool:   # good pages not yet served, and fewer than 3 answered meanwhile
                served = sum(path.startswith("/p") for _, _, path in server.log)
                return served < len(good) and pool(job).answers("site.test") < answered + 3

            for _ in range(5000):   # up to 5 s of real time: however loaded the machine, the others are answered
                if not others_wait():
                    break
                await asyncio.sleep(0.001)
            clock.advance(10.0)
            raise httpx2.ReadTimeout("the whole-request deadline ran out")
        return await server(request)

    # A park would last 10,000 s: a run that parked the host waits that long (or ends without its pages).
    settings = make_settings(tmp_path, retries=2, scope="any", timeout=10.0, host_park_time=10_000.0)
    job = Crawl(settings, [ORIGIN + "/"], transport=httpx2.MockTransport(web), clock=clock, rng=random.Random(7))
    stats = run(job)
    assert stats.outcome == "finished"
    found = stored(settings)
    assert all(found[ORIGIN + path] == 200 for path in good)
    assert {path: found[ORIGIN + path] for path in ("/b0", "/b1")} == {"/b0": 200, "/b1": 200}
    counts = collections.Counter(server.paths())
    assert {path: counts[path] for path in ("/t0", "/t1", "/t2", "/b0", "/b1")} == dict.fromkeys(
        ("/t0", "/t1", "/t2", "/b0", "/b1"), 3)   # 1 + retries each, no more
    with JobReader(settings.db) as reader:
        errors = {r["url"]: r["error"] for r in reader.records(("url", "error")) if r["error"]}
    assert errors == {ORIGIN + "/t0": "timeout", ORIGIN + "/t1": "timeout", ORIGIN + "/t2": "timeout",
                      "http://dead.test/x": "connect"}
    site_times = [t for t, _, path in server.log if path.startswith("/")]
    assert max(b - a for a, b in itertools.pairwise(site_times)) < settings.host_park_time   # never parked
    assert stats.parked == (1, 1, stats.parked[2])  # dead.test's URL waits for a later run; nothing of site.test's
    hosts = dict(rows(settings, "SELECT host, state FROM hosts"))
    assert hosts.get("site.test") != "parked"
    assert hosts["dead.test"] == "parked"           # the host that never answered is parked, as before
    assert counts["dead.test/x"] == 3               # after its 1 + retries connection attempts


@pytest.mark.parametrize("write_ms", [0, 30])
def test_a_host_failing_on_every_url_is_parked_and_the_run_ends_with_its_urls_left_for_a_later_run(
        tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, write_ms: int) -> None:
    if write_ms:   # the job file as slow as on a loaded machine (the fake clock must not jump past it)
        commit = Writer._commit

        async def slow(self: Writer, batch: Any) -> Any:
            await asyncio.sleep(write_ms / 1000)   # real time: the job file's thread at work
            return await commit(self, batch)
        monkeypatch.setattr(Writer, "_commit", slow)
    routes: dict[str, Callable[[], httpx2.Response]] = {"/": lambda: page(*(f"/p{n}" for n in range(8)))}
    routes.update({f"/p{n}": (lambda: reply(503, b"down")) for n in range(8)})
    server = FakeWeb(FakeClock(), routes)
    settings = make_settings(tmp_path, per_host=2, retries=0, host_park_after=3, host_park_time=600.0)
    stats = run(crawl(settings, server))
    # Three distinct URLs failed with no good answer between them: parked for 600 s, longer than the
    # run waits (PARK_WAIT), so the run ends and says what is left and when a resume tries it.
    assert stats.outcome == "finished"
    # Three failures park the host. (6 and 8 of 8 were fetched on loaded machines: the test's clock
    # jumped past the park while the third failure was still being stored; see fake_clock.py.)
    fetched = {p for p in server.paths() if p != "/"}
    assert len(fetched) == 3, sorted(fetched)
    left = {f"{ORIGIN}/p{n}" for n in range(8)} - {ORIGIN + p for p in fetched}
    assert stats.parked[:2] == (len(left), 1)
    assert queue(settings) == dict.fromkeys(left, 0)   # pending, for a later run
    text = cli.in_process("stats", "--db", settings.db, "--hosts").stdout
    assert "parked until " in text
    assert "(503, failing)" in text


def test_a_park_that_ends_within_park_wait_is_waited_for_and_every_url_is_fetched(tmp_path: Path) -> None:
    routes: dict[str, Callable[[], httpx2.Response]] = {"/": lambda: page(*(f"/p{n}" for n in range(8)))}
    routes.update({f"/p{n}": (lambda: reply(503, b"down")) for n in range(8)})
    server = FakeWeb(FakeClock(), routes)
    settings = make_settings(tmp_path, per_host=2, retries=0, host_park_after=3, host_park_time=PARK_WAIT - 5)
    stats = run(crawl(settings, server))
    times = [t for t, _, p in server.log if p != "/"]
    assert max(b - a for a, b in itertools.pairwise(times)) >= PARK_WAIT - 5   # the park, waited out
    assert stats.parked == (0, 0, None)
    assert stored(settings)[ORIGIN + "/p7"] == 503   # every URL recorded in this run


def test_stats_hosts_shows_a_backed_off_host_with_its_reason_and_pace(tmp_path: Path, cli: Any) -> None:
    routes: dict[str, Callable[[], httpx2.Response]] = {"/": lambda: page(*(f"/b{n}" for n in range(10)))}
    routes.update({f"/b{n}": page for n in range(10)})
    routes["/b0"] = lambda: reply(503, b"busy")
    server = FakeWeb(FakeClock(), routes)
    settings = make_settings(tmp_path, retries=0, max_pages=3, concurrency=1)
    run(crawl(settings, server))
    done = cli.in_process("stats", "--db", settings.db, "--hosts", "--json")
    assert done.returncode == 0, done.stderr
    (host,) = json.loads(done.stdout)
    assert host["state"] == "backed_off"
    assert host["parked_error"].startswith("503: ")   # why, then the pace: "503: 4 in flight, 0.5 s apart"
    text = cli.in_process("stats", "--db", settings.db, "--hosts").stdout
    assert "backed off (503: " in text


# -- sitemaps ----------------------------------------------------------------------------------------

SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>{origin}/from-sitemap</loc><lastmod>2026-11-01</lastmod></url>
<url><loc>http://elsewhere.test/off</loc></url>
</urlset>"""
INDEX = """<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{origin}/sm/one.xml.gz</loc></sitemap>
<sitemap><loc>{origin}/sm/bomb.xml</loc></sitemap>
</sitemapindex>"""
BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{origin}/&lol3;</loc></url></urlset>"""


def test_sitemaps_from_robots_txt_with_an_index_gzip_and_a_billion_laughs(tmp_path: Path) -> None:
    xml = {"content-type": "application/xml"}
    routes = {
        "/robots.txt": robots_txt(f"User-agent: *\nDisallow: /no\nSitemap: {ORIGIN}/sm/index.xml\n"),
        "/": lambda: page(),
        "/sm/index.xml": lambda: reply(200, INDEX.format(origin=ORIGIN).encode(), xml),
        "/sm/one.xml.gz": lambda: reply(200, gzip.compress(SITEMAP.format(origin=ORIGIN).encode()),
                                        {"content-type": "application/x-gzip"}),
        "/sm/bomb.xml": lambda: reply(200, BOMB.format(origin=ORIGIN).encode(), xml),
        "/sitemap.xml": lambda: reply(200, b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
                                           b"<url><loc>" + ORIGIN.encode() + b"/no</loc></url></urlset>", xml),
        "/from-sitemap": page,
    }
    server = FakeWeb(FakeClock(), routes)
    settings = make_settings(tmp_path, robots=True, sitemaps=True)
    assert run(crawl(settings, server)).outcome == "finished"
    assert set(stored(settings)) == {ORIGIN + "/", ORIGIN + "/from-sitemap"}
    assert exclusions(settings) == {"http://elsewhere.test/off": "off_host", ORIGIN + "/no": "robots_disallowed"}
    assert rows(settings, f"SELECT lastmod FROM urls WHERE url = '{ORIGIN}/from-sitemap'") == [("2026-11-01",)]
    assert "/no" not in server.paths()


class ByPathAndQuery(FakeWeb):
    """A ``FakeWeb`` whose routes are keyed on the path with its query."""

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        target = request.url.raw_path.decode("ascii")
        self.log.append(Hit(self.clock.now, request.url.host, target))
        route = self.routes.get(target)
        return route() if route is not None else reply(404, b"no", {"content-type": "text/plain"})


def test_a_page_and_its_rel_canonical_target_count_once(tmp_path: Path) -> None:
    tracked = reply(200, b'<!doctype html><link rel="canonical" href="/article"><a href="/article">self</a>'
                         b'<a href="/other">other</a>', {"content-type": "text/html"})
    server = ByPathAndQuery(FakeClock(), {"/": lambda: page("/article?utm_source=feed"), "/article": page,
                                          "/article?utm_source=feed": lambda: tracked, "/other": lambda: page("/article")})
    settings = make_settings(tmp_path)
    run(crawl(settings, server))
    assert sorted(server.paths()) == ["/", "/article?utm_source=feed", "/other"]   # /article: fetched as the other
    assert exclusions(settings) == {ORIGIN + "/article": "canonical"}
    why = explain(settings.db, ORIGIN + "/article")
    assert why["decision"] == "canonical"
    assert f"the rel=canonical of {ORIGIN}/article?utm_source=feed" in why["reason"]


def test_a_host_with_a_crawl_delay_is_recorded_back_at_full_pace_once_recovered(tmp_path: Path) -> None:
    answers = iter([reply(503, b"busy")])
    routes: dict[str, Callable[[], httpx2.Response]] = {
        "/robots.txt": robots_txt("User-agent: *\nCrawl-delay: 1\n"),
        "/": lambda: page(*(f"/p{n}" for n in range(12))), "/p0": lambda: next(answers, None) or page()}
    routes.update({f"/p{n}": page for n in range(1, 12)})
    settings = make_settings(tmp_path, robots=True, retries=1)
    run(crawl(settings, FakeWeb(FakeClock(), routes)))
    assert rows(settings, "SELECT state, error FROM hosts") == [("active", None)]
