"""Secret header values out of the request headers a job file keeps (for the WARC's request
records).

The credentials the crawler sends (``--auth``'s ``Authorization``, a proxy's
``Proxy-Authorization``, a secret ``--header``) are redacted before the request headers reach the
job file: no export can give them away, whatever its options. A ``Cookie`` is kept there (the job's
cookie jar holds it anyway) and redacted by a WARC export (``crawler.export.warc``) unless
``--warc-keep-secrets``.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[redacted]"


def redacted_value(name: str, value: str) -> str:
    """``Basic [redacted]`` for an ``Authorization``-like value (its scheme is no secret), else
    ``[redacted]``."""
    scheme, space, _ = value.partition(" ")
    if name.lower() in ("authorization", "proxy-authorization") and space and scheme.isalpha():
        return f"{scheme} {REDACTED}"
    return REDACTED


def sent_headers(headers: Iterable[tuple[str, str]], secret: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """The request headers as the job file keeps them: ``secret`` (lower-case names) redacted."""
    return tuple((k, redacted_value(k, v)) if k.lower() in secret else (k, v) for k, v in headers)
