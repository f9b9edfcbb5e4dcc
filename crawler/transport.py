"""The I/O seam: which httpx2 transport carries the fetcher's requests.

The fetcher speaks httpx's API (through ``httpx2``, its maintained continuation). Underneath, the
transport is swappable:

- ``aiohttp`` (default): httpx2 requests carried by an aiohttp connection pool, through the
  ``httpx-aiohttp`` package. Measured on this machine against nginx on loopback with a bare fetch
  loop over the 5,000-page bench site at 64 connections: about 2,030 pages/s, against 1,420 for
  httpx2's own pool (see README, "Fetcher").
- ``httpcore``: httpx2's own pool (httpcore2). Pure Python, no extra C dependency; what the respx
  based tests mock.

``peer_address`` reads the server's IP address off a response of either transport (for the WARC
record's ``WARC-IP-Address``), since each keeps it in its own place.

Tests pass any ``httpx2.AsyncBaseTransport`` (``httpx2.MockTransport`` for instance) straight to
the fetcher.
"""

from __future__ import annotations

from typing import Any

import httpx2

from crawler.models import TransportKind


def make_transport(kind: TransportKind, connections: int) -> httpx2.AsyncBaseTransport:
    """A transport of ``kind`` that keeps at most ``connections`` connections open."""
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
            """httpx-aiohttp's transport, telling the server's address as an extension, as httpcore does."""

            async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
                response: httpx2.Response = await super().handle_async_request(request)
                # httpx-aiohttp keeps the aiohttp response on the stream it hands to httpx.
                peer = getattr(getattr(response.stream, "_aiohttp_response", None), "peer", None)
                if peer is not None:
                    response.extensions["server_addr"] = peer
                return response

        def session() -> aiohttp.ClientSession:
            # Created lazily, inside the running event loop, as aiohttp requires.
            connector = aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300)
            return aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False,
                                         response_class=PeerResponse)

        return PeerAwareTransport(client=session, limits=limits)
    return httpx2.AsyncHTTPTransport(limits=limits, retries=0)


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
