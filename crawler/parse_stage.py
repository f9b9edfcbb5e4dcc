"""Where the parse stage runs: on the event loop, in a thread pool, or in a process pool.

``analyze`` is the unit of work: a pure function of plain picklable values (the response, the
job's scope and options) that parses the page, judges every link against the scope and hashes the
body. With extraction rules or a plugin (``crawler.extraction``), it reads the user's fields from
the same parsed tree, before the parser's main-text step changes it. ``ParseStage`` runs it in the chosen place:

- ``async``: inline on the event loop. No copying, no hand-off; the loop stalls while it parses.
- ``thread``: a ThreadPoolExecutor. Helps only where the work releases the GIL; pure-Python work
  (canonicalizing links, simhash) does not, so threads mostly take turns.
- ``process``: a ProcessPoolExecutor (forkserver). Every core works, at the price of pickling
  each body to a worker and the result back.

A worker process that dies (a crash in C code, an out-of-memory kill) breaks the whole pool. The
stage replaces the pool and tries each page that was in it once more, one at a time; a page that
breaks the new pool too is ``ParseFailed`` (stored with error ``parse_failed``), the pool is
replaced again, and the crawl goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import partial
from types import TracebackType
from typing import Protocol

from selectolax.lexbor import LexborHTMLParser

from crawler.errors import ParseFailed
from crawler.extraction.apply import Extraction, extract_page
from crawler.extraction.rules import Rules
from crawler.models import Extracted, Link, Outlink, ParsedPage, ParseMode
from crawler.parser import parse
from crawler.references import decide_reference
from crawler.scope import Scope
from crawler.urls import host_key, strip_params


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """The job-wide inputs of ``analyze``; sent along with each page (a few hundred bytes)."""

    scope: Scope
    sort_query: bool = False
    follow_nofollow: bool = False
    extract_text: bool = False
    session_params: frozenset[str] = frozenset()   # dropped from every link (urls.strip_params)
    rules: Rules | None = None                      # extraction rules (strings: compiled once per process)
    plugin: str = ""                                # module:function, imported once per process
    structured_data: bool = True     # JSON-LD, OpenGraph/Twitter meta (crawler.extraction.structured)
    microdata: bool = False          # and microdata (extruct), with structured_data
    check_references: bool = False   # references (stylesheets, images, ...): checked, fetched as requisites
    check_external: bool = False     # (crawler.references.decide_reference)
    page_requisites: bool = False

    @property
    def extraction(self) -> Extraction:
        """What the extraction step reads from each page (the same as ``crawler extract --db``)."""
        return Extraction(self.rules, self.plugin, self.structured_data, self.microdata)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the parse stage makes of one response."""

    page: ParsedPage | None           # None when the body was not parsed (not 2xx HTML)
    outlinks: tuple[Outlink, ...]
    content_hash: str | None
    extracted: Extracted | None = None   # the user's fields (rules, plugin) and the page's structured data


def analyze(url: str, headers: Mapping[str, str], body: bytes, depth: int, html: bool,
            options: ParseOptions, status: int = 200) -> Analysis:
    """Parse one response and judge its links. Pure: safe in any thread or process."""
    digest = content_hash(body) if body else None
    if not html:
        return Analysis(None, (), digest)
    extracted: list[Extracted | None] = []

    def extract(tree: LexborHTMLParser, text: str) -> None:
        extracted.append(extract_page(how, url, status, headers, tree, text))

    how = options.extraction
    page = parse(url, headers, body, sort_query=options.sort_query, extract_text=options.extract_text,
                 on_tree=extract if how.wanted else None)
    decide = options.scope.decide
    next_depth = depth + 1
    skip_all = page.nofollow and not options.follow_nofollow
    links = page.links
    if options.session_params:
        # Without its session id a link may be one the page already has: keep the first of each.
        kept: dict[str, Link] = {}
        for link in links:
            url = strip_params(link.url, options.session_params)
            if url not in kept:
                kept[url] = link if url == link.url else replace(link, url=url)
        links = tuple(kept.values())
    outlinks = tuple(
        Outlink(link.url, host_key(link.url), link.nofollow,
                "nofollow" if skip_all or (link.nofollow and not options.follow_nofollow)
                else decide(link.url, next_depth), link.anchor, link.kind)
        for link in links)
    # References are queued as checks or requisites, or left (never fetched as pages); so are off-scope
    # links with --check-external.
    outlinks = tuple(link if link.kind == "page" and not options.check_external else judge_reference(options, link)
                     for link in outlinks)
    return Analysis(page, outlinks, digest, extracted[0] if extracted else None)


def judge_reference(options: ParseOptions, link: Outlink) -> Outlink:
    """A link as the reference options see it: queued as a check or a requisite, or as it was."""
    if link.kind == "page" and link.exclusion not in ("off_host", "off_domain"):
        return link
    exclusion, fetch_as = decide_reference(
        link.url, link.kind, link.exclusion, scope=options.scope, check_references=options.check_references,
        check_external=options.check_external, requisites=options.page_requisites)
    return link._replace(exclusion=exclusion, fetch_as=fetch_as)


def content_hash(body: bytes) -> str:
    """The key of exact duplicates: 128 bits of BLAKE2b over the body as received (decompressed)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


class AnalyzeFn(Protocol):
    """``analyze``'s shape (tests put in one that crashes its worker)."""

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes, depth: int, html: bool,
                 options: ParseOptions, status: int = 200, /) -> Analysis: ...


class ParseStage:
    """Runs ``analyze`` in the configured place. Use as ``async with ParseStage(...) as stage``."""

    def __init__(self, mode: ParseMode, workers: int, options: ParseOptions, fn: AnalyzeFn = analyze) -> None:
        self.mode = mode
        self.workers = workers or os.cpu_count() or 1
        self.options = options
        self._fn = fn
        self._executor: Executor | None = None
        self._alone = asyncio.Lock()
        self.pools_replaced = 0

    def _new_executor(self) -> Executor | None:
        if self.mode == "thread":
            return ThreadPoolExecutor(self.workers, thread_name_prefix="parse")
        if self.mode == "process":
            # forkserver: workers start from a clean process, not a fork of one with threads
            # (aiosqlite's) and an event loop, which fork would copy in whatever state they are.
            return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("forkserver"))
        return None

    async def __aenter__(self) -> ParseStage:
        self._executor = self._new_executor()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def analyze(self, url: str, headers: Mapping[str, str], body: bytes, depth: int, html: bool,
                      status: int = 200) -> Analysis:
        """Analyze one response where the stage runs; raise ParseFailed if that cannot be done."""
        call = partial(self._fn, url, headers, body, depth, html, self.options, status)
        if self._executor is None:
            try:
                return call()
            except Exception as exc:  # a parser bug on one page must not stop the crawl
                raise ParseFailed(url, f"{type(exc).__name__}: {exc}") from exc
        try:
            return await self._run(url, call)
        except BrokenProcessPool:
            pass
        # The pool died with this page in it, maybe by its fault, maybe by a neighbour's. Try again
        # alone, so that a page which kills a worker again is the only one to fail.
        async with self._alone:
            try:
                return await self._run(url, call)
            except BrokenProcessPool:
                raise ParseFailed(url, "the parse worker died on this page") from None

    async def _run(self, url: str, call: Callable[[], Analysis]) -> Analysis:
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, call)
        except BrokenProcessPool:
            if executor is not None and executor is self._executor:   # the first to notice replaces it
                _discard(executor)
                self._executor = self._new_executor()
                self.pools_replaced += 1
            raise
        except Exception as exc:
            raise ParseFailed(url, f"{type(exc).__name__}: {exc}") from exc


def _discard(executor: Executor) -> None:
    """Shut down a broken process pool for good.

    ``shutdown`` leaves the cleanup to the pool's manager thread, which terminates the workers it
    knows and joins them. A worker started by a submit that raced with the break can escape that
    terminate, and the join then waits forever, which hangs the interpreter at exit (seen here on
    CPython 3.11). Every submit happens on this thread, so at this point the pool's process table is
    complete: kill them all, and the join returns.
    """
    workers = list((getattr(executor, "_processes", None) or {}).values())  # private: the only handle
    executor.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        if worker.is_alive():
            worker.kill()
