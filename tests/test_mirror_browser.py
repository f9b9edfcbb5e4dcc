"""A mirror opened in a real browser: a site over two loopback hosts (pages on one, stylesheets and
images on a CDN-like other) is crawled, exported as a mirror and opened from ``file://`` in headless
Chromium with every http and https request refused: every image must load, every stylesheet (one
``@import``ed by another) apply, every background image load, and a link between pages open the
local copy.

The crawl is the one a user runs for this: the home page as its only seed, with
``--page-requisites`` fetching what each page needs to display, from any host, and what its
stylesheets import and name in ``url()``. Skipped where Playwright or Chromium is missing.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from site_server import Site, html, reply

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH")


def png(width: int, height: int) -> bytes:
    """A valid PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_the_mirror_shows_every_image_and_stylesheet_from_disk_without_network(tmp_path: Path, cli: Any) -> None:
    with Site() as pages, Site(host="127.0.0.2") as cdn:
        c = cdn.origin
        pages.routes.update({
            "/": html("Home", "/about", extra=(
                f'<link rel="stylesheet" href="{c}/css/main.css?v=3">'
                f'<img id="logo" src="{c}/img/never-fetched.png" srcset="{c}/img/logo.png 1x, {c}/img/logo@2x.png 2x">'
                f'<img id="local" src="/img/photo">'
                '<div class="banner">banner</div>'
                f'<p style="background-image: url({c}/img/dot.png)">inline</p>')),
            "/about": html("About", "/", extra=f'<link rel="stylesheet" href="{c}/css/main.css?v=3">'),
            "/img/photo": reply(200, png(3, 3), "image/png"),   # no extension: named photo.png
        })
        cdn.routes.update({
            "/css/main.css?v=3": reply(200, '@import "base.css";\n'
                                            ".banner { width: 40px; height: 20px; background: url(../img/bg.png) }\n"
                                            '@font-face { font-family: T; src: url("../fonts/t.woff2") format("woff2") }\n'
                                            "p { font-family: T, sans-serif }",
                                       "text/css"),
            "/fonts/t.woff2": reply(200, b"wOF2" + bytes(60), "font/woff2"),
            "/css/base.css": reply(200, "body { color: rgb(1, 2, 3) }", "text/css"),
            "/img/logo.png": reply(200, png(2, 2), "image/png"),
            "/img/logo@2x.png": reply(200, png(4, 4), "image/png"),
            "/img/bg.png": reply(200, png(5, 5), "image/png"),
            "/img/dot.png": reply(200, png(1, 1), "image/png"),
        })
        crawled = cli.in_process("crawl", pages.url("/"), "--page-requisites", "--db", "job.db", "--no-robots",
                                 "--allow-private")   # the "CDN" is on loopback, which no seed names
        assert crawled.returncode == 0, crawled.stderr
        for path in cdn.routes:   # each fetched once, as a requisite of the pages or of a stylesheet
            assert cdn.count(path) == 1, (path, [h.path for h in cdn.hits])
        port = pages.port
    done = cli.in_process("export", "--db", "job.db", "--format", "mirror", "--out", "mirror")
    assert done.returncode == 0, done.stderr
    home = tmp_path / "mirror" / f"127.0.0.1+{port}" / "index.html"

    loaded: list[str] = []
    refused: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("http://**/*", lambda route: (refused.append(route.request.url), route.abort()))
            page.route("https://**/*", lambda route: (refused.append(route.request.url), route.abort()))
            page.on("requestfinished", lambda request: loaded.append(request.url))
            page.goto(home.as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.id, i.naturalWidth, i.currentSrc])")
            color = page.evaluate("getComputedStyle(document.body).color")
            banner = page.evaluate("(() => { const s = getComputedStyle(document.querySelector('.banner'));"
                                   " return [s.width, s.backgroundImage]; })()")
            page.click("text=/about")
            page.wait_for_load_state("load")
            about_url, about_color = page.url, page.evaluate("getComputedStyle(document.body).color")
        finally:
            browser.close()
    assert refused == []
    assert [(i, width) for i, width, _ in images] == [("logo", 2), ("local", 3)]   # logo: the srcset's 1x
    assert all(src.startswith("file://") for _, _, src in images)
    assert color == "rgb(1, 2, 3)"   # the stylesheet @imported by the page's stylesheet applied
    assert banner[0] == "40px"
    assert banner[1].startswith('url("file://')
    assert any(u.endswith("/img/bg.png") for u in loaded)
    assert any(u.endswith("/img/dot.png") for u in loaded)
    assert any(u.startswith("file://") and u.endswith("/fonts/t.woff2") for u in loaded)   # a font in @font-face
    assert about_url == (home.parent / "about.html").as_uri()
    assert about_color == "rgb(1, 2, 3)"
