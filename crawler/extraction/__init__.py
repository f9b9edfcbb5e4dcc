"""Extraction: the user's own data out of every page, and the structured data pages declare.

Everything here is a pure function of a page's URL and its parsed tree (selectolax/lexbor), run in
the parse stage, so it behaves the same in every parse mode, with ``--workers`` and with a Redis
frontier. Nothing from a rules file or a page is ever evaluated as code.

Modules (the pipeline's extraction step, in the order a page meets them):

- ``rules``: a rules file (TOML) read and validated into ``Rules`` before the first request.
- ``fields``: one page's fields under the page type that applies.
- ``structured``: JSON-LD blocks, OpenGraph and Twitter meta, microdata.
- ``microdata``: extruct's microdata reader behind one boundary (the optional ``microdata`` extra).

What the step makes of one page is an ``Extracted`` (``crawler.models``): plain, picklable values
that the parse stage hands back and the writer stores with the page (``PageRecord.extracted``).
"""

from __future__ import annotations

from crawler.models import Extracted

__all__ = ["Extracted"]
