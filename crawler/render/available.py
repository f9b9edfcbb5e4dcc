"""Can this machine render? Playwright for Python (the extra ``crawler[render]``) and a Chromium.

Playwright's own browser download is never used: the crawler drives the system's Chromium through
``executable_path`` (Debian's ``chromium`` works), found as ``--browser PATH`` or on PATH as
``chromium``, ``chromium-browser`` or ``google-chrome``.
"""

from __future__ import annotations

import importlib
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
    return the browser's path."""
    try:
        importlib.import_module("playwright.async_api")
    except ImportError:
        raise RenderUnavailable("--render needs Playwright for Python: pip install 'crawler[render]' "
                                "(no browser download: the system's Chromium is used)") from None
    return browser_path(settings)
