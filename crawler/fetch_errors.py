"""The fetch stage's one translation of foreign errors: whatever httpx, aiohttp, anyio, ssl or the
resolver raised while fetching a URL becomes one ``FetchError`` of the tree in ``crawler.errors``,
with the short code a user reads (``connect``, ``dns``, ``tls``, ``timeout``, ``protocol``, ...).
"""

from __future__ import annotations

import socket
import ssl

import httpx2

from crawler.errors import (
    BlockedAddress,
    ConnectFailed,
    DnsFailed,
    FetchError,
    HeaderTooLarge,
    ProtocolFailed,
    Timeout,
    TlsFailed,
)
from crawler.transport import AddressRefused


def translate_transport_error(exc: BaseException, url: str) -> FetchError:
    """The one place where httpx2 and aiohttp errors become ``FetchError``s."""
    refused = _refusal_in(exc)
    if refused is not None:
        return BlockedAddress(url, str(refused))
    tls = _tls_failure_in(exc)
    if tls is not None:
        return TlsFailed(url, tls)
    header = _header_limit_passed(exc)
    if header is not None:
        return HeaderTooLarge(url, f"response header too large ({header})")
    unresolved = _unresolved_in(exc)
    if unresolved is not None:
        return DnsFailed(url, f"{type(unresolved).__name__}: {unresolved}")
    # httpx-aiohttp maps aiohttp errors loosely (a reset becomes ConnectTimeout): look at the cause.
    cause = exc.__cause__
    import aiohttp  # here, as in transport.py, so that a crawl on the httpcore transport does not load it up front

    if isinstance(cause, aiohttp.ClientError):
        if isinstance(cause, aiohttp.ServerTimeoutError):
            return Timeout(url, str(cause))
        if isinstance(cause, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
            return ProtocolFailed(url, f"{type(cause).__name__}: {cause}")
        if isinstance(cause, aiohttp.ClientConnectionError):
            return ConnectFailed(url, f"{type(cause).__name__}: {cause}")
        return ProtocolFailed(url, f"{type(cause).__name__}: {cause}")
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return Timeout(url, str(exc))
    if isinstance(exc, httpx2.ConnectError | httpx2.ReadError | httpx2.WriteError | httpx2.CloseError):
        return ConnectFailed(url, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ConnectionError | OSError):
        return ConnectFailed(url, f"{type(exc).__name__}: {exc}")
    return ProtocolFailed(url, f"{type(exc).__name__}: {exc}")


def _refusal_in(exc: BaseException) -> AddressRefused | None:
    """The SSRF guard's refusal somewhere under ``exc`` (aiohttp wraps it in a DNS error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AddressRefused):
            return current
        seen.add(id(current))
        inner = getattr(current, "os_error", None)
        current = inner if isinstance(inner, BaseException) and id(inner) not in seen else (
            current.__cause__ or current.__context__)
    return None


def _unresolved_in(exc: BaseException) -> BaseException | None:
    """The name resolution failure under ``exc``, if that is what it comes from: aiohttp's
    ``ClientConnectorDNSError`` (whatever its resolver raised), or getaddrinfo's ``socket.gaierror``
    (under httpcore's ``ConnectError``)."""
    import aiohttp

    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return None
        if isinstance(current, aiohttp.ClientConnectorDNSError | socket.gaierror):
            return current
        current = current.__cause__ or current.__context__
    return None


def _tls_failure_in(exc: BaseException) -> str | None:
    """The verifier's (or the handshake's) reason, when ``exc`` comes from a TLS failure."""
    import aiohttp

    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return None
        if isinstance(current, aiohttp.ClientConnectorCertificateError):   # (also an SSLCertVerificationError)
            current = current.certificate_error
        if isinstance(current, ssl.SSLCertVerificationError):
            why = getattr(current, "verify_message", None)
            return f"certificate verify failed: {why}" if why else str(current)
        if isinstance(current, ssl.SSLError | aiohttp.ClientSSLError):
            return str(current)
        current = current.__cause__ or current.__context__
    return None


def _header_limit_passed(exc: BaseException) -> str | None:
    """Which limit of the client a response's header passed, when ``exc`` comes from one.

    aiohttp's parser raises ``LineTooLong`` (which carries the limit) or a ``BadHttpMessage`` "Too
    many headers" (only the message tells), and aiohttp reports either as ``ClientResponseError:
    400``, a status no server sent. h11, under httpcore, raises a ``RemoteProtocolError`` with
    status hint 431 when the header outgrows its receive buffer. A line too long in a chunked body
    comes under a ``ClientPayloadError``: that is the body's fault, not the header's.
    """
    import aiohttp
    import h11
    from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

    current: BaseException | None = exc
    for _ in range(8):
        if current is None or isinstance(current, aiohttp.ClientPayloadError):
            return None
        if isinstance(current, LineTooLong):
            return f"a line over {current.args[1]} bytes"
        if isinstance(current, BadHttpMessage) and current.message.startswith("Too many headers"):
            return "too many fields"
        if isinstance(current, h11.RemoteProtocolError) and current.error_status_hint == 431:
            from httpcore2 import AsyncHTTP11Connection
            return f"over {AsyncHTTP11Connection.MAX_INCOMPLETE_EVENT_SIZE} bytes"
        current = current.__cause__ or current.__context__
    return None
