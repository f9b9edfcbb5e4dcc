"""Links in HTML and CSS rewritten for a mirror: pure text in, text out (no I/O).

``link(url)`` is the caller's answer for one absolute URL (its fragment removed): the relative path of
its local copy from the file being written, or None where it was not archived. Each reference is
resolved against the document's base (a ``<base href>``, else its URL) and replaced by
``link(url)`` plus its fragment, or, where it was not archived, by its absolute URL, so that no link
of a mirror points into the mirror at a file that is not there. Fragment-only references to the
document itself (``#top``), ``data:``, ``mailto:``, ``javascript:`` and the like are left as written.

- HTML: ``href``, ``src``, ``srcset``, ``imagesrcset``, ``poster``, ``data``, ``background``,
  ``xlink:href`` of any element, inline ``style`` attributes and ``<style>`` blocks as CSS, the URL of
  a ``<meta http-equiv=refresh>``. The first
  ``<base href>`` sets the base and loses its ``href`` (a ``<base>`` left would point every relative
  link of the mirror back at the web). Only the start tags and style blocks that change are
  rewritten: the rest of the document keeps its bytes.
- CSS: ``url(...)`` (quoted or not) and ``@import "..."``; escapes inside CSS URLs are not decoded.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from urllib.parse import urldefrag, urljoin

Link = Callable[[str], str | None]

_URL_ATTRS = frozenset({"href", "src", "poster", "data", "background", "xlink:href"})
_SRCSET_ATTRS = frozenset({"srcset", "imagesrcset"})
_ATTR = re.compile(r"""(?P<name>[^\s"'>/=]+)(?:(?P<eq>\s*=\s*)(?P<value>"[^"]{0,8192}"|'[^']{0,8192}'|[^\s"'=<>`]+))?""")
_CSS_URL = re.compile(r"""url\(\s*(?:"(?P<dq>[^"]{0,8192})"|'(?P<sq>[^']{0,8192})'|(?P<bare>[^)\s"']*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"(?P<dq>[^"]{0,8192})"|'(?P<sq>[^']{0,8192})')""", re.IGNORECASE)
_SCHEMES = ("http://", "https://")


def resolve(value: str, base: str, link: Link, *, own_fragments: bool = True) -> str:
    """One reference as the mirror writes it (see the module docstring)."""
    value = value.strip()
    if not value or (value.startswith("#") and own_fragments):
        return value
    absolute = urljoin(base, value)
    if not absolute.lower().startswith(_SCHEMES):
        return value
    url, fragment = urldefrag(absolute)
    local = link(url)
    if local is None:
        return absolute
    return local + (f"#{fragment}" if fragment else "")


def rewrite_css(text: str, base: str, link: Link) -> str:
    """CSS with every ``url()`` and ``@import "..."`` rewritten."""
    def url(match: re.Match[str]) -> str:
        value = match["dq"] if match["dq"] is not None else match["sq"] if match["sq"] is not None else match["bare"]
        if value.strip().lower().startswith("data:"):
            return match[0]
        return f'url("{_css_string(resolve(value, base, link))}")'

    def imported(match: re.Match[str]) -> str:
        value = match["dq"] if match["dq"] is not None else match["sq"]
        return f'@import "{_css_string(resolve(value, base, link))}"'

    return _CSS_IMPORT.sub(imported, _CSS_URL.sub(url, text))


def _css_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ")


def rewrite_srcset(value: str, base: str, link: Link) -> str:
    """A ``srcset`` with each candidate's URL rewritten, its descriptors kept."""
    out = []
    for url, descriptor in _candidates(value):
        out.append(resolve(url, base, link) + (f" {descriptor}" if descriptor else ""))
    return ", ".join(out)


def _candidates(value: str) -> list[tuple[str, str]]:
    """``(url, descriptors)`` of a srcset, as the HTML standard splits it (a URL may hold commas)."""
    found = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        if not url:
            break
        if url.endswith(","):
            found.append((url.rstrip(","), ""))
            continue
        start, depth = i, 0
        while i < n and (value[i] != "," or depth):
            depth += {"(": 1, ")": -1}.get(value[i], 0)
            i += 1
        found.append((url, value[start:i].strip()))
    return found


def rewrite_html(text: str, url: str, link: Link) -> str:
    """The document ``text`` fetched from ``url`` with its references rewritten."""
    base = _base_href(text)
    rewriter = _Rewriter(urljoin(url, base) if base else url, link)
    # "#part" under a <base> of another document is that document's part: with the <base> gone, it is resolved
    rewriter.own_fragments = urldefrag(rewriter.base)[0] == urldefrag(url)[0]
    parts, at = [], 0
    for start, end, new in rewriter.edits(text):
        parts += [text[at:start], new]
        at = end
    parts.append(text[at:])
    return "".join(parts)


# The markup that is no start tag (comments, declarations, end tags), then a start tag with its
# attributes (a ">" inside a quoted value does not end it). One pass of C regex: no Python per character.
#
# Linear on hostile input: every part of a start tag either matches or stops at the next "<" (a
# quoted value at most 8 KiB on), and the attributes are matched possessively (``*+``), so a tag
# that does not close costs no backtracking and no scan to the end of the document.
_TOKEN = re.compile(r"""<!--.*?(?:-->|\Z)|<![^>]*>?|<\?[^>]*>?|</[^>]*>?"""
                    r"""|<(?P<tag>[a-zA-Z][^\s/<>\x00]*)(?P<attrs>(?:"[^"]{0,8192}"|'[^']{0,8192}'|[^<>])*+)>""",
                    re.DOTALL)
# Elements whose content is text up to their end tag, not markup (a "<a href>" in a script is no link).
_RAW = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"})
_BASE = re.compile(r"<base\s", re.IGNORECASE)
_REFRESH_META = re.compile(r"""http-equiv\s*=\s*["']?\s*refresh""", re.IGNORECASE)
_REFRESH = re.compile(r"""(?P<head>\s*[\d.]+\s*[;,]\s*(?:url\s*=\s*)?)["']?(?P<url>[^"']*)["']?\s*$""", re.IGNORECASE)
_CLOSE = {tag: re.compile(f"</{tag}[\\s/>]", re.IGNORECASE) for tag in _RAW}   # where each one's text ends


def _base_href(text: str) -> str | None:
    """The ``href`` of the first ``<base href>`` of a document."""
    if not _BASE.search(text):
        return None
    for match in _TOKEN.finditer(text):
        if (match["tag"] or "").lower() == "base":
            for attr in _ATTR.finditer(match["attrs"]):
                if attr["name"].lower() == "href" and attr["value"] is not None:
                    return html.unescape(_unquoted(attr["value"])).strip() or None
    return None


def _unquoted(value: str) -> str:
    return value[1:-1] if value[:1] in "\"'" and len(value) >= 2 and value[-1] == value[0] else value


class _Rewriter:
    """The start tags and style blocks of a document to rewrite: ``(start, end, new text)`` in order."""

    def __init__(self, base: str, link: Link) -> None:
        self.base, self.link = base, link
        self.own_fragments = True
        self.base_done = False

    def edits(self, text: str) -> Iterator[tuple[int, int, str]]:
        at = 0
        while (match := _TOKEN.search(text, at)) is not None:
            at = match.end()
            tag = (match["tag"] or "").lower()
            if not tag:
                continue
            attrs = self._attributes(tag, match["attrs"])
            if attrs != match["attrs"]:
                yield match.start("attrs"), match.end("attrs"), attrs
            if tag in _RAW and not match["attrs"].rstrip().endswith("/"):
                close = _CLOSE[tag].search(text, at)
                end = close.start() if close else len(text)
                if tag == "style":
                    css = rewrite_css(text[at:end], self.base, self.link)
                    if css != text[at:end]:
                        yield at, end, css
                at = end

    def _attributes(self, tag: str, raw: str) -> str:
        drop_href = tag == "base" and not self.base_done
        refresh = tag == "meta" and _REFRESH_META.search(raw) is not None
        if tag == "base":
            self.base_done = True

        def attribute(match: re.Match[str]) -> str:
            name = match["name"].lower()
            if match["value"] is None:
                return match[0]
            if drop_href and name == "href":
                return ""
            value = html.unescape(_unquoted(match["value"]))
            if name in _URL_ATTRS:
                new = resolve(value, self.base, self.link, own_fragments=self.own_fragments)
            elif name in _SRCSET_ATTRS:
                new = rewrite_srcset(value, self.base, self.link)
            elif name == "style":
                new = rewrite_css(value, self.base, self.link)
            elif name == "content" and refresh:
                new = self._refresh(value)
            else:
                return match[0]
            if new == value:
                return match[0]
            return f'{match["name"]}="{html.escape(new, quote=True)}"'

        return _ATTR.sub(attribute, raw)

    def _refresh(self, value: str) -> str:
        """``<meta http-equiv=refresh content="5; url=...">`` with its URL rewritten."""
        match = _REFRESH.match(value)
        if match is None or not match["url"]:
            return value
        return match["head"] + resolve(match["url"], self.base, self.link)
