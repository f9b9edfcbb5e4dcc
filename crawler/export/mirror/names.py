"""The file name of an archived URL in a mirror: safe on Linux, macOS and Windows, pure (no I/O).

``http://docs.test:8080/guide/intro?x=1`` with an HTML body is ``docs.test+8080/guide/intro%3Fx=1.html``:

- The host is the first folder (``host`` or ``host+port``), then the URL's path, a folder per segment.
- Each segment is percent-decoded to bytes, then every byte outside ``A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) + , ; = @``
  is written ``%XX`` (upper-case hex). So an encoded slash (``%2F``), a backslash, NUL, ``<>:"|?*``,
  a space, ``%`` itself and every non-ASCII byte stay inside their segment as plain ASCII: no name
  has a separator, and no file system normalises a name (macOS's NFD) into another's.
- A segment of dots only (``.``, ``..``, from ``%2e%2e`` too) and a trailing dot, which Windows drops,
  have that dot written ``%2E``; a segment empty (``a//b``) is ``%``.
- A Windows device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0``-``COM9``, ``LPT0``-``LPT9``,
  ``CONIN$``, ``CONOUT$``, in any case and with any extension: ``aux.txt``) has its first letter
  written ``%XX``: ``%43ON``.
- The query is part of the last segment, ``?`` written ``%3F``: ``a?b=1`` and ``a?b=2`` are two files.
- A folder's own page (``/``, ``/docs/``) is ``index``; a page or a resource a browser needs to
  recognise from its name (HTML, CSS, JavaScript, images, fonts: ``EXTENSIONS``) gets the extension
  of its type unless its name has one: ``/page`` as HTML is ``page.html``, ``/style.php`` as CSS
  ``style.php.css``.
- A segment longer than ``MAX_SEGMENT`` bytes is cut and ends with a hash of the whole URL; a name
  longer than ``MAX_PATH`` bytes becomes ``host/~long/HASH.ext``.

Two URLs never share a file: ``crawler.export.mirror.index`` compares names case-folded (as macOS
and Windows do) and gives a later URL whose name clashes ``~HASH`` before its extension
(``with_hash``); the same for a file whose name is also a folder of another (``/a`` and ``/a/b``).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from urllib.parse import quote, unquote_to_bytes, urlsplit

MAX_SEGMENT = 200   # bytes: every common file system allows 255 per name
MAX_PATH = 240      # bytes below the mirror's folder, so that Windows' 260 leaves room for a short DIR
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()+,;=@")
_DEVICES = frozenset({"con", "prn", "aux", "nul", "conin$", "conout$", *(f"com{n}" for n in range(10)),
                      *(f"lpt{n}" for n in range(10))})
# The extensions a browser opening a file from disk needs to see to treat it as this type: the first
# is the one added to a name that has none of them.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "text/html": (".html", ".htm"), "application/xhtml+xml": (".xhtml", ".html", ".htm"),
    "text/css": (".css",), "text/javascript": (".js", ".mjs"), "application/javascript": (".js", ".mjs"),
    "application/x-javascript": (".js", ".mjs"), "image/png": (".png",), "image/jpeg": (".jpg", ".jpeg", ".jpe"),
    "image/gif": (".gif",), "image/webp": (".webp",), "image/avif": (".avif",), "image/svg+xml": (".svg",),
    "image/x-icon": (".ico",), "image/vnd.microsoft.icon": (".ico",), "image/bmp": (".bmp",),
    "font/woff": (".woff",), "font/woff2": (".woff2",), "font/ttf": (".ttf",), "font/otf": (".otf",),
    "application/font-woff": (".woff",), "application/json": (".json",),
}
_HASHED = re.compile(r"~[0-9a-f]{10}(?=\.[^./]*$|$)")


def url_hash(url: str, salt: int = 0) -> str:
    """Ten hex digits of a hash of ``url`` (and ``salt``, for the rare second clash)."""
    text = url if not salt else f"{salt}:{url}"
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()


def file_name(url: str, media_type: str | None) -> str:
    """The mirror's relative path (``/``-separated) for ``url`` served as ``media_type``."""
    parts = urlsplit(url)
    host = _segment(parts.hostname or "no-host") + (f"+{parts.port}" if parts.port else "")
    path = parts.path or "/"
    segments = path[1:].split("/") if path.startswith("/") else path.split("/")
    if segments[-1] == "":
        segments[-1] = "index"   # a folder's own page
    if parts.query or url.endswith("?"):
        segments[-1] += "?" + parts.query
    names = [_segment_bytes(unquote_to_bytes(s)) if s else "%" for s in segments]
    names[-1] = _with_extension(names[-1], media_type)
    names = [_short(n, url) for n in names]
    name = "/".join([host, *names])
    if len(name.encode()) > MAX_PATH:
        name = f"{host}/~long/{url_hash(url)}{_extension_of(names[-1], media_type)}"
    return name


def with_hash(name: str, url: str, salt: int = 0) -> str:
    """``name`` with ``~HASH`` of ``url`` before its extension (replacing one it has): a name that clashed."""
    folder, _, last = name.rpartition("/")
    last = _HASHED.sub("", last)
    stem, dot, ext = last.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        stem, dot, ext = last, "", ""
    last = f"{stem[:MAX_SEGMENT - 30]}~{url_hash(url, salt)}{dot}{ext}"
    return f"{folder}/{last}" if folder else last


def folded(name: str) -> str:
    """``name`` as a case-insensitive file system compares it (names are ASCII: ``str.lower``)."""
    return name.lower()


def relative(target: str, start: str) -> str:
    """The link from the file ``start`` to the file ``target`` (both mirror names), URL-encoded."""
    to, here = target.split("/"), start.split("/")[:-1]
    same = 0
    while same < min(len(to) - 1, len(here)) and to[same] == here[same]:
        same += 1
    return quote("/".join([".."] * (len(here) - same) + to[same:]), safe="/-._~!$&'()+,;=@")


def _segment(text: str) -> str:
    return _segment_bytes(text.encode("utf-8", "surrogatepass"))


def _segment_bytes(raw: bytes) -> str:
    name = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if name.endswith("."):   # Windows drops a trailing dot; "." and ".." are no names to write
        name = name[:-1] + "%2E"
    if name.startswith(".") and name.strip(".") in ("", "%2E"):
        name = "%2E" + name[1:]
    if _device(name):
        name = f"%{ord(name[0]):02X}{name[1:]}"
    return name


def _device(name: str) -> bool:
    """Whether Windows would open a device for ``name``: its part before the first dot, less spaces."""
    return name.split(".", 1)[0].rstrip(" ").lower() in _DEVICES


def _with_extension(name: str, media_type: str | None) -> str:
    wanted = EXTENSIONS.get(media_type or "")
    if wanted is None or name.lower().endswith(wanted):
        return name
    return name + wanted[0]


def _extension_of(name: str, media_type: str | None) -> str:
    wanted = EXTENSIONS.get(media_type or "")
    if wanted:
        return next((e for e in wanted if name.lower().endswith(e)), wanted[0])
    ext = posixpath.splitext(name)[1]
    return ext if 1 < len(ext) <= 8 and "%" not in ext else ""


def _short(name: str, url: str) -> str:
    """``name`` cut to ``MAX_SEGMENT`` bytes (ASCII: characters), its extension kept, with a hash of ``url``."""
    if len(name) <= MAX_SEGMENT:
        return name
    stem, ext = posixpath.splitext(name)
    if len(ext) > 10 or "%" in ext:
        ext = ""
    return f"{stem[:MAX_SEGMENT - 11 - len(ext)].rstrip('.')}~{url_hash(url)}{ext}"
