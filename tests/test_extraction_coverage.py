"""Coverage is never silent: the crawl's summary, ``crawler stats`` (text and JSON), the report and
``crawler explain`` say, for each page type and field, on how many pages it matched, matched nothing
or failed its type, and count the pages extract_missing; a field that matched nothing on any page
is named in one line. A job without extraction says nothing of it."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from site_server import Site, html, reply

RULES = r"""
[[page]]
name = "product"
match = "/p/"
[page.fields]
heading = "h1"
price   = { css = ".price", regex = '([\d.]+)', type = "float", required = true }
stock   = { css = ".stock", type = "int" }
sku     = ".sku"
"""
UNMATCHED = 'crawler: field "sku" of page type "product" matched nothing on 3 pages: check its selector'


def product(n: int, price: str, stock: str) -> str:
    return f"<html><body><h1>Item {n}</h1>{price}<span class=stock>{stock}</span></body></html>"


@pytest.fixture
def shop() -> Any:
    with Site({"/": html("Shop", "/p/1", "/p/2", "/p/3"),
               "/p/1": reply(200, product(1, "<span class=price>EUR 9.50</span>", "3"), "text/html"),
               "/p/2": reply(200, product(2, "", "many"), "text/html"),          # no price: required, missing
               "/p/3": reply(200, product(3, "<span class=price>2</span>", "none"), "text/html")}) as site:
        yield site


def crawl(cli: Any, tmp_path: Path, site: Site, *args: object) -> Any:
    done = cli.in_process("crawl", site.url("/"), "--db", tmp_path / "job.db", "--no-robots", "--workers", 1, *args)
    assert done.returncode == 0, done.stderr
    return done


def crawl_with_rules(cli: Any, tmp_path: Path, site: Site) -> Any:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    return crawl(cli, tmp_path, site, "--extract", rules)


def table(text: str) -> dict[str, list[str]]:
    """The coverage table's rows in ``text``: field -> [matched, empty, bad type]."""
    return {m[1]: [m[2], m[3], m[4]] for m in re.finditer(r"^ {15}(\w+) +(\d+) +(\d+) +(\d+)$", text, re.M)}


EXPECTED = {"heading": ["3", "0", "0"], "price": ["2", "1", "0"], "stock": ["1", "0", "2"], "sku": ["0", "3", "0"]}


def test_the_crawl_summary_counts_each_field_and_names_the_one_that_matched_nothing(
        cli: Any, tmp_path: Path, shop: Site) -> None:
    done = crawl_with_rules(cli, tmp_path, shop)
    assert 'extraction   page type "product": 3 pages (1 extract_missing)' in done.stdout
    assert table(done.stdout) == EXPECTED
    assert [line for line in done.stderr.splitlines() if "field" in line] == [UNMATCHED]


def test_stats_counts_each_field_in_text_and_json(cli: Any, tmp_path: Path, shop: Site) -> None:
    crawl_with_rules(cli, tmp_path, shop)
    text = cli.in_process("stats", "--db", tmp_path / "job.db")
    assert 'extraction   page type "product": 3 pages (1 extract_missing)' in text.stdout
    assert table(text.stdout) == EXPECTED
    assert "extract_missing: 1" in text.stdout   # with the job's other errors too
    assert UNMATCHED in text.stderr
    found = json.loads(cli.in_process("stats", "--db", tmp_path / "job.db", "--json").stdout)["extraction"]
    assert found == [{"page_type": "product", "pages": 3, "extract_missing": 1, "extract_failed": 0, "fields": {
        "heading": {"pages": 3, "matched": 3, "empty": 0, "bad_type": 0},
        "price": {"pages": 3, "matched": 2, "empty": 1, "bad_type": 0},
        "stock": {"pages": 3, "matched": 1, "empty": 0, "bad_type": 2},
        "sku": {"pages": 3, "matched": 0, "empty": 3, "bad_type": 0}}}]


def test_the_report_has_a_section_of_coverage(cli: Any, tmp_path: Path, shop: Site) -> None:
    crawl_with_rules(cli, tmp_path, shop)
    assert cli.in_process("report", "--db", tmp_path / "job.db", "--out", tmp_path / "r.html").returncode == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = re.search(r'<section id="extraction">(.*?)</section>', page, re.S)
    assert section is not None
    body = section.group(1)
    assert "Page type product: 3 pages (1 extract_missing)" in unescape(body)
    rows = {cells[0]: cells[1:4] for cells in (re.findall(r"<td[^>]*>(.*?)</td>", row)
                                               for row in re.findall(r"<tr>(.*?)</tr>", body)) if cells}
    assert rows == EXPECTED
    assert UNMATCHED.removeprefix("crawler: ") in unescape(body)


def test_a_report_of_two_jobs_counts_each_urls_winning_fetch_once(cli: Any, tmp_path: Path, shop: Site) -> None:
    crawl_with_rules(cli, tmp_path, shop)
    again = cli.in_process("crawl", shop.url("/"), "--db", tmp_path / "again.db", "--no-robots", "--workers", 1,
                           "--extract", tmp_path / "rules.toml")
    assert again.returncode == 0, again.stderr
    assert cli.in_process("report", "--db", tmp_path / "job.db", "--db", tmp_path / "again.db",
                          "--out", tmp_path / "r.html").returncode == 0
    page = unescape((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "Page type product: 3 pages (1 extract_missing)" in page


def test_explain_shows_a_pages_type_its_empty_fields_and_its_extraction_error(cli: Any, tmp_path: Path,
                                                                               shop: Site) -> None:
    crawl_with_rules(cli, tmp_path, shop)
    two = cli.in_process("explain", shop.url("/p/2"), "--db", tmp_path / "job.db")
    assert "extract  page type product; empty: price, sku" in two.stdout
    assert "status 200" in two.stdout
    assert "extract_missing: a field marked required" in two.stdout
    three = json.loads(cli.in_process("explain", shop.url("/p/3"), "--db", tmp_path / "job.db", "--json").stdout)
    assert three["extraction"] == {"page_type": "product", "empty": ["sku"], "bad_type": ["stock"]}
    assert three["page"]["error"] is None


def test_a_job_without_extraction_says_nothing_of_it(cli: Any, tmp_path: Path, shop: Site) -> None:
    done = crawl(cli, tmp_path, shop)
    assert "page type" not in done.stdout
    assert "field" not in done.stderr
    stats = cli.in_process("stats", "--db", tmp_path / "job.db")
    assert "page type" not in stats.stdout
    assert not stats.stderr
    assert "extraction" not in json.loads(cli.in_process("stats", "--db", tmp_path / "job.db", "--json").stdout)
    explained = cli.in_process("explain", shop.url("/p/2"), "--db", tmp_path / "job.db")
    assert "extract " not in explained.stdout
    assert "page type" not in explained.stdout
    assert cli.in_process("report", "--db", tmp_path / "job.db", "--out", tmp_path / "r.html").returncode == 0
    assert "No extraction: crawl with --extract" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_rules_whose_page_types_apply_to_no_page_are_named_in_the_summary(cli: Any, tmp_path: Path,
                                                                         shop: Site) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[page]]\nmatch = "/products/"\n[page.fields]\ntitle = "title"\n', encoding="utf-8")
    done = crawl(cli, tmp_path, shop, "--extract", rules)
    assert f"crawler: no page type of {rules} applied to any of 4 HTML pages: check their match regexes" \
        in done.stderr.splitlines()
