"""The browser's life: a hung page fails with the retryable render_failed and the next page still
renders; a browser that dies mid-page is replaced; a crawl killed with -9 leaves no Chromium behind
and its resume stores every page once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest
from js_site import BUSY, js_site, shell
from site_server import Reply, Site, Slow, reply

from crawler.config import Settings
from crawler.scheduler import Crawl

pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium on PATH")

HANG = shell("document.title = 'Hung'; while (true) {}")


def run(settings: Settings, *seeds: str) -> Crawl:
    job = Crawl(settings, list(seeds), forbidden=lambda address: False)

    async def go() -> None:
        async with asyncio.timeout(120):
            await job.run()
    asyncio.run(go())
    return job


def pages(db: str | Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT u.url, p.status, p.title, p.error, p.rendered FROM pages p "
                            "JOIN urls u ON u.id = p.url_id").fetchall()
    finally:
        conn.close()
    return {url: tuple(rest) for url, *rest in rows}


def browsers(pid: int | None = None) -> list[psutil.Process]:
    """Chromium processes under this test process (or under ``pid``)."""
    found = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    for process in children:
        try:
            if "chrom" in process.name().lower():
                found.append(process)
        except psutil.Error:
            pass   # gone while we looked
    return found


def settings(tmp_path: Path, **changes: Any) -> Settings:
    base = {"db": str(tmp_path / "job.db"), "render": "always", "render_concurrency": 1, "robots": False}
    return replace(Settings(), **(base | changes)).validated()


def test_a_hung_page_fails_with_render_failed_and_the_next_page_still_renders(tmp_path: Path) -> None:
    ok = shell("document.title = 'Fine'")
    with Site({"/hang": HANG, "/ok": Slow(1.0, ok)}) as site:
        config = settings(tmp_path, timeout=4.0, retries=0)
        started = time.monotonic()
        run(config, site.url("/hang"), site.url("/ok"))
        took = time.monotonic() - started
        found = pages(config.db)
        hang, fine = site.url("/hang"), site.url("/ok")
    assert found[hang][:3] == (None, None, "render_failed")
    assert found[fine][:3] == (200, "Fine", None)
    assert "did not settle" not in found[fine][3]
    assert took < 30
    assert not browsers()   # closed with the crawl


def test_a_browser_that_dies_mid_page_is_replaced_and_the_page_retried(tmp_path: Path) -> None:
    killed = threading.Event()

    def kill_browser_soon() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed.is_set():
            found = browsers()
            main = [p for p in found if "--type=" not in " ".join(_cmdline(p))]
            if main and any("--type=renderer" in " ".join(_cmdline(p)) for p in found):
                time.sleep(0.5)   # the page is open and busy by now (it polls for 6 s)
                for process in main:
                    process.kill()
                killed.set()
            time.sleep(0.05)

    with Site({"/": BUSY, "/api/0.json": reply(200, "{}", "application/json")}) as site:
        config = settings(tmp_path, timeout=8.0, retries=1, retry_backoff=0.01)
        killer = threading.Thread(target=kill_browser_soon)
        killer.start()
        job = run(config, site.url("/"))
        killer.join()
        found = pages(config.db)
        home = site.url("/")
    assert killed.is_set()
    assert job.stats.retries == 1
    assert found[home][:3] == (200, "Busy", None)


def test_kill_9_mid_crawl_leaves_no_chromium_and_the_resume_stores_every_page_once(tmp_path: Path, cli: Any) -> None:
    count = 24
    routes: dict[str, Any] = js_site(count)
    for path, route in list(routes.items()):
        if path.startswith("/api/") and isinstance(route, Reply):
            routes[path] = Slow(0.3, route)   # slow enough to be killed mid-way
    with Site(routes) as site:
        db = tmp_path / "job.db"
        crawl = cli.popen("crawl", site.url("/"), "--db", db, "--render", "always", "--quiet", "--workers", "2",
                          new_session=True)
        try:
            seen: set[int] = set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (len(seen) >= 2 and _stored(db) >= 3):
                seen |= {p.pid for p in browsers(crawl.pid)}
                time.sleep(0.1)
            assert seen, "no Chromium was seen under the crawl"
            assert _stored(db) >= 3, "the crawl never got to rendering"
            os.killpg(crawl.pid, signal.SIGKILL)   # the crawl, its workers and Playwright's drivers at once
            crawl.communicate(timeout=10)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(psutil.pid_exists(pid) and _alive(pid) for pid in seen):
                time.sleep(0.1)
            assert not [pid for pid in seen if psutil.pid_exists(pid) and _alive(pid)], "Chromium outlived the crawl"
        finally:
            cli.stop(crawl)
        done = cli("crawl", "--db", db, "--render", "always", "--quiet", timeout=180)
        assert done.returncode == 0, done.stderr
        found = pages(db)
        urls = {site.url("/")} | {site.url(f"/p/{n}") for n in range(1, count)}
    assert set(found) == urls
    assert all(row[:3] == (200, f"Page {_number(url)} (by script)", None) for url, row in found.items())


def _stored(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return ["--type=gone"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _number(url: str) -> int:
    path = url.split("/", 3)[3]
    return int(path.rsplit("/", 1)[1]) if path else 0


@pytest.mark.parametrize(("pages", "cap", "launches"), [(2, 1 << 40, 2), (1000, 1, 3)])
def test_a_browser_is_replaced_after_its_pages_or_past_its_memory_cap(monkeypatch: pytest.MonkeyPatch, pages: int,
                                                                      cap: int, launches: int) -> None:
    from crawler.render import browser as module
    monkeypatch.setattr(module, "RECYCLE_PAGES", pages)
    monkeypatch.setattr(module, "MEMORY_CAP", cap)
    monkeypatch.setattr(module, "MEMORY_EVERY", 0.0)

    async def go() -> tuple[int, int]:
        async with module.Browser(Settings(), shutil.which("chromium") or "", 1) as browser:
            for _ in range(3):
                async with browser.page() as page:
                    await page.set_content("<title>x</title>")
            return browser.launches, browser.peak_memory
    launched, peak = asyncio.run(go())
    assert launched == launches
    assert peak > 0 if cap == 1 else True
    assert not browsers()



def test_a_renderer_that_crashes_fails_only_its_page_at_once_and_the_browser_goes_on(tmp_path: Path) -> None:
    crashed, done = threading.Event(), threading.Event()
    mains: set[int] = set()
    when: list[float] = []

    def crash_the_renderer(site: Site) -> None:
        """Kill the page's renderer process once it waits for its slow request (Chromium's page
        crash: the browser itself lives on), and note every browser seen until the crawl ends."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not done.is_set():
            found = browsers()
            mains.update(p.pid for p in found if _parent_name(p).startswith("node"))   # launched by Playwright's driver
            if not crashed.is_set() and site.counts().get("/slow", 0) >= 1:
                for process in found:
                    if "--type=renderer" in " ".join(_cmdline(process)):
                        process.kill()
                when.append(time.monotonic())
                crashed.set()
            time.sleep(0.05)

    hold = shell("document.title = 'Holding'; fetch('/slow');")
    ok = shell("document.title = 'Fine'")
    routes = {"/hold": hold, "/slow": Slow(40.0, reply(200, "{}", "application/json")), "/ok": Slow(1.0, ok)}
    with Site(routes) as site:
        config = settings(tmp_path, timeout=40.0, retries=0)
        killer = threading.Thread(target=crash_the_renderer, args=(site,))
        killer.start()
        try:
            run(config, site.url("/hold"), site.url("/ok"))
        finally:
            done.set()
            killer.join()
        ended = time.monotonic()
        found = pages(config.db)
        held, fine = site.url("/hold"), site.url("/ok")
    assert crashed.is_set()
    assert found[held][:3] == (None, None, "render_failed")
    assert found[fine][:3] == (200, "Fine", None)
    assert ended - when[0] < 20   # failed at the crash, not when its settling time (30 s) ran out
    assert len(mains) == 1   # the same browser rendered the next page
    assert error_message(config.db, held) == "the page crashed (its renderer died)"


def _parent_name(process: psutil.Process) -> str:
    try:
        parent = process.parent()
        return "" if parent is None else parent.name().lower()
    except psutil.Error:
        return ""


def error_message(db: str | Path, url: str) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT p.error_message FROM pages p JOIN urls u ON u.id = p.url_id WHERE u.url = ?",
                           (url,)).fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]
