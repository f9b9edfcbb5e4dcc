"""Three ways to wait for the network, under one crawler: the fetch models ``crawler bench`` compares.

- ``sequential``: one blocking request at a time on the crawler's one thread, through httpx2's
  synchronous ``Client``: while a response is awaited nothing else happens (the event loop is
  blocked too), the way a plain ``for url in urls: client.get(url)`` crawler works;
- ``threads``: blocking requests in a pool of N threads, a synchronous ``Client`` per thread (one
  connection each), N requests in flight: the GIL is released while a thread waits on its socket;
- ``asyncio``: the crawler as it is, N requests in flight on the event loop, through its own
  transport (httpx2 over aiohttp).

Only the fetch differs: the same ``Crawl`` (frontier, politeness, robots.txt, parse on the event
loop, one writer) runs the other stages in every model. The blocking models are an httpx2 async
transport over synchronous clients (``BlockingTransport``), which the fetcher uses like any other,
so its deadline, body cap and redirect checks are unchanged. Each response is read whole by the
client that fetched it (in its thread) before the crawler sees it.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, get_args

import httpx2

FetchModel = Literal["sequential", "threads", "asyncio"]
FETCH_MODELS: tuple[FetchModel, ...] = get_args(FetchModel)


class BlockingTransport(httpx2.AsyncBaseTransport):
    """Blocking requests behind httpx2's async transport interface: made on the calling thread
    (``threads=0``, which blocks the event loop: the sequential model) or in a pool of ``threads``
    threads, each with a synchronous ``httpx2.Client`` of its own."""

    def __init__(self, threads: int = 0) -> None:
        # One TLS context for every client: building one loads the CA bundle (about 40 ms and a few
        # hundred KB), which 2,048 clients would pay 2,048 times. The bench site is plain http anyway.
        self._tls = httpx2.create_ssl_context()
        self._local = threading.local()
        self._clients: list[httpx2.Client] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fetch") if threads else None

    def _client(self) -> httpx2.Client:
        client: httpx2.Client | None = getattr(self._local, "client", None)
        if client is None:
            # One connection per client: a thread makes one request at a time.
            client = httpx2.Client(verify=self._tls, trust_env=False, follow_redirects=False,
                                   limits=httpx2.Limits(max_connections=1, max_keepalive_connections=1))
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _send(self, request: httpx2.Request) -> httpx2.Response:
        """One blocking request, its body read whole (raw: the fetcher decodes it)."""
        response = self._client().send(request, stream=True)
        try:
            body = b"".join(response.iter_raw())
        finally:
            response.close()
        return httpx2.Response(response.status_code, headers=response.headers.raw, stream=httpx2.ByteStream(body),
                               extensions=response.extensions, request=request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._pool is None:
            return self._send(request)   # blocks the event loop: that is the sequential model
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._send, request)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


def transport_for(fetch: FetchModel, concurrency: int) -> httpx2.AsyncBaseTransport | None:
    """The transport of a fetch model at ``concurrency`` requests in flight (None: the crawler's own)."""
    if fetch == "sequential":
        return BlockingTransport(0)
    if fetch == "threads":
        return BlockingTransport(concurrency)
    return None
