"""``crawler extract``: rules tried on one page, from a file (no request) or fetched from a URL
through the crawler's own fetcher, printed as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from site_server import Site, redirect, reply

RULES = r"""
[[page]]
name = "doc"
match = "/doc/"
[page.fields]
heading = "h1"
version = { css = "title", regex = '(\d+\.\d+)', type = "float" }
up      = { css = "a[rel=up]", attr = "href", type = "url" }
blocks  = { css = "pre", many = true }
author  = { css = ".author", required = true }
"""
PAGE = ("<html><head><meta charset=utf-8><title>Python 3.11 docs</title></head><body><h1>Wörk  flow</h1>"
        '<a rel=up href="../index.html">up</a><pre>a = 1</pre><pre>b = 2</pre></body></html>')
EXPECTED_DATA = {"heading": "Wörk flow", "version": 3.11, "up": None, "blocks": ["a = 1", "b = 2"], "author": None}


def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    return path


def test_extract_html_prints_the_pages_record_as_json_without_a_request(cli: Any, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(PAGE.encode())
    done = cli.in_process("extract", "--html", page, "--url", "http://docs.test/doc/lib/x.html",
                          "--rules", rules(tmp_path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "url": "http://docs.test/doc/lib/x.html", "status": 200, "content_type": "text/html", "page_type": "doc",
        "data": EXPECTED_DATA | {"up": "http://docs.test/doc/index.html"}, "empty": ["author"], "bad_type": [],
        "error": "extract_missing", "error_message": "required field with no value: author"}


def test_extract_html_on_a_url_no_page_type_matches_prints_no_data(cli: Any, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(PAGE.encode())
    done = cli.in_process("extract", "--html", page, "--url", "http://docs.test/blog/", "--rules", rules(tmp_path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["page_type"] is None
    assert json.loads(done.stdout)["data"] is None


def test_extract_url_fetches_the_page_following_redirects(cli: Any, tmp_path: Path) -> None:
    with Site({"/doc/": redirect("/doc/lib/x.html"), "/doc/lib/x.html": reply(200, PAGE, "text/html")}) as site:
        done = cli.in_process("extract", site.url("/doc/"), "--rules", rules(tmp_path))
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        assert (record["url"], record["status"], record["page_type"]) == (site.url("/doc/lib/x.html"), 200, "doc")
        assert record["data"] == EXPECTED_DATA | {"up": site.url("/doc/index.html")}
        assert site.count("/robots.txt") == 0


def test_extract_url_of_a_missing_page_says_its_status_and_has_no_data(cli: Any, tmp_path: Path) -> None:
    with Site({}) as site:
        done = cli.in_process("extract", site.url("/doc/gone"), "--rules", rules(tmp_path))
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (record["status"], record["data"], record["error"]) == (404, None, "http_error")


def test_extract_url_that_cannot_be_reached_is_one_line_and_exit_1(cli: Any, tmp_path: Path) -> None:
    with Site({}) as site:
        url = site.url("/doc/")
    line = cli.fails(1, "extract", url, "--rules", rules(tmp_path), "--timeout", 5)
    assert line.startswith("crawler: failed: connect: ")


def test_extract_needs_a_page_and_rules(cli: Any, tmp_path: Path) -> None:
    assert "needs --rules FILE" in cli.fails(2, "extract", "http://docs.test/")
    assert "give the page" in cli.fails(2, "extract", "--rules", rules(tmp_path))
    assert "needs --url URL" in cli.fails(2, "extract", "--html", tmp_path / "p.html", "--rules", rules(tmp_path))
    assert "cannot read --html" in cli.fails(2, "extract", "--html", tmp_path / "p.html", "--url", "http://docs.test/",
                                             "--rules", rules(tmp_path))
    assert "not an absolute http or https URL" in cli.fails(2, "extract", "ftp://docs.test/", "--rules",
                                                            rules(tmp_path))


def test_extract_db_takes_no_page_of_its_own(cli: Any, tmp_path: Path) -> None:
    assert "give no URL, --html or --url" in cli.fails(2, "extract", "http://docs.test/", "--db", tmp_path / "job.db",
                                                       "--rules", rules(tmp_path))
    assert "--workers 'none'" in cli.fails(2, "extract", "--db", tmp_path / "job.db", "--workers", "none",
                                           "--rules", rules(tmp_path))


def test_extract_url_keeps_the_ssrf_guard_for_a_redirect_to_another_private_host(cli: Any, tmp_path: Path) -> None:
    with Site({}) as site:
        port = site.origin.rpartition(":")[2]
        site.routes["/doc/"] = redirect(f"http://localhost:{port}/doc/lib/x.html")
        site.routes["/doc/lib/x.html"] = reply(200, PAGE, "text/html")
        line = cli.fails(1, "extract", site.url("/doc/"), "--rules", rules(tmp_path))
        assert line.startswith("crawler: failed: blocked_address: http://localhost:")
        assert site.count("/doc/lib/x.html") == 0
