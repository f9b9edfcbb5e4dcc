"""Extraction in a crawl: ``--extract`` and ``--plugin`` give each stored page the same ``Extracted`` in
every parse mode, a plugin that raises fails its page only, and a plugin that cannot be loaded
stops the crawl before it starts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from site_server import Site, html, reply

from crawler.models import Extracted, PageRecord
from crawler.storage.pages import PageStore

RULES = r"""
[[page]]
name = "product"
match = "/p/"
[page.fields]
heading = "h1"
price   = { css = ".price", regex = '([\d.]+)', type = "float", required = true }
tags    = { css = "a.tag", many = true }
next    = { css = "a[rel=next]", attr = "href", type = "url" }
sku     = { css = ".sku", type = "int" }

[[page]]
name = "home"
match = "/$"
[page.fields]
title = "title"
"""


def product(n: int, price: str) -> str:
    return (f"<html><head><title>Product {n}</title></head><body><h1>Item {n}</h1>"
            f"<span class=price>{price}</span><span class=sku>x{n}</span>"
            f'<a class=tag href="/t/a">a</a><a class=tag href="/t/b">b</a><a rel=next href="/p/{n + 1}">next</a>'
            "</body></html>")


@pytest.fixture
def shop() -> Any:
    with Site({"/": html("Shop", "/p/1", "/p/boom", "/about"),
               "/p/1": reply(200, product(1, "EUR 9.50"), "text/html"),
               "/p/2": reply(200, product(2, "no price"), "text/html"),
               "/p/boom": reply(200, product(7, "1.00"), "text/html"),
               "/about": html("About"),
               "/t/a": reply(200, "not html", "text/plain")}) as site:
        yield site


def crawled(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site: Site,
            *args: object) -> dict[str, PageRecord]:
    """Crawl ``site`` in this process with ``args``; the records the writer stored, by final URL."""
    records: list[PageRecord] = []
    original = PageStore.store

    async def keep(self: PageStore, batch: Sequence[PageRecord]) -> None:
        records.extend(batch)
        await original(self, batch)

    monkeypatch.setattr(PageStore, "store", keep)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    done = cli.in_process("crawl", site.url("/"), "--db", tmp_path / "job.db", "--no-robots", "--workers", 1,
                          "--max-depth", 2, "--extract", rules, *args)
    assert done.returncode == 0, done.stderr
    return {r.final_url or "": r for r in records}


@pytest.mark.parametrize("mode", ["async", "thread", "process"])
def test_every_parse_mode_stores_the_same_extracted_fields(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           shop: Site, mode: str) -> None:
    records = crawled(cli, tmp_path, monkeypatch, shop, "--parse-mode", mode, "--parse-workers", 2)
    got = {url.removeprefix(shop.origin): r.extracted for url, r in records.items()}
    assert got == {
        "/": Extracted("home", {"title": "Shop"}),
        "/p/1": Extracted("product", {"heading": "Item 1", "price": 9.5, "tags": ["a", "b"],
                                      "next": shop.url("/p/2"), "sku": None}, bad_type=("sku",)),
        "/p/2": Extracted("product", {"heading": "Item 2", "price": None, "tags": ["a", "b"],
                                      "next": shop.url("/p/3"), "sku": None}, empty=("price",), bad_type=("sku",),
                          error="extract_missing", error_message="required field with no value: price"),
        "/p/boom": Extracted("product", {"heading": "Item 7", "price": 1.0, "tags": ["a", "b"],
                                         "next": shop.url("/p/8"), "sku": None}, bad_type=("sku",)),
        "/about": None,        # no page type applies
        "/t/a": None, "/t/b": None, "/p/8": None,   # not HTML, or not found: not parsed
    }
    # a required field that matched nothing is the page's extraction error, not a failed fetch
    assert (records[shop.url("/p/2")].status, records[shop.url("/p/2")].error) == (200, None)


@pytest.mark.parametrize("mode", ["async", "process"])
def test_a_plugin_that_raises_on_one_page_leaves_every_other_pages_data_intact(
        cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shop: Site, mode: str) -> None:
    records = crawled(cli, tmp_path, monkeypatch, shop, "--parse-mode", mode, "--plugin", "extraction_plugin:sizes")
    boom = records[shop.url("/p/boom")]
    assert boom.extracted is not None
    assert (boom.extracted.error, boom.extracted.error_message) == ("extract_failed", "ValueError: no price on this page")
    assert boom.extracted.data["price"] == 1.0   # what the rules gave is kept
    assert (boom.status, boom.error) == (200, None)
    one = records[shop.url("/p/1")].extracted
    assert one is not None
    assert one.error is None
    body = product(1, "EUR 9.50")
    assert one.data == {"heading": "from the plugin", "price": 9.5, "tags": ["a", "b"], "next": shop.url("/p/2"),
                        "sku": None, "links": 3, "status": 200, "type": "text/html", "chars": len(body)}
    about = records[shop.url("/about")].extracted   # no page type: the plugin's data alone
    assert about is not None
    assert (about.page_type, about.data["heading"], about.data["links"]) == (None, "from the plugin", 0)


def test_a_plugin_that_returns_no_dict_fails_each_page_it_is_called_on(cli: Any, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     shop: Site) -> None:
    records = crawled(cli, tmp_path, monkeypatch, shop, "--plugin", "extraction_plugin:not_a_dict")
    home = records[shop.url("/")].extracted
    assert home is not None
    assert (home.error, home.error_message) == ("extract_failed", "TypeError: the plugin returned list, not a dict")
    assert home.data == {"title": "Shop"}


@pytest.mark.parametrize(("plugin", "words"), [
    ("no_such_module_here:run", "cannot import no_such_module_here: ModuleNotFoundError"),
    ("extraction_plugin:missing", "module extraction_plugin has no missing"),
    ("extraction_plugin:NOT_CALLABLE", "NOT_CALLABLE is not callable"),
    ("extraction_plugin", "give it as module:function"),
])
def test_a_plugin_that_cannot_be_loaded_is_one_line_and_exit_2_before_any_request(
        cli: Any, tmp_path: Path, shop: Site, plugin: str, words: str) -> None:
    line = cli.fails(2, "crawl", shop.url("/"), "--db", tmp_path / "job.db", "--plugin", plugin)
    assert line.startswith(f"crawler: error: --plugin {plugin!r}: ")
    assert words in line
    assert shop.count("/") == 0
    assert not (tmp_path / "job.db").exists()


def test_a_resumed_job_applies_the_rules_it_remembers(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     shop: Site) -> None:
    crawled(cli, tmp_path, monkeypatch, shop, "--max-pages", 1)
    records: list[PageRecord] = []
    original = PageStore.store

    async def keep(self: PageStore, batch: Sequence[PageRecord]) -> None:
        records.extend(batch)
        await original(self, batch)

    monkeypatch.setattr(PageStore, "store", keep)
    done = cli.in_process("crawl", "--db", tmp_path / "job.db", "--max-pages", 0)   # no --extract: resumed
    assert done.returncode == 0, done.stderr
    by_url = {r.final_url: r.extracted for r in records}
    assert shop.url("/") not in by_url   # stored by the first run
    one = by_url[shop.url("/p/1")]
    assert one is not None
    assert (one.page_type, one.data["heading"], one.data["price"]) == ("product", "Item 1", 9.5)


LOGGING_PLUGIN = '''
import json, os

def logged(page):
    """Each page's URL, the process that extracted it and what it saw, one JSON line a page."""
    h1 = page.tree.css_first("h1")
    with open(os.environ["EXTRACTION_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"url": page.url, "pid": os.getpid(), "h1": h1 and h1.text()}) + "\\n")
    return {"pid": os.getpid()}
'''


def test_with_worker_processes_each_worker_imports_the_plugin_from_the_crawls_directory(
        cli: Any, tmp_path: Path, shop: Site) -> None:
    (tmp_path / "shop_plugin.py").write_text(LOGGING_PLUGIN, encoding="utf-8")
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    log = tmp_path / "seen.jsonl"
    proc = cli.popen("crawl", shop.url("/"), "--db", tmp_path / "job.db", "--no-robots", "--workers", 2,
                     "--max-depth", 2, "--extract", "rules.toml", "--plugin", "shop_plugin:logged",
                     env={"EXTRACTION_LOG": str(log)})
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        cli.stop(proc)
    assert proc.returncode == 0, err
    seen = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert sorted(s["url"].removeprefix(shop.origin) for s in seen) == ["/", "/about", "/p/1", "/p/2", "/p/boom"]
    assert {s["h1"] for s in seen if "/p/" in s["url"]} == {"Item 1", "Item 2", "Item 7"}
    assert proc.pid not in {s["pid"] for s in seen}   # the workers extracted, not the coordinator
