"""The report in a real browser: a small site served here is crawled and its report rendered by
headless Chromium. With every host resolving nowhere (``--host-resolver-rules``, which also stops
requests to IP addresses), ``--dump-dom`` must show every section and chart and the page's script
run (under the page's own Content-Security-Policy): the page needs no network. With the network
left open, ``--screenshot`` must make no request at all: hostile titles and anchors of the crawled
site point at a server of ours (the canary) that counts what it is asked for, and a page that does
load from it shows that the canary would see a request.

Skipped where no Chromium is installed (``apt-get install chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CLI
from site_server import Site, html, redirect, reply

from crawler import report

BROWSER = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed (apt-get install -y chromium)")


NOWHERE = "--host-resolver-rules=MAP * ~NOTFOUND"


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``page``; ``args`` such as ``--dump-dom`` or ``NOWHERE``."""
    command = [str(BROWSER), "--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args, page.as_uri()]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")   # Chromium refuses to run as root with its sandbox
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_the_report_renders_completely_in_chromium_without_any_request(tmp_path: Path) -> None:
    with Site() as canary, Site() as site:
        bait = (f'<img src="{canary.url("/img")}"><link rel=stylesheet href="{canary.url("/css")}">'
                f'<script src="{canary.url("/js")}"></script>')
        site.routes.update({
            # the anchor's text, once decoded, is markup that would fetch from the canary
            "/": html(f"Home {bait}", "/a", "/b", "/moved", "http://elsewhere.invalid/",
                      extra=f'<a href="/gone">Gone &lt;img src={canary.url("/anchor")}&gt;</a>'),
            "/a": html("A", "/gone"),
            "/b": html(f"B <style>@import url({canary.url('/import')})</style>"),
            "/gone": reply(404, "not here", "text/html"),
            "/moved": redirect("/a"),
        })
        origin = site.origin
        cli = CLI(tmp_path)
        crawled = cli.in_process("crawl", site.url("/"), "--db", "job.db", "--no-robots", "--timeout", "5", "--retries", "0")
        assert crawled.returncode == 0, crawled.stderr
        done = cli.in_process("report", "--db", "job.db", "--out", "report.html")
        assert done.returncode == 0, done.stderr
        page = tmp_path / "report.html"

        dom = chromium(page, tmp_path / "profile", NOWHERE, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = chromium(page, tmp_path / "profile", "--window-size=1280,1600", f"--screenshot={tmp_path / 'shot.png'}")
        assert shot.returncode == 0, shot.stderr[-2000:]
        assert canary.counts() == {}, f"the report made requests: {canary.counts()}"

        # the control: a page that does load from the canary is seen doing so
        leaky = tmp_path / "leaky.html"
        leaky.write_text(f'<!DOCTYPE html><p>leak</p><img src="{canary.url("/control")}">', encoding="utf-8")
        chromium(leaky, tmp_path / "profile", f"--screenshot={tmp_path / 'leaky.png'}")
        assert canary.count("/control") == 1

    rendered = dom.stdout
    assert re.search(r'<html[^>]*data-ready="yes"', rendered), "the page's script did not run"
    for sid, title in report.SECTIONS:
        assert re.search(rf'<section id="{sid}"><h2>{re.escape(title)}</h2>', rendered), sid
    for chart in report.CHARTS:
        svg = re.search(rf'<svg id="{chart}"[^>]*>(.*?)</svg>', rendered, re.S)
        assert svg is not None, chart
        assert re.search(r"<(rect|polyline|polygon)\b", svg.group(1)), f"{chart} draws nothing"
    # the broken link, with the pages that link to it and the anchor texts, hostile parts as text
    row = re.search(rf'<tr><td class="u"><a href="{re.escape(origin + "/gone")}".*?</tr>', rendered, re.S)
    assert row is not None
    assert f'href="{origin}/a"' in row.group(0)
    assert f'href="{origin}/"' in row.group(0)
    assert "<q>Gone &lt;img src=" in row.group(0)
    assert "<img" not in rendered
    assert "<link rel" not in rendered
    png = (tmp_path / "shot.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000
