"""What a piece of CSS points to: the ``url()`` and ``@import`` references of a stylesheet, a
``<style>`` block or a ``style=""`` attribute, raw (unresolved) and in source order.

A careful regular expression over the CSS with its comments taken out, not a tokenizer: the
references are all a crawler needs of CSS, and a full tokenizer (tinycss2) is a dependency and a
pass over every token for them. Comments go first so that a ``url()`` commented out is no
reference; strings are matched whole, so a ``/*`` inside one is no comment. ``data:`` URIs, empty
references and fragment-only ones (``url(#clip)``, an SVG filter in the same document) are no
resource to fetch and are dropped. Pure: no I/O, no state.
"""

from __future__ import annotations

import re

__all__ = ["css_references"]

# A string ("..." or '...', with backslash escapes), a comment, or anything else one char at a time.
_STRING = r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\''
_COMMENTS = re.compile(rf"({_STRING})|/\*.*?(?:\*/|$)", re.DOTALL)
# url( "x" ) | url( x ) | @import "x" | @import url(x): the url() forms also cover @import url(...).
_REFERENCE = re.compile(
    rf"""url\(\s*(?:(?P<quoted>{_STRING})|(?P<bare>[^\s"'()\\]*(?:\\.[^\s"'()\\]*)*))\s*\)"""
    rf"""|@import\s+(?P<imported>{_STRING})""",
    re.IGNORECASE)
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})\s?|(.))", re.DOTALL)
# Longest reference kept: longer is junk (an inline font that forgot its data: prefix).
_MAX_CHARS = 8192
# CSS bigger than this is read to here only (a stylesheet of 2 MB is already very rare).
_MAX_CSS_CHARS = 4 * 1024 * 1024


def css_references(css: str) -> list[tuple[str, bool]]:
    """The references of ``css``: ``(raw URL, is an @import)`` in source order, escapes undone,
    ``data:`` URIs, empty and fragment-only references left out, each reference once."""
    if "url(" not in css.lower() and "@import" not in css.lower():
        return []   # most style="" attributes: no work at all
    text = _COMMENTS.sub(lambda m: m.group(1) or " ", css[:_MAX_CSS_CHARS])
    found: dict[str, bool] = {}
    for match in _REFERENCE.finditer(text):
        quoted, bare, imported = match.group("quoted", "bare", "imported")
        raw = (quoted or imported or "")[1:-1] if bare is None else bare
        value = _unescape(raw).strip(" \t\n\r\f")
        if not value or value[0] == "#" or len(value) > _MAX_CHARS or value[:5].lower() == "data:":
            continue
        is_import = imported is not None or _imports(text, match.start())
        found[value] = found.get(value, False) or is_import
    return list(found.items())


def _imports(text: str, start: int) -> bool:
    """Whether the ``url(`` at ``start`` is the target of an ``@import``."""
    before = text[max(0, start - 32):start].rstrip().lower()
    return before.endswith("@import")


def _unescape(value: str) -> str:
    """CSS escapes undone: ``\\28`` is ``(``, ``\\)`` is ``)``; a backslash-newline in a string is nothing."""
    if "\\" not in value:
        return value

    def one(match: re.Match[str]) -> str:
        code, char = match.groups()
        if code is None:
            return "" if char == "\n" else char
        number = int(code, 16)
        return chr(number) if 0 < number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF else "\ufffd"
    return _ESCAPE.sub(one, value)
