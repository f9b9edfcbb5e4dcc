"""The fetch stage: one URL in, one complete ``Response`` (or a ``FetchError``) out.

What the fetcher guarantees, whatever the server does:

- a deadline for each request, connect to last byte (``asyncio.timeout``), since httpx's own
  timeouts are per operation and a server that drips one byte a second never trips them;
- a body cap enforced while streaming *and* after decompression: we read raw bytes and inflate them
  ourselves with ``max_length``, so a small gzip bomb stops at the cap without being inflated;
- redirects followed here, hop by hop, each hop canonicalized and handed to a ``check`` callback
  (scheme, scope, robots) before it is requested; at most ``max_redirects`` hops; a ``Location`` of
  raw UTF-8 bytes is read as UTF-8, as browsers do;
- every foreign error translated into the ``FetchError`` tree (``fetch_errors.translate_transport_error``);
- with an ``AddressPolicy`` (the SSRF guard), no connection to an address it refuses: IP literals are
  checked here before each request and hop, names by the transport's resolver (``transport.py``).

Retries are not done here: ``retry_delay`` is the policy, and the scheduler re-queues the URL so
that no worker sleeps while holding a slot.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType

import httpx2

from crawler.access import Access, NoProxyLeft, proxies
from crawler.addresses import AddressPolicy
from crawler.config import Settings
from crawler.errors import (
    BlockedAddress,
    BlockedScheme,
    ConfigError,
    FetchError,
    ProtocolFailed,
    ServerBusy,
    Timeout,
    TooLarge,
    TooManyRedirects,
)
from crawler.fetch_errors import translate_transport_error
from crawler.models import Response
from crawler.session.cookie_header import CookieHeaders
from crawler.spool import InMemory, Spool
from crawler.transport import make_transport, peer_address, tls_context
from crawler.urls import canonicalize, hostname, strip_params

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
HopCheck = Callable[[str], Awaitable[None]]


def _header_url(value: str | None) -> str | None:
    """A URL from a response header, as browsers and curl read it. The client hands header bytes
    over as Latin-1 text; bytes that are valid UTF-8 are read as UTF-8 (a raw ``/caf\\xc3\\xa9`` is
    ``/café``, which ``canonicalize`` percent-encodes once: ``/caf%C3%A9``), and other bytes past
    ASCII are percent-encoded as they are (``/caf\\xe9`` is ``/caf%E9``)."""
    if value is None or value.isascii():
        return value
    raw = value.encode("latin-1")   # back to the bytes: ``_fetch_one`` decoded them as Latin-1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(byte) if byte < 0x80 else f"%{byte:02X}" for byte in raw)


class _Inflater:
    """Incremental decoder for one Content-Encoding that never produces more than ``limit`` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.encoding = encoding
        if encoding in ("gzip", "x-gzip"):
            self._z: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)
        elif encoding in ("", "identity"):
            self._z = None
        else:
            raise ValueError(encoding)
        self._raw_deflate_tried = False

    def feed(self, data: bytes) -> bytes:
        """Decode ``data``; raise OverflowError as soon as the output would pass the limit."""
        if self._z is None:
            out = data
        else:
            try:
                out = self._z.decompress(data, self.limit - self.size + 1)
            except zlib.error:
                if self.encoding == "deflate" and not self._raw_deflate_tried and self.size == 0:
                    # Some servers send raw deflate (no zlib header) as "deflate".
                    self._raw_deflate_tried = True
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    return self.feed(data)
                raise
            if self._z.unconsumed_tail:
                raise OverflowError
        self.size += len(out)
        if self.size > self.limit:
            raise OverflowError
        return out

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        out = self._z.flush()
        self.size += len(out)
        if self.size > self.limit:
            raise OverflowError
        return out


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():   # "²".isdigit() is True too
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds: float = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def gives_up(error: FetchError, attempt: int, settings: Settings) -> bool:
    """Whether ``error`` at attempt number ``attempt`` (0: the first) is the URL's last: it is not
    retried (``retry_delay`` is None)."""
    return not error.retryable or attempt >= settings.retries


def retry_delay(error: FetchError, attempt: int, settings: Settings,
                rng: random.Random | None = None) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``, or None when the URL is not retried.

    Exponential backoff with jitter (0.5x to 1.5x), so that many URLs failing at once do not come
    back at once; a server's Retry-After wins when it asks for longer, capped by retry_after_max.
    """
    if gives_up(error, attempt, settings):
        return None
    jitter = (rng or random).uniform(0.5, 1.5)
    delay: float = settings.retry_backoff * (2**attempt) * jitter
    if isinstance(error, ServerBusy) and error.retry_after is not None:
        delay = max(delay, min(error.retry_after, settings.retry_after_max))
    return delay


async def _nothing() -> AsyncIterator[bytes]:
    """No body: what a check reads of a response (its headers are all it needs)."""
    for chunk in b"".split(b"x")[1:]:
        yield chunk


class Fetcher:
    """Fetches URLs through an httpx2 client; owned by an ``async with``."""

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None, *,
                 policy: AddressPolicy | None = None, resolver: object = None) -> None:
        """``policy`` is the SSRF guard (None: every address); ``resolver`` an aiohttp resolver in
        place of getaddrinfo (tests map public-looking names to loopback addresses with it)."""
        self.settings = settings
        self.policy = policy
        # --header, --auth: per request, by its origin; --proxy, --proxies: a transport through them
        self.access = Access(settings, None if transport else proxies.router(settings, settings.concurrency + 8, policy,
                                                                             resolver, self._tls(settings)))
        self._client = httpx2.AsyncClient(
            transport=transport or self.access.router or make_transport(settings.transport, settings.concurrency + 8,
                                                                        policy, resolver, self._tls(settings)),
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate",
                     "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"},
            follow_redirects=False,
            # Per-operation limits are a backstop; the real limit is the whole-request deadline.
            timeout=httpx2.Timeout(settings.timeout),
        )
        self._cookies = CookieHeaders()

    @staticmethod
    def _tls(settings: Settings) -> ssl.SSLContext | None:
        """The TLS context --ca-bundle and --insecure ask for, else None (the transport's default)."""
        if not settings.ca_bundle and not settings.insecure:
            return None
        try:
            return tls_context(settings.ca_bundle, settings.insecure)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot use ca_bundle {settings.ca_bundle}: {exc}") from None

    @property
    def client(self) -> httpx2.AsyncClient:
        """The HTTP client: its cookie jar is the crawl's (``crawler.session``), which also logs in through it."""
        return self._client

    @asynccontextmanager
    async def _stream(self, method: str, url: str, headers: dict[str, str] | None,
                      auth: httpx2.Auth | None) -> AsyncIterator[httpx2.Response]:
        """``client.stream(method, url, headers=headers, auth=auth)``, with the request built here:
        its ``Cookie`` header from ``CookieHeaders`` (the jar's answer, kept while it cannot have
        changed), where httpx would ask the jar anew for every request."""
        client = self._client
        merged = httpx2.Headers(client.headers)
        if headers:
            merged.update(headers)
        if "cookie" not in merged:   # a --header Cookie wins over the jar, as with httpx's own
            cookie = self._cookies.header(client.cookies.jar, url)
            if cookie is not None:
                merged["Cookie"] = cookie
        request = httpx2.Request(method, url, headers=merged, extensions={"timeout": client.timeout.as_dict()})
        response = await client.send(request, auth=auth, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._client.aclose()

    async def fetch(self, url: str, *, check: HopCheck | None = None, max_bytes: int | None = None,
                    headers: dict[str, str] | None = None, max_redirects: int | None = None,
                    spool: Spool | None = None, method: str = "GET", headers_only: bool = False) -> Response:
        """GET ``url`` and follow redirects; raise a ``FetchError`` for anything short of a response.
        A ``spool`` judges the answer's type before its body is read and keeps a body that is no page.
        ``method`` HEAD, or ``headers_only`` (closed once the headers are in: ``crawler.checks``), has no body.

        A 429 or 5xx is raised as ``ServerBusy`` so that the caller can retry it; the response rides
        along as ``ServerBusy.response``, to be stored once retries run out (``visit.LocalVisitor``).
        """
        hops = self.settings.max_redirects if max_redirects is None else max_redirects
        limit = self.settings.max_bytes if max_bytes is None else max_bytes
        seen = {url}
        current = url
        started = time.perf_counter()
        for _ in range(hops + 1):
            response = await self._fetch_one(current, limit, headers, spool, method, headers_only)
            if response.status not in REDIRECT_STATUSES:
                final = Response(url, current, response.status, response.reason_phrase, response.http_version,
                                 response.headers, response.body,
                                 int((time.perf_counter() - started) * 1000), response.request_headers, response.ip,
                                 response.waited_ms, response.spooled)
                if response.status == 429 or response.status >= 500:
                    raise ServerBusy(url, response.status, parse_retry_after(final.header("retry-after")),
                                     final)
                return final
            location = _header_url(response.header("location"))
            if not location:
                raise ProtocolFailed(url, f"redirect {response.status} without Location")
            target = canonicalize(location, current, sort_query=self.settings.sort_query)
            if target is not None and self.settings.session_params:
                target = strip_params(target, self.settings.session_names)
            if target is None:
                scheme = location.strip().split(":", 1)[0].lower() if ":" in location else ""
                if scheme and scheme.isalpha() and scheme not in ("http", "https"):
                    raise BlockedScheme(url, f"redirect to {location[:200]}")
                raise ProtocolFailed(url, f"bad redirect Location {location[:200]!r}")
            if target in seen:
                raise TooManyRedirects(url, f"redirect loop at {target}")
            seen.add(target)
            if check is not None:
                await check(target)
            current = target
        raise TooManyRedirects(url, f"more than {hops} redirects")

    async def _fetch_one(self, url: str, max_bytes: int, headers: dict[str, str] | None,
                         spool: Spool | None = None, method: str = "GET", headers_only: bool = False) -> Response:
        """One request, no redirects, under the whole-request deadline."""
        if self.policy is not None:
            refusal = self.policy.refusal(hostname(url))
            if refusal is not None:
                raise BlockedAddress(url, refusal)
        headers, auth = await self.access.before(url, headers)   # this hop's origin decides, not the first URL's
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._stream(method, url, headers, auth) as r:
                    waited = int((time.perf_counter() - started) * 1000)
                    ip = peer_address(r)
                    encoding = r.headers.get("content-encoding", "").strip().lower()
                    try:
                        inflater = _Inflater(encoding, max_bytes)
                    except ValueError:
                        raise ProtocolFailed(url, f"unsupported Content-Encoding {encoding!r}") from None
                    sink = InMemory() if spool is None else spool.open(url, r.status_code, r.headers.get("content-type"))
                    raw_size = 0
                    try:
                        async for raw in (_nothing() if headers_only else r.aiter_raw()):
                            raw_size += len(raw)
                            if raw_size > max_bytes:
                                raise OverflowError
                            sink.write(inflater.feed(raw))
                        sink.write(inflater.flush())
                        body, spooled = sink.done()
                    except OverflowError:
                        raise TooLarge(url, f"body over {max_bytes} bytes") from None
                    except zlib.error as exc:
                        raise ProtocolFailed(url, f"bad {encoding} body: {exc}") from None
                    finally:   # a spooled file goes, unless done() handed it on
                        sink.close()
                    return Response(
                        url, url, r.status_code, r.reason_phrase, r.http_version,
                        tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in r.headers.raw),
                        body, int((time.perf_counter() - started) * 1000),
                        self.access.recorded(tuple((k.decode("latin-1"), v.decode("latin-1"))
                                                   for k, v in r.request.headers.raw)), ip, waited, spooled)
        except (FetchError, NoProxyLeft):
            raise
        except TimeoutError:
            raise Timeout(url, f"no complete response within {self.settings.timeout:g}s") from None
        except Exception as exc:  # the transport boundary: nothing a server does escapes as a crash
            raise translate_transport_error(exc, url) from exc
