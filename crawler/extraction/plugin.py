"""The Python hook for what a rules file cannot say: ``--plugin module:function``.

The function is imported by the path the user gives on the command line or in their config (the
current directory is on the import path, as for ``python -m``); nothing is ever loaded from a
crawled page or from anywhere remote. It is checked before the first request (``load``), and
called in the parse stage, in every parse mode (a parse process imports it once), with a read-only
``Page``. It returns a dict of JSON values, merged into the page's ``data`` (its keys win over the
rules' fields of the same name). An exception in it, or a value that is no such dict, is recorded
on that page as ``extract_failed`` with its message; the crawl goes on.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from crawler.errors import PluginError
from crawler.models import Extracted

# An error message kept on a page is cut to this many characters.
_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class Page:
    """What a plugin is given: the page's (final) URL, its status, its response headers (lower-case
    names), its parsed tree (selectolax ``LexborHTMLParser``: read it, do not change it) and its
    HTML as decoded text."""

    url: str
    status: int
    headers: Mapping[str, str]
    tree: LexborHTMLParser
    text: str


Plugin = Callable[[Page], Any]


@lru_cache(maxsize=4)
def load(path: str) -> Plugin:
    """The function ``module:function`` names; a ``PluginError`` when it cannot be imported or is
    not callable. Imported once per process."""
    module_name, colon, name = path.partition(":")
    if not colon or not module_name.strip() or not name.strip():
        raise PluginError(f"--plugin {path!r}: give it as module:function (e.g. myplugin:extract)")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())   # as ``python -m`` does: a plugin next to the job is found
    try:
        module = importlib.import_module(module_name.strip())
    except Exception as exc:   # ImportError, or whatever the module raises as it runs
        raise PluginError(f"--plugin {path!r}: cannot import {module_name.strip()}: "
                          f"{type(exc).__name__}: {exc}") from None
    function: Any = module
    for part in name.strip().split("."):
        function = getattr(function, part, None)
        if function is None:
            raise PluginError(f"--plugin {path!r}: module {module_name.strip()} has no {name.strip()}")
    if not callable(function):
        raise PluginError(f"--plugin {path!r}: {name.strip()} is not callable")
    found: Plugin = function
    return found


def apply(path: str, page: Page, found: Extracted | None) -> Extracted:
    """``found`` (what the rules gave, if anything) with what the plugin at ``path`` returns for
    ``page`` merged into its data; ``extract_failed`` on it when the plugin fails."""
    found = found or Extracted()
    try:
        result = load(path)(page)
        if not isinstance(result, dict):
            raise TypeError(f"the plugin returned {type(result).__name__}, not a dict")
        json.dumps(result, allow_nan=False)   # what the job file and every export must be able to hold
    except Exception as exc:   # the user's code: one page's failure, never the crawl's
        message = f"{type(exc).__name__}: {exc}"[:_MESSAGE_CHARS]
        return replace(found, error="extract_failed", error_message=message)
    return replace(found, data={**found.data, **result})
