"""The session kept in the job file, sealed: a resume continues it, a copy of the file leaks nothing.

The cookies are stored encrypted (``cryptography``'s Fernet: AES-128-CBC and HMAC-SHA256) in the
job file's meta table, with a key that is not in the job file: ``session.key`` in the user's data
folder (``$XDG_DATA_HOME/crawler/``, else ``~/.local/share/crawler/``), made on first use, mode
0600. So ``grep`` of a job file finds no cookie value, and a job file copied to another machine (or
shared with a colleague) carries no usable session: there it is unreadable, the crawl says so once
and logs in again (or goes on without it).

    {"sealed": "<Fernet token>", "key": "<the key's id>"}    meta key "session"
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError
from crawler.session.jar import Records

META_KEY = "session"


def key_path() -> Path:
    """Where the key lives: ``$XDG_DATA_HOME/crawler/session.key`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "crawler" / "session.key"


def _key(create: bool) -> bytes | None:
    """The key (made, mode 0600, when ``create`` and there is none); None when there is none."""
    path = key_path()
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    if not create:
        return None
    from cryptography.fernet import Fernet
    key = Fernet.generate_key()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:   # another crawl made it meanwhile: use theirs
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot keep the session key at {path}: {exc}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def seal(cookies: Records) -> dict[str, str]:
    """The meta value that keeps ``cookies``."""
    from cryptography.fernet import Fernet
    key = _key(create=True)
    assert key is not None
    token = Fernet(key).encrypt(json.dumps(cookies).encode())
    return {"sealed": token.decode("ascii"), "key": key_id(key)}


def unseal(stored: Any) -> Records | None:
    """The cookies a meta value keeps; None when they cannot be read here (no key, another key)."""
    if not isinstance(stored, dict) or not isinstance(stored.get("sealed"), str):
        return None
    from cryptography.fernet import Fernet, InvalidToken
    key = _key(create=False)
    if key is None or key_id(key) != stored.get("key"):
        return None
    try:
        raw = json.loads(Fernet(key).decrypt(stored["sealed"].encode("ascii")))
    except (InvalidToken, ValueError, binascii.Error):
        return None
    return tuple((str(d), str(p), str(n), str(v), bool(s), None if e is None else int(e), bool(g), bool(h),
                  None if not port or port[0] is None else str(port[0])) for d, p, n, v, s, e, g, h, *port in raw)
