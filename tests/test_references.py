"""References: what a page points to besides its links (stylesheets, scripts, images, iframes, media,
icons, CSS url() and @import), read by pure functions, recorded in the link graph with their kind,
checked (``--check-references``, ``--check-external``) and fetched as requisites (``--page-requisites``)."""

from __future__ import annotations

import asyncio
import csv
import html as html_text
import io
import json
import re
import sqlite3
from pathlib import Path

import httpx2
import pytest
from conftest import CLI
from conftest_fetch import mock_fetcher, refusing_port
from hypothesis import given
from hypothesis import strategies as st
from site_server import Site, reply

from crawler.checks import check
from crawler.css_refs import css_references
from crawler.parser import parse
from crawler.references import css_outlinks, decide_reference, srcset_urls
from crawler.scope import Scope

PAGE = "http://example.com/dir/page.html"


def kinds(body: str) -> list[tuple[str, str]]:
    page = parse(PAGE, {"content-type": "text/html"}, body.encode())
    return [(link.url.removeprefix("http://example.com"), link.kind) for link in page.links]


# --- the pure readers ---------------------------------------------------------------------


def test_srcset_gives_every_candidate_including_urls_with_commas_and_leaves_out_data_urls() -> None:
    assert srcset_urls("a.png 1x, b.png 2x") == ["a.png", "b.png"]
    assert srcset_urls(" /x,y.png 100w ,\n/z.png 200w") == ["/x,y.png", "/z.png"]   # a comma inside a URL stays
    assert srcset_urls("one.png,, two.png 2x") == ["one.png", "two.png"]           # trailing commas end a URL
    assert srcset_urls("one.png,two.png") == ["one.png,two.png"]                   # as HTML reads it: one URL
    assert srcset_urls("data:image/png;base64,AAAA 1x, real.png 2x") == ["real.png"]
    assert srcset_urls("w.png (min-width: 1px, max-width: 2px) 1x, v.png") == ["w.png", "v.png"]
    assert srcset_urls("  ,, ") == []


def test_css_gives_url_and_import_references_in_order_with_quotes_and_escapes_undone() -> None:
    css = """
    @import "base.css";
    @import url('print.css') print;
    body { background: url( "bg one.png" ) }
    .a { background-image: url(a\\(1\\).png), url('b.png') }
    @font-face { src: url(f.woff2) format("woff2") }
    """
    assert css_references(css) == [("base.css", True), ("print.css", True), ("bg one.png", False),
                                   ("a(1).png", False), ("b.png", False), ("f.woff2", False)]


def test_css_comments_data_uris_and_fragments_are_no_references() -> None:
    css = """
    /* .old { background: url(old.png) } */
    .x { background: url(data:image/png;base64,iVBOR) }
    .y { filter: url(#blur) }
    .z { content: "/* not a comment */"; background: url(kept.png) }
    .w { background: url() }
    /* an unclosed comment hides the rest: url(hidden.png)
    """
    assert css_references(css) == [("kept.png", False)]


_CSS_BITS = st.sampled_from(["url(", ")", "'", '"', "\\", "/*", "*/", "@import", " ", "data:", "#", "a.png", "\n", ";"])


@given(st.lists(_CSS_BITS | st.text(max_size=5), max_size=40).map("".join))
def test_hostile_css_never_raises_and_gives_no_data_uri_or_empty_reference(css: str) -> None:
    for url, is_import in css_references(css):
        assert url
        assert not url.lower().startswith(("data:", "#"))
        assert isinstance(is_import, bool)


@given(st.lists(st.sampled_from([",", " ", "a.png", "1x", "(", ")", "data:x", "\t"]) | st.text(max_size=4),
                max_size=30).map("".join))
def test_any_srcset_reads_without_raising_into_urls_without_spaces(srcset: str) -> None:
    for url in srcset_urls(srcset):
        assert url
        assert not any(c in url for c in " \t\n\r\f")
        assert not url.endswith(",")


def test_every_kind_of_reference_on_a_page_is_a_link_with_its_kind() -> None:
    body = """<html><head>
      <link rel="stylesheet" href="/s.css"><link rel="shortcut icon" href="/f.ico">
      <link rel="apple-touch-icon" href="/t.png"><link rel="alternate" href="/feed.xml">
      <script src="/a.js"></script><script>var notAReference = "/x.js";</script>
      <style>@import "/i.css"; body { background: url(/bg.png) } @font-face { src: url(/f.woff2) }</style>
    </head><body style="background: url('/body.jpg')">
      <a href="/page">a page</a>
      <img src="/i.png" srcset="/i2.png 2x, /i3.png 3x">
      <picture><source srcset="/p.webp"><img src="/p.jpg"></picture>
      <video poster="/poster.jpg" src="/v.mp4"><source src="/v.webm"><track src="/v.vtt"></video>
      <audio src="/a.mp3"></audio>
      <iframe src="/frame"></iframe><object data="/o.pdf"></object><embed src="/e.swf">
      <img src="data:image/gif;base64,R0lGOD">
    </body></html>"""
    assert kinds(body) == [
        ("/page", "page"),
        ("/s.css", "stylesheet"), ("/f.ico", "icon"), ("/t.png", "icon"), ("/a.js", "script"),
        ("/i.css", "stylesheet"), ("/bg.png", "image"), ("/f.woff2", "font"), ("/body.jpg", "image"),
        ("/i.png", "image"), ("/i2.png", "image"), ("/i3.png", "image"), ("/p.webp", "image"), ("/p.jpg", "image"),
        ("/v.mp4", "media"), ("/poster.jpg", "image"), ("/v.webm", "media"), ("/v.vtt", "media"), ("/a.mp3", "media"),
        ("/frame", "iframe"), ("/o.pdf", "object"), ("/e.swf", "object"),
    ]


def test_a_url_both_linked_and_shown_is_one_link_of_the_shown_kind_with_the_anchor() -> None:
    page = parse(PAGE, {"content-type": "text/html"}, b'<a href="/big.png">full size</a><img src="/big.png">')
    assert [(link.url, link.anchor, link.kind) for link in page.links] == [
        ("http://example.com/big.png", "full size", "image")]


def test_a_references_fate_follows_the_options() -> None:
    scope = Scope.build(["http://site.test/"], max_depth=1)
    mine, theirs = "http://site.test/s.css", "http://cdn.test/s.css"

    def fate(url: str, kind: str, exclusion: str | None, **options: bool) -> tuple[str | None, str]:
        flags = {"check_references": False, "check_external": False, "requisites": False} | options
        return decide_reference(url, kind, exclusion, scope=scope, **flags)  # type: ignore[arg-type]

    assert fate(mine, "stylesheet", None) == ("not_checked", "page")
    assert fate(mine, "stylesheet", "too_deep", check_references=True) == (None, "check")   # a page's, at any depth
    assert fate(theirs, "stylesheet", "off_host", check_references=True) == ("off_host", "page")
    assert fate(theirs, "stylesheet", "off_host", check_references=True, check_external=True) == (None, "check")
    assert fate(theirs, "stylesheet", "off_host", requisites=True) == (None, "requisite")
    assert fate(theirs, "iframe", "off_host", requisites=True) == ("off_host", "page")   # no requisite
    assert fate("http://site.test/frame", "iframe", None, check_references=True) == (None, "page")   # crawled
    assert fate("http://site.test/frame", "iframe", "too_deep", check_references=True) == (None, "check")
    assert fate("http://other.test/", "page", "off_host", check_external=True) == (None, "check")
    assert fate("http://other.test/", "page", "off_host") == ("off_host", "page")
    assert fate("http://site.test/deep", "page", "too_deep", check_external=True) == ("too_deep", "page")


def test_a_stylesheets_references_are_requisites_resolved_against_it() -> None:
    scope = Scope.build(["http://site.test/"])
    css = b'@import "more.css"; .a { background: url(../img/a.png) } @font-face { src: url(/f/x.woff) }'
    links = css_outlinks("http://cdn.test/css/main.css", css, 1, scope=scope, check_references=True,
                         check_external=False)
    assert [(o.url, o.kind, o.exclusion, o.fetch_as) for o in links] == [
        ("http://cdn.test/css/more.css", "stylesheet", None, "requisite"),
        ("http://cdn.test/img/a.png", "image", None, "requisite"),
        ("http://cdn.test/f/x.woff", "font", None, "requisite")]


# --- checks: HEAD, else a GET cut after the headers ---------------------------------------------


def test_a_check_asks_with_head_and_falls_back_to_a_get_where_head_is_refused() -> None:
    asked: list[tuple[str, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        asked.append((request.method, request.url.path))
        if request.method == "HEAD" and request.url.path == "/no-head":
            return httpx2.Response(405)
        return httpx2.Response(404 if request.url.path == "/gone" else 200, content=b"x" * 1000)

    async def go() -> list[tuple[int, bytes]]:
        async with mock_fetcher(handler) as fetcher:
            return [((r := await check(fetcher, f"http://t{path}", None)).status, r.body)
                    for path in ("/ok", "/gone", "/no-head")]

    assert asyncio.run(go()) == [(200, b""), (404, b""), (200, b"")]
    assert asked == [("HEAD", "/ok"), ("HEAD", "/gone"), ("HEAD", "/no-head"), ("GET", "/no-head")]


# --- crawls -------------------------------------------------------------------------------------


def _broken_rows(report: str) -> dict[str, tuple[str, str, list[str]]]:
    """The report's broken links: URL -> (kind, answer, linking pages)."""
    section = report[report.index('id="broken"'):]
    section = section[:section.index("</section>")] if "</section>" in section else section
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section, re.DOTALL):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        if len(cells) < 5:
            continue
        def plain(cell: str) -> str:
            return html_text.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        url, kind, answer = plain(cells[0]), plain(cells[1]), plain(cells[2])
        sources = [html_text.unescape(s) for s in re.findall(r'<li><a href="([^"]+)"', cells[4])]
        rows[url] = (kind, answer, sources)
    return rows


def test_the_report_lists_a_missing_stylesheet_script_image_iframe_and_dead_external_link(cli: CLI) -> None:
    with refusing_port() as dead:
        gone = f"http://127.0.0.2:{dead}/gone"
        home = f"""<html><head><link rel="stylesheet" href="/missing.css"><script src="/missing.js"></script>
            <link rel="stylesheet" href="/ok.css"></head><body><a href="/about">About</a>
            <a href="{gone}">a dead site</a><img src="/missing.png" srcset="/ok.png 2x">
            <iframe src="/missing-frame"></iframe></body></html>"""
        about = f'<html><body><a href="/">Home</a><img src="/missing.png"><a href="{gone}">again</a></body></html>'
        site = Site({"/": reply(200, home, "text/html"), "/about": reply(200, about, "text/html"),
                     "/ok.png": reply(200, b"\x89PNG", "image/png"), "/ok.css": reply(200, "p {}", "text/css")})
        with site:
            done = cli.in_process("crawl", site.url("/"), "--db", "job.db", "--check-external", "--allow-private",
                                  "--retries", "0", "--quiet")
            assert done.returncode == 0, done.stderr
            reported = cli.in_process("report", "--db", "job.db", "--out", "r.html")
            assert reported.returncode == 0, reported.stderr
            assert "report of 3 pages (5 broken URLs)" in reported.stderr   # checks are no pages
            broken = _broken_rows((cli.cwd / "r.html").read_text(encoding="utf-8"))
            assert broken == {
                site.url("/missing.png"): ("image", "404", [site.url("/"), site.url("/about")]),
                site.url("/missing.css"): ("stylesheet", "404", [site.url("/")]),
                site.url("/missing.js"): ("script", "404", [site.url("/")]),
                site.url("/missing-frame"): ("iframe", "404", [site.url("/")]),
                gone: ("page", "connect", [site.url("/"), site.url("/about")]),
            }
            # Checked apart from pages: three pages (the iframe's is one), six targets checked (four
            # broken, ok.css, ok.png).
            stats = json.loads(cli.in_process("stats", "--db", "job.db", "--json").stdout)
            assert stats["pages"] == 3
            assert stats["references"] == {"check": {"fetched": 6, "broken": 4}}
            assert "6 checked" in done.stdout
            links = list(csv.DictReader(io.StringIO(cli.in_process("export", "--db", "job.db", "--format", "links").stdout)))
            assert {(row["target"], row["kind"]) for row in links if row["source"] == site.url("/")} >= {
                (site.url("/missing.css"), "stylesheet"), (site.url("/ok.png"), "image"), (gone, "page")}
            explained = cli.in_process("explain", "--db", "job.db", site.url("/missing.css")).stdout
            assert f"first linked from {site.url('/')} (as a stylesheet)" in explained
            assert "status 404, error http_error (checked: its status only), pass 1" in explained
            # A check's HEAD has no body: a WARC that replayed it would serve an empty image.
            assert cli.in_process("export", "--db", "job.db", "--format", "warc", "--out", "job.warc").returncode == 0
            warc = (cli.cwd / "job.warc").read_bytes()
            assert f"WARC-Target-URI: {site.url('/about')}".encode() in warc
            assert site.url("/ok.png").encode() not in warc


def test_without_checks_references_are_in_the_link_graph_and_not_fetched(cli: CLI) -> None:
    site = Site({"/": reply(200, '<img src="/i.png"><a href="/a">a</a>', "text/html"), "/a": reply(200, "", "text/html")})
    with site:
        done = cli.in_process("crawl", site.url("/"), "--db", "job.db", "--no-check-references", "--quiet")
        assert done.returncode == 0, done.stderr
        explained = cli.in_process("explain", "--db", "job.db", site.url("/i.png")).stdout
    assert site.count("/i.png") == 0
    assert site.count("/a") == 1
    assert "(as an image)" in explained
    assert "check_references is off" in explained


def test_page_requisites_are_fetched_from_another_host_stored_and_counted_apart(cli: CLI, tmp_path: Path) -> None:
    cdn = Site({"/css/main.css": reply(200, '@import "extra.css"; body { background: url(../img/bg.png) }', "text/css"),
                "/css/extra.css": reply(200, "@font-face { font-family: x; src: url(/fonts/x.woff2) }", "text/css"),
                "/img/bg.png": reply(200, b"\x89PNG bg", "image/png"),
                "/img/a.png": reply(200, b"\x89PNG a", "image/png"),
                "/img/a2.png": reply(200, b"\x89PNG a2", "image/png"),
                "/fonts/x.woff2": reply(200, b"wOF2", "font/woff2"),
                "/js/app.js": reply(200, "var a = 1;", "text/javascript"),
                "/elsewhere": reply(200, "<p>a page on the CDN host</p>", "text/html")},
               host="127.0.0.2")
    with cdn:
        home = (f'<html><head><link rel="stylesheet" href="{cdn.url("/css/main.css")}">'
                f'<script src="{cdn.url("/js/app.js")}"></script></head><body>'
                f'<img src="{cdn.url("/img/a.png")}" srcset="{cdn.url("/img/a2.png")} 2x">'
                f'<a href="{cdn.url("/elsewhere")}">not a requisite</a><a href="/two">two</a></body></html>')
        site = Site({"/": reply(200, home, "text/html"), "/two": reply(200, "<p>two</p>", "text/html")})
        with site:
            done = cli.in_process("crawl", site.url("/"), "--db", "job.db", "--page-requisites", "--allow-private",
                                  "--max-depth", "0", "--quiet")
            assert done.returncode == 0, done.stderr
        origin = cdn.origin
    requisites = ["/css/main.css", "/css/extra.css", "/img/bg.png", "/img/a.png", "/img/a2.png", "/fonts/x.woff2",
                  "/js/app.js"]
    assert {path: cdn.count(path) for path in requisites} == dict.fromkeys(requisites, 1)
    assert cdn.count("/elsewhere") == 0
    assert site.count("/two") == 0
    stats = json.loads(cli.in_process("stats", "--db", "job.db", "--json").stdout)
    assert stats["pages"] == 1
    assert stats["references"] == {"requisite": {"fetched": 7, "broken": 0}}
    assert "7 requisites" in done.stdout
    assert "references   7 requisites (0 broken)" in cli.in_process("stats", "--db", "job.db").stdout
    conn = sqlite3.connect(tmp_path / "job.db")
    try:
        stored = dict(conn.execute("SELECT u.url, p.body IS NOT NULL FROM pages p JOIN urls u ON u.id = p.url_id "
                                   "WHERE p.fetched_as = 'requisite'").fetchall())
    finally:
        conn.close()
    assert stored == {origin + path: 1 for path in requisites}


@pytest.mark.parametrize("flag", ["--check-external"])
def test_an_external_link_is_checked_once_however_many_pages_have_it(cli: CLI, flag: str) -> None:
    other = Site({"/x": reply(200, "<a href='/y'>y</a>", "text/html")}, host="127.0.0.2")
    with other:
        pages = {f"/{n}": reply(200, f'<a href="{other.url("/x")}">x</a><a href="/{n + 1}">next</a>', "text/html")
                 for n in range(5)}
        site = Site({"/": reply(200, '<a href="/0">0</a>', "text/html"), **pages})
        with site:
            done = cli.in_process("crawl", site.url("/"), "--db", "job.db", flag, "--allow-private", "--quiet")
            assert done.returncode == 0, done.stderr
    assert other.count("/x") == 1
    assert other.count("/y") == 0
