"""``--proxy URL`` and ``--proxies FILE``: every request through a proxy, never directly.

- **Each host keeps its proxy** (``ProxyPool``): a host is given the proxy with the fewest hosts
  when it is first fetched, and keeps it, so a site sees one address (and one session) for the run.
- **A proxy that fails to connect rests** for ``proxy_rest`` seconds; its hosts move on to another
  proxy at their next request (the failed request is retried as any connect failure is). One that
  fails ``GIVE_UP`` times in a row, each after a rest, is dropped for the run.
- **No proxy left: the crawl waits or stops, never connects directly.** While some proxy rests and
  none is usable, a request waits (before its deadline starts) for the first to come back; when
  every proxy is dropped the crawl stops with one line (``NoProxyLeft``), its job intact.
- **The SSRF guard judges the target as before**: a target host name the crawler can resolve is
  judged on its addresses (``AddressPolicy``) before the request goes to the proxy (which resolves
  it again itself, out of the crawler's sight); an IP literal is judged by the fetcher. The proxy's
  own address is never judged: the user named it, loopback and private addresses included.
- Both transports carry http and https proxies; socks5 proxies need ``pip install
  'crawler[socks]'`` (aiohttp-socks for the aiohttp transport, socksio for httpcore).
- A proxy URL's credentials (``http://user:pass@host:port``) are secret: nothing the crawler prints
  or keeps names them (``shown``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx2

from crawler.access.headers import AccessError
from crawler.addresses import AddressPolicy
from crawler.config import Settings
from crawler.errors import ConnectFailed, CrawlError

SCHEMES = ("http", "https", "socks5", "socks5h")
GIVE_UP = 3   # failures in a row (each after a rest) before a proxy is dropped for the run


class NoProxyLeft(CrawlError):
    """Every proxy failed: the crawl stops rather than connect directly (exit code 1, job intact)."""


def shown(url: str) -> str:
    """A proxy URL as it may be printed: without its credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def _checked(url: str, where: str, transport: str) -> str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise AccessError(f"{where}: not a proxy URL: {shown(url)!r}") from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise AccessError(f"{where} must be an http://, https:// or socks5:// URL with a host, got {shown(url)!r}")
    if port is None and parts.scheme.startswith("socks"):
        raise AccessError(f"{where}: a socks5 proxy needs a port, got {shown(url)!r}")
    if parts.scheme.startswith("socks"):
        needed = "aiohttp_socks" if transport == "aiohttp" else "socksio"
        if importlib.util.find_spec(needed) is None:
            raise AccessError(f"{where}: socks5 proxies need {needed.replace('_', '-')}, which is not installed: "
                              "pip install 'crawler[socks]'")
    return url.strip()


def proxy_urls(settings: Settings) -> list[str]:
    """The proxies of ``settings``: ``--proxy``, or the lines of ``--proxies FILE`` (blank lines
    and ``#`` comments skipped); checked, in order, without duplicates."""
    if settings.proxy:
        return [_checked(settings.proxy, "--proxy", settings.transport)]
    if not settings.proxies:
        return []
    try:
        lines = Path(settings.proxies).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AccessError(f"--proxies {settings.proxies}: cannot read it ({type(exc).__name__})") from None
    found = [_checked(line, f"--proxies {settings.proxies} line {n}", settings.transport)
             for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise AccessError(f"--proxies {settings.proxies}: no proxy URL in it")
    return list(dict.fromkeys(found))


def check(settings: Settings) -> None:
    if settings.proxy and settings.proxies:
        raise AccessError("--proxy and --proxies both name the proxies: give one")
    proxy_urls(settings)


def host_of(url: str) -> str:
    """What keeps a proxy: the URL's host and port."""
    return urlsplit(url).netloc.lower()


@dataclass(slots=True)
class _Proxy:
    url: str
    hosts: set[str] = field(default_factory=set)
    resting_until: float = 0.0
    failures: int = 0     # in a row


class ProxyPool:
    """Which proxy each host goes through (see the module docstring)."""

    def __init__(self, urls: list[str], rest: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._proxies = [_Proxy(url) for url in urls]
        self._of: dict[str, _Proxy] = {}
        self._rest = rest
        self._clock = clock

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self._proxies]

    def _usable(self, proxy: _Proxy, now: float) -> bool:
        return proxy.failures < GIVE_UP and proxy.resting_until <= now

    def now(self, host: str) -> str | None:
        """The proxy for ``host`` (``host_of``) now, assigning one if it has none usable; None if none is."""
        now = self._clock()
        kept = self._of.get(host)
        if kept is not None and self._usable(kept, now):
            return kept.url
        usable = [p for p in self._proxies if self._usable(p, now)]
        if not usable:
            return None
        chosen = min(usable, key=lambda p: len(p.hosts))
        if kept is not None:
            kept.hosts.discard(host)
        chosen.hosts.add(host)
        self._of[host] = chosen
        return chosen.url

    async def wait_for(self, host: str) -> str:
        """The proxy for ``host``, waiting while every proxy rests; ``NoProxyLeft`` when every one
        was dropped."""
        while (url := self.now(host)) is None:
            self.check_left()
            alive = [p for p in self._proxies if p.failures < GIVE_UP]
            await asyncio.sleep(max(0.01, min(p.resting_until for p in alive) - self._clock()))
        return url

    def check_left(self) -> None:
        """``NoProxyLeft`` when every proxy was dropped."""
        if all(p.failures >= GIVE_UP for p in self._proxies):
            names = ", ".join(shown(p.url) for p in self._proxies)
            raise NoProxyLeft(f"every proxy failed to connect {GIVE_UP} times in a row ({names}): the crawl "
                              "stopped rather than connect directly; run it again to resume")

    def failed(self, url: str) -> None:
        """``url`` could not be connected to: it rests, and its hosts move on."""
        for proxy in self._proxies:
            if proxy.url == url:
                proxy.failures += 1
                proxy.resting_until = self._clock() + self._rest
                for host in proxy.hosts:
                    self._of.pop(host, None)
                proxy.hosts.clear()

    def worked(self, url: str) -> None:
        for proxy in self._proxies:
            if proxy.url == url:
                proxy.failures = 0


# Errors of a request through a proxy that mean the proxy could not be reached (or refused the
# tunnel): with a proxy, the target's own connect failure comes back as a 502 or a refused CONNECT.
PROXY_FAILURES = (httpx2.ProxyError, httpx2.ConnectError, httpx2.ConnectTimeout)
Guard = Callable[[str, int], Awaitable[None]]


class ProxyRouter(httpx2.AsyncBaseTransport):
    """A transport that sends each request through its host's proxy: one transport per proxy
    (``make``), built when first used."""

    def __init__(self, pool: ProxyPool, make: Callable[[str], httpx2.AsyncBaseTransport],
                 guard: Guard | None = None) -> None:
        self.pool = pool
        self._guard = guard
        # Built now, not inside a request's deadline.
        self._transports = {url: make(url) for url in pool.urls}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        host = request.url.host
        url = await self.pool.wait_for(host_of(str(request.url)))
        if self._guard is not None:
            await self._guard(host, request.url.port or (443 if request.url.scheme == "https" else 80))
        transport = self._transports[url]
        try:
            response = await transport.handle_async_request(request)
        except PROXY_FAILURES as exc:
            self.pool.failed(url)
            self.pool.check_left()   # the last proxy gave up: the crawl stops here, not at the next request
            cause = exc.__cause__ or exc
            raise ConnectFailed(str(request.url), f"proxy {shown(url)}: {type(cause).__name__}: {cause}") from exc
        self.pool.worked(url)
        return response

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()


def router(settings: Settings, connections: int, policy: AddressPolicy | None, resolver: object,
           tls: ssl.SSLContext | None) -> ProxyRouter | None:
    """The transport through ``settings``' proxies, or None when it names none."""
    urls = proxy_urls(settings)
    if not urls:
        return None
    from crawler.transport import make_transport, tls_context

    shared = tls or tls_context()   # one TLS context for every proxy's transport: loading the roots takes a while

    def make(url: str) -> httpx2.AsyncBaseTransport:
        return make_transport(settings.transport, connections, None, resolver, shared, proxy=url)

    return ProxyRouter(ProxyPool(urls, settings.proxy_rest), make,
                       _guard(policy, resolver) if policy is not None else None)


def _guard(policy: AddressPolicy, resolver: object) -> Guard:
    """The SSRF guard's verdict on a target host, before its request goes to the proxy: a name the
    crawler resolves to refused addresses only is ``AddressRefused``; one it cannot resolve is left
    to the proxy (an intranet name only the proxy knows)."""
    from crawler.addresses import literal_address
    from crawler.transport import AddressRefused, resolve_addresses

    async def judge(host: str, port: int) -> None:
        if literal_address(host) is not None:
            return   # judged by the fetcher, before each request and hop
        try:
            found = await resolve_addresses(host, port, resolver)
        except OSError:
            return
        if found and not policy.allowed(host, found):
            raise AddressRefused.of(host, found)

    return judge
