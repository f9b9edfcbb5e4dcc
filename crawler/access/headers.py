"""``--header "Name: value"``: what a header the user gives must be, and which are secrets.

A secret header's value is never written anywhere: not to the job file's request headers (the
WARC's request records), not to a log. Secret are the credentials headers (``Authorization``,
``Proxy-Authorization``, ``Cookie``) and a header whose name says it carries one (``X-Api-Key``,
``X-Auth-Token``, ``X-Session``...: ``SECRET_WORDS``).
"""

from __future__ import annotations

import re

from crawler.errors import ConfigError

SECRET_NAMES = frozenset({"authorization", "proxy-authorization", "cookie"})
SECRET_WORDS = ("auth", "token", "secret", "password", "passwd", "key", "session", "cookie", "credential")
# What the crawler sets itself, or what would break the request: not the user's to give.
RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept-encoding"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")   # RFC 9110 field name


class AccessError(ConfigError):
    """A header, credential or proxy that cannot be used as given (one line, exit code 2)."""


def is_secret(name: str) -> bool:
    """Whether a header's value is a secret (see the module docstring)."""
    lower = name.lower()
    return lower in SECRET_NAMES or any(word in lower for word in SECRET_WORDS)


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` -> (name, value); a malformed one is an ``AccessError`` naming --header
    (its value left out: it may be a secret)."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _TOKEN.fullmatch(name):
        raise AccessError(f"--header must be \"Name: value\" with a header name before the colon, got {name[:40]!r}")
    if any(c in value for c in "\r\n\0"):
        raise AccessError(f"--header {name}: the value must be one line")
    if name.lower() in RESERVED:
        raise AccessError(f"--header {name}: the crawler sets this header itself")
    return name, value


def parse_headers(texts: tuple[str, ...]) -> dict[str, str]:
    """Every ``--header``, in order; a name given twice keeps its last value."""
    out: dict[str, str] = {}
    for text in texts:
        name, value = parse_header(text)
        for known in [k for k in out if k.lower() == name.lower()]:
            del out[known]
        out[name] = value
    return out
