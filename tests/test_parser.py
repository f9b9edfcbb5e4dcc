"""The parse stage: metadata, robots directives, links and charset decoding, on good and hostile input."""

from __future__ import annotations

import codecs
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.models import Link, ParsedPage
from crawler.parser import ANCHOR_CHARS, decode_html, is_html, media_type, parse

PAGE = "http://example.com/dir/page.html"
HTML = {"content-type": "text/html"}

# Latin-1 text a detector can get wrong: cp1250 and cp1257 read some of these bytes differently.
LATIN_TITLE = "Crème brûlée à l'hôtel: Grüße aus Köln, déjà vu, señor Müller"
LATIN_BODY = (
    "<p>Ça va très bien. Le garçon a mangé une crème brûlée à l'hôtel près de la forêt. "
    "Die Straße ist schön, und der Bär läuft über die Brücke. El niño comió piña.</p>"
)


def page(head: str = "", body: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>".encode()


def links(html: str, url: str = PAGE, **kwargs: bool) -> list[Link]:
    return list(parse(url, HTML, page(body=html), **kwargs).links)


def urls(html: str, url: str = PAGE) -> list[str]:
    return [link.url for link in links(html, url)]


# --- media types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/HTML; charset=UTF-8", "text/html"),
        ("  application/xhtml+xml ;q=1", "application/xhtml+xml"),
        ("image/png", "image/png"),
        ("", None),
        (None, None),
        (" ; charset=utf-8", None),
    ],
)
def test_media_type(content_type: str | None, expected: str | None) -> None:
    assert media_type(content_type) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html", True),
        ("Text/Html; charset=iso-8859-1", True),
        (" TEXT/HTML ; charset=utf-8", True),
        ("application/xhtml+xml", True),
        ("application/xhtml+xml; charset=utf-8", True),
        ("text/plain", False),
        ("text/xml", False),
        ("image/svg+xml", False),
        ("application/json", False),
        ("text/htmlx", False),
        ("text/html-sandboxed", False),
        ("html", False),
        ("", False),
        (None, False),
    ],
)
def test_is_html(content_type: str | None, expected: bool) -> None:
    assert is_html(content_type) is expected


# --- title and description -----------------------------------------------------------------


def test_title_and_description_are_collapsed_and_stripped() -> None:
    parsed = parse(
        PAGE,
        HTML,
        page('<title>\n  Hello \t  <world>\n</title><META NAME="Description" CONTENT="  A   page\nabout things ">'),
    )
    assert parsed.title == "Hello <world>"
    assert parsed.description == "A page about things"


def test_missing_or_empty_title_and_description_are_none() -> None:
    assert parse(PAGE, HTML, page()).title is None
    assert parse(PAGE, HTML, page()).description is None
    parsed = parse(PAGE, HTML, page('<title>  \n </title><meta name="description" content="   ">'))
    assert parsed.title is None
    assert parsed.description is None
    assert parse(PAGE, HTML, page('<meta name="description">')).description is None


def test_first_title_and_description_win() -> None:
    parsed = parse(
        PAGE,
        HTML,
        page(
            '<title>One</title><meta name="description" content="first">'
            '<title>Two</title><meta name="description" content="second">'
        ),
    )
    assert parsed.title == "One"
    assert parsed.description == "first"


def test_title_entities_are_decoded() -> None:
    assert parse(PAGE, HTML, page("<title>Fish &amp; Chips &eacute;</title>")).title == "Fish & Chips é"


# --- canonical -----------------------------------------------------------------------------


def test_canonical_is_resolved_and_canonicalized() -> None:
    parsed = parse(PAGE, HTML, page('<link rel="canonical" href="../Other/./x.html#top">'))
    assert parsed.canonical == "http://example.com/Other/x.html"


def test_canonical_rel_is_a_case_insensitive_token_list() -> None:
    parsed = parse(
        PAGE,
        HTML,
        page('<link rel="stylesheet" href="/s.css"><link rel="alternate CANONICAL" href="https://EXAMPLE.com/c">'),
    )
    assert parsed.canonical == "https://example.com/c"


def test_canonical_absent_or_unusable_is_none() -> None:
    assert parse(PAGE, HTML, page('<link rel="stylesheet" href="/s.css">')).canonical is None
    assert parse(PAGE, HTML, page('<link rel="canonical" href="javascript:void(0)">')).canonical is None


def test_canonical_resolves_against_base_href() -> None:
    parsed = parse(PAGE, HTML, page('<base href="https://cdn.example.org/a/"><link rel=canonical href="b">'))
    assert parsed.canonical == "https://cdn.example.org/a/b"


# --- robots --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metas", "noindex", "nofollow"),
    [
        ("", False, False),
        ('<meta name="robots" content="index, follow">', False, False),
        ('<meta name="robots" content="noindex">', True, False),
        ('<meta name="robots" content="nofollow">', False, True),
        ('<meta name="ROBOTS" content="NoIndex, NoFollow">', True, True),
        ('<meta name="robots" content="none">', True, True),
        ('<meta name="robots" content="noindex nofollow">', True, True),
        ('<meta name="robots" content="noindex"><meta name="robots" content="nofollow">', True, True),
        ('<meta name="robots">', False, False),
        ('<meta name="googlebot" content="noindex">', False, False),
    ],
)
def test_meta_robots(metas: str, noindex: bool, nofollow: bool) -> None:
    parsed = parse(PAGE, HTML, page(metas))
    assert (parsed.noindex, parsed.nofollow) == (noindex, nofollow)


@pytest.mark.parametrize(
    ("header", "noindex", "nofollow"),
    [
        ("noindex", True, False),
        ("NOFOLLOW", False, True),
        ("noindex, nofollow", True, True),
        ("none", True, True),
        ("all", False, False),
        ("otherbot: noindex", False, False),
        ("otherbot: noindex, nofollow", False, False),
        ("nofollow, otherbot: noindex", False, True),
        ("unavailable_after: 25 Jun 2010 15:00:00 PST, noindex", True, False),
        ("max-snippet: 20, nofollow", False, True),
        ("", False, False),
    ],
)
def test_x_robots_tag_header(header: str, noindex: bool, nofollow: bool) -> None:
    parsed = parse(PAGE, {**HTML, "x-robots-tag": header}, page())
    assert (parsed.noindex, parsed.nofollow) == (noindex, nofollow)


def test_header_and_meta_robots_combine() -> None:
    parsed = parse(PAGE, {**HTML, "x-robots-tag": "noindex"}, page('<meta name="robots" content="nofollow">'))
    assert (parsed.noindex, parsed.nofollow) == (True, True)


def test_page_nofollow_is_not_copied_onto_links() -> None:
    parsed = parse(PAGE, HTML, page('<meta name="robots" content="nofollow">', '<a href="/a">a</a>'))
    assert parsed.nofollow is True
    assert parsed.links == (Link("http://example.com/a", anchor="a"),)


# --- links ---------------------------------------------------------------------------------


def test_links_from_a_and_area_in_document_order() -> None:
    html = (
        '<a href="/first">1</a>'
        '<map name="m"><area href="second.html" shape="rect" coords="0,0,1,1"></map>'
        '<a href="https://other.example/third?q=1">3</a>'
        "<a>no href</a><link href='/not-a-link'><img src='/an-image.png'>"
    )
    assert [(link.url, link.kind) for link in links(html)] == [
        ("http://example.com/first", "page"),
        ("http://example.com/dir/second.html", "page"),
        ("https://other.example/third?q=1", "page"),
        ("http://example.com/an-image.png", "image"),   # a reference: a link with its kind
    ]


def test_relative_links_resolve_against_the_page() -> None:
    html = '<a href="x.html">.</a><a href="../up/">..</a><a href="?q=2">?</a><a href="//cdn.example/p">//</a>'
    assert urls(html) == [
        "http://example.com/dir/x.html",
        "http://example.com/up/",
        "http://example.com/dir/page.html?q=2",
        "http://cdn.example/p",
    ]


def test_base_href_changes_resolution_wherever_it_appears() -> None:
    html = '<a href="x.html">x</a><base href="/other/"><a href="y/z">y</a>'
    assert urls(html) == ["http://example.com/other/x.html", "http://example.com/other/y/z"]


def test_relative_base_href_resolves_against_the_page() -> None:
    html = '<base href="sub/"><a href="x">x</a>'
    assert urls(html) == ["http://example.com/dir/sub/x"]


def test_unusable_base_href_falls_back_to_the_page() -> None:
    for base in ("javascript:alert(1)", "mailto:a@b.c", "http://[broken", ""):
        assert urls(f'<base href="{base}"><a href="x">x</a>') == ["http://example.com/dir/x"], base


def test_first_base_href_wins() -> None:
    html = '<base target="_blank"><base href="http://one.example/"><base href="http://two.example/">'
    html += "<a href=x>x</a>"
    assert urls(html) == ["http://one.example/x"]


@pytest.mark.parametrize(
    "href",
    [
        "#",
        "#section",
        "  #top ",
        "",
        "   ",
        "javascript:void(0)",
        " JavaScript:alert(1)",
        "mailto:someone@example.com",
        "tel:+123456",
        "data:text/html,<b>hi</b>",
        "file:///etc/passwd",
        "ftp://example.com/file",
        "http://exa mple.com/",
        "http://example.com:99999/",
    ],
)
def test_unusable_links_are_dropped(href: str) -> None:
    assert urls(f'<a href="{href}">x</a><a href="/kept">k</a>') == ["http://example.com/kept"]


def test_nofollow_is_marked_from_a_rel_token_list() -> None:
    html = '<a href="/a" rel="external NoFollow">a</a><a href="/b" rel="nofollowing">b</a><a href="/c">c</a>'
    assert links(html) == [
        Link("http://example.com/a", nofollow=True, anchor="a"),
        Link("http://example.com/b", anchor="b"),
        Link("http://example.com/c", anchor="c"),
    ]


def test_links_are_deduplicated_by_canonical_url_in_first_seen_order() -> None:
    html = (
        '<a href="/a">1</a><a href="/b">2</a><a href="/a#frag">3</a><a href="HTTP://EXAMPLE.COM:80/a">4</a><a href="/./b">5</a>'
    )
    assert urls(html) == ["http://example.com/a", "http://example.com/b"]


def test_followed_occurrence_wins_over_nofollow() -> None:
    html = (
        '<a href="/x" rel="nofollow">1</a><a href="/y">2</a><a href="/x">3</a>'
        '<a href="/y" rel="nofollow">4</a><a href="/z" rel=nofollow>5</a><a href="/z#f" rel=nofollow>6</a>'
    )
    assert links(html) == [
        Link("http://example.com/x", nofollow=False, anchor="1"),
        Link("http://example.com/y", nofollow=False, anchor="2"),
        Link("http://example.com/z", nofollow=True, anchor="5"),
    ]


def test_anchor_text_is_collapsed_cut_and_taken_from_the_first_occurrence_that_has_one() -> None:
    long = "word " * 100
    html = (
        '<a href="/img"><img src="x.png"></a><a href="/img">  Second\n\t <b>copy</b> </a><a href="/img">third</a>'
        f'<a href="/long">{long}</a><map><area href="/area" alt="  Area  map "></map><a href="/empty"> </a>'
    )
    assert [(link.url.removeprefix("http://example.com"), link.anchor) for link in links(html)] == [
        ("/img", "Second copy"), ("/long", long.strip()[:ANCHOR_CHARS]), ("/area", "Area map"), ("/empty", ""),
        ("/dir/x.png", "")]
    assert len(links(html)[1].anchor) == ANCHOR_CHARS == 200


def test_sort_query_is_passed_to_canonicalize() -> None:
    html = '<a href="/s?b=2&a=1">s</a>'
    assert urls(html) == ["http://example.com/s?b=2&a=1"]
    assert [link.url for link in links(html, sort_query=True)] == ["http://example.com/s?a=1&b=2"]


def test_links_inside_noscript_and_broken_nesting_are_found() -> None:
    html = '<noscript><a href="/ns">n</a></noscript><table><a href="/t">t</a><tr><td><a href="/td">'
    assert urls(html) == ["http://example.com/ns", "http://example.com/t", "http://example.com/td"]


def test_parsed_page_is_picklable() -> None:
    parsed = parse(PAGE, HTML, page("<title>T</title>", '<a href="/a" rel=nofollow>a</a>'))
    assert pickle.loads(pickle.dumps(parsed)) == parsed


# --- charsets ------------------------------------------------------------------------------


def latin1_page(head: str = "") -> bytes:
    html = f"<html><head>{head}<title>{LATIN_TITLE}</title></head><body>{LATIN_BODY}</body></html>"
    return html.encode("latin-1")


@pytest.mark.parametrize(
    ("content_type", "head"),
    [
        pytest.param("text/html; charset=ISO-8859-1", "", id="http-header"),
        pytest.param('text/html; charset="latin1"', "", id="quoted-header"),
        pytest.param("text/html", '<meta charset="iso-8859-1">', id="meta-charset"),
        pytest.param(
            "text/html",
            '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">',
            id="http-equiv",
        ),
        pytest.param("text/html", "", id="detected"),
        pytest.param(None, "", id="no-content-type"),
    ],
)
def test_latin1_page_title_comes_out_right(content_type: str | None, head: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert parse(PAGE, headers, latin1_page(head)).title == LATIN_TITLE
    assert decode_html(latin1_page(head), content_type)[1] == "cp1252"  # what browsers read latin-1 as


def test_declared_latin1_decodes_as_windows_1252() -> None:
    body = "<p>\x93quoted\x94 \x80</p>".encode("latin-1")
    text, charset = decode_html(body, "text/html; charset=iso-8859-1")
    assert (text, charset) == ("<p>“quoted” €</p>", "cp1252")
    assert decode_html(b"abc", "text/html; charset=US-ASCII") == ("abc", "cp1252")


def test_header_charset_beats_meta() -> None:
    body = b'<meta charset="utf-8"><title>' + "Grüße".encode("latin-1") + b"</title>"
    assert parse(PAGE, {"content-type": "text/html; charset=windows-1252"}, body).title == "Grüße"
    assert decode_html(body, "text/html; charset=windows-1252")[1] == "cp1252"


def test_utf8_bom_wins_over_declarations() -> None:
    body = codecs.BOM_UTF8 + '<meta charset="iso-8859-1"><title>Grüße – 東京</title>'.encode()
    assert parse(PAGE, {"content-type": "text/html; charset=iso-8859-1"}, body).title == "Grüße – 東京"
    assert decode_html(body, "text/html; charset=iso-8859-1")[1] == "utf-8"


def test_utf16_bom() -> None:
    body = codecs.BOM_UTF16_LE + "<title>Grüße – 東京</title>".encode("utf-16-le")
    assert parse(PAGE, HTML, body).title == "Grüße – 東京"


@pytest.mark.parametrize("label", ["x-no-such-charset", "utf-7", "rot13", "base64", "undefined", "idna"])
def test_unknown_or_non_web_header_charset_is_skipped(label: str) -> None:
    body = '<meta charset="utf-8"><title>Grüße – 東京</title>'.encode()
    assert parse(PAGE, {"content-type": f"text/html; charset={label}"}, body).title == "Grüße – 東京"
    assert decode_html(body, f"text/html; charset={label}")[1] == "utf-8"


def test_unknown_header_and_meta_charset_fall_back_to_detection() -> None:
    body = latin1_page('<meta charset="klingon">')
    parsed = parse(PAGE, {"content-type": "text/html; charset=bogus"}, body)
    assert parsed.title == LATIN_TITLE


def test_meta_declaring_utf16_is_read_as_utf8() -> None:
    body = '<meta charset="utf-16"><title>Grüße</title>'.encode()
    assert decode_html(body, "text/html") == ('<meta charset="utf-16"><title>Grüße</title>', "utf-8")


def test_meta_declaration_after_2kb_is_not_seen() -> None:
    body = b"<!--" + b"x" * 3000 + b'--><meta charset="koi8-r"><title>ok</title>'
    assert decode_html(body, None)[1] == "utf-8"


def test_undeclared_utf8_is_detected_as_utf8() -> None:
    text = "<title>Привет, мир – 東京</title>"
    assert decode_html(text.encode(), "text/html") == (text, "utf-8")


def test_undeclared_cyrillic_is_detected() -> None:
    title = "Съешь же ещё этих мягких французских булок, да выпей чаю"
    body = f"<html><head><title>{title}</title></head><body><p>{title}. Привет мир.</p></body></html>"
    assert parse(PAGE, HTML, body.encode("cp1251")).title == title


def test_invalid_bytes_in_declared_charset_are_replaced() -> None:
    text, charset = decode_html(b"<title>ok \xff\xfe\xfd</title>", "text/html; charset=utf-8")
    assert charset == "utf-8"
    assert text.startswith("<title>ok ")
    assert "\ufffd" in text


# --- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\x00\x00",
        b"<",
        b"<html><head><title>Unclosed <a href='/a'>x<div><p><b><i>",
        b"<title>t</title><a href='/a' rel=nofollow <a href=/b>b</a>",
        b"<a href='/q\x00z'>nul</a>\x00<title>\x00t\x00</title>",
        b"\xff\xfe\x00<\x00a\x00",
        bytes(range(256)) * 8,
        b"<svg><title>in svg</title><a href='/svg'>s</a></svg><math><a href='/m'>",
        b"<a href='/ok'></a>" * 1000,
        b"<!-- <a href='/commented'> -->",
        b"<![CDATA[<a href='/x'>]]><script>document.write('<a href=/s>')</script>",
    ],
)
def test_broken_html_does_not_raise(body: bytes) -> None:
    parsed = parse(PAGE, HTML, body)
    assert isinstance(parsed, ParsedPage)
    assert all(link.url.startswith(("http://", "https://")) for link in parsed.links)


def test_empty_body() -> None:
    assert parse(PAGE, {}, b"") == ParsedPage(
        title=None, description=None, canonical=None, noindex=False, nofollow=False, links=(), word_count=0
    )


def test_huge_attribute_values_are_skipped_or_cut() -> None:
    huge = "a" * 1_000_000
    body = page(
        f'<title>{huge}</title><meta name="description" content="{huge}"><link rel=canonical href="/{huge}">',
        f'<a href="/{huge}">big</a><a href="/small">small</a>',
    )
    parsed = parse(PAGE, HTML, body)
    assert parsed.links == (Link("http://example.com/small", anchor="small"),)
    assert parsed.canonical is None
    assert parsed.title is not None
    assert parsed.description is not None
    assert len(parsed.title) < 10_000
    assert len(parsed.description) < 10_000


def test_commented_links_are_ignored() -> None:
    assert urls("<!-- <a href='/commented'>c</a> --><a href='/live'>l</a>") == ["http://example.com/live"]


# --- invariants ----------------------------------------------------------------------------

_fragments = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["<title>", "</title>", "<base href='", "<meta name=robots content='", "'>", "<"]),
    st.builds(
        lambda tag, href, rel: f"<{tag} href={href!r} rel={rel!r}>",
        st.sampled_from(["a", "area", "link", "base", "A"]),
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(["/x", "../y", "#f", "javascript:x", "http://h/", "//h/p", "http://[::1/", "mailto:"]),
        ),
        st.sampled_from(["", "nofollow", "canonical", "NOFOLLOW canonical"]),
    ),
)


def _assert_well_formed(parsed: ParsedPage) -> None:
    assert all(link.url.startswith(("http://", "https://")) for link in parsed.links)
    assert len({link.url for link in parsed.links}) == len(parsed.links)
    assert parsed.canonical is None or parsed.canonical.startswith(("http://", "https://"))


@settings(deadline=None)
@given(body=st.binary(max_size=4096), content_type=st.one_of(st.none(), st.text(max_size=60)))
def test_parse_never_raises_on_arbitrary_bytes(body: bytes, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type, "x-robots-tag": content_type}
    _assert_well_formed(parse(PAGE, headers, body))


@settings(deadline=None)
@given(text=st.text(max_size=2000), encoding=st.sampled_from(["utf-8", "utf-16", "cp1252", "koi8-r"]))
def test_parse_never_raises_on_arbitrary_text(text: str, encoding: str) -> None:
    body = text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    _assert_well_formed(parse(PAGE, {"content-type": f"text/html; charset={encoding}"}, body))


@settings(deadline=None)
@given(parts=st.lists(_fragments, max_size=30), url=st.sampled_from([PAGE, "https://h.example", "not a url"]))
def test_parse_never_raises_on_link_soup(parts: list[str], url: str) -> None:
    body = "".join(parts).encode("utf-8", "surrogatepass")
    _assert_well_formed(parse(url, HTML, body, sort_query=True))
