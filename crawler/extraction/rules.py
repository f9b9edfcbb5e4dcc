"""A rules file (TOML) read and checked into ``Rules``, before the first request.

    [[page]]                     # page types, in order: the first whose match applies
    name  = "product"            # optional; "page N" (N its position from 1) when absent
    match = "/products/"         # regex searched in the URL; absent: every page
    [page.fields]
    title = "h1"                 # shorthand for { css = "h1" }
    price = { css = ".price", regex = '([\\d.]+)', type = "float", required = true }

Every mistake is a ``RulesError`` (a ``UsageError``: one line, exit 2) naming the file, the page
type and the field. ``Rules`` holds plain strings only, so it pickles in a few hundred bytes with
every page sent to a parse process; ``crawler.extraction.fields`` compiles what it needs once per
process. Nothing in a rules file is ever evaluated as code.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal, get_args

from selectolax.lexbor import LexborHTMLParser

from crawler.errors import RulesError

FieldType = Literal["str", "int", "float", "bool", "url", "datetime"]
TYPES: tuple[str, ...] = get_args(FieldType)
TOP_KEYS = ("page",)
PAGE_KEYS = ("name", "match", "fields")
FIELD_KEYS = ("css", "attr", "many", "regex", "type", "required", "default")
# What each key's value must be, in words for the message.
_FIELD_VALUE = {"css": (str, "a string"), "attr": (str, "a string"), "many": (bool, "true or false"),
                "regex": (str, "a string"), "type": (str, "a string"), "required": (bool, "true or false")}


@dataclass(frozen=True, slots=True)
class Field:
    """One named field: what to select (``css``), what to take of each match (``attr``: ``text``,
    ``html`` or an attribute name), whether every match (``many``), an optional ``regex``, the
    ``type`` to convert to, whether it is ``required``, and a ``default`` (already of its type,
    a tuple for ``many``; None: no default)."""

    name: str
    css: str
    attr: str = "text"
    many: bool = False
    regex: str | None = None
    type: FieldType = "str"
    required: bool = False
    default: Any = None


@dataclass(frozen=True, slots=True)
class PageType:
    """A ``[[page]]`` of the rules: its name, its URL regex (None: every page) and its fields."""

    name: str
    match: str | None
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Rules:
    """A checked rules file: its page types in order, and where it came from (for messages).
    ``key`` names its content (a digest): what a parse process compiles once and finds again for
    each page's copy, without hashing every field of it."""

    pages: tuple[PageType, ...]
    source: str = ""
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            digest = hashlib.blake2b(repr(self.pages).encode(), digest_size=16).hexdigest()
            object.__setattr__(self, "key", digest)


def load(path: str | Path) -> Rules:
    """Read and check the rules file at ``path``; raise ``RulesError`` naming what is wrong."""
    # (not crawler.user_files: extraction imports nothing beyond the foundations, test_architecture)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(f"rules file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"cannot read rules file {p}: {exc}") from None
    return parse_rules(text, str(p))


def parse_rules(text: str, source: str) -> Rules:
    """Check the rules of a TOML ``text`` read from ``source`` (a file name, for messages)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(_toml_message(str(exc), text, source)) from None
    for key in raw:
        if key not in TOP_KEYS:
            raise RulesError(f"{source}: unknown key {key!r} at the top level (known: [[page]])")
    pages = raw.get("page")
    if not pages:
        raise RulesError(f"{source}: no page types: add a [[page]] with its [page.fields]")
    if not isinstance(pages, list) or not all(isinstance(p, dict) for p in pages):
        raise RulesError(f"{source}: page must be an array of tables: write [[page]], not [page] or page = ...")
    seen: dict[str, int] = {}
    kinds = []
    for number, page in enumerate(pages, 1):
        kind = _page_type(page, number, source)
        if kind.name in seen:
            raise RulesError(f"{source}: page type {kind.name!r} (page {number}): the name is already page "
                             f"{seen[kind.name]}'s: name each page type once")
        seen[kind.name] = number
        kinds.append(kind)
    return Rules(tuple(kinds), source)


def _page_type(page: dict[str, Any], number: int, source: str) -> PageType:
    name = page.get("name", f"page {number}")
    where = f"{source}: page type {name!r}" if isinstance(name, str) else f"{source}: page type {number}"
    for key in page:
        if key not in PAGE_KEYS:
            raise RulesError(f"{where}: unknown key {key!r} (known: {', '.join(PAGE_KEYS)})")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"{where}: name must be a non-empty string, got {name!r}")
    match = page.get("match")
    if match is not None:
        if not isinstance(match, str):
            raise RulesError(f"{where}, match: must be a string (a regex searched in the URL), got {match!r}")
        _check_regex(match, f"{where}, match")
    fields = page.get("fields")
    if not fields:
        raise RulesError(f"{where}: no fields: add [page.fields] with at least one field")
    if not isinstance(fields, dict):
        raise RulesError(f"{where}: fields must be a table ([page.fields]), got {fields!r}")
    return PageType(name, match, tuple(_field(fname, spec, f"{where}, field {fname!r}") for fname, spec in fields.items()))


def _field(name: str, spec: Any, where: str) -> Field:
    if isinstance(spec, str):
        spec = {"css": spec}
    if not isinstance(spec, dict):
        raise RulesError(f"{where}: must be a CSS selector or a table with css = ..., got {spec!r}")
    for key in spec:
        if key not in FIELD_KEYS:
            raise RulesError(f"{where}: unknown key {key!r} (known: {', '.join(FIELD_KEYS)})")
    if "css" not in spec:
        raise RulesError(f"{where}: no css selector: add css = \"...\"")
    for key, (kind, words) in _FIELD_VALUE.items():
        if key in spec and not isinstance(spec[key], kind):
            raise RulesError(f"{where}: {key} must be {words}, got {spec[key]!r}")
    css = spec["css"]
    _check_selector(css, where)
    attr = spec.get("attr", "text")
    if not attr.strip():
        raise RulesError(f"{where}: attr must be text, html or an attribute's name, got {attr!r}")
    regex = spec.get("regex")
    if regex is not None:
        _check_regex(regex, f"{where}, regex")
    kind_name = spec.get("type", "str")
    if kind_name not in TYPES:
        raise RulesError(f"{where}: unknown type {kind_name!r} (known: {', '.join(TYPES)})")
    many = spec.get("many", False)
    default = spec.get("default")
    if default is not None:
        default = _default(default, kind_name, many, where)
    return Field(name, css, attr, many, regex, kind_name, spec.get("required", False), default)


def _check_selector(css: str, where: str) -> None:
    """lexbor refuses a selector it cannot parse with one message for every mistake; a
    pseudo-element (``::text``, ``::attr(href)``, parsel's) is among them, so say what to use instead."""
    try:
        LexborHTMLParser("").css(css)
    except Exception:   # selectolax.lexbor.SelectolaxError: "Can't parse CSS selector."
        hint = "; take an attribute with attr = \"NAME\", not ::attr()" if "::" in css else ""
        raise RulesError(f"{where}: invalid CSS selector {css!r}{hint}") from None


def _check_regex(pattern: str, where: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RulesError(f"{where}: invalid regex {pattern!r}: {exc}") from None


def _default(value: Any, kind: str, many: bool, where: str) -> Any:
    """The ``default`` as the field's values are (a tuple of them with ``many``); a RulesError when
    it is not of the field's type."""
    if many:
        if not isinstance(value, list):
            raise RulesError(f"{where}: default must be a list (the field has many = true), got {value!r}")
        return tuple(_default(v, kind, False, where) for v in value)
    good = {
        "str": isinstance(value, str), "url": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
        "bool": isinstance(value, bool),
        "datetime": isinstance(value, datetime | date | time) or (isinstance(value, str) and _iso(value)),
    }[kind]
    if not good:
        raise RulesError(f"{where}: default {value!r} is not of the field's type {kind}")
    if kind == "float":
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


# --- TOML's own messages, told as ours -------------------------------------------------------------

_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_DECLARED_TWICE = re.compile(r"Cannot declare \(([^)]*)\) twice")
_PAGE_HEADER = re.compile(r"^\s*\[\[\s*page\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*page\s*\.\s*fields\s*(?:\.\s*([\w\"'-]+))?\s*\]")
_NAME_LINE = re.compile(r"""^\s*name\s*=\s*["']([^"']*)["']""")
_KEY_LINE = re.compile(r"""^\s*["']?([\w-]+)["']?\s*=""")


def _toml_message(message: str, text: str, source: str) -> str:
    """tomllib's ``message`` as one line naming the page type and the field it is about, where the
    line it points at says so: TOML refuses a key given twice before we see the table."""
    found = _AT_LINE.search(message)
    if found is None:
        return f"{source}: not valid TOML: {message}"
    lineno = int(found.group(1))
    lines = text.splitlines()[:lineno]
    page, number, field, in_fields = None, 0, None, False
    for line in lines:
        if _PAGE_HEADER.match(line):
            number, page, field, in_fields = number + 1, f"page {number + 1}", None, False
        elif (header := _TABLE_HEADER.match(line)) is not None:
            in_fields, field = True, header.group(1).strip("\"'") if header.group(1) else None
        elif line.lstrip().startswith("["):
            in_fields, field = False, None
        elif (named := _NAME_LINE.match(line)) is not None and number and not in_fields:
            page = named.group(1)
    key = _KEY_LINE.match(lines[-1] if lines else "")
    if in_fields and field is None and key is not None:
        field = key.group(1)
    if (twice := _DECLARED_TWICE.search(message)) is not None:
        field = twice.group(1).split(",")[-1].strip(" '\"")
    where = source + (f": page type {page!r}" if page else "") + (f", field {field!r}" if field else "")
    if not in_fields and key is not None:
        where += f", {key.group(1)}"   # a page type's own key (match, name)
    what = message[:found.start()].strip()
    if "overwrite" in what or "twice" in what:
        what = f"given twice (a TOML table takes each key once; line {lineno})"
    elif "Duplicate" in what:
        what = f"{what.lower()} (line {lineno})"
    else:
        what = f"not valid TOML: {what} (line {lineno})"
    return f"{where}: {what}"
