"""Everything an HTML page points to besides its ``<a>`` and ``<area>`` links, each with its kind.

    parsed tree --one selector pass--> (raw URL, kind) in document order
        stylesheets (link rel=stylesheet), scripts, images (src, every srcset candidate, picture
        sources), iframes, video/audio/source/track sources and posters, icons (rel~=icon,
        apple-touch-icon), <object data>, <embed src>, and CSS: <style> blocks and style=""
        attributes (url() and @import, read by ``crawler.css_refs``)

and what a crawl does with each reference (``fetch_as``): fetch it as a page, check it (one
request for its status), fetch it as a requisite of the page (``--page-requisites``: stored, and
a stylesheet read for its own references), or leave it. Pure functions: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, get_args

from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler.css_refs import css_references
from crawler.models import FetchAs, LinkKind, Outlink
from crawler.scope import Scope
from crawler.urls import canonicalize, host_key

if TYPE_CHECKING:
    from crawler.config import Settings

__all__ = ["REQUISITE_KINDS", "css_kind", "css_outlinks", "decide_reference", "html_references", "reference_options",
           "srcset_urls"]

KINDS: tuple[str, ...] = get_args(LinkKind)
# What a page needs to display (--page-requisites); iframes, media and objects are documents of
# their own or big files, which a requisite fetch of every page would multiply.
REQUISITE_KINDS = frozenset({"stylesheet", "script", "image", "font", "icon"})
SELECTOR = ("link[href], script[src], img, picture source, video, audio, source, track[src], iframe[src], "
             "frame[src], object[data], embed[src], input[src], style, [style]")
_FONT_EXTENSIONS = (".woff2", ".woff", ".ttf", ".otf", ".eot")
_WHITESPACE = " \t\n\r\f"
_PRELOADS: dict[str, LinkKind] = {"style": "stylesheet", "script": "script", "font": "font", "image": "image"}
_MEDIA_TAGS = frozenset({"video", "audio", "source", "track"})
# A scope with no limit on hosts or depth: what a reference's redirect hops and checks are judged by.
EVERYWHERE = Scope(mode="any", hosts=frozenset())


def reference_options(settings: Settings) -> tuple[bool, bool, bool]:
    """``(check_references, check_external, page_requisites)`` as a crawl applies them. A shared
    frontier (``--frontier``) does not carry how a URL is to be fetched, so with one, references are
    recorded in the link graph and not fetched, and off-scope links are not checked."""
    if settings.frontier:
        return False, False, False
    return settings.check_references, settings.check_external, settings.page_requisites


def html_references(tree: LexborHTMLParser) -> list[tuple[str, LinkKind]]:
    """The raw (unresolved) references of a parsed page with their kinds, in document order. (The
    parser reads them in its own pass over the tree: ``SELECTOR`` and ``node_references``.)"""
    found: list[tuple[str, LinkKind]] = []
    for node in tree.css(SELECTOR):
        node_references(node, node.attributes, node.tag, found.append)
    return [(url, kind) for url, kind in found if url]


def node_references(node: LexborNode, attrs: dict[str, str | None], tag: str | None,
                    add: Callable[[tuple[str, LinkKind]], None]) -> None:
    """The references of one element (``attrs`` and ``tag`` are its own, read once by the caller),
    handed to ``add``; an empty URL may come (a script without src): the caller drops it."""
    style = attrs.get("style")
    if style:
        for url, is_import in css_references(style):
            add((url, css_kind(url, is_import)))
    if tag == "link":
        rel = (attrs.get("rel") or "").lower().split()
        href = attrs.get("href")
        if not href:
            return
        if "stylesheet" in rel:
            add((href, "stylesheet"))
        elif "icon" in rel or "apple-touch-icon" in rel or "apple-touch-icon-precomposed" in rel:
            add((href, "icon"))
        elif "preload" in rel or "modulepreload" in rel:
            preloaded = _PRELOADS.get((attrs.get("as") or "").strip(_WHITESPACE).lower(),
                                      "script" if "modulepreload" in rel else None)
            if preloaded is not None:
                add((href, preloaded))
    elif tag == "style":
        for url, is_import in css_references(node.text() or ""):
            add((url, css_kind(url, is_import)))
    elif tag == "script":
        add((attrs.get("src") or "", "script"))
    elif tag == "img" or (tag == "input" and (attrs.get("type") or "").strip(_WHITESPACE).lower() == "image"):
        _image(attrs, add, "image")
    elif tag in _MEDIA_TAGS:
        parent = node.parent
        _image(attrs, add, "image" if tag == "source" and parent is not None and parent.tag == "picture" else "media")
        if poster := attrs.get("poster"):
            add((poster, "image"))
    elif tag == "iframe" or tag == "frame":
        add((attrs.get("src") or "", "iframe"))
    elif tag == "object":
        add((attrs.get("data") or "", "object"))
    elif tag == "embed":
        add((attrs.get("src") or "", "object"))


def _image(attrs: dict[str, str | None], add: Callable[[tuple[str, LinkKind]], None], kind: LinkKind) -> None:
    """An element's ``src`` and every ``srcset`` candidate, as ``kind``."""
    if src := attrs.get("src"):
        add((src, kind))
    if srcset := attrs.get("srcset"):
        for url in srcset_urls(srcset):
            add((url, kind))


def srcset_urls(srcset: str) -> list[str]:
    """The URLs of a ``srcset`` attribute, in order (HTML's "parse a srcset attribute": a URL runs to
    whitespace, a URL's trailing commas end its candidate, descriptors run to the next comma
    outside parentheses). ``data:`` URLs are left out."""
    urls: list[str] = []
    text, i, end = srcset, 0, len(srcset)
    while i < end:
        while i < end and (text[i] in _WHITESPACE or text[i] == ","):
            i += 1
        start = i
        while i < end and text[i] not in _WHITESPACE:
            i += 1
        url = text[start:i]
        if url.endswith(","):
            url = url.rstrip(",")
        else:   # skip the descriptors, up to the comma that ends the candidate
            depth = 0
            while i < end and (text[i] != "," or depth):
                depth += text[i] == "("
                depth -= text[i] == ")" and depth > 0
                i += 1
        if url and url[:5].lower() != "data:":
            urls.append(url)
    return urls


def css_kind(url: str, is_import: bool) -> LinkKind:
    """The kind of a CSS reference: an ``@import`` is a stylesheet, a font file a font, else an image
    (backgrounds, cursors, masks, list markers: images all)."""
    if is_import:
        return "stylesheet"
    path = url.partition("?")[0].partition("#")[0].lower()
    return "font" if path.endswith(_FONT_EXTENSIONS) else "image"


def decide_reference(url: str, kind: LinkKind, page_exclusion: str | None, *, scope: Scope,
                     check_references: bool, check_external: bool, requisites: bool) -> tuple[str | None, FetchAs]:
    """What a crawl does with a link of ``kind`` to ``url``: ``(exclusion, fetch_as)``, exclusion None
    to queue it. ``page_exclusion`` is the scope's verdict on it as a page link (at the next depth).

    A page link is followed as a page when the scope allows it; an off-scope one is checked with
    ``check_external``. A requisite (``requisites`` on, a kind in ``REQUISITE_KINDS``) is fetched
    from any host, one hop past the depth limit. An iframe the scope allows as a page is crawled as
    one (with ``check_references``). Any other reference is checked (one request for
    its status) with ``check_references`` when its host is in scope (at any depth), or anywhere with
    ``check_external`` too; else it is left with the scope's verdict, or ``not_checked``."""
    off_scope = page_exclusion in ("off_host", "off_domain")
    if kind == "page":
        if off_scope and check_external and EVERYWHERE.decide(url, 0) is None and _allowed(scope, url):
            return None, "check"
        return page_exclusion, "page"
    if requisites and kind in REQUISITE_KINDS and _allowed(scope, url):
        return None, "requisite"
    if kind == "iframe" and check_references and page_exclusion is None:
        # A document of the site: crawled as a page, as an <a> link to it would have it (were it
        # checked only, a later <a> link to it would find it done, and its links never followed).
        return None, "page"
    host_ok = not off_scope and scope.decide(url, 0) not in ("off_host", "off_domain")
    if check_references and (host_ok or check_external) and _allowed(scope, url):
        return None, "check"
    return (page_exclusion if off_scope else "not_checked"), "page"


def _allowed(scope: Scope, url: str) -> bool:
    """Whether the user's own rules (``--exclude``, ``--include``, trap rules) let ``url`` be fetched,
    whatever its host and depth."""
    verdict = scope.decide(url, 0)
    return verdict is None or verdict in ("off_host", "off_domain")


def css_outlinks(url: str, body: bytes, depth: int, *, scope: Scope, check_references: bool,
                 check_external: bool, sort_query: bool = False) -> tuple[Outlink, ...]:
    """The references of a stylesheet fetched as a requisite (``url``, at ``depth``), judged: each is
    a requisite too (an ``@import``, a font, a background image), or a check, or left."""
    css = body.decode("utf-8", "replace")   # CSS is UTF-8 almost always; a URL is ASCII in any other
    links: dict[str, Outlink] = {}
    for raw, is_import in css_references(css):
        target = canonicalize(raw, url, sort_query=sort_query)
        if target is None or target in links:
            continue
        kind = css_kind(raw, is_import)
        exclusion, fetch_as = decide_reference(target, kind, scope.decide(target, depth + 1), scope=scope,
                                               check_references=check_references, check_external=check_external,
                                               requisites=True)
        links[target] = Outlink(target, host_key(target), False, exclusion, "", kind, fetch_as)
    return tuple(links.values())
