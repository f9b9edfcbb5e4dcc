"""One Chromium per process, bounded and recycled (Playwright for Python, the system's browser).

- At most ``concurrency`` pages open at once, each a new page of the browser's one context (as
  tabs of one browser window: a fresh context per page cost 2.5 times as much time, measured),
  with downloads refused and service workers blocked (so that every request of the page passes
  through ``page.route``). The context goes with the browser, at the latest after ``RECYCLE_PAGES``.
- The browser has no network of its own: every host name resolves to nothing and every
  connection would go to a proxy where nothing listens (``LAUNCH_ARGS``). What a page loads is
  what the router fetched for it through the crawler's gate (``gate.py``).
- Recycled: after ``RECYCLE_PAGES`` pages, or once its process tree's memory (PSS, read every
  ``MEMORY_EVERY`` seconds at most) passes ``MEMORY_CAP``, the browser takes no new page, and is
  replaced when its open pages are done. A browser that crashed or hung is replaced at once
  (``broken``): its pages fail with the retryable ``render_failed``.
- It dies with the crawl: Playwright's driver closes it when its stdin closes (the crawl died),
  and Chromium itself is started under ``setpriv --pdeathsig KILL``, so a driver killed with -9
  takes the browser with it. ``__aexit__`` closes it on every other way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import psutil
from playwright.async_api import Browser as PlaywrightBrowser
from playwright.async_api import BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from crawler.config import Settings

RECYCLE_PAGES = 200                 # pages a browser renders before a fresh one takes over
MEMORY_CAP = 1024 * 1024 * 1024     # bytes of PSS, summed over the browser's processes (see docs/rendering.md)
MEMORY_EVERY = 5.0                  # seconds between two readings of the browser's memory (each costs a few ms)
CLOSE_WITHIN = 5.0                  # seconds a browser gets to close before its processes are killed
OPEN_WITHIN = 60.0                  # seconds to launch a browser and open a page in it, however loaded the machine
LAUNCH_ARGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND",       # no name resolves inside the browser ...
    "--proxy-server=socks5://127.0.0.1:9",        # ... and no connection leaves it (port 9: discard, closed)
    "--proxy-bypass-list=<-loopback>",            # not even to loopback, which proxies skip by default
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage",
)


class BrowserBroken(Exception):
    """The browser crashed, hung or could not start: the page fails, a fresh browser takes over."""


class Browser:
    """The process's browser; ``async with Browser(settings, path, concurrency) as browser``."""

    def __init__(self, settings: Settings, path: str, concurrency: int) -> None:
        self.settings = settings
        self.path = path
        self.open_pages = asyncio.Semaphore(concurrency)
        self.launches = 0
        self.peak_memory = 0                 # the most memory seen (``memory``)
        self._playwright: Playwright | None = None
        self._browser: PlaywrightBrowser | None = None
        self._context: BrowserContext | None = None   # the browser's one context: every page opens in it
        self._served = 0                     # pages since this browser was launched
        self._open = 0
        self._retiring = False
        self._measured = 0.0                 # when the memory was last read (monotonic)
        self._changed = asyncio.Condition()
        self._dir = Path(tempfile.mkdtemp(prefix="crawler-render-"))

    async def __aenter__(self) -> Browser:
        return self   # Playwright's driver (a node process, ~100 MB) starts with the first page that needs it

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._close()
        finally:
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._playwright.stop(), CLOSE_WITHIN)
                self._playwright = None
            self._kill_leftovers(driver=True)
            shutil.rmtree(self._dir, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def page(self) -> AsyncIterator[Page]:
        """A new page of a live browser; closed on the way out. A browser that turns out to be
        broken is retired (the caller raises ``BrowserBroken`` or the page's error)."""
        async with self.open_pages:
            browser, context = await self._take()
            try:
                async with asyncio.timeout(OPEN_WITHIN):
                    page = await context.new_page()
            except (PlaywrightError, TimeoutError) as exc:
                await self._give_back(broken=True)
                raise BrowserBroken(f"the browser could not open a page: {str(exc)[:200]}") from None
            broken = False
            try:
                yield page
            except BaseException:
                broken = not browser.is_connected()
                raise
            finally:
                try:
                    await asyncio.wait_for(page.close(), CLOSE_WITHIN)
                except (PlaywrightError, TimeoutError):
                    broken = True   # a renderer that cannot even close its page: hung
                await self._give_back(broken=broken)

    async def _take(self) -> tuple[PlaywrightBrowser, BrowserContext]:
        """The live browser and its context, launched or replaced first where needed; counts one
        more open page."""
        async with self._changed:
            # A retiring browser takes no new page; it goes once its open pages are done.
            await self._changed.wait_for(lambda: not self._retiring or self._open == 0)
            if self._retiring or (self._browser is not None and not self._browser.is_connected()):
                await self._close()
            if self._browser is None or self._context is None:
                self._browser, self._context = await self._launch()
                self._served, self._retiring = 0, False
            self._open += 1
            self._served += 1
            if self._served >= RECYCLE_PAGES:
                self._retiring = True
            return self._browser, self._context

    async def _give_back(self, *, broken: bool) -> None:
        async with self._changed:
            self._open -= 1
            if broken:
                self._retiring = True
            elif not self._retiring and time.monotonic() >= self._measured + MEMORY_EVERY:
                self._measured = time.monotonic()
                memory = self.memory()
                self.peak_memory = max(self.peak_memory, memory)
                self._retiring = memory > MEMORY_CAP
            if self._retiring and self._open == 0:
                await self._close()
            self._changed.notify_all()

    async def _launch(self) -> tuple[PlaywrightBrowser, BrowserContext]:
        if self._playwright is None:
            try:
                self._playwright = await async_playwright().start()
            except Exception as exc:   # the driver would not start: no page can be rendered now
                raise BrowserBroken(f"Playwright's driver did not start: {str(exc)[:200]}") from None
        # Chromium gets SIGKILL when its parent (Playwright's driver) dies, however it dies.
        wrapper = self._dir / "chromium"
        if not wrapper.exists():
            wrapper.write_text(f'#!/bin/sh\nexec setpriv --pdeathsig KILL -- "{self.path}" "$@"\n', encoding="utf-8")
            wrapper.chmod(0o700)
        executable = str(wrapper) if shutil.which("setpriv") else self.path
        args = [*LAUNCH_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]   # root has no user namespace sandbox
        try:
            browser = await self._playwright.chromium.launch(executable_path=executable, headless=True, args=args,
                                                             timeout=OPEN_WITHIN * 1000)
            context = await asyncio.wait_for(browser.new_context(
                accept_downloads=False, service_workers="block", user_agent=self.settings.user_agent), OPEN_WITHIN)
        except (PlaywrightError, TimeoutError) as exc:
            self._kill_leftovers()
            raise BrowserBroken(f"the browser did not start: {str(exc).splitlines()[0][:200]}") from None
        self.launches += 1
        return browser, context

    async def _close(self) -> None:
        """Close the browser (if any); kill its processes if it does not close in time."""
        browser, self._browser, self._context = self._browser, None, None
        if browser is None:
            return
        try:
            await asyncio.wait_for(browser.close(), CLOSE_WITHIN)
        except (PlaywrightError, TimeoutError):
            self._kill_leftovers()

    def memory(self) -> int:
        """Bytes of memory of the browser's processes (Playwright's driver, Chromium and its
        helpers, under this process): their proportional set sizes summed, so that the pages they
        share (Chromium's code, mapped by each of its ten or so processes) count once, as the
        machine pays for them. Summed RSS would count them ten times over: about 2.5 times PSS."""
        total = 0
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if _is_browser(child):
                    total += child.memory_full_info().pss
        return total

    @staticmethod
    def _kill_leftovers(*, driver: bool = False) -> None:
        """SIGKILL every Chromium process under this one (there is one browser per process), and
        with ``driver`` Playwright's driver too."""
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if _is_browser(child, driver=driver):
                    child.kill()


def _is_browser(process: psutil.Process, *, driver: bool = True) -> bool:
    """Chromium's processes (the browser, renderers, helpers) and, with ``driver``, Playwright's node."""
    name = process.name().lower()
    return "chrom" in name or name == "setpriv" or (driver and name.startswith("node"))   # node-MainThread
