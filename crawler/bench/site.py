"""The site that ``crawler bench`` crawls: generated pages, served from memory by a separate process.

    with BenchSite(SiteSpec(pages=500, delay=0.05)) as site:   # asyncio server in its own process
        site.url                                              # http://127.0.0.1:PORT/

The site is deterministic: ``/`` links to ``/p/0``, and page ``i`` links to ``i + 1`` (so every page
is reachable) and to a few more pages derived from ``i``, each spelled many ways (fragments, ``./``,
``../``) that canonicalize to one URL, plus a few links off the host. A crawl of it therefore stores
exactly ``pages + 1`` pages whatever the parse mode, however many anchors a page carries.
``/robots.txt`` and every unknown path answer 404.

The server runs in a process of its own so that its CPU time is not the crawler's, pre-generates
every page's bytes before it reports its port (so serving costs next to nothing), and delays a
response with ``asyncio.sleep``, so it holds any number of slow requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType

from crawler.errors import CrawlError

_WORDS = ("asyncio", "crawler", "thread", "process", "socket", "event", "loop", "semaphore", "queue", "fetch", "parse",
          "store", "export", "frontier", "politeness", "robots", "sitemap", "link", "canonical", "scope", "host", "delay",
          "budget", "worker", "pool", "pickle", "shingle", "simhash", "lexbor", "selector", "anchor", "header", "body",
          "charset", "decode", "encode", "commit", "batch", "lease")


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """The shape of a generated site."""

    pages: int                 # pages besides ``/``; a full crawl stores pages + 1
    anchors: int = 10          # <a href> elements per page
    targets: int = 6           # distinct pages of the site that each page links to
    offsite: int = 2           # distinct links off the host per page (out of scope)
    text_kb: int = 2           # paragraph text per page, in KiB
    delay: float = 0.0         # seconds before each response


def link_targets(i: int, spec: SiteSpec) -> list[int]:
    """The pages that page ``i`` links to: the next page first, then a fixed spread of others."""
    n = spec.pages
    found = [(i + 1) % n]
    step = 1
    while len(found) < min(spec.targets, n):
        candidate = (i * 7919 + step * 104729) % n
        if candidate not in found:
            found.append(candidate)
        step += 1
    return found


def _paragraphs(count: int = 61) -> tuple[str, ...]:
    """A fixed pool of paragraphs (~1.2 KB each); pages pick from it, so generating is only joining."""
    rnd = random.Random(1)
    return tuple(f"<p>{' '.join(rnd.choice(_WORDS) for _ in range(180))}.</p>" for _ in range(count))


_PARAGRAPHS = _paragraphs()


def page(i: int, spec: SiteSpec) -> bytes:
    """The HTML of page ``i`` (``-1`` is ``/``)."""
    if i < 0:
        return _document("Bench site", '<a href="/p/0">start</a>', "", "")
    pool = _PARAGRAPHS
    targets = link_targets(i, spec)
    spellings = ("/p/{t}#a{k}", "{t}#b{k}", "../p/{t}#c{k}", "./{t}#d{k}", "/p/./{t}#e{k}")
    anchors = []
    for k in range(spec.anchors):
        if spec.offsite and k % 10 == 9:
            anchors.append(f'<a href="http://elsewhere.invalid/{k // 10 % spec.offsite}">elsewhere</a>')
        else:
            t = targets[k % len(targets)]
            anchors.append(f'<a href="{spellings[k % len(spellings)].format(t=t, k=k)}">page {t}</a>')
    paragraphs = []
    size = 0
    n = 0
    while size < spec.text_kb * 1024:
        paragraphs.append(pool[(i * 13 + n * 5) % len(pool)])
        size += len(paragraphs[-1])
        n += 1
    return _document(f"Page {i}", " ".join(anchors[:2]), "\n".join(paragraphs), " ".join(anchors[2:]))


def _document(title: str, nav: str, text: str, links: str) -> bytes:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="description" content="{title} of the crawler bench site"></head>'
            f"<body><nav>{nav}</nav><main><h1>{title}</h1>{text}</main>"
            f"<section>{links}</section></body></html>").encode()


def _response(status: int, body: bytes, content_type: str) -> bytes:
    reason = {200: "OK", 404: "Not Found"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def responses(spec: SiteSpec) -> dict[str, bytes]:
    """Every response of the site, whole (status line, headers, body), by path."""
    html = "text/html; charset=utf-8"
    out = {"/": _response(200, page(-1, spec), html)}
    for i in range(spec.pages):
        out[f"/p/{i}"] = _response(200, page(i, spec), html)
    return out


_NOT_FOUND = _response(404, b"not found", "text/plain")


async def _serve(spec: SiteSpec, report: Connection) -> None:
    site = responses(spec)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # HTTP/1.1 keep-alive: GET requests without bodies, one after another on a connection.
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line = head.split(b"\r\n", 1)[0].split(b" ")
                if len(request_line) != 3:   # not HTTP/1.x: nothing to answer
                    break
                path = request_line[1].decode("latin-1")
                if spec.delay:
                    await asyncio.sleep(spec.delay)
                writer.write(site.get(path, _NOT_FOUND))
                await writer.drain()
                if b"\r\nconnection: close" in head.lower():
                    break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    report.send(server.sockets[0].getsockname()[1])
    report.close()
    async with server:
        await server.serve_forever()


def _main(spec: SiteSpec, report: Connection) -> None:
    """The server process: serve until terminated. Ctrl-C reaches the whole process group; the bench
    decides when its site stops, so the server ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(spec, report))


class BenchSite:
    """The generated site, served on 127.0.0.1 by a separate process while the ``with`` block runs."""

    def __init__(self, spec: SiteSpec) -> None:
        self.spec = spec
        self.port = 0
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> BenchSite:
        # spawn: a clean interpreter, whatever threads the caller has.
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        process = self._process = context.Process(target=_main, args=(self.spec, send), name="crawler-bench-site",
                                                  daemon=True)
        process.start()
        send.close()
        try:
            if not receive.poll(60):
                raise CrawlError("the bench site did not start within 60 s")
            try:
                self.port = receive.recv()
            except EOFError:
                process.join(1)
                raise CrawlError(f"the bench site failed to start (exit code {process.exitcode})") from None
        except BaseException:
            self._stop()
            raise
        finally:
            receive.close()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
