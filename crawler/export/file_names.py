"""Safe file names for pages: one name per URL, never outside the folder, never clashing, never too long.

A name is made of the URL's host and path, ``/`` as ``_``: ``docs.test_library_os.html.md``. It
holds only ``a-z 0-9 . - _ +`` and no ``/``, so no URL (``..`` segments, percent-encoded slashes,
NUL, a name like ``.bashrc``) names a file outside the folder or a hidden one. Where that rendering
loses something (another character, capitals, a query, a ``_`` of the URL's own, a name longer than
``MAX_STEM``), the name ends with a hash of the whole URL, so two URLs never share a name, also on a
case-insensitive file system; a URL rendered exactly needs none, since it can be read back.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

MAX_STEM = 120   # characters before ".md": far below the 255 bytes of every common file system
_KEPT = re.compile(r"[a-z0-9.-]+")
_OTHER = re.compile(r"[^a-z0-9.-]+")


def page_file_name(url: str, suffix: str = ".md") -> str:
    """The file name of ``url``'s page (see the module docstring)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f"+{parts.port}" if parts.port else ""   # "+" is in no host name
    path = parts.path.strip("/")
    segments = path.split("/") if path else []
    # "index" stands for a folder's own page ("/", "/docs/"), so a page named index gets the hash
    folder = ["index"] if not path or parts.path.endswith("/") else []
    exact = (not parts.query and bool(_KEPT.fullmatch(host)) and segments[-1:] != ["index"]
             and all(_KEPT.fullmatch(w) and not w.startswith(".") for w in segments))
    words = [host, *segments, *folder]
    stem = "_".join(_OTHER.sub("-", w.lower()).strip(".") or "-" for w in words).replace("_", port + "_", 1)
    if exact and len(stem) <= MAX_STEM:
        return stem + suffix
    digest = hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()
    return f"{stem[:MAX_STEM - 11]}-{digest}{suffix}"
