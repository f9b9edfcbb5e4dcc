"""Markdown for language-model pipelines: each stored HTML page's main content, links kept.

``--format markdown`` writes JSON lines of ``{url, title, markdown}`` (and ``data``, the
extraction's fields, where the page has them); ``--out DIR/`` writes one ``.md`` file per page
instead (``write_dir``), with YAML front matter: ``url``, ``title``, ``fetched_at``, then each
field of the extraction's ``data`` (a field named like one of those three is left out: the page's
own wins).

- Pages: those that answered 200 with an HTML body, less the exact and near-duplicates (pages
  with ``duplicate_of`` or ``near_duplicate_of``: their first copy is written), so a corpus
  holds each text once.
- Main content: the first ``<main>``, ``role=main`` or ``<article>``, else the body, less what
  is not content (navigation, header, footer, asides, scripts, forms: ``crawler.extract``'s
  boilerplate); converted by html-to-markdown (Rust, ``html_to_markdown.convert``), links and
  images made absolute against the page's final URL. Measured against markdownify and html2text
  on the bench site and the Python documentation: docs/performance.md.
- Streaming: one page in memory at a time; the output all or nothing (``crawler.output`` for a
  file, a folder written beside the target and renamed into place for ``DIR/``).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from selectolax.lexbor import LexborHTMLParser

from crawler.export.base import Selection
from crawler.export.file_names import page_file_name
from crawler.export.folder import staged_folder
from crawler.extract import _BOILERPLATE as BOILERPLATE  # the parse stage's list of what is no content
from crawler.storage.read import JobReader, decode_headers

_READ = ("url", "final_url", "title", "fetched_at", "content_type", "headers", "body", "data", "duplicate_of",
         "near_duplicate_of")
_MAIN = "main, [role=main], article"
_OWN = ("url", "title", "fetched_at")   # front matter keys of the page itself
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})   # YAML 1.1 reads them as values


def page_markdown(html: str, base_url: str | None) -> str:
    """The main content of a page as Markdown, links and images absolute against ``base_url``."""
    import html_to_markdown  # here: the other formats do without its 7 MB

    tree = LexborHTMLParser(html)
    root = tree.css_first(_MAIN) or tree.body or tree.root
    if root is None:
        return ""
    for node in root.css(BOILERPLATE):
        node.decompose()
    options = html_to_markdown.ConversionOptions(extract_metadata=False, base_url=base_url)
    return str(html_to_markdown.convert(root.html or "", options).content).strip() + "\n"


def pages(jobs: Sequence[JobReader], selection: Selection) -> Iterator[dict[str, Any]]:
    """``{url, title, markdown, fetched_at, data}`` of each page to write (see the module docstring)."""
    from crawler.parser import decode_html, is_html  # here: the other formats do without its imports

    for _, keyed in replace(selection, fields=_READ, chosen=True).pages(jobs):
        r = keyed.record
        if (keyed.status != 200 or r["body"] is None or not is_html(r["content_type"])
                or r["duplicate_of"] is not None or r["near_duplicate_of"] is not None):
            continue
        declared = next((v for k, v in decode_headers(r["headers"]) if k.lower() == "content-type"), r["content_type"])
        html, _ = decode_html(zlib.decompress(r["body"]), declared)
        yield {"url": r["url"], "title": r["title"], "markdown": page_markdown(html, r["final_url"] or r["url"]),
               "fetched_at": r["fetched_at"], "data": json.loads(r["data"]) if r["data"] else None}


def export(out: BinaryIO, jobs: Sequence[JobReader], selection: Selection) -> int:
    """JSON lines of ``{url, title, markdown}``, and ``data`` where the page has the extraction's."""
    n = 0
    for page in pages(jobs, selection):
        record = {"url": page["url"], "title": page["title"], "markdown": page["markdown"]}
        if page["data"]:
            record["data"] = page["data"]
        out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        n += 1
    return n


def front_matter(page: dict[str, Any]) -> str:
    """YAML front matter: every value as JSON (ASCII-escaped), which YAML 1.2 reads as it is, so no
    title or field value can break out of it; keys quoted unless plain."""
    fields = {k: page[k] for k in _OWN} | {k: v for k, v in (page["data"] or {}).items() if k not in _OWN}
    lines = [f"{_yaml_key(k)}: {json.dumps(v, default=str)}" for k, v in fields.items()]
    return "---\n" + "\n".join(lines) + "\n---\n\n"


def _yaml_key(key: str) -> str:
    plain = (_PLAIN_KEY.fullmatch(key) is not None) and key.lower() not in _YAML_WORDS
    return key if plain else json.dumps(key)


def is_folder(out: str | Path) -> bool:
    """Whether ``--out`` names a folder: it ends in ``/``, or is one."""
    return str(out).endswith(("/", os.sep)) or Path(out).is_dir()


def write_dir(folder: str | Path, jobs: Sequence[JobReader], selection: Selection) -> int:
    """One ``.md`` file per page into ``folder``, all or nothing (``crawler.export.folder``)."""
    n = 0
    with staged_folder(folder) as staging:
        for page in pages(jobs, selection):
            with open(staging / page_file_name(page["url"]), "x", encoding="utf-8") as f:
                f.write(front_matter(page) + page["markdown"])
            n += 1
    return n
