"""Extraction plugins for the tests (``--plugin extraction_plugin:NAME``): a module of its own, so that
a parse process can import it by name."""

from __future__ import annotations

import os
import time
from typing import Any

from crawler.extraction.plugin import Page

NOT_CALLABLE = 3


def sizes(page: Page) -> dict[str, Any]:
    """What the plugin sees of a page; it raises on a page whose URL ends in /boom."""
    if page.url.endswith("/boom"):
        raise ValueError("no price on this page")
    return {"links": len(page.tree.css("a[href]")), "status": page.status,
            "type": page.headers.get("content-type"), "chars": len(page.text), "heading": "from the plugin"}


def not_a_dict(page: Page) -> Any:
    return [page.url]


def stall(page: Page) -> dict[str, Any]:
    """Hangs on the page whose URL ends with $STALL_ON (a run the test kills midway); else adds nothing."""
    if page.url.endswith(os.environ.get("STALL_ON", "\0")):
        time.sleep(120)
    return {}
