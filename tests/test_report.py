"""``crawler report``: the numbers behind each section on jobs built here through the schema, the
page they make (every section and chart, hostile text escaped, long tables cut), merged jobs, a job
that is still being crawled, and the command line."""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.parse
import webbrowser
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI
from conftest_fetch import refusing_port
from site_server import Reply, Site, Slow, html

from crawler import report, report_style
from crawler.storage.report_queries import DEPTH_CAP, ReportReader
from crawler.storage.schema import DONE, EXCLUDED, PENDING, SCHEMA

T0 = 1_800_000_000   # 2027-01-15T08:00:00Z


def at(offset: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + offset))


@dataclass
class P:
    """A page of a test job: its path on its host, what it answered, and its links as (path, anchor)."""

    path: str
    status: int | None = 200
    error: str | None = None
    ms: int | None = 10
    size: int | None = 1000
    t: int = 0
    depth: int = 1
    host: str = "a.test"
    final: str | None = None
    digest: str | None = None
    simhash: int | None = None
    near: str | None = None
    title: str | None = None
    links: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}{self.path}" if self.path.startswith("/") else self.path


def build(path: Path, pages: Sequence[P], *, excluded: Sequence[tuple[str, str]] = (), pending: Sequence[str] = (),
          hosts: Sequence[tuple[str, str, str | None, str | None]] = (), state: str = "finished") -> Path:
    """A job file written straight through the schema, as a crawl would have left it."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('state', ?)", (f'"{state}"',))
    conn.execute("INSERT INTO meta VALUES ('job_settings', ?)", ('{"scope": "host", "exclude": ["x"], "robots": true}',))
    ids: dict[str, int] = {}

    def url_id(url: str, depth: int, state: int, exclusion: str | None = None) -> int:
        if url not in ids:
            ids[url] = len(ids) + 1
            host = urllib.parse.urlsplit(url).netloc or "?"
            conn.execute("INSERT INTO urls (id, url, host, depth, state, exclusion) VALUES (?, ?, ?, ?, ?, ?)",
                         (ids[url], url, host, depth, state, exclusion))
        return ids[url]

    for p in pages:
        url_id(p.url, p.depth, DONE)
    for p in pages:
        conn.execute(
            "INSERT INTO pages (url_id, final_url, status, error, elapsed_ms, bytes, fetched_at, content_hash, simhash, "
            "near_duplicate_of, title, outlinks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ids[p.url], p.final or p.url, p.status, p.error, p.ms, p.size, at(p.t), p.digest, p.simhash,
             ids.get(p.near or ""), p.title, len(p.links)))
        for target, anchor in p.links:
            full = f"http://{p.host}{target}" if target.startswith("/") else target
            conn.execute("INSERT INTO links (source_id, target, nofollow, anchor) VALUES (?, ?, 0, ?)",
                         (ids[p.url], full, anchor))
    for url, reason in excluded:
        url_id(url, 2, EXCLUDED, reason)
    for url in pending:
        url_id(url, 2, PENDING)
    for row in hosts:
        conn.execute("INSERT INTO hosts (host, state, until, error) VALUES (?, ?, ?, ?)", row)
    conn.commit()
    conn.close()
    return path


# One site with a bit of everything; b.test's 20 pages take 10, 20, ..., 200 ms.
SITE = [
    P("/", depth=0, t=0, ms=5, links=[("/ok", "OK"), ("/gone", "Gone page"), ("/err", None), ("/slow", "slow"),
                                      ("/robots", "private"), ("/moved", "moved")]),
    P("/ok", t=0, digest="same", links=[("/gone", "again"), ("/", "home")]),
    P("/copy", t=1, digest="same", title="Copy"),
    P("/gone", status=404, error="http_error", t=1, digest="notfound"),
    P("/gone2", status=404, error="http_error", t=2, digest="notfound", links=[("/gone", "from a 404")]),
    P("/err", status=500, error="http_error", t=2, ms=40),
    P("/slow", status=None, error="timeout", ms=None, size=None, t=3),
    P("/robots", status=None, error="robots_disallowed", ms=None, size=None, t=3),
    P("/moved", final="http://a.test/ok", t=4, ms=900),
    P("/big", t=4, size=5_000_000, depth=3),
    *[P(f"/{i}", host="b.test", ms=10 * i, t=9, depth=2) for i in range(1, 21)],
]


@pytest.fixture
def site_job(tmp_path: Path) -> Path:
    return build(tmp_path / "job.db", SITE,
                 excluded=[("http://elsewhere.test/1", "off_host"), ("http://elsewhere.test/2", "off_host"),
                           ("http://a.test/deep", "too_deep")],
                 pending=["http://c.test/1", "http://a.test/later"],
                 hosts=[("a.test", "active", None, None), ("c.test", "parked", "2027-01-16T00:00:00Z", "connect")],
                 state="running")


def test_broken_links_come_with_the_pages_that_link_to_them_and_their_anchors(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        broken = r.broken_links(100, 5)
        assert r.broken_link_count() == 5
    # most linked first; a timeout is broken, a page robots.txt kept us from is not
    assert [(b.url, b.status, b.error, b.referrers) for b in broken.rows] == [
        ("http://a.test/gone", 404, "http_error", 3),
        ("http://a.test/err", 500, "http_error", 1),
        ("http://a.test/slow", None, "timeout", 1),
        ("http://a.test/gone2", 404, "http_error", 0),
    ]
    assert broken.rows[0].linked_from == [("http://a.test/", "Gone page"), ("http://a.test/gone2", "from a 404"),
                                          ("http://a.test/ok", "again")]
    assert broken.rows[1].linked_from == [("http://a.test/", None)]
    assert broken.total == 4
    assert broken.left_out == 0


def test_long_lists_are_cut_and_say_how_much_was_left_out(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        broken = r.broken_links(1, 2)
        hosts = r.hosts(1)
    assert len(broken.rows) == 1
    assert broken.total == 4
    assert broken.left_out == 3
    assert len(broken.rows[0].linked_from) == 2
    assert broken.rows[0].referrers == 3
    assert [h.host for h in hosts.rows] == ["b.test"]
    assert hosts.total == 3


def test_hosts_come_most_pages_first_with_latency_percentiles_queue_and_state(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        hosts = {h.host: h for h in r.hosts(10).rows}
    b = hosts["b.test"]
    # nearest rank: of 20 values the median is the 10th, the 95th percentile the 19th
    assert (b.pages, b.errors, b.median_ms, b.p95_ms, b.queued, b.state) == (20, 0, 100, 190, 0, "done")
    a = hosts["a.test"]
    # a.test's latencies: 5, 10 x 5, 40, 900 (the timeout and robots pages have none): 8 values
    assert (a.pages, a.errors, a.median_ms, a.p95_ms, a.queued, a.state) == (10, 5, 10, 900, 1, "queued")
    c = hosts["c.test"]
    assert (c.pages, c.queued, c.median_ms, c.state, c.parked_until, c.parked_error) == (
        0, 1, None, "parked", "2027-01-16T00:00:00Z", "connect")
    assert list(hosts) == ["b.test", "a.test", "c.test"]


def test_timeline_buckets_count_pages_and_errors_with_idle_seconds_as_zeros(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        line = r.timeline(120)
        totals = r.totals()
    assert (line.start, line.width) == (T0, 1)
    assert line.buckets == [(2, 0), (2, 1), (2, 2), (2, 2), (2, 0), (0, 0), (0, 0), (0, 0), (0, 0), (20, 0)]
    assert (totals.first, totals.last, totals.pages, totals.errors, totals.hosts) == (T0, T0 + 9, 30, 5, 3)
    assert (totals.queued, totals.excluded) == (2, 3)


def test_timeline_buckets_widen_to_stay_within_the_limit(tmp_path: Path) -> None:
    job = build(tmp_path / "long.db", [P("/a", t=0), P("/b", t=4), P("/c", t=5, status=503, error="http_error"),
                                       P("/d", t=599)])
    with ReportReader([job]) as r:
        line = r.timeline(120)
    assert line.width == 5
    assert len(line.buckets) == 120
    assert line.buckets[0] == (2, 0)
    assert line.buckets[1] == (1, 1)
    assert line.buckets[119] == (1, 0)
    assert sum(p for p, _ in line.buckets) == 4
    with ReportReader([build(tmp_path / "empty.db", [])]) as r:
        assert r.timeline(120).buckets == []
        assert r.totals().first is None


def test_statuses_error_codes_and_depths(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        assert r.statuses() == [(None, 2), (200, 25), (404, 2), (500, 1)]
        errors = r.errors()
        depths = {d.depth: d for d in r.depths()}
    assert [(e.code, e.pages, e.example_url) for e in errors] == [
        ("http_error", 3, "http://a.test/err"), ("robots_disallowed", 1, "http://a.test/robots"),
        ("timeout", 1, "http://a.test/slow")]
    assert tuple(depths[0])[1:] == (1, 0, 0, 0, 0)
    assert tuple(depths[1])[1:] == (3, 0, 2, 1, 2)
    assert tuple(depths[2])[1:] == (20, 0, 0, 0, 0)
    assert tuple(depths[3])[1:] == (1, 0, 0, 0, 0)


def test_depths_past_the_cap_share_the_last_bar(tmp_path: Path) -> None:
    job = build(tmp_path / "deep.db", [P("/a", depth=DEPTH_CAP - 1), P("/b", depth=DEPTH_CAP), P("/c", depth=DEPTH_CAP + 7)])
    with ReportReader([job]) as r:
        assert [(d.depth, d.ok) for d in r.depths()] == [(DEPTH_CAP - 1, 1), (DEPTH_CAP, 2)]


def test_redirects_duplicates_exclusions_and_outliers(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        assert [tuple(x) for x in r.redirects(10).rows] == [("http://a.test/moved", "http://a.test/ok", 200)]
        assert [tuple(d) for d in r.destinations(10).rows] == [("http://a.test/ok", 1, 200)]
        dups = r.duplicates(10, 5)
        # two 404 pages with one body are not duplicates: only successful pages count
        assert [(g.content_hash, g.pages, g.urls) for g in dups.rows] == [
            ("same", 2, ["http://a.test/copy", "http://a.test/ok"])]
        assert r.duplicate_pages() == 2
        assert r.near_duplicates(10).total == -1   # no simhash stored: text extraction was off
        assert [(e.reason, e.urls, e.examples) for e in r.exclusions(1)] == [
            ("off_host", 2, ["http://elsewhere.test/1"]), ("too_deep", 1, ["http://a.test/deep"])]
        assert [p.url for p in r.slowest(2)] == ["http://a.test/moved", "http://b.test/20"]
        assert [(p.url, p.bytes) for p in r.largest(1)] == [("http://a.test/big", 5_000_000)]
        assert r.seeds(10).rows == ["http://a.test/"]
        [job] = r.jobs()
    assert (job.state, job.pages, job.queued, job.excluded, job.settings["exclude"]) == ("running", 30, 2, 3, ["x"])


def test_near_duplicates_by_simhash_name_the_earlier_page(tmp_path: Path) -> None:
    job = build(tmp_path / "near.db", [P("/a", simhash=7), P("/b", simhash=5, near="http://a.test/a"), P("/c", simhash=99)])
    with ReportReader([job]) as r:
        near = r.near_duplicates(10)
    assert near.rows == [("http://a.test/b", "http://a.test/a")]
    assert near.total == 1


def test_merged_jobs_count_each_url_once_by_its_latest_fetch(tmp_path: Path) -> None:
    old = build(tmp_path / "old.db", [
        P("/", depth=0, t=0, links=[("/x", "x old"), ("/y", "y")]),
        P("/x", status=404, error="http_error", t=1),
        P("/y", status=404, error="http_error", t=1),
    ], excluded=[("http://a.test/z", "too_deep")])
    new = build(tmp_path / "new.db", [
        P("/", depth=0, t=10, links=[("/y", "y new")]),   # the winning fetch of / no longer links to /x
        P("/x", t=10),                                    # fixed: no longer broken
        P("/z", t=10),                                    # fetched here: not excluded after all
    ])
    with ReportReader([old, new, old]) as r:
        assert r.totals().pages == 4
        broken = r.broken_links(10, 10)
        assert [(b.url, b.linked_from) for b in broken.rows] == [("http://a.test/y", [("http://a.test/", "y new")])]
        assert r.exclusions(3) == []
        assert len(r.jobs()) == 2   # a job file named twice is read once
        assert r.statuses() == [(200, 3), (404, 1)]


@pytest.mark.parametrize("new_last", [True, False], ids=["new job last", "new job first"])
def test_exports_and_the_report_merge_jobs_and_filter_by_the_same_rule(cli: CLI, tmp_path: Path, new_last: bool) -> None:
    old = build(tmp_path / "old.db", [
        P("/", depth=0, t=0),
        P("/fixed", status=404, error="http_error", t=1),   # an old 404, fetched again as 200
        P("/broke", t=1),                                   # an old 200, fetched again as 404
        P("/lost", status=410, error="http_error", t=2),    # only the old job has it
        P("/tie", status=404, error="http_error", t=20),    # both fetched it in the same second
    ])
    new = build(tmp_path / "new.db", [
        P("/", depth=0, t=10), P("/fixed", t=10), P("/broke", status=404, error="http_error", t=11), P("/tie", t=20)])
    jobs = [old, new] if new_last else [new, old]
    dbs = (jobs[0], "--db", jobs[1])
    tie = 200 if new_last else 404   # the later job on the command line wins a tie
    with ReportReader(jobs) as r:
        winners = {p.url: p.status for p in r.slowest(100)}   # every page of these jobs has a time
        broken = {b.url: b.status for b in r.broken_links(100, 0).rows}
        timeline = r.timeline()
    a = "http://a.test"
    assert {rec["url"]: rec["status"] for rec in cli.export(*dbs)} == winners == {
        f"{a}/": 200, f"{a}/fixed": 200, f"{a}/broke": 404, f"{a}/lost": 410, f"{a}/tie": tie}

    client_errors = [rec["url"] for rec in cli.export(*dbs, "--status", "4xx")]
    assert client_errors == sorted(broken) == sorted([f"{a}/broke", f"{a}/lost"] + ([] if tie == 200 else [f"{a}/tie"]))

    since = [rec["url"] for rec in cli.export(*dbs, "--since", at(10))]
    fetched_since = sum(pages for pages, _ in timeline.buckets[(T0 + 10 - timeline.start) // timeline.width:])
    assert len(since) == fetched_since == 4
    assert sorted(since) == [f"{a}/", f"{a}/broke", f"{a}/fixed", f"{a}/tie"]


def test_every_section_and_chart_is_on_the_page_and_the_cards_add_up(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        page = "".join(report.render(report.gather(r)))
    for sid, title in report.SECTIONS:
        assert f'<section id="{sid}"><h2>{title}</h2>' in page
    for chart in report.CHARTS:
        assert f'<svg id="{chart}"' in page
    assert "still being crawled" in page
    assert '<a href="http://a.test/gone" rel="noreferrer noopener">' in page
    assert "<q>Gone page</q>" in page
    assert "parked until 2027-01-16T00:00:00Z (connect)" in page


def test_the_policy_pins_the_inline_style_and_script_and_allows_nothing_else(site_job: Path) -> None:
    with ReportReader([site_job]) as r:
        page = "".join(report.render(report.gather(r)))
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None
    assert "default-src 'none'" in policy.group(1)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert style is not None
    assert script is not None
    assert report_style.csp_hash(style.group(1)) in policy.group(1)
    assert report_style.csp_hash(script.group(1)) in policy.group(1)
    assert not re.search(r"""(src|href)=["']?(//|https?:)[^"']*\.(css|js|png|woff)""", page)


def test_titles_urls_and_anchors_from_the_crawl_are_escaped(tmp_path: Path) -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    job = build(tmp_path / "evil.db", [
        P("/", depth=0, title=evil, size=9_999_999, links=[("/bad?q=<b>", evil), ("javascript:alert(3)", evil)]),
        P("/bad?q=<b>", status=404, error="http_error", title=evil),
        P("javascript:alert(3)", status=None, error="connect", ms=None),
    ], excluded=[("http://x.test/<svg onload=alert(4)>", evil)])
    with ReportReader([job]) as r:
        page = "".join(report.render(report.gather(r)))
    assert page.count("<script>") == 1   # ours
    assert "<img" not in page
    assert "<svg onload" not in page
    assert 'href="javascript:' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="http://a.test/bad?q=&lt;b&gt;"' in page


def test_the_page_of_many_broken_links_cuts_its_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [P("/", depth=0, links=[(f"/gone/{i}", f"link {i}") for i in range(30)])]
    pages += [P(f"/gone/{i}", status=404, error="http_error") for i in range(30)]
    job = build(tmp_path / "many.db", pages)
    monkeypatch.setattr(report, "BROKEN", 10)
    with ReportReader([job]) as r:
        page = "".join(report.render(report.gather(r)))
    assert "... and 20 more broken URLs not shown" in page
    assert "30 broken URLs, linked 30 times" in page


# -- the command line -----------------------------------------------------------------------------


def test_report_writes_one_file_and_says_so_in_one_line(cli: CLI, site_job: Path, tmp_path: Path) -> None:
    done = cli.in_process("report", "--db", site_job, "--out", tmp_path / "r.html")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"report of 30 pages (4 broken URLs) written to {tmp_path / 'r.html'}"
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary file left


@pytest.mark.parametrize(("args", "says"), [
    (("--db", "nowhere.db", "--out", "r.html"), "no job file at nowhere.db"),
    (("--db", "job.db", "--out", "no/such/folder/r.html"), "cannot write no/such/folder/r.html"),
    (("--db", "job.db", "--out", "."), "cannot write .: it is a directory"),
    (("--db", "job.db"), "Missing option '--out'"),
])
def test_bad_input_is_one_line_and_exit_2(cli: CLI, site_job: Path, args: tuple[str, ...], says: str) -> None:
    assert site_job.parent == cli.cwd
    line = cli.fails(2, "report", *args)
    assert says in line


def test_a_file_that_is_no_job_is_one_line_and_exit_1(cli: CLI) -> None:
    (cli.cwd / "notes.db").write_text("not a database at all, just text " * 100)
    line = cli.fails(1, "report", "--db", "notes.db", "--out", "r.html")
    assert "notes.db" in line
    assert not (cli.cwd / "r.html").exists()


def test_open_uses_the_browser_where_there_is_one_and_is_quiet_where_not(
        cli: CLI, site_job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    class Browser:
        def open(self, url: str) -> bool:
            opened.append(url)
            return True

    monkeypatch.setattr(webbrowser, "get", lambda: Browser())
    done = cli.in_process("report", "--db", site_job, "--out", "r.html", "--open")
    assert done.returncode == 0
    assert opened == [(cli.cwd / "r.html").resolve().as_uri()]

    def none() -> Any:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", none)
    done = cli.in_process("report", "--db", site_job, "--out", "r.html", "--open")
    assert done.returncode == 0
    assert len(done.stderr.splitlines()) == 1


def test_a_job_being_crawled_is_reported_as_committed_so_far(cli: CLI, tmp_path: Path) -> None:
    slow = Slow(30, html("Slow"))
    with Site({"/": html("Home", "/a", "/slow", "/gone"), "/a": html("A"), "/slow": slow,
               "/gone": Reply(404)}) as site:
        crawl = cli.popen("crawl", site.url("/"), "--db", "live.db", "--no-robots", "--timeout", "60")
        try:
            assert site.wait_for("/slow"), "the crawl never reached the slow page"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:   # until /a and /gone are committed
                done = cli.in_process("report", "--db", "live.db", "--out", "live.html")
                if done.returncode == 0 and "report of 3 pages (1 broken URL)" in done.stderr:
                    break
                time.sleep(0.2)
            assert done.returncode == 0, done.stderr
            assert "report of 3 pages (1 broken URL)" in done.stderr
            page = (tmp_path / "live.html").read_text(encoding="utf-8")
            assert "still being crawled" in page
            assert crawl.poll() is None, "the report stopped the crawl"
        finally:
            crawl.kill()
            crawl.communicate(timeout=30)



def test_a_seed_that_could_not_be_reached_is_a_broken_link(cli: CLI, tmp_path: Path) -> None:
    with refusing_port() as port:
        seed = f"http://127.0.0.1:{port}/"
        crawled = cli.in_process("crawl", seed, "--db", tmp_path / "job.db", "--timeout", "1", "--retries", "0")
    assert crawled.returncode in (0, 4), crawled.stderr   # (4 since nothing answered: test_e2e)
    done = cli.in_process("report", "--db", tmp_path / "job.db", "--out", tmp_path / "r.html")
    assert done.returncode == 0, done.stderr
    assert "(1 broken URL)" in done.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    broken = page[page.index('<section id="broken">'):]
    broken = broken[:broken.index("</section>")]
    assert seed in broken
    assert ">connect<" in broken
