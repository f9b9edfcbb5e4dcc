"""The pure rules of rendering: which pages ``--render auto`` renders, and which requests a rendered
page may make. No browser, no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crawler.models import Response
from crawler.render.gate import Ask, Blocked, Tally, judge
from crawler.render.heuristic import looks_scripted, why_render

PROSE = "<p>" + "Words a reader reads, in sentences that a server sent as they are. " * 30 + "</p>"


def page(body: str) -> bytes:
    return f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>".encode()


@pytest.mark.parametrize(("body", "why"), [
    ('<div id="app"></div><script src="/app.js"></script>', "empty #app"),
    ('<div id="root"><!-- filled in by React --> </div><script src="/main.js"></script>', "empty #root"),
    ('<div id="__next"></div><script id="__NEXT_DATA__" type="application/json">{}</script>', "empty #__next"),
    ("<noscript>You need to enable JavaScript to run this app.</noscript><h1>Shop</h1>"
     "<script src=/a.js></script>", "<noscript> asks for JavaScript"),
    (PROSE + "<script>document.body.insertAdjacentHTML('beforeend', '<a href=/next>next</a>')</script>",
     "links only in script"),
    ("<h1>Loading…</h1><script src=/bundle.js></script>", "little text"),
    ("<p>" + "short text " * 30 + '<a href="/x">x</a></p><script>' + "var a = 1;" * 500 + "</script>",
     "much inline script"),
])
def test_a_page_built_by_script_is_rendered_under_auto_and_says_why(body: str, why: str) -> None:
    looks = looks_scripted(page(body))
    assert looks.why == why
    assert looks.note().startswith(f"auto: {why}; ")


@pytest.mark.parametrize("body", [
    PROSE + '<a href="/next">next</a>',                                               # no script at all
    PROSE + '<a href="/next">next</a><script src="/analytics.js"></script>',          # text and links, a script aside
    '<div id="app"><h1>Server-rendered</h1>' + PROSE + '<a href="/a">a</a></div><script src=/hydrate.js></script>',
    "<h1>Tiny</h1>",                                                                  # little text, but nothing to build it
    "<noscript>Please enable JavaScript for comments.</noscript>" + PROSE + '<a href="/b">b</a><script src=/c.js></script>',
])
def test_a_page_that_holds_its_text_and_links_is_not_rendered_under_auto(body: str) -> None:
    assert looks_scripted(page(body)).why is None


def test_the_note_counts_visible_text_and_scripts() -> None:
    looks = looks_scripted(page('<div id="app"></div><p>Hello there</p><style>p{}</style><script>1</script>'
                                "<script src=/b.js></script>"))
    assert (looks.text_chars, looks.scripts) == (len("Hello there"), 2)
    assert looks.note() == "auto: empty #app; 11 chars of text, 2 scripts"


BENCH = Path("/work/shared/bench/gensite.py")


@pytest.mark.skipif(not BENCH.exists(), reason="the bench site generator is not here")
def test_no_page_of_the_static_bench_site_is_rendered_under_auto(tmp_path: Path) -> None:
    import subprocess
    import sys
    subprocess.run([sys.executable, str(BENCH), str(tmp_path), "--pages", "300"], check=True, capture_output=True)
    files = [*tmp_path.glob("p/*.html"), tmp_path / "index.html"]
    assert len(files) == 301
    assert [f.name for f in files if looks_scripted(f.read_bytes()).why is not None] == []


def response(status: int = 200, ctype: str = "text/html; charset=utf-8", body: bytes = b"") -> Response:
    return Response("http://a.test/", "http://a.test/", status, "OK", "HTTP/1.1", (("Content-Type", ctype),), body, 1)


def test_only_2xx_html_is_rendered_and_always_renders_every_such_page() -> None:
    shell = page('<div id="app"></div><script src=/a.js></script>')
    assert why_render("always", response(body=page(PROSE))) == "always"
    assert why_render("auto", response(body=page(PROSE))) is None
    assert why_render("auto", response(body=shell)) == "auto: empty #app; 0 chars of text, 1 script"
    assert why_render("never", response(body=shell)) is None
    assert why_render("always", response(404, body=shell)) is None
    assert why_render("always", response(ctype="application/json", body=b"{}")) is None


def ask(url: str = "http://a.test/x.js", method: str = "GET", kind: str = "script", *, navigation: bool = False,
        main_frame: bool = False) -> Ask:
    return Ask(url, method, kind, navigation, main_frame)


BLOCKED = frozenset({"image", "media", "font"})


@pytest.mark.parametrize(("request_", "served", "verdict"), [
    (ask("http://a.test/", kind="document", navigation=True, main_frame=True), False, "document"),
    (ask("http://a.test/other", kind="document", navigation=True, main_frame=True), True, "block"),
    (ask("file:///etc/passwd", kind="fetch"), True, "block"),
    (ask("data:text/html,<h1>x</h1>", kind="document", navigation=True), True, "block"),
    (ask("http://a.test/logo.png", kind="image"), True, "skip"),
    (ask("http://a.test/font.woff2", kind="font"), True, "skip"),
    (ask("http://a.test/api", method="POST", kind="fetch"), True, "block"),
    (ask("http://a.test/frame", kind="document", navigation=True), True, "navigate"),
    (ask("http://a.test/app.js"), True, "fetch"),
    (ask("https://cdn.test/lib.js"), True, "fetch"),
    (ask("http://10.0.0.1/admin", kind="fetch"), True, "fetch"),   # the fetcher's SSRF guard decides
])
def test_the_gate_judges_each_request_of_a_rendered_page(request_: Ask, served: bool, verdict: str) -> None:
    assert judge(request_, document_served=served, blocked_kinds=BLOCKED)[0] == verdict


def test_what_a_page_requests_is_told_in_a_few_words() -> None:
    tally = Tally(fetched=3, skipped=2, blocked=[Blocked("address", "http://127.0.0.2/secret", "private"),
                                                 Blocked("robots.txt", "http://a.test/private/", "robots_disallowed"),
                                                 Blocked("address", "http://10.0.0.1/", "private")])
    assert tally.note() == "3 requests, 3 blocked (2 address, 1 robots.txt), 2 not loaded"
    assert tally.by_why() == (("address", 2, "http://127.0.0.2/secret"), ("robots.txt", 1, "http://a.test/private/"))


def test_bad_render_settings_are_one_line_naming_the_choices(cli: Any) -> None:
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--render", "sometimes")
    assert "render must be one of never, auto, always" in line
    line = cli.fails(2, "crawl", "http://127.0.0.1:9/", "--render", "auto", "--render-block", "image,pictures")
    assert "render_block takes document, stylesheet, image" in line
    assert "'pictures'" in line
