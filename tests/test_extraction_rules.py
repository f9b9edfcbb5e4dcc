"""Extraction rules files: what a user's mistakes look like (one line naming the file, the page type
and the field, exit 2, before any request or job file), and what a good file reads as."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from crawler.errors import RulesError, UsageError
from crawler.extraction.rules import Field, PageType, Rules, load, parse_rules

SEED = "http://127.0.0.1:9/"   # the discard port: nothing is ever sent there, the rules fail first

# (what is wrong, the [page.fields] lines, the field the message must name, words it must hold)
FIELD_MISTAKES = [
    ("unknown key", 'price = { css = ".price", sel = "x" }', "price", "unknown key 'sel'"),
    ("invalid selector", 'price = "span.price["', "price", "invalid CSS selector"),
    ("parsel's pseudo-element", 'link = "a::attr(href)"', "link", 'attr = "NAME"'),
    ("invalid regex", 'price = { css = ".price", regex = "([0-9]+" }', "price", "invalid regex"),
    ("unknown type", 'price = { css = ".price", type = "number" }', "price", "unknown type 'number'"),
    ("duplicate field", 'price = ".price"\nprice = ".cost"', "price", "given twice"),
    ("duplicate key in a field", 'price = { css = ".price", css = ".cost" }', "price", "duplicate"),
    ("many is no boolean", 'tags = { css = "a.tag", many = "yes" }', "tags", "many must be true or false"),
    ("required is no boolean", 'price = { css = ".price", required = 1 }', "price", "required must be true or false"),
    ("default of another type", 'price = { css = ".price", type = "int", default = "none" }', "price",
     "not of the field's type int"),
    ("default of many is no list", 'tags = { css = "a.tag", many = true, default = "x" }', "tags", "must be a list"),
    ("no css", 'price = { regex = "[0-9]+" }', "price", "no css selector"),
    ("neither selector nor table", "price = 3", "price", "must be a CSS selector or a table"),
    ("bad TOML in a field", "price = span.price", "price", "not valid TOML"),
]


def rules_file(tmp_path: Path, fields: str, *, head: str = 'name = "product"\nmatch = "/p/"') -> Path:
    path = tmp_path / "shop-rules.toml"
    path.write_text(f'[[page]]\nname = "home"\nmatch = "/$"\n[page.fields]\nheading = "h1"\n\n'
                    f"[[page]]\n{head}\n[page.fields]\n{fields}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("fields", "field", "words"), [m[1:] for m in FIELD_MISTAKES],
                         ids=[m[0] for m in FIELD_MISTAKES])
def test_a_mistake_in_a_field_is_one_line_naming_file_page_type_and_field(
        cli: Any, tmp_path: Path, fields: str, field: str, words: str) -> None:
    path = rules_file(tmp_path, fields)
    line = cli.fails(2, "crawl", SEED, "--db", tmp_path / "job.db", "--extract", path)
    assert "shop-rules.toml" in line
    assert "page type 'product'" in line
    assert f"field {field!r}" in line
    assert words in line
    assert not (tmp_path / "job.db").exists()   # checked before the job file, let alone a request


def test_at_least_ten_distinct_mistakes_are_tried() -> None:
    assert len({words for *_, words in FIELD_MISTAKES}) >= 10


@pytest.mark.parametrize(("head", "words"), [
    ('name = "product"\nmatch = "/p/("', "match: invalid regex"),
    ('name = "product"\nmatch = 3', "match: must be a string"),
    ('name = "product"\nmatcher = "/p/"', "unknown key 'matcher'"),
    ('name = "home"', "page type 'home' (page 2): the name is already page 1's"),
    ('name = "product"\nmatch = "/p/"\nmatch = "/q/"', "page type 'product', match: given twice"),
], ids=["bad match regex", "match no string", "unknown page key", "duplicate page type", "match given twice"])
def test_a_mistake_in_a_page_type_names_the_file_and_the_page_type(cli: Any, tmp_path: Path, head: str,
                                                                    words: str) -> None:
    line = cli.fails(2, "crawl", SEED, "--db", tmp_path / "job.db", "--extract",
                     rules_file(tmp_path, 'price = ".price"', head=head))
    assert "shop-rules.toml" in line
    assert words in line


def test_a_page_type_with_no_fields_and_a_default_name_is_named_by_its_position(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"x.toml: page type 'page 2': no fields"):
        parse_rules('[[page]]\n[page.fields]\na = "h1"\n[[page]]\nmatch = "x"\n', "x.toml")


@pytest.mark.parametrize(("text", "words"), [
    ("", "no page types"),
    ('[page]\n[page.fields]\na = "h1"', "page must be an array of tables"),
    ('pages = 1', "unknown key 'pages' at the top level"),
    ("[[page]\n", "not valid TOML"),
])
def test_a_mistake_in_the_file_as_a_whole_names_the_file(text: str, words: str) -> None:
    with pytest.raises(RulesError, match=r"^x\.toml: ") as raised:
        parse_rules(text, "x.toml")
    assert words in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_rules_file_is_one_line_and_exit_2(cli: Any, tmp_path: Path) -> None:
    line = cli.fails(2, "crawl", SEED, "--db", tmp_path / "job.db", "--extract", tmp_path / "nowhere.toml")
    assert line == f"crawler: error: rules file not found: {tmp_path / 'nowhere.toml'}"


def test_the_config_files_extract_key_is_checked_as_the_flag_is(cli: Any, tmp_path: Path) -> None:
    rules = rules_file(tmp_path, 'price = { css = ".price", type = "money" }')
    config = tmp_path / "crawl.toml"
    config.write_text(f'extract = "{rules}"\n', encoding="utf-8")
    line = cli.fails(2, "crawl", SEED, "--db", tmp_path / "job.db", "--config", config)
    assert "page type 'product', field 'price': unknown type 'money'" in line


def test_crawler_extract_checks_its_rules_the_same_way(cli: Any, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<h1>x</h1>", encoding="utf-8")
    line = cli.fails(2, "extract", "--html", page, "--url", "http://shop.test/p/1",
                     "--rules", rules_file(tmp_path, 'tags = { css = "a", many = "yes" }'))
    assert "page type 'product', field 'tags': many must be true or false" in line


def test_a_good_file_reads_as_page_types_in_order_with_their_fields(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("""
[[page]]
match = "/library/"
[page.fields]
heading = "h1"
next    = { css = "a[accesskey=n]", attr = "href", type = "url" }
blocks  = { css = "div.highlight pre", many = true, default = [] }
version = { css = "title", regex = '(\\d+\\.\\d+)', type = "float", required = true, default = 3 }
when    = { css = "time", attr = "datetime", type = "datetime", default = 2026-12-03T10:00:00Z }

[[page]]
name = "other"
[page.fields]
title = "title"
""", encoding="utf-8")
    rules = load(path)
    assert rules == Rules((
        PageType("page 1", "/library/", (
            Field("heading", "h1"),
            Field("next", "a[accesskey=n]", attr="href", type="url"),
            Field("blocks", "div.highlight pre", many=True, default=()),
            Field("version", "title", regex=r"(\d+\.\d+)", type="float", required=True, default=3.0),
            Field("when", "time", attr="datetime", type="datetime", default="2026-12-03T10:00:00+00:00"))),
        PageType("other", None, (Field("title", "title"),))), str(path))
    assert pickle.loads(pickle.dumps(rules)) == rules
    assert len(pickle.dumps(rules)) < 1500   # sent with every page to a parse process
    assert issubclass(RulesError, UsageError)
