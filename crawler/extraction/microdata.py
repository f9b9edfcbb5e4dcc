"""Microdata through extruct's W3C reader: the one foreign library of extraction, behind one boundary.

extruct is the ``microdata`` extra (``pip install 'crawler[microdata]'``); ``crawler.extraction.
structured`` imports this module only when a page has an ``itemscope``, and goes without microdata
when extruct is not installed.
"""

from __future__ import annotations

from typing import Any

import lxml.etree
import lxml.html
from extruct.w3cmicrodata import LxmlMicrodataExtractor

_READER = LxmlMicrodataExtractor()   # holds only its options: safe to share between pages and threads


def read_microdata(html: str, url: str) -> tuple[Any, ...] | None:
    """The top-level microdata items of a page's HTML, URLs resolved against ``url``; None when it has
    none, or when lxml or extruct cannot read it (a hostile page is never fatal)."""
    try:
        items = _READER.extract_items(lxml.html.fromstring(html), url)
    except (lxml.etree.LxmlError, ValueError, RecursionError):
        return None
    return tuple(items) or None
