"""Helpers for the fetch-stage tests: mock-backed fetchers and real local servers.

Imported by name (``from conftest_fetch import ...``): it is not a pytest ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from typing import Any

import httpx2

from crawler.config import Settings
from crawler.fetcher import Fetcher, HopCheck
from crawler.models import Response

Handler = Callable[[httpx2.Request], httpx2.Response] | Callable[[httpx2.Request], Coroutine[None, None, httpx2.Response]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Chunks(httpx2.AsyncByteStream):
    """A response body served in chunks, as a network would; records whether it was closed.

    (``httpx2.Response(content=b"...")`` reads its body at once, after which ``aiter_raw`` -- what
    the fetcher streams with -- raises StreamConsumed; a stream object avoids that.)
    """

    def __init__(self, data: bytes, chunk_size: int = 16 * 1024) -> None:
        self.data = data
        self.chunk_size = chunk_size
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), self.chunk_size):
            yield self.data[i : i + self.chunk_size]

    async def aclose(self) -> None:
        self.closed = True


def reply(status: int = 200, body: bytes = b"", headers: Any = None) -> httpx2.Response:
    """A MockTransport response whose body is streamed in chunks."""
    return httpx2.Response(status, headers=headers, stream=Chunks(body))


def settings(**changes: Any) -> Settings:
    return replace(Settings(), **changes).validated()


def mock_fetcher(handler: Handler, **changes: Any) -> Fetcher:
    """A fetcher whose requests are answered by ``handler`` through ``httpx2.MockTransport``."""
    return Fetcher(settings(**changes), transport=httpx2.MockTransport(handler))


def fetch_mocked(handler: Handler, url: str = "http://t/a", *, check: HopCheck | None = None,
                 max_bytes: int | None = None, **changes: Any) -> Response:
    """Run one fetch against ``handler`` to completion."""
    async def go() -> Response:
        async with mock_fetcher(handler, **changes) as fetcher:
            return await fetcher.fetch(url, check=check, max_bytes=max_bytes)
    return asyncio.run(go())


def fetch_httpcore(url: str, *, check: HopCheck | None = None, **changes: Any) -> Response:
    """Run one fetch through the real httpcore transport (which the ``httpx2_mock`` fixture patches)."""
    async def go() -> Response:
        async with Fetcher(settings(transport="httpcore", **changes)) as fetcher:
            return await fetcher.fetch(url, check=check)
    return asyncio.run(go())


@asynccontextmanager
async def local_server(handler: StreamHandler) -> AsyncIterator[int]:
    """A real TCP server on 127.0.0.1 running ``handler`` per connection; yields its port.

    Handler tasks are cancelled and awaited on exit, so nothing outlives the test's event loop.
    """
    tasks: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        async with server:
            yield server.sockets[0].getsockname()[1]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused, and nobody else can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Headers, then one byte of body every 0.2 s, forever: no per-read timeout ever trips."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n")
    while True:
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.2)


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept the connection and close it without a word."""
    writer.close()


def fetch_real(handler: StreamHandler, transport: str) -> tuple[BaseException, float]:
    """Fetch from a local server running ``handler`` with a 1 s deadline: (the error, seconds taken)."""
    async def go() -> tuple[BaseException, float]:
        async with local_server(handler) as port, Fetcher(settings(transport=transport, timeout=1.0)) as f:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(10):  # a guard, so that a missing deadline fails, not hangs
                    await f.fetch(f"http://127.0.0.1:{port}/")
            except Exception as exc:
                return exc, time.perf_counter() - started
        raise AssertionError("the fetch succeeded")
    return asyncio.run(go())
