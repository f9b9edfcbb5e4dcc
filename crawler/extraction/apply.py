"""One page's extraction as the crawl stores it: the rules' fields, the plugin's dict merged in, and
the structured data the page declares (JSON-LD, OpenGraph/Twitter meta, microdata).

The crawl's parse stage (``parse_stage.analyze``) calls ``extract_page`` on the tree the parser
built, and ``crawler extract --db`` calls ``extract_body`` on a stored body, which decodes and
parses it exactly as the parser does (``parser.decode_html``, then lexbor): one code path, so
running the same rules again over a job gives the values its crawl stored, page for page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from selectolax.lexbor import LexborHTMLParser

from crawler.extraction import fields, plugin
from crawler.extraction.rules import Rules
from crawler.extraction.structured import structured
from crawler.models import Extracted
from crawler.parser import decode_html

# An error message kept on a page is cut to this many characters.
_MESSAGE_CHARS = 500
_NOTHING_DECLARED = Extracted()   # a page without JSON-LD, OpenGraph or microdata: no Extracted for it


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a job extracts from each page: its rules, its plugin (module:function, "" none), and
    whether it reads structured data (and microdata with it). Plain values: sent to parse processes."""

    rules: Rules | None = None
    plugin: str = ""
    structured_data: bool = False
    microdata: bool = False

    @property
    def wanted(self) -> bool:
        return self.rules is not None or bool(self.plugin) or self.structured_data


def extract_page(how: Extraction, url: str, status: int, headers: Mapping[str, str], tree: LexborHTMLParser,
                 text: str) -> Extracted | None:
    """What ``how`` makes of the page at ``url`` (its final URL; ``headers`` with lower-case names),
    read from its parsed ``tree`` and decoded HTML ``text``; None when nothing applies (no page type,
    no plugin, no structured data read)."""
    rules, plugin_path = how.rules, how.plugin
    found = None
    if rules is not None:
        try:
            found = fields.extract(rules, url, tree)
        except Exception as exc:   # a bug on one page's extraction must not cost the page its links
            found = Extracted(error="extract_failed", error_message=f"rules: {type(exc).__name__}: {exc}"[:_MESSAGE_CHARS])
    if plugin_path:
        found = plugin.apply(plugin_path, plugin.Page(url, status, MappingProxyType(headers), tree, text), found)
    if how.structured_data:
        declared = structured(tree, url, microdata=how.microdata)
        if found is None:
            found = None if declared == _NOTHING_DECLARED else declared
        else:
            found = replace(found, jsonld=declared.jsonld, jsonld_error=declared.jsonld_error,
                            opengraph=declared.opengraph, microdata=declared.microdata)
    return found


def extract_body(how: Extraction, url: str, status: int, headers: Mapping[str, str], body: bytes) -> Extracted | None:
    """``extract_page`` of a body as it was received: decoded and parsed as the parser does."""
    text, _ = decode_html(body, headers.get("content-type"))
    return extract_page(how, url, status, headers, LexborHTMLParser(text), text)
