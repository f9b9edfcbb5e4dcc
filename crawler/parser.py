"""The parse stage: one HTML response in, one :class:`ParsedPage` out.

    body bytes --decode_html--> text --lexbor, one selector pass--> title, description,
        canonical, robots directives, links (resolved and canonicalized by ``crawler.urls``), h1, lang
    --> extraction (the caller's, on the same tree) --> main text: word count, simhash

Everything here is a pure function over plain values (no I/O, no logging, no state beyond
constants), so the stage runs unchanged in the event loop, a thread or a process pool.
Nothing here raises on hostile input: broken markup, garbage bytes and unknown charsets all
degrade to the best reading available.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Mapping

import charset_normalizer
from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler.extract import count_words, raw_main_text, simhash
from crawler.models import Link, LinkKind, ParsedPage
from crawler.references import html_references
from crawler.urls import C0_AND_SPACE, canonicalize

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

# Longest href we resolve; anything longer is junk or an attack, and no server takes it.
_MAX_HREF_CHARS = 8192
# An anchor text is kept to this many characters (whitespace collapsed): enough to read, and a
# page of 2,000 links with paragraphs for anchors still makes small link rows.
ANCHOR_CHARS = 200
# Title and description are cut to this many characters (after collapsing whitespace).
_MAX_TEXT_CHARS = 4096
# How far into the body to look for a <meta> charset declaration.
_META_SCAN_BYTES = 2048

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# A charset label: letters, digits and a little punctuation, never NUL or quotes.
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:+-]{1,40})""", re.IGNORECASE)
# Both <meta charset=X> and <meta http-equiv=Content-Type content="text/html; charset=X">.
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:+-]{1,40})""", re.IGNORECASE)

# Where a page declares a charset, browsers decode with a superset of it (WHATWG Encoding
# Standard), and pages rely on that: "iso-8859-1" pages use curly quotes from windows-1252.
# Keys are Python's canonical codec names.
_WEB_SUPERSET = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}
# Codecs Python knows that are no web charset: UTF-7 is a known XSS vector, the rest are
# transforms, and idna/punycode/undefined raise even with errors="replace".
_NOT_WEB_CODECS = frozenset({"utf-7", "idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"})
_ASCII_PROBE = b"<meta charset=x>"

# charset_normalizer often reads Western European text as cp1250 or cp1257: those code pages
# put other Latin letters where windows-1252 has é, à, ü, and short samples score the same.
# So when its pick is a Latin-script reading and the bytes also read as plain windows-1252
# text (every non-ASCII character a Western European letter or common punctuation), we take
# windows-1252: the web's default for undeclared legacy pages and by far the most common.
_LATIN_ALPHABETS = frozenset(
    {
        "Basic Latin",
        "Latin-1 Supplement",
        "Latin Extended-A",
        "Latin Extended-B",
        "Latin Extended Additional",
        "Combining Diacritical Marks",
        "Spacing Modifier Letters",
        "General Punctuation",
        "Currency Symbols",
        "Letterlike Symbols",
    }
)
_WESTERN_TEXT = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿŠšŽžŒœŸ\xa0¡£§©ª«®°´·º»¿€‘’‚“”„–—…•™"
_NOT_WESTERN = re.compile(f"[^\\x00-\\x7f{_WESTERN_TEXT}]")

_ROBOTS_VALUED = frozenset({"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"})
_ROBOTS_SPLIT = re.compile(r"[\s,]+")
_WHITESPACE = " \t\n\r\f"

# One pass over the tree collects everything parse() needs; results come in document order.
_SELECTOR = "title, base[href], meta[name], link[rel][href], a[href], area[href], h1"
# A language tag's shape (BCP 47, loosely): a primary subtag of letters, then subtags of letters and
# digits; anything else in a lang attribute or Content-Language header (a script, junk) is no language.
_LANGUAGE_TAG = re.compile(r"[a-z]{1,8}(?:-[a-z0-9]{1,8}){0,7}")


def media_type(content_type: str | None) -> str | None:
    """'text/HTML; charset=UTF-8' -> 'text/html'; None/'' -> None."""
    if not content_type:
        return None
    media = content_type.partition(";")[0].strip().lower()
    return media or None


def is_html(content_type: str | None) -> bool:
    """Whether a Content-Type header names an HTML (or XHTML) document."""
    return media_type(content_type) in HTML_TYPES


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode an HTML body to text; return ``(text, codec name used)``.

    Order: a byte-order mark; the Content-Type header's charset; a ``<meta>`` declaration in the
    first 2 KB; detection (strict UTF-8 first, then charset_normalizer); UTF-8 with replacement.
    Declared labels are mapped to the superset browsers use (latin-1 and ascii to cp1252),
    unknown or non-web codecs are skipped, and decoding never raises.
    """
    for bom, bom_codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(bom_codec, "replace"), bom_codec
    codec = _header_codec(content_type) or _meta_codec(body)
    if codec is None:
        return _detect(body)
    return body.decode(codec, "replace"), codec


def parse(url: str, headers: Mapping[str, str], body: bytes, *, sort_query: bool = False,
          extract_text: bool = False, on_tree: Callable[[LexborHTMLParser, str], None] | None = None) -> ParsedPage:
    """Extract title, description, canonical URL, robots directives, links and the built-in fields
    (h1, lang, word count) from a page.

    ``url`` is the page's own (final) URL, ``headers`` the response headers with lower-case
    names. Links are canonical absolute http(s) URLs in document order, each once; a link is
    ``nofollow`` only if every occurrence of it carries ``rel=nofollow``. The page-level
    ``nofollow`` (meta robots or X-Robots-Tag) is reported on the page, not copied to links.
    With ``extract_text``, the page's main text is extracted and its simhash reported.

    ``on_tree(tree, text)`` is handed the parsed tree and the decoded HTML once this function has read
    the page and before the main text is taken out of the tree (which strips its boilerplate):
    extraction reads the whole page without a second parse.
    """
    text, _ = decode_html(body, headers.get("content-type"))
    title_node: LexborNode | None = None
    h1_node: LexborNode | None = None
    description: str | None = None
    base_href: str | None = None
    canonical_href: str | None = None
    noindex, nofollow = _robots(headers.get("x-robots-tag"), scoped=True)
    hrefs: list[tuple[str, bool, str, LinkKind]] = []

    tree = LexborHTMLParser(text)
    for node in tree.css(_SELECTOR):
        attrs = node.attributes  # one dict per node is cheaper than two lookups through node.attrs
        tag = node.tag
        if tag == "a" or tag == "area":
            href = attrs.get("href")
            if href and len(href) <= _MAX_HREF_CHARS:
                rel = attrs.get("rel")
                anchor = node.text(deep=True) if tag == "a" else (attrs.get("alt") or "")
                hrefs.append((href, rel is not None and "nofollow" in rel.lower().split(), _anchor(anchor), "page"))
        elif tag == "meta":
            name = (attrs.get("name") or "").strip(_WHITESPACE).lower()
            if name == "robots":
                page_noindex, page_nofollow = _robots(attrs.get("content"), scoped=False)
                noindex = noindex or page_noindex
                nofollow = nofollow or page_nofollow
            elif name == "description" and description is None:
                description = _clean_text(attrs.get("content"))
        elif tag == "title" and title_node is None:
            title_node = node
        elif tag == "h1" and h1_node is None:
            h1_node = node
        elif tag == "link":
            rel = attrs.get("rel")
            if canonical_href is None and rel is not None and "canonical" in rel.lower().split():
                canonical_href = attrs.get("href")
        elif tag == "base" and base_href is None:
            base_href = attrs.get("href")

    # Stylesheets, scripts, images, iframes...: links too, with their kinds (after the page links,
    # so that a URL both linked and embedded keeps its anchor text).
    hrefs.extend((href, False, "", kind) for href, kind in html_references(tree) if len(href) <= _MAX_HREF_CHARS)
    # The document's base URL is the first <base href>, wherever it sits, so resolve afterwards.
    base = url
    if base_href and len(base_href) <= _MAX_HREF_CHARS:
        base = canonicalize(base_href, url) or url
    canonical = None
    if canonical_href and len(canonical_href) <= _MAX_HREF_CHARS:
        canonical = canonicalize(canonical_href, base, sort_query=sort_query)

    title = None if title_node is None else _clean_text(title_node.text())
    h1 = None if h1_node is None else _clean_text(h1_node.text())
    root = tree.root
    lang = _language(None if root is None else root.attributes.get("lang"), headers.get("content-language"))
    if on_tree is not None:
        on_tree(tree, text)
    visible = raw_main_text(tree)   # the last reader of the tree: it strips the boilerplate out
    main = " ".join(visible.split()) if extract_text else None
    return ParsedPage(
        title=title,
        description=description,
        canonical=canonical,
        noindex=noindex,
        nofollow=nofollow,
        links=_resolve_links(hrefs, base, sort_query),
        simhash=None if main is None else simhash(main),
        h1=h1,
        lang=lang,
        word_count=count_words(visible),
    )


def _resolve_links(hrefs: list[tuple[str, bool, str, LinkKind]], base: str, sort_query: bool) -> tuple[Link, ...]:
    """Canonicalize raw hrefs, drop unusable ones, de-duplicate (followed beats nofollow; the first
    non-empty anchor text is the link's; the first kind other than ``page`` is its kind: a link to
    an image that the page also shows is an image)."""
    found: dict[str, bool] = {}  # canonical URL -> nofollow; dicts keep first-seen order
    anchors: dict[str, str] = {}
    kinds: dict[str, LinkKind] = {}
    for raw, rel_nofollow, anchor, kind in hrefs:
        href = raw.strip(C0_AND_SPACE)  # what a URL parser strips from both ends of an href
        # Empty and fragment-only hrefs point back into the same document.
        if not href or href[0] == "#":
            continue
        target = canonicalize(href, base, sort_query=sort_query)
        if target is None:
            continue
        if target not in found:
            found[target] = rel_nofollow
        elif not rel_nofollow:
            found[target] = False
        if anchor and not anchors.get(target):
            anchors[target] = anchor
        if kind != "page" and target not in kinds:
            kinds[target] = kind
    return tuple(Link(target, link_nofollow, anchors.get(target, ""), kinds.get(target, "page"))
                 for target, link_nofollow in found.items())


def _anchor(text: str | None) -> str:
    """A link's anchor text: whitespace runs collapsed to one space, at most ANCHOR_CHARS characters."""
    if not text:
        return ""
    return " ".join(text[:ANCHOR_CHARS * 8].split())[:ANCHOR_CHARS]


def _language(attribute: str | None, content_language: str | None) -> str | None:
    """The page's language: its ``<html lang>``, else the first language of its Content-Language
    header; lower-cased (``en_US`` read as ``en-us``), and None unless it has a language tag's shape."""
    for value in (attribute, (content_language or "").partition(",")[0]):
        tag = (value or "")[:64].strip(_WHITESPACE).lower().replace("_", "-")
        if _LANGUAGE_TAG.fullmatch(tag):
            return tag
    return None


def _robots(value: str | None, *, scoped: bool) -> tuple[bool, bool]:
    """``(noindex, nofollow)`` from a meta robots content or an X-Robots-Tag header value.

    In the header, ``name: directives`` scopes what follows (up to the next scope) to one
    user agent; the parse stage does not know whose rules are ours, so scoped directives are
    ignored and only the unscoped ones, meant for every crawler, count.
    """
    if not value:
        return False, False
    tokens: list[str] = []
    if scoped:
        agent: str | None = None
        for piece in value.lower().split(","):
            head, colon, rest = piece.partition(":")
            if colon and head.strip() not in _ROBOTS_VALUED:
                agent, piece = head.strip(), rest
            if agent is None:
                tokens.extend(piece.split())
    else:
        tokens = _ROBOTS_SPLIT.split(value.lower())
    none = "none" in tokens
    return none or "noindex" in tokens, none or "nofollow" in tokens


def _clean_text(value: str | None) -> str | None:
    """Collapse whitespace runs to one space and strip; None if nothing is left."""
    if not value:
        return None
    return " ".join(value.split())[:_MAX_TEXT_CHARS] or None


def _codec(label: str) -> str | None:
    """Python codec for a declared charset label, as a browser would read it; None if unusable."""
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_WEB_CODECS:
        return None
    return _WEB_SUPERSET.get(info.name, info.name)


def _header_codec(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return _codec(match.group(1)) if match else None


def _meta_codec(body: bytes) -> str | None:
    match = _META_CHARSET.search(body, 0, _META_SCAN_BYTES)
    if match is None:
        return None
    codec = _codec(match.group(1).decode("ascii"))
    # We just read the declaration as ASCII, so the page is ASCII-compatible whatever it says;
    # the Standard reads a <meta> claiming UTF-16 as UTF-8, and we do the same for the others
    # (EBCDIC, UTF-32) that could not have been read that way.
    if codec is not None and _ASCII_PROBE.decode(codec, "replace") != _ASCII_PROBE.decode("ascii"):
        return "utf-8"
    return codec


def _detect(body: bytes) -> tuple[str, str]:
    """Decode an undeclared body: as UTF-8 if it is valid, else as charset_normalizer guesses."""
    try:
        return body.decode("utf-8"), "utf-8"  # valid UTF-8 (or ASCII) is almost never anything else
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(body).best()
    if best is None:
        return body.decode("utf-8", "replace"), "utf-8"
    codec = _codec(best.encoding) or "utf-8"
    if codec != "cp1252" and _LATIN_ALPHABETS.issuperset(best.alphabets) and _reads_as_western(body):
        codec = "cp1252"
    return body.decode(codec, "replace"), codec


def _reads_as_western(body: bytes) -> bool:
    try:
        text = body.decode("cp1252")
    except UnicodeDecodeError:  # one of the five bytes windows-1252 leaves undefined
        return False
    return _NOT_WESTERN.search(text) is None
