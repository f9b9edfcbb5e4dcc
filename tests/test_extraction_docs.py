"""Extraction on a real site: Debian's copy of the Python documentation (python3.11-doc) served by
nginx on loopback, crawled with a rules file of five fields, gives on every page the values a second
parser (parsel, over lxml) reads with the same selectors from the same file on disk, in the three
parse modes and with two worker processes. Skipped, with the reason, where nginx or the docs are
missing (``.ci/run`` installs both)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from nginx_server import PYTHON_DOCS, serve, skip_reason
from parsel import Selector

from crawler.urls import canonicalize

RULES = r"""
[[page]]
name = "docs"
[page.fields]
heading  = "h1"
next     = { css = "link[rel=next]", attr = "href", type = "url" }
blocks   = { css = "div.highlight pre", many = true }
version  = { css = "title", regex = 'Python (\d+\.\d+)', type = "float" }
sections = { css = "section > h2", many = true }
"""
VERSION = re.compile(r"Python (\d+\.\d+)")
PAGES = 60   # per crawl: the four crawls of the library reference take well under a minute

pytestmark = pytest.mark.skipif(skip_reason(PYTHON_DOCS) is not None, reason=skip_reason(PYTHON_DOCS) or "")


def _text(node: Selector) -> str:
    """A match's text as the rules take it: every text below it, whitespace runs collapsed."""
    return " ".join("".join(node.xpath(".//text()").getall()).split())


def _values(page: Selector, css: str, take: Any, many: bool) -> Any:
    """The first match that gives a value (without ``many``, None if none does), or all of them."""
    found = [v for v in (take(node) for node in page.css(css)) if v]
    return found if many else (found[0] if found else None)


def read_independently(url: str, html: str) -> dict[str, Any]:
    """The five fields of the page at ``url``, read with parsel and the standard library only."""
    page = Selector(text=html)
    base = page.css("base::attr(href)").get()
    base_url = urljoin(url, base.strip()) if base else url

    def version(node: Selector) -> float | None:
        hit = VERSION.search(_text(node))
        return float(hit.group(1)) if hit else None

    href = _values(page, "link[rel=next]", lambda n: (n.attrib.get("href") or "").strip(), many=False)
    return {"heading": _values(page, "h1", _text, many=False),
            "next": None if href is None else canonicalize(urljoin(base_url, href)),
            "blocks": _values(page, "div.highlight pre", _text, many=True),
            "version": _values(page, "title", version, many=False),
            "sections": _values(page, "section > h2", _text, many=True)}


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve(PYTHON_DOCS, tmp_path_factory.mktemp("nginx")) as base:
        yield base


@pytest.mark.parametrize("mode", [("--parse-mode", "async"), ("--parse-mode", "thread"),
                                  ("--parse-mode", "process", "--parse-workers", "2"), ("--workers", "2")],
                         ids=["async", "thread", "process", "two-workers"])
def test_every_page_gets_what_a_second_parser_reads_with_the_same_selectors(cli: Any, tmp_path: Path, docs: str,
                                                                           mode: tuple[str, ...]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    run = cli if "--workers" in mode else cli.in_process   # worker processes are forked: not in pytest's process
    done = run("crawl", docs + "library/index.html", "--db", tmp_path / "job.db", "--include", "/library/",
               "--max-pages", PAGES, "--no-robots", "--quiet", "--extract", rules, *mode)
    assert done.returncode == 0, done.stderr
    export = cli.in_process("export", "--db", tmp_path / "job.db", "--fields", "url,final_url,status,content_type,data")
    assert export.returncode == 0, export.stderr
    records = [json.loads(line) for line in export.stdout.splitlines()]
    html_pages = [r for r in records if r["status"] == 200 and r["content_type"] == "text/html"]
    assert len(html_pages) >= PAGES - 5   # nearly every fetch is a page of the library reference
    assert [r["url"] for r in records if r["data"] is not None] == [r["url"] for r in html_pages]
    lists = 0
    for record in html_pages:
        final = record["final_url"] or record["url"]
        path = urlsplit(final).path.removeprefix("/")
        html = (PYTHON_DOCS / (path + "index.html" if path.endswith("/") or not path else path)).read_text(encoding="utf-8")
        assert record["data"] == read_independently(final, html), final
        lists += bool(record["data"]["blocks"]) and bool(record["data"]["sections"])
    # the comparison saw every kind of value: lists with items, numbers, resolved links
    assert lists > PAGES / 2
    assert {r["data"]["version"] for r in html_pages} == {3.11}
    assert sum(r["data"]["next"] is not None for r in html_pages) > PAGES / 2
