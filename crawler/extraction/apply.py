"""One page's extraction as the crawl stores it: the rules' fields, then the plugin's dict.

The crawl's parse stage (``parse_stage.analyze``) calls ``extract_page`` on the tree the parser
built, and ``crawler extract --db`` calls ``extract_body`` on a stored body, which decodes and
parses it exactly as the parser does (``parser.decode_html``, then lexbor): one code path, so
running the same rules again over a job gives the values its crawl stored, page for page.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from selectolax.lexbor import LexborHTMLParser

from crawler.extraction import fields, plugin
from crawler.extraction.rules import Rules
from crawler.models import Extracted
from crawler.parser import decode_html

# An error message kept on a page is cut to this many characters.
_MESSAGE_CHARS = 500


def extract_page(rules: Rules | None, plugin_path: str, url: str, status: int, headers: Mapping[str, str],
                 tree: LexborHTMLParser, text: str) -> Extracted | None:
    """What the rules and the plugin make of the page at ``url`` (its final URL; ``headers`` with
    lower-case names), read from its parsed ``tree`` and decoded HTML ``text``; None when no page type
    applies and there is no plugin."""
    found = None
    if rules is not None:
        try:
            found = fields.extract(rules, url, tree)
        except Exception as exc:   # a bug on one page's extraction must not cost the page its links
            found = Extracted(error="extract_failed", error_message=f"rules: {type(exc).__name__}: {exc}"[:_MESSAGE_CHARS])
    if plugin_path:
        found = plugin.apply(plugin_path, plugin.Page(url, status, MappingProxyType(headers), tree, text), found)
    return found


def extract_body(rules: Rules | None, plugin_path: str, url: str, status: int, headers: Mapping[str, str],
                 body: bytes) -> Extracted | None:
    """``extract_page`` of a body as it was received: decoded and parsed as the parser does."""
    text, _ = decode_html(body, headers.get("content-type"))
    return extract_page(rules, plugin_path, url, status, headers, LexborHTMLParser(text), text)
