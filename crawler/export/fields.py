"""The extraction's fields in exports: which a job's record gets, and their values.

- A job that stored any extraction (schema 6 and a crawl that extracted) gets, after the fields of
  INTERFACE.md, ``h1``, ``lang``, ``word_count``, ``data``, ``jsonld`` and ``opengraph``; a job that
  stored none (every job of schema 5 or before) exports exactly as before.
- ``data`` is an object (field -> value, null where nothing matched); in CSV and Parquet it becomes
  one column ``data.NAME`` per field of the jobs (the union, first seen first: a page's fields in
  its rules' order). ``--fields data.NAME`` picks one (JSON lines: a key ``data.NAME``).
- ``jsonld`` (a list), ``opengraph`` and ``microdata`` are JSON in JSON lines, JSON text in CSV
  and Parquet; null where the page has none.
- ``text`` (only with ``--fields``) is the page's main text, computed from the stored body when
  exported (``crawler.extract.main_text``): storing it would double a job's size for a field few
  exports ask for.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from crawler.storage.read import decode_headers

# Added to the default record of a job that stored extraction, in this order.
EXTRACTION_FIELDS = ("h1", "lang", "word_count", "data", "jsonld", "opengraph")
# What --fields may name besides the exported record's fields (and ``data.NAME``).
EXTRACTION_EXTRA = (*EXTRACTION_FIELDS, "page_type", "microdata", "jsonld_error", "text")
JSON_FIELDS = frozenset({"data", "jsonld", "opengraph", "microdata"})
DATA = "data."


def is_data_field(name: str) -> bool:
    return name.startswith(DATA) and len(name) > len(DATA)


def stored_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """The stored columns (``storage.read.RECORD_COLUMNS``) that ``fields`` are made from."""
    needed: dict[str, None] = {}
    for f in fields:
        if is_data_field(f):
            needed["data"] = None
        elif f == "text":
            needed.update({"body": None, "headers": None, "content_type": None})
        else:
            needed[f] = None
    return tuple(needed)


def shape(fields: Sequence[str], stored: dict[str, Any]) -> dict[str, Any]:
    """The record of ``fields`` from the stored columns: JSON decoded, ``data.NAME`` picked, ``text`` made."""
    decoded = {f: json.loads(stored[f]) if f in JSON_FIELDS and stored.get(f) is not None else stored.get(f)
               for f in stored}
    data = decoded.get("data") or {}
    record: dict[str, Any] = {}
    for f in fields:
        if is_data_field(f):
            record[f] = data.get(f[len(DATA):])
        elif f == "text":
            record[f] = page_text(stored.get("body"), stored.get("headers"), stored.get("content_type"))
        else:
            record[f] = decoded[f]
    return record


def page_text(body: bytes | None, headers: bytes | None, content_type: str | None) -> str | None:
    """The main text of a stored HTML body (compressed as stored), decoded as the crawl decoded it."""
    # Imported here: an export without ``text`` does without the parser's imports (charset detection).
    from selectolax.lexbor import LexborHTMLParser

    from crawler.extract import main_text
    from crawler.parser import decode_html, is_html

    if body is None or not is_html(content_type):
        return None
    declared = next((v for k, v in decode_headers(headers) if k.lower() == "content-type"), content_type)
    text, _ = decode_html(zlib.decompress(body), declared)
    return main_text(LexborHTMLParser(text))
