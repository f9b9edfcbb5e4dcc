"""A real HTTP server on loopback for end-to-end crawls, started and stopped by the tests themselves.

    site = Site({"/": html("Home", "/a"), "/a": reply(404)})
    with site:                       # ThreadingHTTPServer on 127.0.0.1, port 0, in a daemon thread
        site.url("/")                # http://127.0.0.1:PORT/
        site.count("/a")             # requests seen for that path (with its query), thread-safe

A route is a fixed ``Reply`` (status, headers, body) or a ``Behaviour``: ``Slow`` (answers after a
sleep that ends early when the server stops), ``Sequence`` (a different reply per request, the
last one repeated), ``Conditional`` (304 to a matching If-None-Match), or a ``Raw`` one that
writes to the socket itself (``Wire``: given bytes; the fault suite's resets, drips and hangs).
Every request is logged with its monotonic arrival time and headers, so tests can assert "fetched
once" and measure the gap between a request and its retry on the server's side; ``peak`` is the
most requests that were in progress at once. Unknown paths answer 404.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Reply:
    """One HTTP response; Content-Length is added unless ``headers`` sets it."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


class Behaviour:
    """A route whose reply depends on the request: ``respond`` may block (it runs in its own thread)."""

    def respond(self, site: Site, hit: Hit) -> Reply:
        raise NotImplementedError


@dataclass(frozen=True)
class Slow(Behaviour):
    """``reply`` after ``seconds`` (or as soon as the server stops, so teardown never waits).
    With ``only_first`` N, only the first N requests are slow and later ones are answered at once."""

    seconds: float
    reply: Reply
    only_first: int = 0

    def respond(self, site: Site, hit: Hit) -> Reply:
        if not self.only_first or hit.number <= self.only_first:
            site.stopping.wait(self.seconds)
        return self.reply


@dataclass(frozen=True)
class Sequence(Behaviour):
    """The n-th request gets ``replies[n-1]``; the last reply answers every later request."""

    replies: tuple[Reply, ...]

    def respond(self, site: Site, hit: Hit) -> Reply:
        return self.replies[min(hit.number, len(self.replies)) - 1]


@dataclass(frozen=True)
class Conditional(Behaviour):
    """``reply`` with an ETag; 304 Not Modified when the request's If-None-Match names that ETag."""

    etag: str
    reply: Reply

    def respond(self, site: Site, hit: Hit) -> Reply:
        if hit.header("if-none-match") == self.etag:
            return Reply(304, (("ETag", self.etag),), b"")
        return Reply(self.reply.status, (*self.reply.headers, ("ETag", self.etag)), self.reply.body)


class Raw(Behaviour):
    """A route that speaks to the socket itself (``handler.connection``, ``handler.wfile``): resets,
    drips, hangs, truncated or endless bodies. The connection is closed after it."""

    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Wire(Raw):
    """Exactly ``data`` on the socket as the whole answer, then the connection closed: bytes that
    ``http.server`` would not write (a raw UTF-8 header, an ``HTTP/1.0`` status line, a header
    line of any length)."""

    data: bytes

    def serve(self, site: Site, hit: Hit, handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(self.data)


Route = Reply | Behaviour


def reply(status: int = 200, body: bytes | str = b"", content_type: str | None = None,
          **headers: str) -> Reply:
    """A reply; header keywords use ``_`` for ``-`` (``Retry_After="1"``)."""
    data = body.encode() if isinstance(body, str) else body
    pairs = [(name.replace("_", "-"), value) for name, value in headers.items()]
    if content_type is not None:
        pairs.insert(0, ("Content-Type", content_type))
    return Reply(status, tuple(pairs), data)


def html_doc(title: str | None, links: Iterable[str] = (), extra: str = "") -> str:
    head = f"<title>{title}</title>" if title is not None else ""
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return f"<!doctype html><html><head>{head}</head><body><ul>{anchors}</ul>{extra}</body></html>"


def html(title: str | None, *links: str, extra: str = "") -> Reply:
    """An HTML page (UTF-8) with a title and one ``<a href>`` per link, in order."""
    return reply(200, html_doc(title, links, extra), "text/html; charset=utf-8")


def gzipped(page: Reply) -> Reply:
    """The same reply with a gzip-encoded body."""
    return Reply(page.status, (*page.headers, ("Content-Encoding", "gzip")), gzip.compress(page.body))


def redirect(location: str, status: int = 301) -> Reply:
    return reply(status, b"", "text/html", Location=location)


def robots(text: str, status: int = 200) -> Reply:
    return reply(status, text, "text/plain")


@dataclass(frozen=True)
class Hit:
    """One request as the server saw it."""

    path: str
    at: float                      # time.monotonic() when the request line was read
    number: int = 0                # 1 for the first request of this path, 2 for the next, ...
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        site = self.server.site
        hit = site._arrived(self.path, tuple(self.headers.items()))
        try:
            route = site.routes.get(self.path.split("#", 1)[0])
            if isinstance(route, Raw):
                self.close_connection = True
                route.serve(site, hit, self)
                return
            if route is None:
                answer = reply(404, "not found", "text/plain")
            elif isinstance(route, Behaviour):
                answer = route.respond(site, hit)
            else:
                answer = route
        finally:
            site._left()
        self.send_response(answer.status)
        names = {name.lower() for name, _ in answer.headers}
        for name, value in answer.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests read the hit log
        pass


class _Server(ThreadingHTTPServer):
    # The listen backlog: the default 5 drops connections when a crawler opens many at once, and a
    # dropped SYN is retried by the kernel after a whole second, which a test's --timeout 1 sees.
    request_queue_size = 128
    daemon_threads = True
    block_on_close = False   # a handler still sleeping (Slow) must not hold up teardown
    site: Site

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (a crawler timeout) resets the socket under a sleeping handler;
        # that is the point of the test, not an error worth a traceback.
        pass


class Site:
    """Routes served on ``127.0.0.1:<free port>`` (or ``host``) while the ``with`` block runs."""

    def __init__(self, routes: Mapping[str, Route] | None = None, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.host = host   # another loopback address (127.0.0.2) stands in for a private one
        self.hits: list[Hit] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._active = 0
        self.peak = 0      # most requests in progress at once (until their reply was chosen)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Site:
        server = _Server((self.host, 0), _Handler)
        server.site = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"site-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> Site:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "site not started"
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    # -- the request log ---------------------------------------------------------------------

    def _arrived(self, path: str, headers: tuple[tuple[str, str], ...]) -> Hit:
        with self._lock:
            number = self._counts[path] = self._counts.get(path, 0) + 1
            hit = Hit(path, time.monotonic(), number, headers)
            self.hits.append(hit)
            self._active += 1
            self.peak = max(self.peak, self._active)
        return hit

    def _left(self) -> None:
        with self._lock:
            self._active -= 1

    def count(self, path: str) -> int:
        with self._lock:
            return self._counts.get(path, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def times(self, path: str) -> list[float]:
        with self._lock:
            return [hit.at for hit in self.hits if hit.path == path]

    def requests(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    def wait_for(self, path: str, timeout: float = 10.0) -> bool:
        """Block until ``path`` has been requested at least once; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(path):
                return True
            time.sleep(0.02)
        return False
