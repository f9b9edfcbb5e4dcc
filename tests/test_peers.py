"""A crawl sharing a Redis job (crawler/peers.py, ``Sharing``): its waits are on the crawl's clock,
so they run here in fake time against a private redis-server on loopback (the ``redis_url``
fixture; skipped with the reason where there is none). Each test is its own job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import pytest
from fake_clock import FakeClock

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.politeness import HostPool

pytest.importorskip("redis", reason="redis-py is not installed (pip install -e '.[redis]')")

from crawler.frontier.redis import RedisFrontier
from crawler.peers import Sharing


@pytest.fixture
def settings(redis_url: str, request: pytest.FixtureRequest) -> Settings:
    return replace(Settings(), frontier=redis_url, job=request.node.name, lease=30.0, per_host=8).validated()


@asynccontextmanager
async def machines(settings: Settings, count: int) -> AsyncIterator[list[RedisFrontier]]:
    """``count`` workers of the job, each with its own connection, as on separate machines."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(RedisFrontier(settings.frontier, settings.job, f"w{n}",
                                                             lease_seconds=settings.lease))
               for n in range(1, count + 1)]


async def nothing_added() -> None:
    pass


def test_a_worker_joining_before_the_seeds_waits_for_them_on_the_crawls_clock(settings: Settings) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with machines(settings, 2) as (early, starter):
            ten = asyncio.Event()

            def stopping() -> bool:   # asked at each look for seeds: the other machine's cue
                if clock.now >= 10:
                    ten.set()
                return False

            async def seeds_at_ten_seconds() -> None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3):   # a join that waits in real time: fail, not hang
                        await ten.wait()
                await starter.join({"a.test"})

            giver = asyncio.create_task(seeds_at_ten_seconds())
            found = await Sharing(settings, early, clock).join(set(), stopping)
            await giver
            assert found == {"a.test"}
            assert 10 <= clock.now <= 11        # it looked again every half second, not every lease

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 5   # ten seconds of waiting, in fake time


def test_a_worker_whose_job_gets_no_seeds_gives_up_after_one_lease_of_the_crawls_clock(settings: Settings) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with machines(settings, 1) as (alone,):
            with pytest.raises(UsageError, match=r"got no seeds within 30 s \(--lease\)"):
                await Sharing(settings, alone, clock).join(set(), lambda: False)
        assert 30 <= clock.now < 31

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 10   # a 30-second lease, in fake time


def test_a_watching_worker_takes_its_fair_share_of_per_host_within_a_second_of_the_crawls_clock(
        settings: Settings) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with machines(settings, 2) as (mine, other):
            await other.renew([])                 # the other worker is alive
            pool = HostPool(settings.per_host, 0.0, clock=clock)
            shared_out = asyncio.Event()

            def wake() -> None:   # called at each look at the job
                if pool.per_host != settings.per_host:
                    shared_out.set()

            watch = asyncio.create_task(Sharing(settings, mine, clock).watch(pool, wake, nothing_added))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):   # a watch that waits in real time: fail, not hang
                    await shared_out.wait()
            watch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await watch
            assert pool.per_host == 4             # half of --per-host 8: two workers are alive
            assert 1 <= clock.now < 2             # counted once a second of the crawl's clock

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 5
