"""Structured data a page declares about itself: JSON-LD blocks, OpenGraph and Twitter meta, microdata.

``structured(tree, url)`` reads them from the parse stage's own tree (nothing is parsed twice but
microdata, below) and fills only the structured-data fields of an ``Extracted``:

- ``jsonld``: every ``<script type="application/ld+json">`` block that parses, in document order. A
  block holding a list contributes its items one by one, so ``jsonld`` is a flat list of the page's
  top-level objects; an ``@graph`` object is kept as it is. JSON is read as Python's ``json`` reads
  it, with raw control characters allowed inside strings (common in the wild) and an HTML comment
  or CDATA wrapper around the block ignored; ``NaN`` and ``Infinity`` are no JSON and make a block
  invalid. None on a page without JSON-LD, ``()`` on one whose blocks all failed.
- ``jsonld_error``: the first block that did not parse, in words (``block 2: Expecting ','
  delimiter: line 3 column 5``), with how many more did not. Never fatal: the other blocks count.
- ``opengraph``: ``og:``, ``article:``, ``book:``, ``music:``, ``product:``, ``profile:``,
  ``video:`` and ``twitter:`` meta, whether named by ``property`` or ``name``, keys lower-cased.
  The first value of a property wins, except the properties ogp.me declares as arrays (images,
  videos, audio and their ``:width``/``:alt``..., tags, authors, actors, ``og:locale:alternate``):
  those are always a list of every value, in document order.
- ``microdata``: the page's top-level microdata items, as extruct's W3C reader gives them (JSON like
  ``{"type": ..., "properties": {...}}``), when extruct is installed (the ``microdata`` extra). It
  needs lxml's tree of the page, so it costs a second parse, and only pages with an ``itemscope``
  pay it.

Limits, so that a hostile page costs bounded memory and time: at most ``MAX_BLOCKS`` JSON-LD blocks
are read (the rest are named in ``jsonld_error``), a block longer than ``MAX_BLOCK_CHARS`` or
nested deeper than ``MAX_DEPTH`` is skipped as invalid, and once ``MAX_TOTAL_CHARS`` of JSON-LD
have been read, later blocks are skipped. Meta values are cut to ``MAX_VALUE_CHARS``, at most
``MAX_META`` properties and ``MAX_LIST`` values of one property are kept. A page with more than
``MAX_ITEMSCOPES`` microdata items has none read.
"""

from __future__ import annotations

import json
import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler.models import Extracted

MAX_BLOCKS = 100
MAX_BLOCK_CHARS = 1_000_000
MAX_TOTAL_CHARS = 2_000_000
MAX_DEPTH = 64
MAX_VALUE_CHARS = 4096
MAX_META = 200
MAX_LIST = 50
MAX_ITEMSCOPES = 1000

# One pass over the tree finds both (lexbor walks it once): JSON-LD blocks and meta that may be OpenGraph.
_SELECTOR = 'script[type="application/ld+json" i], meta[property], meta[name]'
_PREFIXES = ("og:", "twitter:", "article:", "book:", "music:", "product:", "profile:", "video:")
# ogp.me's arrays, and the structured properties of an array element (og:image:width, ...).
_ARRAYS = frozenset({
    "og:image", "og:video", "og:audio", "og:locale:alternate", "article:author", "article:tag", "book:author",
    "book:tag", "music:song", "music:album", "music:musician", "music:creator", "video:actor", "video:director",
    "video:writer", "video:tag",
})
_ARRAY_PARTS = ("og:image:", "og:video:", "og:audio:", "music:song:", "music:album:", "video:actor:")
# What a CMS wraps a script's content in for old browsers: <!-- ... --> or //<![CDATA[ ... //]]>.
_WRAPPER = re.compile(r"^\s*(?://\s*)?(?:<!--|<!\[CDATA\[)|(?://\s*)?(?:-->|\]\]>)\s*$")


def structured(tree: LexborHTMLParser, url: str = "", *, microdata: bool = True) -> Extracted:
    """The page's JSON-LD, OpenGraph/Twitter meta and (with ``microdata``) microdata. Pure, never
    raises on what a page holds; ``url`` resolves microdata's URLs."""
    blocks: list[LexborNode] = []
    metas: list[LexborNode] = []
    for node in tree.css(_SELECTOR):
        (blocks if node.tag == "script" else metas).append(node)
    jsonld, jsonld_error = _jsonld(blocks)
    return Extracted(jsonld=jsonld, jsonld_error=jsonld_error, opengraph=_opengraph(metas),
                     microdata=_microdata(tree, url) if microdata else None)


def _jsonld(blocks: list[LexborNode]) -> tuple[tuple[Any, ...] | None, str | None]:
    """The blocks that parse, flattened, and the first that did not, in words."""
    found: list[Any] = []
    errors: list[str] = []
    budget = MAX_TOTAL_CHARS
    for number, node in enumerate(blocks[:MAX_BLOCKS], start=1):
        text = node.text(deep=True)
        if len(text) > MAX_BLOCK_CHARS:
            errors.append(f"block {number}: {len(text):,} characters, more than the {MAX_BLOCK_CHARS:,} read in one block")
            continue
        if len(text) > budget:
            errors.append(f"block {number}: past the {MAX_TOTAL_CHARS:,} characters of JSON-LD read on one page")
            continue
        budget -= len(text)
        try:
            value = json.loads(_unwrapped(text), strict=False, parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            errors.append(f"block {number}: {err.msg}: line {err.lineno} column {err.colno}")
            continue
        except (ValueError, RecursionError) as err:   # NaN, an integer of 4,300+ digits, deep nesting
            errors.append(f"block {number}: {err}")
            continue
        if _deeper_than(value, MAX_DEPTH):
            errors.append(f"block {number}: nested deeper than {MAX_DEPTH} levels")
            continue
        found.extend(value if isinstance(value, list) else (value,))
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"blocks {MAX_BLOCKS + 1} to {len(blocks)}: not read (at most {MAX_BLOCKS} a page)")
    if not found and not errors:
        return None, None
    error = None
    if errors:
        error = errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    return tuple(found), error


def _unwrapped(text: str) -> str:
    """A block's JSON without the comment or CDATA markers some pages wrap it in."""
    head = text.lstrip()[:2]
    return _WRAPPER.sub("", text) if head in ("<!", "//") else text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no JSON value")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests more than ``limit`` lists and objects (iteratively: no
    recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _opengraph(metas: list[LexborNode]) -> dict[str, str | list[str]] | None:
    found: dict[str, str | list[str]] = {}
    for node in metas:
        attrs = node.attributes
        key = (attrs.get("property") or attrs.get("name") or "").strip().lower()
        if not key.startswith(_PREFIXES):
            continue
        value = " ".join((attrs.get("content") or "")[:MAX_VALUE_CHARS * 2].split())[:MAX_VALUE_CHARS]
        if not value:
            continue
        if key in _ARRAYS or key.startswith(_ARRAY_PARTS):
            values = found.get(key)
            if values is None and len(found) < MAX_META:
                found[key] = [value]
            elif isinstance(values, list) and len(values) < MAX_LIST:
                values.append(value)
        elif key not in found and len(found) < MAX_META:
            found[key] = value
    return found or None


def _microdata(tree: LexborHTMLParser, url: str) -> tuple[Any, ...] | None:
    """Microdata items through extruct, when it is installed and the page has any."""
    scopes = tree.css("[itemscope]")
    if not scopes or len(scopes) > MAX_ITEMSCOPES:
        return None
    try:
        from crawler.extraction.microdata import read_microdata
    except ImportError:
        return None
    return read_microdata(tree.html or "", url)
