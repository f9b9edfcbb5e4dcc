"""One page's fields: the first page type whose ``match`` is found in the URL, each of its fields
read from the page's parsed tree and converted to its type.

A field's value is

- without ``many``: the first match that gives a value (an element with the attribute, a non-empty
  text, a text the regex matches), converted to the type; None when nothing matched (the field is
  named in ``empty``; its ``default`` is the value when it has one) or when the value does not
  convert (named in ``bad_type``).
- with ``many``: a list of every match's value in document order (None where one does not
  convert: the field is named in ``bad_type``); ``[]`` when nothing matched (named in ``empty``;
  its ``default`` is the value when it has one).

A ``required`` field left with no value (None or ``[]``, after its default) makes the page's
``error`` ``extract_missing``: recorded with the page, never fatal.

Pure: a function of the rules, the URL and the tree. Regexes are compiled once per process (a
cache keyed by the rules' digest: they arrive afresh, unpickled, with every page in a parse process).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawler.extraction.rules import Field, PageType, Rules
from crawler.models import Extracted
from crawler.urls import canonicalize

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# Thousands separators and spaces a number may be written with on a page: "1,234", "1 234".
_NUMBER_NOISE = str.maketrans("", "", ", \u00a0\u202f")


Compiled = tuple[tuple[re.Pattern[str] | None, tuple[re.Pattern[str] | None, ...]], ...]
# The rules this process has compiled, by their key; a handful at most (one a job).
_COMPILED: dict[str, Compiled] = {}


def _compiled(rules: Rules) -> Compiled:
    """Each page type's match regex and its fields' regexes, compiled once per process."""
    found = _COMPILED.get(rules.key)
    if found is None:
        if len(_COMPILED) >= 16:
            _COMPILED.clear()
        found = _COMPILED[rules.key] = tuple(
            (None if kind.match is None else re.compile(kind.match),
             tuple(None if f.regex is None else re.compile(f.regex) for f in kind.fields))
            for kind in rules.pages)
    return found


def extract(rules: Rules, url: str, tree: LexborHTMLParser) -> Extracted | None:
    """The fields of the page at ``url`` (its final URL) under the page type that applies; None when
    no page type applies."""
    compiled = _compiled(rules)
    for kind, (match, regexes) in zip(rules.pages, compiled, strict=True):
        if match is None or match.search(url):
            return _fields(kind, regexes, url, tree)
    return None


def _fields(kind: PageType, regexes: tuple[re.Pattern[str] | None, ...], url: str,
            tree: LexborHTMLParser) -> Extracted:
    data: dict[str, Any] = {}
    empty: list[str] = []
    bad: list[str] = []
    missing: list[str] = []
    base: list[str] = []   # the page's base URL, looked up once, when a url field needs it

    def base_url() -> str:
        if not base:
            node = tree.css_first("base[href]")
            href = node.attributes.get("href") if node is not None else None
            base.append((canonicalize(href.strip(), url) if href else None) or url)
        return base[0]

    for field, regex in zip(kind.fields, regexes, strict=True):
        raws = _raw_values(tree, field, regex)
        value: Any
        if not raws:
            empty.append(field.name)
            value = field.default if field.default is not None else ([] if field.many else None)
            if isinstance(value, tuple):
                value = list(value)
        else:
            values = [_convert(field.type, raw, base_url) for raw in raws]
            if any(v is None for v in values):
                bad.append(field.name)
            value = values if field.many else values[0]
        if field.required and (value is None or value == []):
            missing.append(field.name)
        data[field.name] = value
    error = message = None
    if missing:
        error = "extract_missing"
        message = f"required field{'s' if len(missing) > 1 else ''} with no value: {', '.join(missing)}"
    return Extracted(page_type=kind.name, data=data, empty=tuple(empty), bad_type=tuple(bad),
                     error=error, error_message=message)


def _raw_values(tree: LexborHTMLParser, field: Field, regex: re.Pattern[str] | None) -> list[str]:
    """The field's text values before conversion, in document order: every one with ``many``, else
    the first (or none)."""
    found: list[str] = []
    for node in tree.css(field.css):
        raw = _take(node, field.attr)
        if raw and regex is not None:
            hit = regex.search(raw)
            raw = None if hit is None else (hit.group(1) if regex.groups else hit.group(0))
        if raw:
            found.append(raw)
            if not field.many:
                break
    return found


def _take(node: LexborNode, attr: str) -> str | None:
    if attr == "text":
        return " ".join(node.text(deep=True).split())
    if attr == "html":
        return node.html
    value = node.attributes.get(attr)
    return value.strip() if value else None


def _convert(kind: str, raw: str, base_url: Callable[[], str]) -> Any:
    """``raw`` as a value of type ``kind``; None when it is not one."""
    if kind == "str":
        return raw
    text = raw.strip()
    if kind == "int":
        try:
            return int(text.translate(_NUMBER_NOISE))
        except ValueError:
            return None
    if kind == "float":
        try:
            number = float(text.translate(_NUMBER_NOISE))
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if kind == "bool":
        word = text.lower()
        return True if word in _TRUE else False if word in _FALSE else None
    if kind == "url":
        return canonicalize(text, base_url())
    return _datetime(text)


def _datetime(text: str) -> str | None:
    """An ISO 8601 or an RFC 2822 (HTTP, mail) date and time, as ISO 8601."""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        return None
