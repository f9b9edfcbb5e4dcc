"""The I/O seam: which httpx2 transport carries the fetcher's requests.

The fetcher speaks httpx's API (through ``httpx2``, its maintained continuation). Underneath, the
transport is swappable:

- ``aiohttp`` (default): httpx2 requests carried by an aiohttp connection pool, through the
  ``httpx-aiohttp`` package. Measured on this machine against nginx on loopback with a bare fetch
  loop over the 5,000-page bench site at 64 connections: about 2,030 pages/s, against 1,420 for
  httpx2's own pool (see docs/performance.md, "The fetcher").
- ``httpcore``: httpx2's own pool (httpcore2). Pure Python, no extra C dependency; what the respx
  based tests mock.

``peer_address`` reads the server's IP address off a response of either transport (for the WARC
record's ``WARC-IP-Address``), since each keeps it in its own place. Either transport tells the HTTP
version the server answered in (``HTTP/1.0`` from an old server), which the WARC record keeps.

Tests pass any ``httpx2.AsyncBaseTransport`` (``httpx2.MockTransport`` for instance) straight to
the fetcher.

Two things every transport here does, because the crawler counts on them:

- **One request is one request.** aiohttp silently sends an idempotent request again when a
  kept-alive connection drops under it; a server that resets every connection then sees every
  attempt twice (6 requests for ``--retries 2``). That retry is turned off: the scheduler's own
  retries, with backoff, are the only ones, so a server sees at most ``1 + retries`` requests.
- **Idle connections are bounded.** aiohttp bounds the connections in use (``limit``), not the
  idle ones it keeps for reuse: a broad crawl kept one to nearly every host it had touched within
  the keep-alive timeout (5,760 of them, on 10,000 hosts: a file descriptor and some kilobytes
  each). ``bounded_connector`` keeps at most ``IDLE_CONNECTIONS`` and closes the longest unused.
- **The SSRF guard sits where names become addresses**: for aiohttp, a resolver that hands the
  connector only the addresses ``AddressPolicy`` permits; for httpcore, a network backend that
  resolves, checks, and connects to the address it checked (TLS still verifies the host name). So
  the address checked is the address connected to.
"""

from __future__ import annotations

import base64
import socket
import ssl
from typing import TYPE_CHECKING, Any

import httpx2

from crawler.addresses import AddressPolicy
from crawler.models import TransportKind

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver


IDLE_CONNECTIONS = 1024   # kept open for reuse, per process: a thousand hosts in turn keep theirs


def bounded_connector(idle: int = IDLE_CONNECTIONS, **options: Any) -> Any:
    """An ``aiohttp.TCPConnector`` (``options`` are its own) that keeps at most ``idle``
    connections open and unused: one more closes the one unused longest. It hooks the connector's
    ``_release`` and reads its pool (``_conns``: key -> deque of (protocol, time)), aiohttp's
    internals since 3.10; ``tests/test_transport.py`` checks them."""
    from collections import OrderedDict

    import aiohttp
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ConnectionKey

    class BoundedConnector(aiohttp.TCPConnector):
        def __init__(self) -> None:
            super().__init__(**options)
            self._unused: OrderedDict[ResponseHandler, ConnectionKey] = OrderedDict()   # oldest first

        def _release(self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False) -> None:
            super()._release(key, protocol, should_close=should_close)
            pool = self._conns.get(key)
            if not pool or pool[-1][0] is not protocol:
                return   # closed, not kept
            self._unused[protocol] = key
            self._unused.move_to_end(protocol)
            while len(self._unused) > idle:
                oldest, where = self._unused.popitem(last=False)
                kept = self._conns.get(where)
                entry = next((e for e in kept if e[0] is oldest), None) if kept else None
                if entry is None:
                    continue   # reused or closed since
                kept.remove(entry)   # type: ignore[union-attr]
                if not kept:
                    del self._conns[where]
                oldest.close()

    return BoundedConnector()


class AddressRefused(OSError):
    """Every address of a host is one the SSRF guard refuses; the fetcher maps it to ``BlockedAddress``."""

    @classmethod
    def of(cls, host: str, addresses: list[str]) -> AddressRefused:
        """The refusal of ``host``, which resolved to ``addresses`` (none, or none permitted)."""
        found = ", ".join(sorted(set(addresses))) or "no address"
        return cls(f"{host} resolves to {found}: private, loopback or reserved (--allow-private permits it)")


def guarded_resolver(policy: AddressPolicy, inner: AbstractResolver | None = None) -> AbstractResolver:
    """An aiohttp resolver that resolves with ``inner`` (getaddrinfo in a thread by default) and
    keeps only the addresses ``policy`` permits; none left is ``AddressRefused``."""
    from aiohttp.abc import AbstractResolver, ResolveResult
    from aiohttp.resolver import ThreadedResolver

    class GuardedResolver(AbstractResolver):
        def __init__(self) -> None:
            self._inner = inner or ThreadedResolver()

        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
            found = await self._inner.resolve(host, port, family)
            kept = [r for r in found if policy.permits(host, r["host"])]
            if not kept:
                raise AddressRefused.of(host, [r["host"] for r in found])
            return kept

        async def close(self) -> None:
            await self._inner.close()

    return GuardedResolver()


def tls_context(ca_bundle: str = "", insecure: bool = False) -> ssl.SSLContext:
    """The TLS context of every connection: the system's roots (and ``SSL_CERT_FILE``), plus those of
    ``ca_bundle``; with ``insecure`` no verification at all."""
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def resolve_addresses(host: str, port: int, resolver: Any) -> list[str]:
    """The addresses of ``host``: through ``resolver`` (an aiohttp resolver: a test's stub) if given,
    else getaddrinfo in a thread."""
    if resolver is not None:
        return [r["host"] for r in await resolver.resolve(host, port, socket.AF_UNSPEC)]
    import asyncio
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def guarded_backend(inner: Any, policy: AddressPolicy, resolver: Any = None) -> Any:
    """An httpcore network backend around ``inner`` that connects only to a permitted address of a
    host: it resolves the name itself, keeps what ``policy`` permits, and connects to that address."""
    import httpcore2

    class GuardedBackend(httpcore2.AsyncNetworkBackend):
        # httpcore's interface names the parameter ``timeout``; it is passed on, not awaited here.
        async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                              local_address: str | None = None, socket_options: Any = None) -> Any:
            found = await resolve_addresses(host, port, resolver)
            kept = policy.allowed(host, found)
            if not kept:
                raise AddressRefused.of(host, found)
            return await inner.connect_tcp(kept[0], port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)

        async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                      socket_options: Any = None) -> Any:
            return await inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

        async def sleep(self, seconds: float) -> None:
            await inner.sleep(seconds)

    return GuardedBackend()


def make_transport(kind: TransportKind, connections: int, policy: AddressPolicy | None = None,
                   resolver: Any = None, tls: ssl.SSLContext | None = None,
                   proxy: str | None = None) -> httpx2.AsyncBaseTransport:
    """A transport of ``kind`` that keeps at most ``connections`` connections open. With ``policy``
    it connects only to addresses the policy permits; ``resolver`` (an aiohttp
    ``AbstractResolver``) replaces getaddrinfo, for tests; ``tls`` is the TLS context (default:
    the system's). With ``proxy`` (http, https or socks5 URL) every request goes through it: the
    connections are the proxy's (``crawler.access.proxies`` judges the targets)."""
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    if kind == "aiohttp":
        import aiohttp
        from httpx_aiohttp.httpx2 import AiohttpTransport

        class PeerResponse(aiohttp.ClientResponse):
            """aiohttp's response, noting the server's address while it still has the connection
            (a small body is read whole at once and the connection goes back to the pool)."""

            peer: Any = None

            async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
                if connection.transport is not None:
                    self.peer = connection.transport.get_extra_info("peername")
                return await super().start(connection)

        class PeerAwareTransport(AiohttpTransport):
            """httpx-aiohttp's transport, telling the server's address as an extension, as httpcore
            does, and the HTTP version the server answered in (httpx-aiohttp says HTTP/1.1 always)."""

            async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
                proxy_auth = self.proxy.headers.get("Proxy-Authorization") if self.proxy is not None else None
                if proxy_auth is not None and request.url.scheme == "http":
                    # aiohttp sends proxy_headers on a CONNECT only: a plain request to the proxy
                    # carries them itself. Taken off again: the request as recorded never has it.
                    request.headers["Proxy-Authorization"] = proxy_auth
                try:
                    response: httpx2.Response = await super().handle_async_request(request)
                finally:
                    request.headers.pop("Proxy-Authorization", None)
                # httpx-aiohttp keeps the aiohttp response on the stream it hands to httpx.
                answered = getattr(response.stream, "_aiohttp_response", None)
                peer = getattr(answered, "peer", None)
                if peer is not None:
                    response.extensions["server_addr"] = peer
                version = getattr(answered, "version", None)
                if version is not None:
                    response.extensions["http_version"] = f"HTTP/{version.major}.{version.minor}".encode("ascii")
                return response

        socks = proxy is not None and proxy.startswith("socks")

        def session() -> aiohttp.ClientSession:
            # Created lazily, inside the running event loop, as aiohttp requires.
            names = guarded_resolver(policy, resolver) if policy is not None else resolver
            connector = bounded_connector(limit=connections, ttl_dns_cache=300, resolver=names,
                                          ssl=tls if tls is not None else True) if not socks else \
                _socks_connector(str(proxy), connections, tls)
            # No cookie jar here: the cookies are httpx's (the client's jar, crawler.session), one jar
            # for either transport; aiohttp's would add its own Cookie header beside it.
            client = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False,
                                           response_class=PeerResponse, cookie_jar=aiohttp.DummyCookieJar())
            # No hidden retry of a request whose kept-alive connection dropped (see the module
            # docstring). A private attribute, and the one aiohttp's own test client sets the same way.
            client._retry_connection = False
            return client

        through = _aiohttp_proxy(proxy) if proxy is not None and not socks else None
        # (Its own TLS context goes unused, the session's connector has one: ``tls`` saves loading another.)
        return PeerAwareTransport(client=session, limits=limits, proxy=through, verify=tls if tls is not None else True)
    transport = (httpx2.AsyncHTTPTransport(limits=limits, retries=0, verify=tls, proxy=proxy) if tls is not None
                 else httpx2.AsyncHTTPTransport(limits=limits, retries=0, proxy=proxy))
    if proxy is not None:
        return transport   # its pool's connections are the proxy's
    if policy is not None:
        # httpx2 does not take a network backend: set it on its pool (httpcore's own seam for it).
        pool = transport._pool
        pool._network_backend = guarded_backend(pool._network_backend, policy, resolver)
    return transport


def _aiohttp_proxy(url: str) -> httpx2.Proxy:
    """The proxy as httpx-aiohttp hands it to aiohttp: its credentials as a ``Proxy-Authorization``
    header (httpx-aiohttp would pass them as aiohttp's ``BasicAuth``, deprecated since aiohttp 3.14)."""
    proxy = httpx2.Proxy(url)
    if proxy.raw_auth is None:
        return proxy
    user, password = (part.decode() for part in proxy.raw_auth)
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return httpx2.Proxy(proxy.url, headers={"Proxy-Authorization": f"Basic {credentials}"})


def _socks_connector(proxy: str, connections: int, tls: ssl.SSLContext | None) -> Any:
    """An aiohttp connector through a socks5 proxy (aiohttp-socks; the proxy resolves names)."""
    from aiohttp_socks import ProxyConnector

    return ProxyConnector.from_url(proxy, rdns=True, limit=connections, ssl=tls if tls is not None else True)


def peer_address(response: httpx2.Response) -> str | None:
    """The IP address the response came from, or None where the transport does not tell (a mock).
    Read it before the body: aiohttp gives the connection back to its pool once the body is read."""
    extra: Any = response.extensions.get("server_addr")      # the aiohttp transport above
    stream = response.extensions.get("network_stream")        # httpcore
    if extra is None and stream is not None:
        extra = stream.get_extra_info("server_addr")
    if isinstance(extra, tuple) and extra and isinstance(extra[0], str):
        return extra[0]
    return None
