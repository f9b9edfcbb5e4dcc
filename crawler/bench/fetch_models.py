"""Three ways to wait for the network, under one crawler: the fetch models ``crawler bench`` compares.

- ``sequential``: one blocking request at a time on the crawler's one thread, through httpx2's
  synchronous ``Client``: while a response is awaited nothing else happens (the event loop is
  blocked too), the way a plain ``for url in urls: client.get(url)`` crawler works;
- ``threads``: blocking requests in a pool of N threads, all started up front, a synchronous
  ``Client`` per thread (one connection each), N requests in flight: the GIL is released while a
  thread waits on its socket;
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
import queue
import threading
from concurrent.futures import Future
from typing import Literal, get_args

import httpx2

FetchModel = Literal["sequential", "threads", "asyncio"]
FETCH_MODELS: tuple[FetchModel, ...] = get_args(FetchModel)


class BlockingTransport(httpx2.AsyncBaseTransport):
    """Blocking requests behind httpx2's async transport interface: made on the calling thread
    (``threads=0``, which blocks the event loop: the sequential model) or by a pool of ``threads``
    threads, started up front, each with a synchronous ``httpx2.Client`` of its own, taking requests
    from one queue as a classic threaded crawler's workers do."""

    def __init__(self, threads: int = 0) -> None:
        # One TLS context for every client: building one loads the CA bundle (about 40 ms and a few
        # hundred KB), which 2,048 clients would pay 2,048 times. The bench site is plain http anyway.
        self._tls = httpx2.create_ssl_context()
        self._jobs: queue.SimpleQueue[tuple[httpx2.Request, Future[httpx2.Response]] | None] = queue.SimpleQueue()
        self._clients: list[httpx2.Client] = []
        self._threads = [threading.Thread(target=self._work, name=f"fetch-{k}", daemon=True) for k in range(threads)]
        self._own = None if threads else self._client()
        for thread in self._threads:
            thread.start()

    def _client(self) -> httpx2.Client:
        # One connection per client: a thread makes one request at a time.
        client = httpx2.Client(verify=self._tls, trust_env=False, follow_redirects=False,
                               limits=httpx2.Limits(max_connections=1, max_keepalive_connections=1))
        self._clients.append(client)   # list.append is atomic: no lock needed
        return client

    def _work(self) -> None:
        """A pool thread: its own client, then requests from the queue until told to stop (None)."""
        client = self._client()
        while (job := self._jobs.get()) is not None:
            request, done = job
            if not done.set_running_or_notify_cancel():
                continue   # the crawler gave up on it (its deadline passed) before it started
            try:
                done.set_result(_send(client, request))
            except BaseException as exc:
                done.set_exception(exc)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._own is not None:
            return _send(self._own, request)   # blocks the event loop: that is the sequential model
        done: Future[httpx2.Response] = Future()
        self._jobs.put((request, done))
        return await asyncio.wrap_future(done)

    async def aclose(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        for client in self._clients:
            client.close()


def _send(client: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
    """One blocking request, its body read whole (raw: the fetcher decodes it)."""
    response = client.send(request, stream=True)
    try:
        body = b"".join(response.iter_raw())
    finally:
        response.close()
    return httpx2.Response(response.status_code, headers=response.headers.raw, stream=httpx2.ByteStream(body),
                           extensions=response.extensions, request=request)


def transport_for(fetch: FetchModel, concurrency: int) -> httpx2.AsyncBaseTransport | None:
    """The transport of a fetch model at ``concurrency`` requests in flight (None: the crawler's own)."""
    if fetch == "sequential":
        return BlockingTransport(0)
    if fetch == "threads":
        return BlockingTransport(concurrency)
    return None
