"""``crawler export --format mirror --out DIR``: a copy of the archived site to open from disk.

    source.py   what is archived: the one reader of stored bodies (``mirror_entries``, ``mirror_bodies``)
    names.py    the file of a URL (pure): safe on Linux, macOS and Windows
    rewrite.py  links in HTML and CSS made relative to the local copies (pure)
    tree.py     files created below DIR only, no symlink followed

Two passes over the jobs, one resource in memory at a time: the first gives every archived URL a
file (``storage.mirror_index``, a temporary SQLite file: redirects, case-folded clashes, a file
that is also a folder), the second writes each body, HTML and CSS with their links rewritten,
everything else copied as stored. The whole mirror is written into a new folder beside DIR, which
then takes DIR's place (``crawler.export.folder``), so a failed export leaves the last one intact
and a recrawl's export replaces it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from crawler.errors import UsageError
from crawler.export.base import Selection
from crawler.export.folder import staged_folder
from crawler.export.mirror import names
from crawler.export.mirror.rewrite import rewrite_css, rewrite_html
from crawler.export.mirror.source import Stored, mirror_bodies, mirror_entries
from crawler.export.mirror.tree import Tree
from crawler.storage.mirror_index import MirrorIndex
from crawler.storage.read import JobReader
from crawler.urls import canonicalize, strip_params

_HTML = frozenset({"text/html", "application/xhtml+xml"})
_LINKS_CACHED = 4096   # links looked up per page, bounded: a site's navigation repeats on every page


def write_mirror(folder: str | Path, jobs: Sequence[JobReader], selection: Selection) -> int:
    """Write the mirror of ``jobs`` to ``folder``; returns how many files it holds."""
    for job in jobs:
        if not job.keeps_bodies():
            raise UsageError(f"{job.path} was crawled with --no-bodies: a mirror needs the response bodies")
    key = _link_key(jobs)
    with MirrorIndex(names.file_name, names.folded, names.with_hash) as index:
        for entry in mirror_entries(jobs, selection):
            index.add(entry.url, entry.final_url, entry.media_type)
        index.settle()

        @functools.lru_cache(maxsize=_LINKS_CACHED)
        def local(url: str) -> str | None:
            """The file of a link's absolute URL, or None: not archived."""
            canonical = key(url)
            return index.name(canonical) if canonical else None

        n = 0
        try:
            with staged_folder(folder) as staging, Tree(staging) as tree:
                for stored in mirror_bodies(jobs, selection):
                    name = index.owned(stored.entry.url)
                    if name is not None:
                        tree.write(name, _content(stored, name, local))
                        n += 1
        except OSError as exc:   # a full disk, a folder we may not write to: one line, the old mirror intact
            raise UsageError(f"cannot write the mirror to {folder}: {exc.strerror or exc}") from None
    return n


def _link_key(jobs: Sequence[JobReader]) -> Callable[[str], str | None]:
    """The URL a link was stored as by the crawl of ``jobs``: canonical, with the job's query sorting
    and its session parameters dropped (``parse_stage``), so that a link finds its archived copy."""
    settings = [job.meta().get("job_settings") or {} for job in jobs]
    sort_query = any(s.get("sort_query") for s in settings)
    params = frozenset(str(p).lower() for s in settings for p in (s.get("session_params") or ()))

    def key(url: str) -> str | None:
        canonical = canonicalize(url, sort_query=sort_query)
        return strip_params(canonical, params) if canonical and params else canonical

    return key


def _content(stored: Stored, name: str, local: Callable[[str], str | None]) -> Iterator[bytes]:
    """The bytes of the file ``name``: HTML and CSS rewritten, anything else as stored."""
    media = stored.entry.media_type
    if media not in _HTML and media != "text/css":
        yield from stored.chunks()
        return

    def link(url: str) -> str | None:
        target = local(url)
        return None if target is None else names.relative(target, name)

    body = stored.read()
    if media == "text/css":
        text, encode = _decode_css(body)
        yield encode(rewrite_css(text, stored.entry.final_url, link))
    else:
        text, encode = _decode_html(body, stored.content_type)
        yield encode(rewrite_html(text, stored.entry.final_url, link))


class _Encoder:
    """Back to the bytes' own encoding: what was not decoded goes back as it was (surrogateescape)."""

    def __init__(self, bom: bytes, codec: str) -> None:
        self.bom, self.codec = bom, codec

    def __call__(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec, "surrogateescape")


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _decode_html(body: bytes, content_type: str | None) -> tuple[str, _Encoder]:
    from crawler.parser import decode_html  # here: only HTML needs it

    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, "surrogateescape"), _Encoder(bom, codec)
    _, codec = decode_html(body, content_type)
    return body.decode(codec, "surrogateescape"), _Encoder(b"", codec)


def _decode_css(body: bytes) -> tuple[str, _Encoder]:
    """CSS as UTF-8 (its default), bytes that are not kept as they were: URLs are ASCII either way."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, "surrogateescape"), _Encoder(bom, codec)
    return body.decode("utf-8", "surrogateescape"), _Encoder(b"", "utf-8")
