"""The built-in fields of every page (crawler.parser.parse): the first h1, the language and the word
count of the main text (crawler.extract.count_words), on ordinary and awkward pages."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from crawler.extract import UNICODE_SPACES, count_words, main_text
from crawler.parser import parse

PAGE = "https://docs.test/guide/"
HTML = {"content-type": "text/html; charset=utf-8"}


def page(body: str, *, lang: str | None = None, head: str = "") -> bytes:
    attr = "" if lang is None else f' lang="{lang}"'
    return f"<!DOCTYPE html><html{attr}><head>{head}</head><body>{body}</body></html>".encode()


# -- h1 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "h1"), [
    ("<p>no heading</p><h2>a second-level one</h2>", None),
    ("<h1>  Getting\n   started  </h1>", "Getting started"),
    ("<h1>The <em>blue</em> <a href='/k'>kettle</a><span> guide</span></h1>", "The blue kettle guide"),
    ("<header><h1>Site name</h1></header><main><h1>Page title</h1></main>", "Site name"),   # the first, wherever
    ("<h1></h1><h1>Second</h1>", None),                                                     # the first is empty
    ("<h1>" + "word " * 2000 + "</h1>", ("word " * 2000).strip()[:4096]),                  # cut like the title
])
def test_h1_is_the_first_h1s_text_with_whitespace_collapsed(body: str, h1: str | None) -> None:
    assert parse(PAGE, HTML, page(body)).h1 == h1


# -- lang ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "content_language", "expected"), [
    ("EN-us", None, "en-us"),
    ("en_GB", None, "en-gb"),                     # the underscore people write for the hyphen
    ("zh-Hant-TW", "fr", "zh-hant-tw"),           # the page's own attribute first
    (None, "de-DE, en-CA", "de-de"),              # else the first of the header's languages
    ("", "fr", "fr"),
    ("javascript:alert(1)", None, None),          # no language tag's shape
    ("javascript:alert(1)", "es", "es"),
    ("<script>", "en us", None),
    ("e" * 40, None, None),
    (None, None, None),
])
def test_lang_is_the_html_lang_else_content_language_lowercased_and_validated(
        lang: str | None, content_language: str | None, expected: str | None) -> None:
    headers = HTML if content_language is None else {**HTML, "content-language": content_language}
    assert parse(PAGE, headers, page("<p>x</p>", lang=lang)).lang == expected


# -- word count ------------------------------------------------------------------------------------


def test_word_count_counts_the_main_text_without_boilerplate() -> None:
    body = ("<nav>Home Docs Blog</nav><header>Site</header><h1>Install</h1><p>Run the\ninstaller, then<b>restart</b>."
            "</p><script>var a = 'not words';</script><style>p {}</style><footer>© 2026 us</footer>")
    # Install Run the installer, then restart . (the "." after </b> stands apart in the main text: no word)
    assert parse(PAGE, HTML, page(body)).word_count == 6


def test_word_count_is_zero_for_a_page_without_text() -> None:
    assert parse(PAGE, HTML, page("<img src=a.png><nav>menu only</nav>")).word_count == 0
    assert parse(PAGE, HTML, b"").word_count == 0


def test_word_count_is_the_same_with_text_extraction_on() -> None:
    body = page("<h1>Ünïcode\u00a0words</h1><p>one\u3000two three</p><aside>no</aside>")
    off, on = parse(PAGE, HTML, body), parse(PAGE, HTML, body, extract_text=True)
    assert off.word_count == on.word_count == 5
    assert on.simhash is not None
    assert off.simhash is None


def test_extraction_reads_the_tree_before_the_main_text_strips_its_boilerplate() -> None:
    seen: list[str] = []
    parsed = parse(PAGE, HTML, page("<nav>Menu</nav><p>Text</p>"),
                   on_tree=lambda tree, text: seen.append(tree.css_first("nav").text()))
    assert seen == ["Menu"]
    assert parsed.word_count == 1


def test_the_unicode_spaces_are_every_non_ascii_character_split_splits_on() -> None:
    assert tuple(chr(c) for c in range(128, 0x110000) if chr(c).isspace()) == UNICODE_SPACES


_TEXT = st.text(alphabet=st.one_of(st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1f.,|-" + "".join(UNICODE_SPACES) + "\u200b"),
                                   st.characters()), max_size=300)


def words(text: str) -> int:
    """What count_words counts, the slow way."""
    return sum(1 for token in text.split() if token.strip(string.punctuation))


@pytest.mark.parametrize(("text", "count"), [("", 0), (" \n ", 0), ("one", 1), (" one  two\tthree\n", 3),
                                             ("a . b | c -- d", 4), ("don't stop-gap", 2), ("x\u00a0y\u3000z", 3),
                                             ("\u200bzero-width", 1), ("... !!!", 0), ("café — crème", 3)])
def test_count_words_counts_tokens_that_are_more_than_punctuation(text: str, count: int) -> None:
    assert count_words(text) == words(text) == count


@given(text=_TEXT)
def test_count_words_agrees_with_splitting_the_text(text: str) -> None:
    assert count_words(text) == words(text)


# A page's text as a body can hold it: UTF-8 has no lone surrogates (page() would fail to encode one).
_BODY_TEXT = st.text(alphabet=st.one_of(st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1f.,|-" + "".join(UNICODE_SPACES) + "\u200b"),
                                        st.characters(blacklist_categories=("Cs",))), max_size=300)
_MARKUP = st.lists(st.one_of(_BODY_TEXT, st.sampled_from(["<p>", "</p>", "<b>", "</b>", "<br>", "<nav>", "</nav>", "<script>",
                                                     "</script>", "<li>", "&nbsp;", "&#x3000;", "<!-- c -->"])),
                   max_size=40)


@given(parts=_MARKUP)
def test_the_word_count_agrees_with_the_main_text(parts: list[str]) -> None:
    body = page("".join(parts))
    assert parse(PAGE, HTML, body).word_count == words(main_text(LexborHTMLParser(body.decode())))
