"""Structured data (crawler.extraction.structured): JSON-LD, OpenGraph and Twitter meta, microdata;
what a hostile page costs; and the records of a real crawl carrying it in every parse mode."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser
from site_server import Site, html, reply

from crawler.config import Settings
from crawler.extraction import structured as module
from crawler.extraction.structured import structured
from crawler.models import Extracted, PageRecord
from crawler.parse_stage import ParseOptions, analyze
from crawler.scope import Scope
from crawler.storage.pages import PageStore

PAGE = "https://shop.test/kettles/blue"


def read(page: str, *, microdata: bool = True) -> Extracted:
    return structured(LexborHTMLParser(page), PAGE, microdata=microdata)


def ld(value: str) -> str:
    return f'<script type="application/ld+json">{value}</script>'


GRAPH = {"@context": "https://schema.org", "@graph": [{"@type": "WebSite", "name": "Shop"},
                                                      {"@type": "BreadcrumbList", "itemListElement": []}]}
PRODUCT = {"@context": "https://schema.org", "@type": "Product", "name": "Blue kettle",
           "offers": {"@type": "Offer", "price": "19.99", "priceCurrency": "EUR"}}


# -- JSON-LD ---------------------------------------------------------------------------------------


def test_every_json_ld_block_is_read_in_document_order_and_a_graph_is_kept_as_it_is() -> None:
    found = read(f"<html><head>{ld(json.dumps(GRAPH))}</head><body><p>x</p>{ld(json.dumps(PRODUCT))}</body></html>")
    assert found.jsonld == (GRAPH, PRODUCT)
    assert found.jsonld_error is None


def test_a_block_holding_a_list_contributes_its_items() -> None:
    found = read(ld(json.dumps([PRODUCT, GRAPH])) + ld(json.dumps({"@type": "Person"})))
    assert found.jsonld == (PRODUCT, GRAPH, {"@type": "Person"})


def test_a_broken_block_is_named_and_the_good_one_next_to_it_still_counts() -> None:
    broken = '{\n  "@type": "Product",\n  "name": "Blue kettle"\n  "sku": "K1"\n}'
    found = read(ld(json.dumps(PRODUCT)) + ld(broken))
    assert found.jsonld == (PRODUCT,)
    assert found.jsonld_error == "block 2: Expecting ',' delimiter: line 4 column 3"


def test_every_broken_block_is_counted_after_the_first() -> None:
    found = read(ld("{") + ld(json.dumps(PRODUCT)) + ld("[1,]") + ld('{"price": NaN}'))
    assert found.jsonld == (PRODUCT,)
    assert found.jsonld_error == "block 1: Expecting property name enclosed in double quotes: line 1 column 2 (and 2 more)"


def test_json_ld_wrapped_in_a_comment_or_cdata_and_with_raw_newlines_in_strings_is_read() -> None:
    found = read(ld('<!-- {"@type": "Thing"} -->') + ld('//<![CDATA[\n{"@type": "Event"}\n//]]>')
                 + ld('{"description": "two\nlines"}'))
    assert found.jsonld == ({"@type": "Thing"}, {"@type": "Event"}, {"description": "two\nlines"})
    assert found.jsonld_error is None


def test_the_script_type_is_matched_whatever_its_case_and_other_scripts_are_not_json_ld() -> None:
    found = read('<script type="Application/LD+JSON">{"a": 1}</script><script>var x = {"b": 2}</script>'
                 '<script type="application/json">{"c": 3}</script>')
    assert found.jsonld == ({"a": 1},)


def test_a_page_without_structured_data_has_none_of_it() -> None:
    assert read("<html><head><title>t</title><meta name=description content=d></head><body>x</body></html>") \
        == Extracted()


# -- OpenGraph and Twitter -------------------------------------------------------------------------


def test_opengraph_and_twitter_meta_are_one_dict_by_property_name() -> None:
    head = """
        <meta property="og:title" content="  Blue   kettle ">
        <meta property="og:title" content="A second title">
        <meta property="og:type" content="product">
        <meta property="og:image" content="https://shop.test/a.png">
        <meta property="og:image:width" content="800">
        <meta property="og:image" content="https://shop.test/b.png">
        <meta property="og:image:width" content="600">
        <meta property="article:tag" content="kettles">
        <meta property="product:price:amount" content="19.99">
        <meta name="twitter:card" content="summary_large_image">
        <meta property="twitter:site" content="@shop">
        <meta name="OG:Description" content="named, not propertied, and upper-case">
        <meta name="description" content="not OpenGraph">
        <meta property="og:locale" content="">
    """
    assert read(f"<html><head>{head}</head></html>").opengraph == {
        "og:title": "Blue kettle",                  # the first value wins
        "og:type": "product",
        "og:image": ["https://shop.test/a.png", "https://shop.test/b.png"],   # ogp.me's arrays: always lists
        "og:image:width": ["800", "600"],
        "article:tag": ["kettles"],
        "product:price:amount": "19.99",
        "twitter:card": "summary_large_image",
        "twitter:site": "@shop",
        "og:description": "named, not propertied, and upper-case",
    }


def test_meta_values_and_their_number_are_capped() -> None:
    head = "".join(f'<meta property="og:x{n}" content="v">' for n in range(module.MAX_META + 50))
    head += f'<meta property="og:title" content="{"t" * 10_000}">'
    head += "".join(f'<meta property="article:tag" content="t{n}">' for n in range(module.MAX_LIST + 50))
    found = read(head).opengraph
    assert found is not None
    assert len(found) == module.MAX_META
    assert "og:title" not in found
    assert "article:tag" not in found


# -- microdata -------------------------------------------------------------------------------------

MICRODATA = """<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">Blue kettle</h1>
<a itemprop="url" href="/kettles/blue">link</a>
<div itemprop="offers" itemscope itemtype="https://schema.org/Offer"><meta itemprop="price" content="19.99">
<meta itemprop="priceCurrency" content="EUR"></div></div>"""
MICRODATA_ITEM = {"type": "https://schema.org/Product", "properties": {
    "name": "Blue kettle", "url": "https://shop.test/kettles/blue",
    "offers": {"type": "https://schema.org/Offer", "properties": {"price": "19.99", "priceCurrency": "EUR"}}}}


def test_microdata_items_are_read_through_extruct_with_urls_resolved() -> None:
    assert read(f"<body>{MICRODATA}</body>").microdata == (MICRODATA_ITEM,)


def test_microdata_is_not_read_when_it_is_off_or_the_page_has_too_many_items() -> None:
    assert read(f"<body>{MICRODATA}</body>", microdata=False).microdata is None
    many = "<div itemscope><span itemprop=n>x</span></div>" * (module.MAX_ITEMSCOPES + 1)
    assert read(f"<body>{many}</body>").microdata is None


def test_microdata_on_without_extruct_installed_is_one_line_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "extruct" else object())
    assert Settings(microdata=True).problem() == (
        "microdata", "microdata needs extruct, which is not installed: pip install 'crawler[microdata]'")
    assert Settings(microdata=True, structured_data=False).problem() is None   # microdata is part of structured data


# -- hostile pages ---------------------------------------------------------------------------------


def bounded(page: str, seconds: float = 2.0) -> Extracted:
    start = time.perf_counter()
    found = read(page)
    assert time.perf_counter() - start < seconds
    return found


def test_a_5_mb_json_ld_block_is_skipped_and_named_without_being_parsed() -> None:
    huge = json.dumps({"@type": "Thing", "description": "x" * 5_000_000})
    found = bounded(ld(huge) + ld(json.dumps(PRODUCT)))
    assert found.jsonld == (PRODUCT,)
    assert found.jsonld_error == f"block 1: {len(huge):,} characters, more than the 1,000,000 read in one block"


def test_json_ld_past_the_page_budget_is_skipped() -> None:
    block = ld(json.dumps({"d": "x" * (module.MAX_BLOCK_CHARS - 100)}))
    found = bounded(block * 3)
    assert found.jsonld is not None
    assert len(found.jsonld) == 2
    assert found.jsonld_error == "block 3: past the 2,000,000 characters of JSON-LD read on one page"


def test_ten_thousand_script_blocks_are_read_up_to_the_cap_in_bounded_time() -> None:
    found = bounded(ld('{"@type": "Thing"}') * 10_000)
    assert found.jsonld == ({"@type": "Thing"},) * module.MAX_BLOCKS
    assert found.jsonld_error == "blocks 101 to 10000: not read (at most 100 a page)"


@pytest.mark.parametrize("depth", [module.MAX_DEPTH + 1, 900, 100_000])
def test_deeply_nested_json_is_refused_without_a_crash(depth: int) -> None:
    found = bounded(ld("[" * depth + "]" * depth) + ld('{"ok": true}'))
    assert found.jsonld == ({"ok": True},)
    assert found.jsonld_error is not None
    assert found.jsonld_error.startswith("block 1: ")


def test_json_as_deep_as_the_cap_is_kept() -> None:
    value = "[" * (module.MAX_DEPTH - 1) + "{}" + "]" * (module.MAX_DEPTH - 1)
    assert read(ld(value)).jsonld_error is None


def test_an_integer_of_ten_thousand_digits_is_an_invalid_block_not_a_crash() -> None:
    found = bounded(ld('{"n": ' + "9" * 10_000 + "}"))
    assert found.jsonld == ()                  # the page has JSON-LD, none of which parsed
    assert found.jsonld_error is not None
    assert "block 1" in found.jsonld_error


def test_deeply_nested_microdata_is_no_crash() -> None:
    nested = '<div itemscope itemprop="p">' * 900 + "x" + "</div>" * 900
    bounded(f"<div itemscope>{nested}</div>", seconds=10.0)


# -- the parse stage and a real crawl --------------------------------------------------------------

SHOP_PAGE = f"""<!doctype html><html lang="en-GB"><head><title>Blue kettle</title>
<meta property="og:title" content="Blue kettle"><meta name="twitter:card" content="summary">
{ld(json.dumps(GRAPH))}{ld("{broken")}</head>
<body><nav>Home Kettles</nav><h1>The <em>blue</em> kettle</h1><p>Boils water fast.</p>{ld(json.dumps(PRODUCT))}
<a href="/">home</a></body></html>"""
SHOP_EXTRACTED = Extracted(jsonld=(GRAPH, PRODUCT), jsonld_error="block 2: Expecting property name enclosed in "
                           "double quotes: line 1 column 2", opengraph={"og:title": "Blue kettle", "twitter:card": "summary"})


def test_the_parse_stage_reads_structured_data_on_the_parsers_tree_unless_it_is_off() -> None:
    headers = {"content-type": "text/html"}
    options = ParseOptions(Scope.build([PAGE]))
    found = analyze(PAGE, headers, SHOP_PAGE.encode(), 0, True, options)
    assert found.extracted == SHOP_EXTRACTED
    assert found.page is not None
    assert (found.page.h1, found.page.lang, found.page.word_count) == \
        ("The blue kettle", "en-gb", 7)
    off = analyze(PAGE, headers, SHOP_PAGE.encode(), 0, True, ParseOptions(Scope.build([PAGE]), structured_data=False))
    assert off.extracted is None
    assert off.page == found.page


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[PageRecord]:
    """Every PageRecord the crawl's writer stores."""
    records: list[PageRecord] = []
    store = PageStore.store

    async def spy(self: PageStore, batch: Any) -> None:
        records.extend(batch)
        await store(self, batch)
    monkeypatch.setattr(PageStore, "store", spy)
    return records


@pytest.mark.parametrize("how", [("--parse-mode", "async"), ("--parse-mode", "thread"), ("--parse-mode", "process"),
                                 ("--workers", "2")])
def test_a_crawl_gives_every_page_its_structured_data_and_built_in_fields_in_every_mode(
        site: Site, cli: Any, tmp_path: Path, written: list[PageRecord], how: tuple[str, str]) -> None:
    site.routes.update({"/": html("Home", "/kettle", extra="<h1>Welcome</h1>"),
                        "/kettle": reply(200, SHOP_PAGE, "text/html; charset=utf-8", Content_Language="fr")})
    workers = () if how[0] == "--workers" else ("--workers", "1")
    done = cli.in_process("crawl", site.url("/"), "--db", tmp_path / "job.db", *how, *workers)
    assert done.returncode == 0, done.stderr
    by_path = {r.final_url.removeprefix(site.origin): r for r in written if r.final_url}
    kettle, home = by_path["/kettle"], by_path["/"]
    assert kettle.extracted == SHOP_EXTRACTED
    assert (kettle.h1, kettle.lang, kettle.word_count) == ("The blue kettle", "en-gb", 7)
    assert home.extracted is None   # nothing declared, no rules: nothing extracted
    assert (home.h1, home.lang, home.word_count) == ("Welcome", None, 2)


def test_no_structured_data_leaves_the_built_in_fields(site: Site, cli: Any, tmp_path: Path,
                                                        written: list[PageRecord]) -> None:
    site.routes.update({"/": reply(200, SHOP_PAGE, "text/html; charset=utf-8")})
    done = cli.in_process("crawl", site.url("/"), "--db", tmp_path / "job.db", "--workers", "1", "--no-structured-data")
    assert done.returncode == 0, done.stderr
    [page] = written
    assert page.extracted is None
    assert (page.h1, page.word_count) == ("The blue kettle", 7)
