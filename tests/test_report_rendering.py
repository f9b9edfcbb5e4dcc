"""``crawler report`` on jobs that rendered pages (``--render``): the Rendering section's numbers
(pages by mode and reason, requests refused by why, pages that failed to render) on a job built here
through the schema, and no such section for a job that rendered nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from test_report import P, build

from crawler import report
from crawler.storage.report_queries import ReportReader
from crawler.storage.report_rows import Listing, RenderReason, RenderRefusal

CRASHED = "the page crashed (its renderer died)"
# path: (rendered, render_blocked, render_blocks)
RENDERED = {
    "/a": ("auto: empty #app; 0 chars of text, 1 script; 2 requests, 1 blocked (1 address)", 1,
           {"address": [1, "http://127.0.0.2/secret"]}),
    "/b": ("auto: empty #app; 0 chars of text, 2 scripts; 1 request, 2 blocked (1 robots.txt, 1 address)", 2,
           {"robots.txt": [1, "http://a.test/private/frame"], "address": [1, "http://10.0.0.1/admin"]}),
    "/c": ("auto: little text; 12 chars of text, 1 script; 0 requests, did not settle", 0, None),
    "/d": ("always; 3 requests", 0, None),
    "/old": ("auto: little text; 9 chars of text, 1 script; 1 request, 1 blocked", 1, None),   # rendered before why was kept
}


def rendered_job(path: Path) -> Path:
    pages = [P("/", depth=0), *(P(p) for p in RENDERED), P("/crashed", status=None, error="render_failed", ms=None)]
    build(path, pages)
    conn = sqlite3.connect(path)
    for p, (rendered, blocked, blocks) in RENDERED.items():
        conn.execute("UPDATE pages SET rendered = ?, render_blocked = ?, render_blocks = ? "
                     "WHERE url_id = (SELECT id FROM urls WHERE url = ?)",
                     (rendered, blocked, None if blocks is None else json.dumps(blocks), f"http://a.test{p}"))
    conn.execute("UPDATE pages SET error_message = ? WHERE error = 'render_failed'", (CRASHED,))
    conn.commit()
    conn.close()
    return path


def test_the_report_counts_rendered_pages_by_reason_refused_requests_by_why_and_failures(tmp_path: Path) -> None:
    with ReportReader([rendered_job(tmp_path / "job.db")]) as reader:
        got = reader.rendering(20)
        page = "".join(report.render(report.gather(reader)))
    assert got is not None
    assert got.pages == 5
    assert got.reasons == [RenderReason("auto", "empty #app", 2), RenderReason("auto", "little text", 2),
                           RenderReason("always", "every HTML page", 1)]
    assert got.unsettled == 1
    assert got.blocked == 4
    assert got.refusals == [RenderRefusal("address", 2, 2, "http://10.0.0.1/admin"),
                            RenderRefusal("robots.txt", 1, 1, "http://a.test/private/frame")]
    assert got.failed == Listing([("http://a.test/crashed", CRASHED)], 1)
    assert '<a href="#rendering">Rendering</a>' in page
    section = page[page.index('<section id="rendering"><h2>Rendering</h2>'):]
    section = section[:section.index("</section>")]
    assert "5 pages rendered by a browser, 1 of them taken as they were at their deadline" in section
    assert "1 page failed to render (render_failed)" in section
    assert "a private or loopback address (the SSRF guard)" in section
    assert "a frame robots.txt disallows" in section
    assert "not recorded (rendered before the crawler kept why)" in section
    assert CRASHED in section
    assert page.index('id="statuses"') < page.index('id="rendering"') < page.index('id="depth"')


def test_a_job_that_rendered_nothing_has_no_rendering_section(tmp_path: Path) -> None:
    with ReportReader([build(tmp_path / "job.db", [P("/", depth=0), P("/x")])]) as reader:
        assert reader.rendering(20) is None
        page = "".join(report.render(report.gather(reader)))
    assert 'id="rendering"' not in page
    assert 'href="#rendering"' not in page
