"""The cookie jar's contents as plain values, a Netscape ``cookies.txt`` read into them, and the
cookie values taken out of the headers a page record keeps.

The jar itself is the HTTP client's (``httpx2.AsyncClient.cookies.jar``, a ``http.cookiejar``
``CookieJar``): it applies the cookie rules (domain and path matching, Secure, expiry, public
suffixes refused as a cookie's domain) to every response and request, the robots.txt and login
requests included. This module moves cookies in and out of it as picklable tuples (``Records``),
which is how they travel to worker processes and into the sealed copy in the job file.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError
from crawler.user_files import read_text

# One cookie: (domain, path, name, value, secure, expires or None, domain given, http-only, port or
# None: the port of the origin that set it; None for a cookie from a cookies.txt, sent to any port).
Record = tuple[str, str, str, str, bool, int | None, bool, bool, str | None]
Records = tuple[Record, ...]
REDACTED = "<redacted>"


class _Counting(http.cookiejar.CookieJar):
    """Counts the changes made to the jar, so that "did this response set a cookie?" costs nothing
    on the many pages that set none (a digest of the whole jar after every page would)."""

    changes = 0

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        super().set_cookie(cookie)
        self.changes += 1

    def clear(self, domain: str | None = None, path: str | None = None, name: str | None = None) -> None:
        super().clear(domain, path, name)
        self.changes += 1

    def make_cookies(self, response: Any, request: Any) -> list[http.cookiejar.Cookie]:
        """The cookies a response sets, each bound to the port it came from: RFC 6265 would send it
        to every port of the host, but another port is another origin, which gets none of the
        session (the stdlib policy sends a cookie with a port only to that port)."""
        cookies = list(super().make_cookies(response, request))
        port = _request_port(request)
        for cookie in cookies:
            if not cookie.port:
                cookie.port, cookie.port_specified = port, True
        return cookies


# The port of a urllib-style request, as the stdlib policy compares it (not in typeshed).
_request_port: Any = getattr(http.cookiejar, "request_port")  # noqa: B009


def counting_jar(like: http.cookiejar.CookieJar) -> http.cookiejar.CookieJar:
    """A new, empty jar of ``like``'s class (httpx's own, indexed by domain) that counts its
    changes (``changes``)."""
    kind = type(f"Counting{type(like).__name__}", (_Counting, type(like)), {})
    jar: http.cookiejar.CookieJar = kind()
    return jar


def counting(jar: http.cookiejar.CookieJar) -> bool:
    """Whether ``jar`` counts its changes (a ``counting_jar``)."""
    return isinstance(jar, _Counting)


def changes(jar: http.cookiejar.CookieJar) -> int:
    """How many times cookies were set in or cleared from ``jar`` (a ``counting_jar``)."""
    return getattr(jar, "changes", 0)


def records(jar: http.cookiejar.CookieJar) -> Records:
    """Every cookie of ``jar``, session cookies included, in a stable order."""
    out = [(c.domain, c.path, c.name, c.value or "", c.secure, c.expires, c.domain_specified,
            c.has_nonstandard_attr("HttpOnly"), c.port) for c in jar]
    return tuple(sorted(out, key=lambda r: (r[0], r[1], r[2])))


def fingerprint(jar: http.cookiejar.CookieJar) -> bytes:
    """A digest of ``jar``'s contents: it changes when a cookie is set, changed or removed."""
    return hashlib.blake2b(repr(records(jar)).encode(), digest_size=16).digest()


def put(jar: http.cookiejar.CookieJar, cookies: Iterable[Record]) -> None:
    """Set each cookie in ``jar`` (a cookie of the same domain, path and name is replaced); one
    already expired removes it."""
    for domain, path, name, value, secure, expires, domain_given, http_only, port in cookies:
        jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, port, port is not None, domain, domain_given, domain.startswith("."), path, True, secure,
            expires, expires is None, None, None, {"HttpOnly": ""} if http_only else {}))
    jar.clear_expired_cookies()


def load_netscape(path: str) -> Records:
    """The cookies of a Netscape ``cookies.txt`` (what curl, wget and browser extensions write), read
    by ``http.cookiejar.MozillaCookieJar``; a file it cannot read is a ``ConfigError``. A file
    without the ``# Netscape HTTP Cookie File`` first line some extensions leave out is read too."""
    p = Path(path)
    text = read_text(p, "cookies file")
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("\t")
        if line.strip() and (not line.startswith("#") or line.startswith("#HttpOnly_")):
            # (MozillaCookieJar would skip a bad line with a warning: one line says which, exit 2)
            if len(fields) != 7:
                raise ConfigError(f"cookies file {p} is not a Netscape cookies.txt: line {number} is not seven "
                                  "fields separated by tabs")
            if fields[4] == "0":   # curl's session cookie, which MozillaCookieJar would read as expired in 1970
                fields[4] = ""
        lines.append("\t".join(fields))
    text = "\n".join(lines) + "\n"
    if not text.lstrip().startswith(("# Netscape HTTP Cookie File", "# HTTP Cookie File")):
        text = "# Netscape HTTP Cookie File\n" + text
    jar = _TextJar(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            jar.load(ignore_discard=True, ignore_expires=False)
    except (http.cookiejar.LoadError, ValueError, IndexError, UserWarning) as exc:
        raise ConfigError(f"cookies file {p} is not a Netscape cookies.txt: {str(exc).splitlines()[0]}") from None
    return records(jar)


class _TextJar(http.cookiejar.MozillaCookieJar):
    """A ``MozillaCookieJar`` that reads the text it is given rather than a file it opens."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def load(self, filename: str | None = None, ignore_discard: bool = False, ignore_expires: bool = False) -> None:
        import io
        self._really_load(io.StringIO(self._text), "cookies file", ignore_discard, ignore_expires)  # type: ignore[attr-defined]


def redacted(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``headers`` with the value of every cookie in a ``Cookie`` or ``Set-Cookie`` header replaced
    by ``<redacted>``: names and attributes stay (what a reader of the record needs), values go."""
    if not any(name.lower() in ("cookie", "set-cookie") for name, _ in headers):
        return headers
    out = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            value = "; ".join(f"{pair.partition('=')[0].strip()}={REDACTED}" for pair in value.split(";") if pair.strip())
        elif lower == "set-cookie":
            first, sep, attributes = value.partition(";")
            value = f"{first.partition('=')[0].strip()}={REDACTED}{sep}{attributes}"
        out.append((name, value))
    return tuple(out)
