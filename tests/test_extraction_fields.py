"""One page's fields: every key and type of a field on small pages, the page type that applies,
what is empty, what fails its type, required fields and defaults."""

from __future__ import annotations

from typing import Any

from selectolax.lexbor import LexborHTMLParser

from crawler.extraction.fields import extract
from crawler.extraction.rules import parse_rules
from crawler.models import Extracted

PAGE = """<!doctype html><html><head><title>Python 3.11.7 documentation</title>
<base href="/docs/3/"></head><body>
<h1>  The   <em>Library</em>
  Reference </h1>
<a class=tag href="a.html">alpha</a> <a class=tag>no href</a> <a class=tag href="../b.html?y=2&amp;x=1#top">beta</a>
<span class=price> 1,234 </span><span class=price>12.50</span><span class=price>n/a</span>
<time datetime="2026-12-03T10:00:00Z">today</time> <time>Tue, 01 Dec 2026 08:30:00 GMT</time>
<input type=checkbox checked data-on="yes" data-off="off" data-what="maybe">
<div class=note><p>one <b>two</b></p></div>
</body></html>"""
URL = "http://docs.test/library/index.html"


def fields_of(fields: str, *, url: str = URL, page: str = PAGE, head: str = "") -> Extracted | None:
    rules = parse_rules(f"[[page]]\n{head}\n[page.fields]\n{fields}\n", "rules.toml")
    return extract(rules, url, LexborHTMLParser(page))


def data_of(fields: str, **kwargs: Any) -> dict[str, Any]:
    found = fields_of(fields, **kwargs)
    assert found is not None
    return found.data


def test_a_selector_alone_gives_the_text_of_its_first_match_with_whitespace_collapsed() -> None:
    assert data_of('heading = "h1"') == {"heading": "The Library Reference"}


def test_attr_takes_html_or_an_attribute_of_the_first_match_that_has_it() -> None:
    assert data_of('note = { css = "div.note", attr = "html" }\nhref = { css = "a.tag[href]", attr = "href" }\n'
                   'first = { css = "a.tag", attr = "href" }') == {
        "note": '<div class="note"><p>one <b>two</b></p></div>', "href": "a.html", "first": "a.html"}


def test_many_gives_every_match_in_document_order() -> None:
    assert data_of('tags = { css = "a.tag", many = true }\nrefs = { css = "a.tag", attr = "href", many = true }') == {
        "tags": ["alpha", "no href", "beta"], "refs": ["a.html", "../b.html?y=2&x=1#top"]}


def test_regex_takes_its_first_group_or_else_the_whole_match() -> None:
    assert data_of(r"""version = { css = "title", regex = '(\d+\.\d+)\.\d+' }
whole = { css = "title", regex = '\d+\.\d+' }
prices = { css = ".price", regex = '[\d.]+', many = true }""") == {
        "version": "3.11", "whole": "3.11", "prices": ["1", "12.50"]}   # "n/a" has no match: left out


def test_regex_on_many_keeps_the_matches_it_finds_in_order() -> None:
    found = fields_of(r"""prices = { css = ".price", regex = '(\d[\d,.]*)', many = true, type = "float" }""")
    assert found is not None
    assert found.data == {"prices": [1234.0, 12.5]}
    assert (found.empty, found.bad_type) == ((), ())


def test_numbers_and_booleans_are_converted_and_what_does_not_convert_is_null_and_named() -> None:
    found = fields_of("""count = { css = ".price", type = "int" }
amounts = { css = ".price", type = "float", many = true }
on = { css = "input", attr = "data-on", type = "bool" }
off = { css = "input", attr = "data-off", type = "bool" }
what = { css = "input", attr = "data-what", type = "bool" }""")
    assert found is not None
    assert found.data == {"count": 1234, "amounts": [1234.0, 12.5, None], "on": True, "off": False, "what": None}
    assert found.bad_type == ("amounts", "what")
    assert found.empty == ()


def test_a_url_is_resolved_against_the_pages_base_and_canonicalized() -> None:
    assert data_of('refs = { css = "a.tag", attr = "href", type = "url", many = true }') == {
        "refs": ["http://docs.test/docs/3/a.html", "http://docs.test/docs/b.html?y=2&x=1"]}
    no_base = PAGE.replace('<base href="/docs/3/">', "")
    assert data_of('ref = { css = "a.tag", attr = "href", type = "url" }', page=no_base) == {
        "ref": "http://docs.test/library/a.html"}


def test_a_datetime_comes_out_as_iso_8601_from_iso_or_http_dates() -> None:
    assert data_of("""stamp = { css = "time", attr = "datetime", type = "datetime" }
dates = { css = "time", type = "datetime", many = true }""") == {
        "stamp": "2026-12-03T10:00:00+00:00", "dates": [None, "2026-12-01T08:30:00+00:00"]}


def test_nothing_matched_is_null_or_an_empty_list_and_named_empty_unless_a_default_is_given() -> None:
    found = fields_of("""author = ".author"
tags = { css = ".tag-missing", many = true }
lang = { css = "html", attr = "lang", default = "en" }
pages = { css = ".pages", type = "int", default = 0 }
labels = { css = ".label", many = true, default = ["none"] }""")
    assert found is not None
    assert found.data == {"author": None, "tags": [], "lang": "en", "pages": 0, "labels": ["none"]}
    assert found.empty == ("author", "tags", "lang", "pages", "labels")
    assert (found.error, found.bad_type) == (None, ())


def test_a_required_field_with_no_value_marks_the_page_extract_missing() -> None:
    found = fields_of('heading = { css = "h1", required = true }\nsku = { css = ".sku", required = true }\n'
                      'size = { css = ".size", required = true, default = "M" }')
    assert found is not None
    assert found.data == {"heading": "The Library Reference", "sku": None, "size": "M"}
    assert found.error == "extract_missing"
    assert found.error_message == "required field with no value: sku"


def test_the_first_page_type_whose_match_is_in_the_url_applies_and_none_gives_no_data() -> None:
    rules = parse_rules("""
[[page]]
name = "library"
match = "/library/"
[page.fields]
heading = "h1"
[[page]]
name = "any docs"
match = "^http://docs\\\\.test/"
[page.fields]
title = "title"
""", "rules.toml")
    tree = LexborHTMLParser(PAGE)
    library = extract(rules, URL, tree)
    other = extract(rules, "http://docs.test/tutorial/", tree)
    assert library is not None
    assert other is not None
    assert (library.page_type, library.data) == ("library", {"heading": "The Library Reference"})
    assert (other.page_type, other.data) == ("any docs", {"title": "Python 3.11.7 documentation"})
    assert extract(rules, "http://elsewhere.test/library/", tree) is not None   # searched, not anchored
    assert extract(rules, "http://elsewhere.test/", tree) is None


def test_a_page_type_without_match_applies_to_every_page_and_is_named_by_its_position() -> None:
    found = fields_of('heading = "h1"', url="http://anywhere.test/")
    assert found is not None
    assert found.page_type == "page 1"
