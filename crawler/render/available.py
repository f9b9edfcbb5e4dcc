"""Can this machine render? Playwright for Python (the extra ``crawler[render]``) and a Chromium.

Playwright's own browser download is never used: the crawler drives the system's Chromium through
``executable_path`` (Debian's ``chromium`` works), found as ``--browser PATH`` or on PATH as
``chromium``, ``chromium-browser`` or ``google-chrome``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

from crawler.config import Settings
from crawler.errors import RenderUnavailable

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser_path(settings: Settings) -> str:
    """The browser to launch; ``RenderUnavailable`` when there is none."""
    if settings.browser:
        found = shutil.which(settings.browser)
        if found is None or not os.access(found, os.X_OK):
            raise RenderUnavailable(f"--render: no browser at {settings.browser}: give the path of a Chromium "
                                    "(apt install chromium)")
        return found
    for name in BROWSERS:
        if (found := shutil.which(name)) is not None:
            return found
    raise RenderUnavailable(f"--render needs a Chromium: apt install chromium (or --browser PATH); none of "
                            f"{', '.join(BROWSERS)} is on PATH")


def check_available(settings: Settings) -> str:
    """Raise ``RenderUnavailable`` (one line naming what to install) unless rendering can run;
    return the browser's path. Playwright is looked for, not imported: importing it costs each
    process most of a second of CPU (measured: 0.74 s), which a crawl that renders no page (``auto``
    on a static site) must not pay; it is imported with the first page to render."""
    try:
        found = importlib.util.find_spec("playwright.async_api")
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise RenderUnavailable("--render needs Playwright for Python: pip install 'crawler[render]' "
                                "(no browser download: the system's Chromium is used)") from None
    return browser_path(settings)
