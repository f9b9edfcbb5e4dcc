"""End-to-end crawls: the CLI against a real HTTP server on loopback.

The main site holds one of everything a crawl meets (a link cycle, relative and ``../`` links, three
spellings of one URL, a 404, redirects good and bad, robots.txt, a PDF, a latin-1 page, a page
slower than the timeout, gzip, broken HTML, another host, mailto: and javascript:). It is crawled
once per module, as a user runs it: ``python -m crawler crawl`` in a subprocess, with its worker
processes; the tests then read the job back through ``export`` and ``stats``, and compare the
server's own request log with what the crawler claims. The other crawls here run the same command
in-process (``cli.in_process``, see conftest.py), except where the process is what a test checks: a
signal, an exit code end to end, a parse mode's pool.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import signal
import socket
import sqlite3
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FAST
from site_server import (
    Conditional,
    Route,
    Sequence,
    Site,
    Slow,
    gzipped,
    html,
    html_doc,
    redirect,
    reply,
    robots,
)

FIELDS = ["url", "final_url", "status", "depth", "content_type", "title", "description", "outlinks",
          "bytes", "elapsed_ms", "fetched_at", "error"]
# After them, what every HTML page gives without rules: the built-in fields and structured data
# (docs/exporting.md); CSV spreads `data` into a column per field, and this job has none.
EXTRACTED = ["h1", "lang", "word_count", "data", "jsonld", "opengraph"]


GZIP_PAGE = html("Gzipped", "/a")
LATIN1_BODY = ("<html><head><meta name=description content='Kaffee & Kuchen'>"
               "<title>Café Müller</title></head><body><a href='/a'>a</a></body></html>").encode("latin-1")
BROKEN_BODY = (b"<html><head><title>Broken page</title><body><p><a href='/a'>a<div><table><tr><td>"
               b"<a href=\"/ok/3\">three</td></tr><p><<<>>> <b><i>unclosed <a href='/dir/c'")
PDF_BODY = b"%PDF-1.4\n1 0 obj << /URI (http://127.0.0.1/from-pdf) >> endobj\n<a href='/pdf-link'>x</a>\n%%EOF\n"

MAIN_ROUTES: dict[str, Route] = {
    "/robots.txt": robots("User-agent: *\nDisallow: /private/\n"),
    "/": html("Index", "a", "ok/%33", "/ok/./3", "/ok/3#x", "missing", "moved", "loop1", "to-ftp",
              "private/x", "file.pdf", "latin1", "slow", "gzip", "broken",
              "http://other.invalid/page", "mailto:someone@example.com", "javascript:void(0)"),
    "/a": html("Page A", "b"),                       # relative: /b
    "/b": html("Page B", "dir/c"),                   # relative into a folder: /dir/c
    "/dir/c": html("Page C", "../a", "./c", "#top"),  # ../ closes the cycle a -> b -> c -> a
    "/ok/3": html("Three", "../a", "./3"),
    "/missing": reply(404, "no such page", "text/plain"),
    "/moved": redirect("/target"),
    "/target": html("Target", "/"),
    "/loop1": redirect("/loop2", 302),
    "/loop2": redirect("/loop1", 302),
    "/to-ftp": redirect("ftp://files.example.com/x.zip"),
    "/private/x": html("Secret"),
    "/file.pdf": reply(200, PDF_BODY, "application/pdf"),
    "/latin1": reply(200, LATIN1_BODY, "text/html; charset=iso-8859-1"),
    "/slow": Slow(5.0, html("Too slow")),
    "/gzip": gzipped(GZIP_PAGE),
    "/broken": reply(200, BROKEN_BODY, "text/html"),
}

# path -> (status, title, error, final path, content_type, depth, outlinks)
EXPECTED: dict[str, tuple[int | None, str | None, str | None, str | None, str | None, int, int]] = {
    "/": (200, "Index", None, "/", "text/html", 0, 13),
    "/a": (200, "Page A", None, "/a", "text/html", 1, 1),
    "/b": (200, "Page B", None, "/b", "text/html", 2, 1),
    "/dir/c": (200, "Page C", None, "/dir/c", "text/html", 3, 2),
    "/ok/3": (200, "Three", None, "/ok/3", "text/html", 1, 2),
    "/missing": (404, None, "http_error", "/missing", "text/plain", 1, 0),
    "/moved": (200, "Target", None, "/target", "text/html", 1, 1),
    "/loop1": (None, None, "too_many_redirects", None, None, 1, 0),
    "/to-ftp": (None, None, "blocked_scheme", None, None, 1, 0),
    "/file.pdf": (200, None, None, "/file.pdf", "application/pdf", 1, 0),
    "/latin1": (200, "Café Müller", None, "/latin1", "text/html", 1, 1),
    "/slow": (None, None, "timeout", None, None, 1, 0),
    "/gzip": (200, "Gzipped", None, "/gzip", "text/html", 1, 1),
    "/broken": (200, "Broken page", None, "/broken", "text/html", 1, 2),  # a tag cut off by EOF is dropped
}

# Every request the server must see, each exactly once; /private/x and the rest never.
EXPECTED_REQUESTS = {
    "/robots.txt", "/", "/a", "/b", "/dir/c", "/ok/3", "/missing", "/moved", "/target", "/loop1",
    "/loop2", "/to-ftp", "/file.pdf", "/latin1", "/slow", "/gzip", "/broken",
}


@dataclass
class Job:
    site: Site
    db: Path
    done: subprocess.CompletedProcess[str]
    seconds: float
    counts: dict[str, int]
    cli: Any


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory, make_cli: Any) -> Iterator[Job]:
    folder = tmp_path_factory.mktemp("main")
    cli = make_cli(folder)
    db = folder / "job.db"
    with Site(MAIN_ROUTES) as site:
        started = time.monotonic()
        done = cli("crawl", site.url("/"), "--db", db, *FAST)
        seconds = time.monotonic() - started
        counts = site.counts()
        yield Job(site, db, done, seconds, counts, cli)


def flat(text: str) -> str:
    """Output with every run of whitespace made one space: what it says, not how it is wrapped."""
    return " ".join(text.split())


def exclusions(db: Path) -> dict[str, str]:
    """URL -> exclusion code of every URL the job decided not to fetch."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT url, exclusion FROM urls WHERE state = 3").fetchall())
    finally:
        conn.close()


def path_of(site: Site, url: str) -> str:
    assert url.startswith(site.origin), url
    return url[len(site.origin):]


# -- the main crawl -------------------------------------------------------------------------------


def test_main_crawl_exits_0_and_does_not_wait_for_the_slow_page(main_job: Job) -> None:
    assert main_job.done.returncode == 0, main_job.done.stderr
    assert "Traceback" not in main_job.done.stderr
    assert "finished" in main_job.done.stdout
    # /slow answers after 5 s; with --timeout 1 the whole crawl is over well before that.
    assert main_job.seconds < 4.5


def test_every_url_is_stored_once_with_the_right_fields(main_job: Job) -> None:
    records = main_job.cli.export_by_url(main_job.db)
    site = main_job.site
    assert sorted(path_of(site, url) for url in records) == sorted(EXPECTED)
    for path, (status, title, error, final, ctype, depth, outlinks) in EXPECTED.items():
        rec = records[site.url(path)]
        final_path = None if rec["final_url"] is None else path_of(site, rec["final_url"])
        got = (rec["status"], rec["title"], rec["error"], final_path,
               rec["content_type"], rec["depth"], rec["outlinks"])
        assert got == (status, title, error, final, ctype, depth, outlinks), path


def test_latin1_title_and_description_are_decoded(main_job: Job) -> None:
    rec = main_job.cli.export_by_url(main_job.db)[main_job.site.url("/latin1")]
    assert rec["title"] == "Café Müller"
    assert rec["description"] == "Kaffee & Kuchen"


def test_bytes_are_counted_after_decompression(main_job: Job) -> None:
    records = main_job.cli.export_by_url(main_job.db)
    assert records[main_job.site.url("/gzip")]["bytes"] == len(GZIP_PAGE.body)
    assert records[main_job.site.url("/file.pdf")]["bytes"] == len(PDF_BODY)
    assert records[main_job.site.url("/latin1")]["bytes"] == len(LATIN1_BODY)


def test_each_page_is_requested_exactly_once(main_job: Job) -> None:
    assert main_job.counts == dict.fromkeys(EXPECTED_REQUESTS, 1)
    assert "/private/x" not in main_job.counts
    assert "/pdf-link" not in main_job.counts
    assert "/from-pdf" not in main_job.counts


def test_other_hosts_are_excluded_and_other_schemes_dropped(main_job: Job) -> None:
    conn = sqlite3.connect(f"file:{main_job.db}?mode=ro", uri=True)
    try:
        rows = dict(conn.execute("SELECT url, exclusion FROM urls WHERE state = 3").fetchall())
        urls = [u for (u,) in conn.execute("SELECT url FROM urls")]
    finally:
        conn.close()
    # robots.txt was read before the seed's links were found: /private/x is decided then, no page
    assert rows == {"http://other.invalid/page": "off_host", main_job.site.url("/private/x"): "robots_disallowed"}
    assert not [u for u in urls if not u.startswith("http")]
    exported = main_job.cli.export_by_url(main_job.db)
    assert "http://other.invalid/page" not in exported


def test_jsonl_records_carry_the_interface_fields_in_order(main_job: Job) -> None:
    records = main_job.cli.export(main_job.db, fresh=True)
    assert len(records) == len(EXPECTED)
    for rec in records:
        assert list(rec) == FIELDS + EXTRACTED
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", rec["fetched_at"]), rec
        if rec["status"] is not None:
            assert isinstance(rec["elapsed_ms"], int)
            assert rec["elapsed_ms"] >= 0


def test_csv_export_has_the_same_header_and_rows(main_job: Job) -> None:
    out = main_job.db.parent / "pages.csv"
    done = main_job.cli.in_process("export", "--db", main_job.db, "--format", "csv", "--out", out)
    assert done.returncode == 0, done.stderr
    assert f"{len(EXPECTED)} records written" in done.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    header = FIELDS + [name for name in EXTRACTED if name != "data"]
    assert rows[0] == header
    assert len(rows) == 1 + len(EXPECTED)
    by_url = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    latin = by_url[main_job.site.url("/latin1")]
    assert (latin["status"], latin["title"]) == ("200", "Café Müller")
    assert by_url[main_job.site.url("/slow")]["status"] == ""   # null is an empty cell
    to_stdout = main_job.cli.in_process("export", "--db", main_job.db, "--format", "csv", "--out", "-")
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == out.read_text(encoding="utf-8")


def test_reading_in_process_is_the_same_command(main_job: Job) -> None:
    """The other tests read jobs through crawler.cli.main in the test process: same bytes."""
    for command in (("export", "--db", main_job.db), ("export", "--db", main_job.db, "--format", "csv"),
                    ("stats", "--db", main_job.db, "--json")):
        fresh, here = main_job.cli(*command), main_job.cli.in_process(*command)
        assert (here.returncode, here.stdout, here.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_export_status_filter(main_job: Job) -> None:
    records = main_job.cli.export(main_job.db, "--status", "404")
    assert [(path_of(main_job.site, r["url"]), r["status"]) for r in records] == [("/missing", 404)]
    both = main_job.cli.export(main_job.db, "--status", "404", "--status", "200")
    assert {r["status"] for r in both} == {200, 404}
    assert len(both) == sum(1 for v in EXPECTED.values() if v[0] in (200, 404))


def test_export_chosen_fields(main_job: Job) -> None:
    records = main_job.cli.export(main_job.db, "--fields", "url,status")
    assert len(records) == len(EXPECTED)
    assert all(list(rec) == ["url", "status"] for rec in records)
    done = main_job.cli.in_process("export", "--db", main_job.db, "--format", "csv", "--fields", "status,url")
    assert done.stdout.splitlines()[0] == "status,url"


def test_stats_json(main_job: Job) -> None:
    stats = main_job.cli.stats(main_job.db, fresh=True)
    statuses = [v[0] for v in EXPECTED.values() if v[0] is not None]
    errors = [v[2] for v in EXPECTED.values() if v[2] is not None]
    assert stats["state"] == "finished"
    assert stats["pages"] == len(EXPECTED)
    assert stats["statuses"] == {str(s): statuses.count(s) for s in set(statuses)}
    assert stats["errors"] == {e: errors.count(e) for e in set(errors)}
    assert stats["queue"] == {"pending": 0, "excluded": 2}   # off host, robots.txt
    assert stats["hosts"] == 1


def test_stats_text(main_job: Job) -> None:
    done = main_job.cli.in_process("stats", "--db", main_job.db)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"^pages\s+{len(EXPECTED)}$", done.stdout, re.MULTILINE), done.stdout
    assert "(finished)" in done.stdout


# -- limits and scope -----------------------------------------------------------------------------


def ten_pages() -> dict[str, Route]:
    routes: dict[str, Route] = {
        f"/p{i}": html(f"Page {i}", f"/p{i}/sub") for i in range(10)}
    routes["/"] = html("Home", *(f"/p{i}" for i in range(10)))
    return routes


def test_max_pages_stops_after_n_pages(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--max-pages", "3", *FAST)
    assert done.returncode == 0, done.stderr
    assert len(cli.export(db)) == 3
    pages = {p for p in site.counts() if p != "/robots.txt"}
    assert len(pages) == 3
    assert cli.stats(db)["pages"] == 3
    # The job is at its limit: running it again says so instead of fetching more.
    again = cli.in_process("crawl", "--db", db, *FAST)
    assert again.returncode == 0, again.stderr
    assert "--max-pages" in flat(again.stdout)
    assert len(cli.export(db)) == 3


def test_max_depth_0_stores_only_the_seed(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--max-depth", "0", *FAST)
    assert done.returncode == 0, done.stderr
    assert [r["url"] for r in cli.export(db)] == [site.url("/")]
    assert set(site.counts()) == {"/", "/robots.txt"}
    assert cli.stats(db)["queue"]["excluded"] == 10


def test_max_depth_1(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--max-depth", "1", *FAST)
    assert done.returncode == 0, done.stderr
    assert {r["depth"] for r in cli.export(db)} == {0, 1}
    assert len(cli.export(db)) == 11


def test_exclude_regex(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--exclude", r"/p[0-4]", "--exclude", "/sub$", *FAST)
    assert done.returncode == 0, done.stderr
    got = sorted(path_of(site, r["url"]) for r in cli.export(db))
    assert got == ["/", "/p5", "/p6", "/p7", "/p8", "/p9"]
    assert not any(p.startswith(("/p0", "/p1", "/p2", "/p3", "/p4")) or p.endswith("/sub") for p in site.counts())


def test_include_regex(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--include", r"/p[12]($|/)", *FAST)
    assert done.returncode == 0, done.stderr
    got = sorted(path_of(site, r["url"]) for r in cli.export(db))
    # The seed is always fetched; after it, only what an include pattern matches.
    assert got == ["/", "/p1", "/p1/sub", "/p2", "/p2/sub"]


@pytest.mark.parametrize(
    ("flags", "followed", "reason"),
    [
        ((), False, "off_host"),
        (("--scope", "domain"), False, "off_domain"),
        (("--scope", "any"), True, None),
        (("--allow-domain", "localhost"), True, None),
    ],
)
def test_scope_across_two_names_of_loopback(site: Site, cli: Any, db: Path, flags: tuple[str, ...],
                                            followed: bool, reason: str | None) -> None:
    """127.0.0.1 and localhost are one server but two hosts: scope tested without DNS. (localhost is
    loopback and no seed names it: the SSRF guard would refuse it, so --allow-private.)"""
    other = f"http://localhost:{site.port}/x"
    site.routes.update({"/": html("Home", other), "/x": html("X")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *flags, "--allow-private", *FAST)
    assert done.returncode == 0, done.stderr
    assert (other in cli.export_by_url(db)) is followed
    assert site.count("/x") == int(followed)
    assert site.count("/robots.txt") == 1 + int(followed)   # robots.txt is per host
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (row,) = conn.execute("SELECT exclusion FROM urls WHERE url = ?", (other,)).fetchall()
    finally:
        conn.close()
    assert row[0] == reason


# -- robots.txt -----------------------------------------------------------------------------------


def test_robots_503_makes_the_host_unavailable(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    site.routes["/robots.txt"] = robots("busy", status=503)
    done = cli.in_process("crawl", site.url("/"), site.url("/p1"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    records = cli.export(db)
    # The host is parked: its error is recorded once, and its other URL waits for a later run.
    assert {path_of(site, r["url"]): (r["status"], r["error"]) for r in records} == {"/": (None, "robots_unavailable")}
    assert cli.stats(db)["queue"]["pending"] == 2
    assert site.counts() == {"/robots.txt": 1}


def test_a_robots_txt_that_fails_once_is_read_again_when_its_url_is_retried(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(ten_pages())
    site.routes["/robots.txt"] = Sequence((robots("busy", status=503), robots("User-agent: *\nDisallow: /p2\n")))
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--timeout", "2")
    assert done.returncode == 0, done.stderr
    records = {path_of(site, r["url"]): (r["status"], r["error"]) for r in cli.export(db)}
    assert {path: records.get(path) for path in ("/", "/p1", "/p2")} == {"/": (200, None), "/p1": (200, None),
                                                                        "/p2": None}   # disallowed
    assert site.counts()["/robots.txt"] == 2
    assert cli.stats(db)["queue"]["pending"] == 0


def test_no_robots_ignores_robots_txt(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/private/x"), "/private/x": html("Secret")})
    site.routes["/robots.txt"] = robots("User-agent: *\nDisallow: /\n")
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--no-robots", *FAST)
    assert done.returncode == 0, done.stderr
    records = cli.export_by_url(db)
    assert {path_of(site, u): (r["status"], r["error"]) for u, r in records.items()} == {
        "/": (200, None), "/private/x": (200, None)}
    assert site.counts() == {"/": 1, "/private/x": 1}


def test_robots_disallow_all(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/a"), "/a": html("A")})
    site.routes["/robots.txt"] = robots("User-agent: *\nDisallow: /\n")
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    assert cli.export(db) == []   # a URL robots.txt rules out is an exclusion, not a page
    assert exclusions(db) == {site.url("/"): "robots_disallowed"}
    assert site.counts() == {"/robots.txt": 1}


def test_robots_404_allows_everything(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/a"), "/a": html("A")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in cli.export(db)] == [200, 200]
    assert site.counts() == {"/robots.txt": 1, "/": 1, "/a": 1}
    # The default User-Agent names the crawler, so robots.txt groups can address it.
    assert all((hit.header("user-agent") or "").startswith("crawler/") for hit in site.hits)


def test_robots_txt_redirect_is_followed(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/robots.txt": redirect("/rules.txt"), "/rules.txt": robots("User-agent: *\nDisallow: /a\n"),
                        "/": html("Home", "/a", "/b"), "/a": html("A"), "/b": html("B")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    records = {path_of(site, u): r["error"] for u, r in cli.export_by_url(db).items()}
    assert records == {"/": None, "/b": None}
    assert exclusions(db) == {site.url("/a"): "robots_disallowed"}
    assert site.counts() == {"/robots.txt": 1, "/rules.txt": 1, "/": 1, "/b": 1}


# -- jobs: finished, resumed, missing ------------------------------------------------------------


def test_rerunning_a_finished_job_says_so(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/a"), "/a": html("A")})
    first = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert first.returncode == 0, first.stderr
    before = site.counts()
    for args in (("crawl", "--db", db), ("crawl", site.url("/"), "--db", db)):
        again = cli.in_process(*args, *FAST)
        assert again.returncode == 0, again.stderr
        assert "already finished" in flat(again.stdout)
    assert site.counts() == before
    assert len(cli.export(db)) == 2


def test_new_seed_reopens_a_finished_job(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home"), "/other": html("Other", "/")})
    assert cli.in_process("crawl", site.url("/"), "--db", db, *FAST).returncode == 0
    again = cli.in_process("crawl", site.url("/other"), "--db", db, *FAST)
    assert again.returncode == 0, again.stderr
    assert sorted(path_of(site, r["url"]) for r in cli.export(db)) == ["/", "/other"]
    assert site.count("/") == 1


def test_no_seeds_and_no_job_is_a_usage_error(cli: Any, db: Path) -> None:
    line = cli.fails(2, "crawl", "--db", db, *FAST, fresh=True)   # exit 2 end to end
    assert "no seed" in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_with_130_and_the_same_command_resumes(site: Site, cli: Any, db: Path,
                                                              sig: signal.Signals) -> None:
    site.routes.update({"/": html("Home", "/slow", "/after"), "/slow": Slow(1.0, html("Slow")),
                        "/after": html("After")})
    args = ("crawl", site.url("/"), "--db", db, "--timeout", "10", "--retries", "0", "--per-host", "1")
    proc = cli.popen(*args)
    err = cli.interrupt(proc, lambda: site.wait_for("/slow"), sig)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "resume" in err
    # The request in flight was allowed to finish and was stored; /after was never started.
    assert [r["title"] for r in cli.export(db)] == ["Home", "Slow"]
    assert site.count("/after") == 0
    resumed = cli.in_process(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(path_of(site, r["url"]) for r in cli.export(db)) == ["/", "/after", "/slow"]
    assert (site.count("/slow"), site.count("/after")) == (1, 1)
    assert cli.stats(db)["state"] == "finished"


def test_job_settings_are_kept_on_resume(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({f"/p{i}": html(f"P{i}") for i in range(10)})
    site.routes["/"] = html("Home", *(f"/p{i}" for i in range(10)))
    first = cli.in_process("crawl", site.url("/"), "--db", db, "--exclude", "/p[0-4]$", "--max-pages", "2", "--no-bodies",
                *FAST)
    assert first.returncode == 0, first.stderr
    assert len(cli.export(db)) == 2
    # Raise the limit only: the job's --exclude and --no-bodies still hold.
    resumed = cli.in_process("crawl", "--db", db, "--max-pages", "0", *FAST)
    assert resumed.returncode == 0, resumed.stderr
    got = sorted(path_of(site, r["url"]) for r in cli.export(db))
    assert got == ["/", "/p5", "/p6", "/p7", "/p8", "/p9"]
    assert all(site.count(f"/p{i}") == 0 for i in range(5))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(body) FROM pages").fetchone()[0] == 0


def test_a_crawl_whose_seed_refuses_the_connection_records_connect_and_exits_4(cli: Any, db: Path, site: Site) -> None:
    with socket.socket() as sock:     # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    seed = f"http://127.0.0.1:{port}/"
    # With robots.txt obeyed it is robots.txt that cannot be fetched: the host was not reached all the same.
    # Exit 4 end to end once, in a subprocess; the same command in-process after that.
    for job, flags, run in ((db, (), cli), (db.with_name("no-robots.db"), ("--no-robots",), cli.in_process)):
        done = run("crawl", seed, "--db", job, *flags, *FAST)
        assert done.returncode == 4, done.stderr
        assert done.stdout.startswith("crawl finished\n")   # the summary, then why the exit status
        assert done.stderr.splitlines()[-1].startswith(f"crawler: no seed could be fetched (1 connect): {seed}: ")
        assert [(r["status"], r["error"]) for r in cli.export(job)] == [(None, "connect")]
    # One seed that answers is enough for exit 0, even with the refused one still failing.
    site.routes["/"] = html("Home")
    done = cli.in_process("crawl", seed, site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    assert {r["url"]: (r["status"], r["error"]) for r in cli.export(db)} == {seed: (None, "connect"),
                                                                             site.url("/"): (200, None)}


def test_user_agent_is_sent_and_matched_in_robots_txt(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/a", "/b"), "/a": html("A"), "/b": html("B"),
                        "/robots.txt": robots("User-agent: testbot\nDisallow: /a\n\nUser-agent: *\nDisallow: /b\n")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--user-agent", "testbot/2.0 (+https://example.com/bot)", *FAST)
    assert done.returncode == 0, done.stderr
    agents = {hit.header("user-agent") for hit in site.hits}
    assert agents == {"testbot/2.0 (+https://example.com/bot)"}
    records = {path_of(site, u): r["error"] for u, r in cli.export_by_url(db).items()}
    assert records == {"/": None, "/b": None}
    assert exclusions(db) == {site.url("/a"): "robots_disallowed"}


# -- retries --------------------------------------------------------------------------------------

# A tiny exponential backoff, so that only Retry-After can explain a long gap between two requests.
QUICK_BACKOFF = {"CRAWLER_RETRY_BACKOFF": "0.01"}
FLAKY = Sequence((reply(503, "busy", "text/plain"), reply(503, "busy", "text/plain"), html("Finally")))


def test_503_twice_then_200_is_stored_as_200_with_two_retries(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/flaky"), "/flaky": FLAKY})
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--timeout", "1", "--retries", "2", env=QUICK_BACKOFF)
    assert done.returncode == 0, done.stderr
    rec = cli.export_by_url(db)[site.url("/flaky")]
    assert (rec["status"], rec["title"], rec["error"]) == (200, "Finally", None)
    assert site.count("/flaky") == 3


def test_503_without_retries_is_stored_as_503(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/flaky"), "/flaky": FLAKY})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST, env=QUICK_BACKOFF)
    assert done.returncode == 0, done.stderr
    rec = cli.export_by_url(db)[site.url("/flaky")]
    assert (rec["status"], rec["error"], rec["content_type"]) == (503, "http_error", "text/plain")
    assert site.count("/flaky") == 1


def test_retries_run_out(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/flaky"), "/flaky": FLAKY})
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--timeout", "1", "--retries", "1", env=QUICK_BACKOFF)
    assert done.returncode == 0, done.stderr
    rec = cli.export_by_url(db)[site.url("/flaky")]
    assert (rec["status"], rec["error"]) == (503, "http_error")
    assert site.count("/flaky") == 2


def test_429_retry_after_is_honoured(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/busy"),
                        "/busy": Sequence((reply(429, "slow down", "text/plain", Retry_After="1"),
                                           html("Served")))})
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--timeout", "1", "--retries", "2", env=QUICK_BACKOFF)
    assert done.returncode == 0, done.stderr
    first, second = site.times("/busy")
    assert second - first >= 0.8, f"retried after {second - first:.3f}s despite Retry-After: 1"
    rec = cli.export_by_url(db)[site.url("/busy")]
    assert (rec["status"], rec["title"]) == (200, "Served")


def test_timeout_is_retried(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/late"), "/late": Slow(3.0, html("On time"), only_first=1)})
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--timeout", "0.5", "--retries", "1", env=QUICK_BACKOFF)
    assert done.returncode == 0, done.stderr
    rec = cli.export_by_url(db)[site.url("/late")]
    assert (rec["status"], rec["error"], rec["title"]) == (200, None, "On time")
    assert site.count("/late") == 2


# -- parse modes and bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_parse_modes_give_the_same_records(site: Site, cli: Any, db: Path, mode: str) -> None:
    site.routes.update({"/": html("Home", "/latin1", "/a"), "/a": html("A", "/"),
                        "/latin1": reply(200, LATIN1_BODY, "text/html; charset=iso-8859-1")})
    done = cli("crawl", site.url("/"), "--db", db, "--parse-mode", mode, "--parse-workers", "2", *FAST)
    assert done.returncode == 0, done.stderr
    titles = {path_of(site, u): r["title"] for u, r in cli.export_by_url(db).items()}
    assert titles == {"/": "Home", "/a": "A", "/latin1": "Café Müller"}


def test_no_bodies_keeps_records_but_not_bodies(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/a"), "/a": html("A")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--no-bodies", *FAST)
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        bodies = [b for (b,) in conn.execute("SELECT body FROM pages")]
    finally:
        conn.close()
    assert bodies == [None, None]
    assert [r["title"] for r in cli.export(db)] == ["Home", "A"]


def test_bodies_are_kept_by_default(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home")})
    assert cli.in_process("crawl", site.url("/"), "--db", db, *FAST).returncode == 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (body,) = conn.execute("SELECT body FROM pages").fetchone()
    finally:
        conn.close()
    assert zlib.decompress(body) == html_doc("Home").encode()


# -- redirects that must not be followed ---------------------------------------------------------


def test_redirect_into_a_robots_disallowed_path_is_not_followed(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/robots.txt": robots("User-agent: *\nDisallow: /private/\n"),
                        "/": html("Home", "/go"), "/go": redirect("/private/y"), "/private/y": html("Secret")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    rec = cli.export_by_url(db)[site.url("/go")]
    assert (rec["status"], rec["error"]) == (None, "robots_disallowed")
    assert site.count("/private/y") == 0


def test_redirect_to_another_host_is_out_of_scope(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/away"), "/away": redirect("http://other.invalid/landing", 302)})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    rec = cli.export_by_url(db)[site.url("/away")]
    assert (rec["status"], rec["error"]) == (None, "out_of_scope")


def test_redirect_chain_to_a_404_records_the_final_url(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/r1"), "/r1": redirect("/r2", 307), "/r2": redirect("/gone", 308)})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    rec = cli.export_by_url(db)[site.url("/r1")]
    assert (rec["status"], rec["error"], rec["final_url"]) == (404, "http_error", site.url("/gone"))
    assert (site.count("/r1"), site.count("/r2"), site.count("/gone")) == (1, 1, 1)


# -- size limits -----------------------------------------------------------------------------------


def test_max_bytes_applies_to_plain_and_gzip_bodies(site: Site, cli: Any, db: Path) -> None:
    big = html("Big", extra="<p>" + "x" * 5000 + "</p>")
    bomb = gzipped(big)
    assert len(bomb.body) < 1000    # under the cap on the wire, over it once inflated
    site.routes.update({"/": html("Home", "/big", "/bomb", "/small"), "/big": big, "/bomb": bomb,
                        "/small": html("Small")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, "--max-bytes", "2000", *FAST)
    assert done.returncode == 0, done.stderr
    records = {path_of(site, u): (r["status"], r["error"]) for u, r in cli.export_by_url(db).items()}
    assert records == {"/": (200, None), "/big": (None, "too_large"), "/bomb": (None, "too_large"),
                       "/small": (200, None)}


# -- politeness -------------------------------------------------------------------------------------


def slow_pages(n: int, seconds: float) -> dict[str, Route]:
    return {f"/s{i}": Slow(seconds, html(f"S{i}")) for i in range(n)}


def test_per_host_limits_requests_in_flight(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(slow_pages(6, 0.3))
    seeds = [site.url(f"/s{i}") for i in range(6)]
    done = cli.in_process("crawl", *seeds, "--db", db, "--per-host", "2", "--no-robots", *FAST)
    assert done.returncode == 0, done.stderr
    assert len(cli.export(db)) == 6
    assert site.peak == 2


def test_concurrency_limits_requests_in_flight(site: Site, cli: Any, db: Path) -> None:
    site.routes.update(slow_pages(4, 0.2))
    seeds = [site.url(f"/s{i}") for i in range(4)]
    done = cli.in_process("crawl", *seeds, "--db", db, "--concurrency", "1", "--no-robots", *FAST)
    assert done.returncode == 0, done.stderr
    assert len(cli.export(db)) == 4
    assert site.peak == 1


def request_gaps(site: Site) -> list[float]:
    times = sorted(hit.at for hit in site.hits if hit.path != "/robots.txt")
    return [b - a for a, b in itertools.pairwise(times)]


def test_delay_spaces_requests_to_one_host(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({f"/p{i}": html(f"P{i}") for i in range(4)})
    # Without robots.txt: its fetch would delay the first request and shorten the first gap. With worker
    # processes (docs/scale-out.md: a delay holds from the first request a worker makes).
    done = cli.in_process("crawl", *(site.url(f"/p{i}") for i in range(4)), "--db", db, "--delay", "0.3", "--no-robots",
                          "--workers", "2", *FAST)
    assert done.returncode == 0, done.stderr
    gaps = request_gaps(site)
    assert len(gaps) == 3
    assert min(gaps) >= 0.25, gaps


def test_robots_crawl_delay_spaces_requests(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({f"/p{i}": html(f"P{i}") for i in range(4)})
    site.routes["/robots.txt"] = robots("User-agent: *\nCrawl-delay: 0.5\n")
    done = cli.in_process("crawl", *(site.url(f"/p{i}") for i in range(4)), "--db", db, "--workers", "2", *FAST)
    assert done.returncode == 0, done.stderr
    gaps = request_gaps(site)
    assert len(gaps) == 3
    assert min(gaps) >= 0.45, gaps


# -- recrawl ------------------------------------------------------------------------------------------


def test_recrawl_revisits_with_conditional_requests(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({
        "/": Conditional('"home-v1"', html("Home", "/news", "/old")),
        "/news": Sequence((html("News 1"), html("News 2"))),
        "/old": Sequence((html("Old"), reply(404, "gone", "text/plain"))),
    })
    first = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert first.returncode == 0, first.stderr
    again = cli.in_process("crawl", "--db", db, "--recrawl", *FAST)
    assert again.returncode == 0, again.stderr
    assert site.counts() == {"/robots.txt": 2, "/": 2, "/news": 2, "/old": 2}
    first_home, second_home = site.requests("/")
    assert first_home.header("if-none-match") is None
    assert second_home.header("if-none-match") == '"home-v1"'
    records = {path_of(site, u): (r["status"], r["title"], r["error"]) for u, r in cli.export_by_url(db).items()}
    assert records == {"/": (200, "Home", None), "/news": (200, "News 2", None), "/old": (404, None, "http_error")}
    # The new pass is finished too.
    rerun = cli.in_process("crawl", "--db", db, *FAST)
    assert rerun.returncode == 0, rerun.stderr
    assert "already finished" in flat(rerun.stdout)
    assert site.count("/") == 2


def test_recrawl_older_than_skips_fresh_pages(site: Site, cli: Any, db: Path) -> None:
    site.routes.update({"/": html("Home", "/a"), "/a": html("A")})
    assert cli.in_process("crawl", site.url("/"), "--db", db, *FAST).returncode == 0
    before = site.counts()
    again = cli.in_process("crawl", "--db", db, "--recrawl", "--older-than", "1h", *FAST)
    assert again.returncode == 0, again.stderr
    assert site.counts() == before
    assert len(cli.export(db)) == 2
