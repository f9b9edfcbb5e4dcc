"""The parse stage in each mode: identical results everywhere, and a dying worker is one failed page."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from parse_crash import MARKER, crash_on_marker

from crawler.errors import ParseFailed
from crawler.extraction import fields
from crawler.extraction.rules import parse_rules
from crawler.parse_stage import Analysis, ParseOptions, ParseStage, analyze
from crawler.scope import Scope

BASE = "http://site.test/"
OPTIONS = ParseOptions(Scope("host", frozenset({"site.test"}), max_depth=3), extract_text=True)
HEADERS = {"content-type": "text/html; charset=utf-8"}


def page(i: int, extra: str = "") -> bytes:
    links = "".join(f'<a href="/p/{j}">{j}</a>' for j in (i + 1, i * 3, i + 7))
    words = f"word{i} " * 50
    return (f"<html><head><title>Page {i} é</title><meta name=description content='d{i}'></head>"
            f"<body><nav>{links}</nav><p>{words}</p><a href='http://elsewhere.test/'>x</a>"
            f"<a rel=nofollow href='/nf'>nf</a>{extra}</body></html>").encode()


PAGES = [(f"{BASE}p/{i}", page(i)) for i in range(12)]


async def run_all(mode: str, pages: list[tuple[str, bytes]]) -> list[Analysis | str]:
    async with ParseStage(mode, 2, OPTIONS, fn=crash_on_marker) as stage:
        async def one(url: str, body: bytes) -> Analysis | str:
            try:
                return await stage.analyze(url, HEADERS, body, 1, True)
            except ParseFailed as exc:
                return exc.code
        return list(await asyncio.gather(*(one(u, b) for u, b in pages)))


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_every_mode_gives_what_the_pure_function_gives(mode: str) -> None:
    expected = [analyze(url, HEADERS, body, 1, True, OPTIONS) for url, body in PAGES]
    assert asyncio.run(run_all(mode, PAGES)) == expected
    assert asyncio.run(run_all("async", PAGES)) == expected
    first = expected[0]
    assert first.page is not None
    assert first.page.title == "Page 0 é"
    assert first.page.simhash is not None
    verdicts = {o.url: o.exclusion for o in first.outlinks}
    assert verdicts == {f"{BASE}p/1": None, f"{BASE}p/0": None, f"{BASE}p/7": None,
                        "http://elsewhere.test/": "off_host", f"{BASE}nf": "nofollow"}


def test_a_worker_that_dies_fails_its_page_only_and_the_pool_is_replaced() -> None:
    pages = [*PAGES[:5], (f"{BASE}crash", page(99, MARKER.decode())), *PAGES[5:]]

    async def scenario() -> tuple[list[Analysis | str], int, Analysis]:
        async with ParseStage("process", 2, OPTIONS, fn=crash_on_marker) as stage:
            async def one(url: str, body: bytes) -> Analysis | str:
                try:
                    return await stage.analyze(url, HEADERS, body, 1, True)
                except ParseFailed as exc:
                    return exc.code
            results = list(await asyncio.gather(*(one(u, b) for u, b in pages)))
            after = await stage.analyze(*PAGES[0][:1], HEADERS, PAGES[0][1], 1, True)
            return results, stage.pools_replaced, after

    results, replaced, after = asyncio.run(scenario())
    assert results[5] == "parse_failed"
    others = results[:5] + results[6:]
    assert others == [analyze(url, HEADERS, body, 1, True, OPTIONS) for url, body in PAGES]
    assert replaced >= 1
    assert after == others[0]


def test_a_parser_exception_is_a_failed_page_on_the_loop_and_in_threads() -> None:
    def broken(*args: object) -> Analysis:
        raise RuntimeError("a bug in the parser")

    async def scenario(mode: str) -> str:
        async with ParseStage(mode, 1, OPTIONS, fn=broken) as stage:
            try:
                await stage.analyze(BASE, HEADERS, b"<p>x", 0, True)
            except ParseFailed as exc:
                return exc.message
            return "no error"

    for mode in ("async", "thread"):
        assert asyncio.run(scenario(mode)) == "RuntimeError: a bug in the parser"


RULES = parse_rules('[[page]]\n[page.fields]\nnav = { css = "nav a", many = true }\ntitle = "title"\n', "rules.toml")


def test_extraction_reads_the_page_before_main_text_strips_its_boilerplate() -> None:
    with_rules = replace(OPTIONS, rules=RULES)
    found = analyze(PAGES[2][0], HEADERS, PAGES[2][1], 1, True, with_rules)
    assert found.extracted is not None
    assert found.extracted.data == {"nav": ["3", "6", "9"], "title": "Page 2 é"}   # <nav> is boilerplate to main_text
    plain = analyze(PAGES[2][0], HEADERS, PAGES[2][1], 1, True, OPTIONS)
    assert (found.page, found.outlinks) == (plain.page, plain.outlinks)   # the same tree, read the same
    assert plain.extracted is None


def test_a_failure_inside_the_rules_costs_the_page_its_data_not_its_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(fields, "extract", broken)
    found = analyze(PAGES[2][0], HEADERS, PAGES[2][1], 1, True, replace(OPTIONS, rules=RULES))
    assert found.extracted is not None
    assert (found.extracted.error, found.extracted.error_message) == ("extract_failed", "rules: RuntimeError: a bug")
    assert found.outlinks == analyze(PAGES[2][0], HEADERS, PAGES[2][1], 1, True, OPTIONS).outlinks
