"""``--render auto``: does this HTML, as the server sent it, look built by script? Pure, no I/O.

A page is rendered when it has at least one ``<script>`` and one of these holds:

- an **empty application root**: ``<div id="app">``, ``#root``, ``#__next``, ``#__nuxt``,
  ``#___gatsby``, ``#svelte``, ``[ng-app]`` or ``[data-reactroot]`` with no text and no element in
  it, on a page with less than ``ROOT_TEXT`` characters of visible text;
- a **``<noscript>`` asking for JavaScript** ("enable JavaScript", "requires JavaScript") on a
  page with less than ``NOSCRIPT_TEXT`` characters of visible text;
- **links only in script**: no ``<a href>`` in the document, while an inline script mentions
  ``href`` or ``<a``, or the page holds a client-side router's state (``__NEXT_DATA__``...);
- **little text against much script**: less than ``LITTLE_TEXT`` characters of visible text, or
  more than ``SCRIPT_RATIO`` times as many bytes of inline script as characters of text (with
  fewer than ``RATIO_TEXT`` characters of text).

Visible text is the text of ``<body>`` without ``<script>``, ``<style>``, ``<noscript>`` and
``<template>``, whitespace collapsed. A page without any ``<script>`` is never rendered: nothing
could build it. The decision is made from the HTML alone, never from a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler.models import RenderMode, Response
from crawler.parser import is_html
from crawler.wording import plural

ROOT_TEXT = 1000        # an empty app root counts on a page with less text than this
NOSCRIPT_TEXT = 1000    # so does a <noscript> asking for JavaScript
LITTLE_TEXT = 200       # less visible text than this, and a script: built by script
SCRIPT_RATIO = 10       # inline script bytes per character of text past which ...
RATIO_TEXT = 2000       # ... a page with less text than this is built by script

_ROOTS = ("#app", "#root", "#__next", "#__nuxt", "#___gatsby", "#svelte", "[ng-app]", "[data-reactroot]")
_SCRIPT = re.compile(rb"<script", re.IGNORECASE)
_ASKS_FOR_JS = re.compile(r"(enable|requires?|need|turn on|activate|allow)\w*\s+(the\s+)?javascript|javascript\s+"
                          r"(is\s+)?(required|disabled|must be enabled|needs to be enabled)", re.IGNORECASE)
_LINKS_IN_SCRIPT = re.compile(r"""href|<a[\s>]|__NEXT_DATA__|__NUXT__|pushState""", re.IGNORECASE)
_HIDDEN = ("script", "style", "noscript", "template")


@dataclass(frozen=True, slots=True)
class Looks:
    """What the heuristic saw: visible text, scripts, and why the page needs a browser (None: it does not)."""

    text_chars: int
    scripts: int
    why: str | None     # one of a few fixed phrases, so that the report can count pages by it
    script_bytes: int = 0

    def note(self) -> str:
        """The record's ``rendered`` text: ``auto: empty #app; 12 chars of text, 3 scripts``."""
        inline = f", {self.script_bytes} bytes of inline script" if self.why == "much inline script" else ""
        return f"auto: {self.why}; {plural(self.text_chars, 'char')} of text, {plural(self.scripts, 'script')}{inline}"


def looks_scripted(body: bytes) -> Looks:
    """Judge an HTML body (as received, any charset: only ASCII markup is read) for ``--render auto``."""
    if not _SCRIPT.search(body):   # the common static page: no second parse
        return Looks(-1, 0, None)
    tree = LexborHTMLParser(body.decode("utf-8", "replace"))
    scripts = tree.css("script")
    inline = [s.text(deep=False) or "" for s in scripts if s.attributes.get("src") is None]
    noscripts = [n.text() or "" for n in tree.css("noscript")]
    anchors = [a for a in tree.css("a[href]") if not (a.attributes.get("href") or "").startswith(("#", "javascript:"))]
    empty_root = next((sel for sel in _ROOTS if (node := tree.css_first(sel)) is not None and _empty(node)), None)
    text = _visible_text(tree)
    if not scripts:
        return Looks(len(text), 0, None)
    script_bytes = sum(len(s) for s in inline)
    why = None
    if empty_root is not None and len(text) < ROOT_TEXT:
        why = f"empty {empty_root}"
    elif len(text) < NOSCRIPT_TEXT and any(_ASKS_FOR_JS.search(n) for n in noscripts):
        why = "<noscript> asks for JavaScript"
    elif not anchors and any(_LINKS_IN_SCRIPT.search(s) for s in inline):
        why = "links only in script"
    elif len(text) < LITTLE_TEXT:
        why = "little text"
    elif script_bytes > SCRIPT_RATIO * len(text) and len(text) < RATIO_TEXT:
        why = "much inline script"
    return Looks(len(text), len(scripts), why, script_bytes)


def _empty(node: LexborNode) -> bool:
    """No element child and no text (comments aside): what a client-side app fills in."""
    child = node.child
    while child is not None:
        if child.tag == "-text":
            if (child.text(deep=False) or "").strip():
                return False
        elif child.tag not in ("_comment", "-comment"):
            return False
        child = child.next
    return True


def _visible_text(tree: LexborHTMLParser) -> str:
    body = tree.body
    if body is None:
        return ""
    for node in body.css(",".join(_HIDDEN)):
        node.decompose()
    return " ".join((body.text(separator=" ") or "").split())


def why_render(mode: RenderMode, response: Response) -> str | None:
    """Why ``response`` is to be rendered (the start of the record's ``rendered`` note), or None:
    ``always`` renders every 2xx HTML page, ``auto`` those that look built by script."""
    if mode == "never" or not 200 <= response.status < 300 or not is_html(response.header("content-type")):
        return None
    if mode == "always":
        return "always"
    looks = looks_scripted(response.body)
    return None if looks.why is None else looks.note()
