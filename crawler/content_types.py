"""Which media types a crawl wants: ``--accept-type`` and ``--reject-type``, judged twice, each time
as early as the answer is known. Pure: no I/O, picklable values only.

- From a URL's extension, before any request, where the extension names one type that servers
  send for it (``EXTENSIONS``: ``.png`` is ``image/png``, ``.pdf`` is ``application/pdf``). A URL
  whose type its extension does not tell (``/doc``, ``/a.php``, ``/feed.xml``) is left to its answer.
- From the response's ``Content-Type``, once the header has come and before the body is read: a
  type not wanted abandons the request (``crawler.spool``), and the URL is recorded as excluded.

The verdict (``ContentTypes.judge``), first rule that applies:

    type_rejected      the type matches a --reject-type pattern (HTML too: rejected only this way)
    (accepted)         the type is HTML (text/html, application/xhtml+xml): pages are always wanted
    type_not_accepted  --accept-type patterns are given and none matches the type
    (accepted)         otherwise: with no --accept-type, every type is wanted, as before these options

A response without a ``Content-Type`` is judged as ``application/octet-stream`` (RFC 9110 8.3).
Patterns are ``type/subtype``, ``type/*`` or ``*/*``, compared lower-case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from crawler.errors import ConfigError

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
UNKNOWN_TYPE = "application/octet-stream"

# Extensions whose media type is not in doubt: what nearly every server sends for them. Not here,
# because servers disagree: .js (text/ or application/javascript), .xml, .json, .ogg, .ts, .php.
EXTENSIONS: dict[str, str] = {
    ".html": "text/html", ".htm": "text/html", ".xhtml": "application/xhtml+xml",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".avif": "image/avif", ".svg": "image/svg+xml", ".bmp": "image/bmp",
    ".tif": "image/tiff", ".tiff": "image/tiff", ".ico": "image/x-icon",
    ".pdf": "application/pdf", ".zip": "application/zip", ".gz": "application/gzip",
    ".tgz": "application/gzip", ".bz2": "application/x-bzip2", ".xz": "application/x-xz",
    ".7z": "application/x-7z-compressed", ".rar": "application/vnd.rar", ".tar": "application/x-tar",
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime",
    ".avi": "video/x-msvideo", ".mkv": "video/x-matroska", ".mpeg": "video/mpeg", ".mpg": "video/mpeg",
    ".mp3": "audio/mpeg", ".wav": "audio/wav", ".flac": "audio/flac", ".m4a": "audio/mp4",
    ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
    ".css": "text/css", ".csv": "text/csv", ".txt": "text/plain",
    ".doc": "application/msword", ".xls": "application/vnd.ms-excel", ".ppt": "application/vnd.ms-powerpoint",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text", ".epub": "application/epub+zip",
    ".iso": "application/x-iso9660-image", ".dmg": "application/x-apple-diskimage",
}

_TOKEN = r"[a-z0-9!#$&^_.+-]+"
_PATTERN = re.compile(rf"(?:{_TOKEN}|\*)/(?:{_TOKEN}|\*)")


def media_type(content_type: str | None) -> str:
    """A Content-Type header's media type, lower-case, without parameters; ``UNKNOWN_TYPE`` when
    there is none (``'Text/HTML; charset=UTF-8'`` is ``text/html``)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media or UNKNOWN_TYPE


def type_of_extension(url: str) -> str | None:
    """The media type a URL's last path segment's extension names (``EXTENSIONS``), or None when it
    names none or one in doubt. The query does not count: ``/get.php?f=a.pdf`` is unknown."""
    segment = unquote(urlsplit(url).path.rpartition("/")[2]).lower()
    dot = segment.rfind(".")
    return EXTENSIONS.get(segment[dot:]) if dot > 0 else None


def matches(pattern: str, media: str) -> bool:
    """Whether a pattern (``image/*``, ``application/pdf``, ``*/*``) covers a media type."""
    kind, _, sub = pattern.partition("/")
    mkind, _, msub = media.partition("/")
    return kind in ("*", mkind) and sub in ("*", msub)


def validate(patterns: Iterable[str], key: str) -> tuple[str, ...]:
    """The patterns lower-case, once each is ``type/subtype``, ``type/*`` or ``*/*``; else a
    ``ConfigError`` naming the key and its flag (exit 2)."""
    out = []
    for raw in patterns:
        pattern = raw.strip().lower()
        if not _PATTERN.fullmatch(pattern) or (pattern.startswith("*/") and pattern != "*/*"):
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"bad {key} ({flag}) {raw!r}: give a media type such as application/pdf or image/*")
        out.append(pattern)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ContentTypes:
    """The media types a crawl wants (see the module docstring). The default wants every type."""

    accept: tuple[str, ...] = ()
    reject: tuple[str, ...] = ()

    @classmethod
    def of(cls, accept: Iterable[str], reject: Iterable[str]) -> ContentTypes:
        """From the settings ``accept_type`` and ``reject_type``; ``ConfigError`` for a bad pattern."""
        return cls(validate(accept, "accept_type"), validate(reject, "reject_type"))

    @property
    def filters(self) -> bool:
        """Whether any type is unwanted (else no verdict need be asked)."""
        return bool(self.accept or self.reject)

    def judge(self, media: str) -> tuple[str, str] | None:
        """None when ``media`` is wanted, else its exclusion code and what decided it, in words."""
        for pattern in self.reject:
            if matches(pattern, media):
                return "type_rejected", f"{media} matches --reject-type {pattern}"
        if media in HTML_TYPES or not self.accept or any(matches(p, media) for p in self.accept):
            return None
        return "type_not_accepted", f"{media} matches no --accept-type ({', '.join(self.accept)})"

    def judge_url(self, url: str) -> tuple[str, str] | None:
        """The verdict on a URL before any request, from its extension; None when it is wanted or
        its extension does not tell its type."""
        if not self.filters:
            return None
        media = type_of_extension(url)
        if media is None:
            return None
        verdict = self.judge(media)
        return None if verdict is None else (verdict[0], f"by its extension, {verdict[1]}")
