"""The ``Cookie`` header of a request, as ``http.cookiejar`` makes it, without asking the jar anew
for every request.

httpx asks the jar on every request: it builds a urllib-style request, and the jar checks every rule
of every cookie that could apply (domain, port, Secure, path, expiry). With one cookie in the jar
that was about 8% of a crawl of the bench site. Yet the header depends on little: the request's
origin (scheme, host and port), which of the jar's cookie paths match the request's path, and the
time, only through the cookies' expiry. So the jar's own answer (``add_cookie_header``) is kept per
origin and set of matching paths, and asked again only when a cookie was set or cleared (the
counting jar's ``changes``) or one of them has expired since. The rules stay the jar's; this module
only decides when its answer cannot have changed.
"""

from __future__ import annotations

import http.cookiejar
import math
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from crawler.session.jar import changes, counting

# The path of a request as http.cookiejar matches cookie paths against it (not in typeshed).
_escape_path: Any = getattr(http.cookiejar, "escape_path")  # noqa: B009


def request_path(url: str) -> str:
    """The path of ``url`` as ``http.cookiejar.request_path`` gives it: escaped, starting with ``/``."""
    return _path(urlsplit(url).path)


def _path(raw: str) -> str:
    path: str = _escape_path(raw)
    return path if path.startswith("/") else "/" + path


def path_matches(cookie_path: str, path: str) -> bool:
    """Whether a cookie of ``cookie_path`` goes with a request for ``path``:
    ``DefaultCookiePolicy.path_return_ok``'s rule."""
    if path == cookie_path:
        return True
    n = len(cookie_path)
    return path.startswith(cookie_path) and (cookie_path.endswith("/") or path[n:n + 1] == "/")


def asked(jar: http.cookiejar.CookieJar, url: str) -> str | None:
    """The ``Cookie`` header ``jar`` gives a request for ``url``, asking it (what httpx does)."""
    request = urllib.request.Request(url)
    jar.add_cookie_header(request)
    return request.get_header("Cookie")


class CookieHeaders:
    """The jar's ``Cookie`` header for each request, kept while it cannot have changed."""

    def __init__(self) -> None:
        self._jar: http.cookiejar.CookieJar | None = None
        self._changes = -1
        self._paths: tuple[str, ...] = ()   # every cookie path in the jar
        self._until = math.inf               # the earliest expiry in the jar (whole seconds, as the jar's clock)
        self._kept: dict[tuple[str, str, tuple[str, ...]], str | None] = {}

    def header(self, jar: http.cookiejar.CookieJar, url: str) -> str | None:
        """The ``Cookie`` header of a request for ``url`` from ``jar``, or None: no cookie goes."""
        if not counting(jar):   # a jar that does not count its changes: asked every time
            return asked(jar, url)
        if jar is not self._jar or changes(jar) != self._changes or int(time.time()) >= self._until:
            self._look(jar)
        if not self._paths:
            return None
        parts = urlsplit(url)
        path = _path(parts.path)
        key = (parts.scheme, parts.netloc, tuple(p for p in self._paths if path_matches(p, path)))
        if key not in self._kept:
            self._kept[key] = asked(jar, url)
            if changes(jar) != self._changes:   # asking cleared expired cookies: look again next time
                self._changes = -1
        return self._kept[key]

    def _look(self, jar: http.cookiejar.CookieJar) -> None:
        """Forget what was kept; note the jar's cookie paths and earliest expiry."""
        cookies = list(jar)
        self._jar, self._changes = jar, changes(jar)
        self._paths = tuple(sorted({c.path for c in cookies}))
        self._until = min((c.expires for c in cookies if c.expires is not None), default=math.inf)
        self._kept.clear()
