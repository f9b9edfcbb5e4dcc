"""Links in HTML and CSS rewritten for a mirror: pure text in, text out (no I/O).

``link(url)`` is the caller's answer for one absolute URL (its fragment removed): the relative path of
its local copy from the file being written, or None where it was not archived. Each reference is
resolved against the document's base (a ``<base href>``, else its URL) and replaced by
``link(url)`` plus its fragment, or, where it was not archived, by its absolute URL, so that no link
of a mirror points into the mirror at a file that is not there. Fragment-only references to the
document itself (``#top``), ``data:``, ``mailto:``, ``javascript:`` and the like are left as written.

- HTML: ``href``, ``src``, ``srcset``, ``imagesrcset``, ``poster``, ``data``, ``background``,
  ``xlink:href`` of any element, inline ``style`` attributes and ``<style>`` blocks as CSS. The first
  ``<base href>`` sets the base and loses its ``href`` (a ``<base>`` left would point every relative
  link of the mirror back at the web). Only the start tags and style blocks that change are
  rewritten: the rest of the document keeps its bytes.
- CSS: ``url(...)`` (quoted or not) and ``@import "..."``; escapes inside CSS URLs are not decoded.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin

Link = Callable[[str], str | None]

_URL_ATTRS = frozenset({"href", "src", "poster", "data", "background", "xlink:href"})
_SRCSET_ATTRS = frozenset({"srcset", "imagesrcset"})
_ATTR = re.compile(r"""(?P<name>[^\s"'>/=]+)(?:(?P<eq>\s*=\s*)(?P<value>"[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
_CSS_URL = re.compile(r"""url\(\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^)\s"']*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""", re.IGNORECASE)
_SCHEMES = ("http://", "https://")


def resolve(value: str, base: str, link: Link) -> str:
    """One reference as the mirror writes it (see the module docstring)."""
    value = value.strip()
    if not value or value.startswith("#"):
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
    base = _Base()
    base.feed(text)
    base.close()
    rewriter = _Rewriter(text, urljoin(url, base.href) if base.href else url, link)
    rewriter.feed(text)
    rewriter.close()
    return rewriter.result()


class _Base(HTMLParser):
    """The first ``<base href>`` of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.href is None:
            self.href = next((v for k, v in attrs if k == "href" and v), None)


class _Rewriter(HTMLParser):
    """Finds the start tags and style blocks to rewrite, by their place in the text; ``result`` splices them."""

    def __init__(self, text: str, base: str, link: Link) -> None:
        super().__init__(convert_charrefs=False)
        self.text, self.base, self.link = text, base, link
        self.lines = [0]
        for m in re.finditer("\n", text):
            self.lines.append(m.end())
        self.edits: list[tuple[int, int, str]] = []
        self.in_style = False
        self.base_done = False

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag)

    def _tag(self, tag: str) -> None:
        raw = self.get_starttag_text() or ""
        start = self._offset()
        self.in_style = tag == "style"
        new = self._rewrite_tag(tag, raw)
        if new != raw and self.text.startswith(raw, start):
            self.edits.append((start, start + len(raw), new))

    def _rewrite_tag(self, tag: str, raw: str) -> str:
        head = re.match(r"<[^\s/>]+", raw)
        if head is None:
            return raw
        drop_href = tag == "base" and not self.base_done
        if tag == "base":
            self.base_done = True

        def attribute(match: re.Match[str]) -> str:
            name = match["name"].lower()
            if match["value"] is None:
                return match[0]
            if drop_href and name == "href":
                return ""
            value = html.unescape(match["value"].strip("\"'") if match["value"][0] in "\"'" else match["value"])
            if name in _URL_ATTRS:
                new = resolve(value, self.base, self.link)
            elif name in _SRCSET_ATTRS:
                new = rewrite_srcset(value, self.base, self.link)
            elif name == "style":
                new = rewrite_css(value, self.base, self.link)
            else:
                return match[0]
            if new == value:
                return match[0]
            return f'{match["name"]}="{html.escape(new, quote=True)}"'

        return head[0] + _ATTR.sub(attribute, raw[head.end():])

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if not self.in_style:
            return
        start = self._offset()
        new = rewrite_css(data, self.base, self.link)
        if new != data and self.text.startswith(data, start):
            self.edits.append((start, start + len(data), new))

    def result(self) -> str:
        parts, at = [], 0
        for start, end, new in sorted(self.edits):
            if start < at:
                continue
            parts.append(self.text[at:start])
            parts.append(new)
            at = end
        parts.append(self.text[at:])
        return "".join(parts)
