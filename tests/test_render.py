"""Pages built by JavaScript: crawls of a script-built site on loopback with --render never, auto and
always, through Debian's Chromium (skipped where Playwright or a Chromium is missing).

127.0.0.2 stands in for a private address (``forbidden``, as in test_hostile_net.py): the home
page's script calls ``fetch()`` on a server listening there, which must never see a request.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from js_site import BUSY, STATIC, js_site
from site_server import Site, reply

from crawler.addresses import IPAddress
from crawler.config import Settings
from crawler.explain import explain, render
from crawler.scheduler import Crawl

playwright = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH")

PAGES = 12


def forbidden(address: IPAddress) -> bool:
    """The test's stand-in for "private": 127.0.0.2 only."""
    return str(address) == "127.0.0.2"


def crawl(tmp_path: Path, seed: str, **changes: Any) -> dict[str, dict[str, Any]]:
    """Crawl ``seed`` in this process (the SSRF guard forbidding 127.0.0.2); the stored pages by URL."""
    base = {"db": str(tmp_path / "job.db"), "timeout": 10.0, "retries": 0, "render_concurrency": 2}
    settings = replace(Settings(), **(base | changes)).validated()

    async def go() -> None:
        async with asyncio.timeout(120):
            await Crawl(settings, [seed], forbidden=forbidden).run()
    asyncio.run(go())
    conn = sqlite3.connect(settings.db)
    try:
        rows = conn.execute("SELECT u.url, p.status, p.title, p.error, p.rendered, p.render_blocked, p.outlinks "
                            "FROM pages p JOIN urls u ON u.id = p.url_id").fetchall()
    finally:
        conn.close()
    names = ("status", "title", "error", "rendered", "render_blocked", "outlinks")
    return {url: dict(zip(names, rest, strict=True)) for url, *rest in rows}


@pytest.fixture
def private() -> Any:
    with Site({"/secret": reply(200, "secret", "text/plain")}, host="127.0.0.2") as site:
        yield site


def test_without_rendering_a_script_built_site_stores_its_home_page_only(tmp_path: Path, private: Site) -> None:
    with Site(js_site(PAGES, private.origin)) as site:
        home = site.url("/")
        pages = crawl(tmp_path, home, render="never")
    assert list(pages) == [home]
    assert pages[home]["title"] == "Loading"
    assert pages[home]["rendered"] is None


@pytest.mark.parametrize("mode", ["auto", "always"])
def test_rendering_stores_every_page_with_the_title_its_script_sets(tmp_path: Path, private: Site, mode: str) -> None:
    with Site(js_site(PAGES, private.origin)) as site:
        pages = crawl(tmp_path, site.url("/"), render=mode)
        urls = [site.url("/" if number == 0 else f"/p/{number}") for number in range(PAGES)]
    assert set(pages) == set(urls)
    for number, url in enumerate(urls):
        page = pages[url]
        assert (page["status"], page["error"], page["title"]) == (200, None, f"Page {number} (by script)")
        assert page["rendered"].startswith("always" if mode == "always" else "auto: empty #app")
    assert private.counts() == {}   # the private stand-in never saw a request
    home = pages[urls[0]]
    assert home["render_blocked"] == 1
    answer = explain(tmp_path / "job.db", urls[0])
    assert "1 blocked" in answer["page"]["rendered"]
    assert "rendered auto: empty #app" in render(answer) or mode == "always"


def test_under_auto_a_static_page_is_not_rendered_and_under_always_it_is(tmp_path: Path) -> None:
    routes = {"/": STATIC}
    with Site(routes) as site:
        home = site.url("/")
        auto = crawl(tmp_path / "auto", home, render="auto")
        always = crawl(tmp_path / "always", home, render="always")
    assert auto[home]["rendered"] is None
    assert always[home]["rendered"].startswith("always")
    assert auto[home]["title"] == always[home]["title"] == "A static page"


def test_a_page_that_never_settles_is_taken_as_it_is_at_its_deadline(tmp_path: Path) -> None:
    with Site({"/": BUSY, "/api/0.json": reply(200, "{}", "application/json")}) as site:
        pages = crawl(tmp_path, site.url("/"), render="auto", timeout=3.0)
        home = pages[site.url("/")]
    assert (home["status"], home["error"], home["title"]) == (200, None, "Busy")
    assert "did not settle" in home["rendered"]


def test_render_without_playwright_is_one_line_naming_the_extra_and_exit_2(cli: Any, monkeypatch: pytest.MonkeyPatch,
                                                                        site: Site) -> None:
    monkeypatch.setitem(sys.modules, "playwright.async_api", None)   # as if the extra were not installed
    line = cli.fails(2, "crawl", site.url("/"), "--render", "auto")
    assert "pip install 'crawler[render]'" in line
    assert not (cli.cwd / "data" / "crawl.db").exists()


def test_render_without_a_browser_is_one_line_naming_it_and_exit_2(cli: Any, site: Site) -> None:
    line = cli.fails(2, "crawl", site.url("/"), "--render", "always", "--browser", "/nowhere/chromium")
    assert "no browser at /nowhere/chromium" in line


def test_a_rendered_page_is_archived_as_its_response_and_a_conversion_record_and_counted_by_stats(
        tmp_path: Path, private: Site, cli: Any) -> None:
    from warcio.archiveiterator import ArchiveIterator
    with Site(js_site(2, private.origin)) as site:
        home = site.url("/")
        crawl(tmp_path, home, render="auto")
    db, archive = tmp_path / "job.db", tmp_path / "job.warc"
    assert cli.in_process("export", "--db", db, "--format", "warc", "--out", archive).returncode == 0
    records = {}
    with archive.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_headers.get_header("WARC-Target-URI") == home:
                records[record.rec_type] = (record.rec_headers, record.content_stream().read())
    response, conversion = records["response"], records["conversion"]
    assert b'<div id="app"></div>' in response[1]
    assert b"<title>Loading</title>" in response[1]
    assert "<title>Page 0 (by script)</title>" in conversion[1].decode("utf-8-sig")
    assert conversion[0].get_header("WARC-Refers-To") == response[0].get_header("WARC-Record-ID")
    assert conversion[0].get_header("Content-Type") == "text/html; charset=utf-8"
    assert cli.stats(db)["rendered"] == {"pages": 2, "blocked": 1}
    assert "rendered     2 pages by a browser, 1 request of theirs blocked" in cli.in_process("stats", "--db", db).stdout


def test_a_frame_is_loaded_only_in_scope_and_where_robots_txt_allows_it(tmp_path: Path) -> None:
    from js_site import shell
    script = ("document.title = 'Framed';"
              "for (const src of ['/private/page', 'http://localhost:' + location.port + '/other', '/open']) {"
              " const frame = document.createElement('iframe'); frame.src = src; document.body.appendChild(frame); }")
    routes = {"/": shell(script), "/robots.txt": reply(200, "User-agent: *\nDisallow: /private/\n", "text/plain"),
              "/private/page": reply(200, "<p>private</p>", "text/html"), "/open": reply(200, "<p>open</p>", "text/html"),
              "/other": reply(200, "<p>other</p>", "text/html")}
    with Site(routes) as site:
        home = site.url("/")
        pages = crawl(tmp_path, home, render="auto")
        counts = site.counts()
        framed = site.url("/open")
    assert pages[home]["title"] == "Framed"
    assert pages[home]["render_blocked"] == 2   # the disallowed frame, and the one on another host
    # Once as the page's frame in the browser, once crawled itself: the rendered DOM's iframe is a
    # reference in scope, crawled as a page (docs/usage.md, "Every reference is a link").
    assert counts.get("/open") == 2
    assert pages[framed]["status"] == 200
    assert "/private/page" not in counts
    assert "/other" not in counts


def test_the_report_shows_the_rendered_pages_and_the_refused_request_by_why(tmp_path: Path, private: Site,
                                                                          cli: Any) -> None:
    with Site(js_site(2, private.origin)) as site:
        home = site.url("/")
        crawl(tmp_path, home, render="auto")
    db, page = tmp_path / "job.db", tmp_path / "report.html"
    assert cli.in_process("report", "--db", db, "--out", page).returncode == 0
    html = page.read_text(encoding="utf-8")
    section = html[html.index('<section id="rendering">'):]
    section = section[:section.index("</section>")]
    assert "2 pages rendered by a browser" in section
    assert "<td>auto</td><td>empty #app</td>" in section
    assert "a private or loopback address (the SSRF guard)" in section
    assert f"{private.origin}/secret" in section
    assert "1 blocked (1 address)" in explain(db, home)["page"]["rendered"]


def test_a_crawl_under_auto_that_renders_no_page_never_imports_playwright(tmp_path: Path) -> None:
    import subprocess
    program = ("import asyncio, sys\n"
               "from dataclasses import replace\n"
               "from crawler.config import Settings\n"
               "from crawler.scheduler import Crawl\n"
               f"settings = replace(Settings(), db={str(tmp_path / 'job.db')!r}, render='auto',\n"
               "                   workers=1).validated()   # pages visited here, as in a worker process\n"
               "asyncio.run(Crawl(settings, [sys.argv[1]]).run())\n"
               "print(sorted(m for m in sys.modules if m.startswith('playwright.')))   # the package itself is looked into\n")
    with Site({"/": STATIC}) as site:
        done = subprocess.run([sys.executable, "-c", program, site.url("/")], capture_output=True, text=True,
                              timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"   # importing it costs each process most of a second of CPU
