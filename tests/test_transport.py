"""crawler.transport: the aiohttp connector keeps at most so many idle connections.

Thirty HTTP/1.1 keep-alive servers on loopback ports (asyncio, in the test's loop) stand for thirty
hosts; each is fetched once. aiohttp alone would keep all thirty connections open for reuse; the
bounded connector keeps ten, closing the ones unused longest, and still reuses what it keeps.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp

from crawler.transport import bounded_connector

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def open_sockets() -> int:
    """Sockets this process has open (0 where there is no /proc)."""
    count = 0
    for fd in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue   # the listing's own descriptor, closed already
    return count


async def crawl(idle: int, hosts: int = 30) -> tuple[int, int, int]:
    """(sockets our side holds open after one request to each host, of which the pool's, connections
    the servers saw) with ``idle`` as the bound; then one more request to the last host."""
    accepted = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(REPLY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(serve, "127.0.0.1", 0) for _ in range(hosts)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    try:
        before = open_sockets()
        connector: Any = bounded_connector(idle, limit=8)
        async with aiohttp.ClientSession(connector=connector) as session:
            for port in ports:
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert await response.read() == b"ok"
            await asyncio.sleep(0.05)
            ours = open_sockets() - before - hosts   # each server's side of a connection is ours too
            pooled = sum(len(pool) for pool in connector._conns.values())
            seen = accepted
            async with session.get(f"http://127.0.0.1:{ports[-1]}/") as response:   # kept: reused
                await response.read()
            assert accepted == seen
        return ours, pooled, seen
    finally:
        for server in servers:
            server.close()


def test_at_most_idle_connections_stay_open_and_the_newest_are_kept() -> None:
    ours, pooled, seen = asyncio.run(crawl(idle=10))
    assert seen == 30
    assert pooled == 10
    if open_sockets():   # /proc is there: count the sockets themselves
        assert ours <= 2 * 10   # our end and the server's end of each connection kept


def test_without_the_bound_every_host_keeps_its_connection() -> None:
    ours, pooled, seen = asyncio.run(crawl(idle=1000))
    assert (pooled, seen) == (30, 30)
    if open_sockets():
        assert ours >= 2 * 30 - 2
