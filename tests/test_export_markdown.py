"""``--format markdown``: each page's main content as Markdown, as JSON lines or a .md file per page."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI

from crawler import export
from crawler.export import markdown
from crawler.export.base import Selection
from crawler.models import Extracted, FrontierItem, PageRecord
from crawler.storage.jobfile import JobFile
from crawler.storage.pages import PageStore

INTRO = """<!doctype html><html><head><title>Intro</title></head><body>
<nav><a href="/">Home</a> menu text</nav>
<main><h1>Introduction</h1><p>Read the <a href="next.html">next page</a> first.</p>
<pre><code>print("hi")</code></pre><script>var tracking = 1;</script></main>
<footer>footer text</footer></body></html>"""
LONG = "http://a.test/" + "/".join(["segment"] * 60)
TRAVERSAL = "http://a.test/../../etc/passwd"


def page(url_id: int, url: str, html: str, **more: Any) -> tuple[str, PageRecord]:
    body = html.encode()
    return url, PageRecord(url_id, 0, f"2026-11-29T00:00:{url_id:02}Z", final_url=url, status=200,
                           content_type="text/html", title=f"title {url_id}", body=body, size=len(body), **more)


def job(path: Path) -> Path:
    pages = [
        page(1, "http://a.test/docs/intro.html", INTRO, content_hash="intro",
             extracted=Extracted(data={"heading": "Introduction", "version": 3.11, "title": "not the page's"})),
        page(2, "http://a.test/docs/intro-copy.html", INTRO, content_hash="intro"),   # an exact duplicate
        page(3, TRAVERSAL, "<p>up and out</p>", simhash=12345),
        page(4, "http://a.test/near", "<p>up and out!</p>", simhash=12345 ^ 1),          # a near-duplicate
        page(5, LONG, "<p>deep</p>"),
        (f"http://a.test/{6}", PageRecord(6, 0, "2026-11-29T00:00:06Z", status=404, content_type="text/html",
                                          body=b"<p>gone</p>", error="http_error")),
        (f"http://a.test/{7}", PageRecord(7, 0, "2026-11-29T00:00:07Z", status=200, content_type="image/png",
                                          body=b"\x89PNG")),
    ]

    async def go() -> None:
        async with JobFile(path) as jobfile:
            store = PageStore(jobfile)
            await store.remember([FrontierItem(r.url_id, url, 0, host="a.test") for url, r in pages])
            await store.store([r for _, r in pages])
    asyncio.run(go())
    return path


def test_markdown_lines_hold_each_pages_main_content_with_absolute_links_and_no_duplicates(tmp_path: Path) -> None:
    db = job(tmp_path / "job.db")
    out = tmp_path / "pages.jsonl"
    assert export.write_file(out, "markdown", [db], Selection()) == 3
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["url"] for r in records] == ["http://a.test/docs/intro.html", TRAVERSAL, LONG]
    intro = records[0]
    assert intro["title"] == "title 1"
    assert intro["markdown"].startswith("# Introduction\n")
    assert "[next page](http://a.test/docs/next.html)" in intro["markdown"]
    assert '```\nprint("hi")\n```' in intro["markdown"]
    assert "menu text" not in intro["markdown"]
    assert "footer text" not in intro["markdown"]
    assert "tracking" not in intro["markdown"]
    assert intro["data"] == {"heading": "Introduction", "version": 3.11, "title": "not the page's"}
    assert "data" not in records[1]


def front(text: str) -> dict[str, Any]:
    head, sep, _ = text.removeprefix("---\n").partition("\n---\n\n")
    assert sep
    return {key.strip('"'): json.loads(value) for key, _, value in (line.partition(": ") for line in head.splitlines())}


def test_a_folder_gets_a_md_file_per_page_with_front_matter_and_safe_names(tmp_path: Path, cli: CLI) -> None:
    db = job(tmp_path / "job.db")
    done = cli("export", "--db", db, "--format", "markdown", "--out", "corpus/")
    assert done.returncode == 0, done.stderr
    assert "3 pages written to corpus/" in done.stderr + done.stdout
    folder = tmp_path / "corpus"
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "a.test_-_-_etc_passwd-cc87b920c8.md"
    assert names[1] == "a.test_docs_intro.html.md"
    assert names[2].startswith("a.test_segment_segment_")
    assert len(names[2]) <= 124
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "job.db"]   # nothing written beside it
    text = (folder / "a.test_docs_intro.html.md").read_text(encoding="utf-8")
    assert front(text) == {"url": "http://a.test/docs/intro.html", "title": "title 1",
                           "fetched_at": "2026-11-29T00:00:01Z", "heading": "Introduction", "version": 3.11}
    assert text.split("\n---\n\n", 1)[1].startswith("# Introduction\n")


def test_a_folder_export_that_fails_midway_leaves_the_earlier_one(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db = job(tmp_path / "job.db")
    folder = tmp_path / "corpus"
    assert export.write_file(f"{folder}/", "markdown", [db], Selection()) == 3
    before = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    converted = []

    def failing(html: str, base_url: str | None) -> str:
        converted.append(base_url)
        if len(converted) == 2:
            raise OSError("disk full")
        return "new\n"
    monkeypatch.setattr(markdown, "page_markdown", failing)
    with pytest.raises(OSError, match="disk full"):
        export.write_file(folder, "markdown", [db], Selection())
    assert {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "job.db"]
    monkeypatch.undo()
    (folder / "stale.md").write_text("from an older export", encoding="utf-8")
    assert export.write_file(folder, "markdown", [db], Selection()) == 3
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)


def test_front_matter_holds_any_title_and_field_name_on_one_line_each() -> None:
    page = {"url": "http://a.test/", "title": 'Evil\n---\nlayout: "x"', "fetched_at": "2026-11-29T00:00:00Z",
            "data": {"on": "yes", "a b": [1, "ü"], "": None}}
    text = markdown.front_matter(page)
    assert text.count("\n---\n") == 1   # the closing line, and no other
    assert front(text + "body") == {"url": "http://a.test/", "title": 'Evil\n---\nlayout: "x"',
                                    "fetched_at": "2026-11-29T00:00:00Z", "on": "yes", "a b": [1, "ü"], "": None}
    assert '"on": "yes"' in text   # YAML 1.1 would read a plain on as true
