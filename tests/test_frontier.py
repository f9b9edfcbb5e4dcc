"""The frontier contract: every backend of ``crawler.frontier.Frontier`` passes these tests.

A backend is added to ``BACKENDS`` with a function that opens it on a location (a ``tmp_path``);
opening the same location twice must give the same frontier, as a job resumed after a crash does.
The Redis backend runs against a private redis-server (the ``redis_url`` fixture), one job per test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import redis_server

from crawler.errors import UsageError
from crawler.frontier import Frontier, NewURL
from crawler.frontier.sqlite import SqliteFrontier
from crawler.storage.jobfile import JobFile

Opener = Callable[[Path], AbstractAsyncContextManager[Frontier]]


@asynccontextmanager
async def sqlite_frontier(where: Path) -> AsyncIterator[Frontier]:
    async with JobFile(where / "job.db") as job:
        yield SqliteFrontier(job)


@asynccontextmanager
async def redis_frontier(where: Path) -> AsyncIterator[Frontier]:
    # Imported here, so that the SQLite tests run where redis-py is not installed.
    from crawler.frontier.redis import RedisFrontier

    # The location names the job, and the one worker that leases from it (the same after a "crash").
    async with RedisFrontier(redis_server.url(), job=str(where), worker="worker-1") as frontier:
        yield frontier


BACKENDS: dict[str, Opener] = {"sqlite": sqlite_frontier, "redis": redis_frontier}
# Backends that refuse a recrawl (``requeue``) with a one-line UsageError: done URLs keep only
# their fingerprint in Redis.
NO_RECRAWL = {"redis"}


@pytest.fixture(params=sorted(BACKENDS))
def opener(request: pytest.FixtureRequest) -> Opener:
    if request.param == "redis":
        request.getfixturevalue("redis_url")   # a private redis-server, or the test is skipped
    return BACKENDS[request.param]


def run(opener: Opener, where: Path, scenario: Callable[[Frontier], Awaitable[None]]) -> None:
    async def go() -> None:
        async with opener(where) as frontier:
            await scenario(frontier)
    asyncio.run(go())


def url(n: int, host: str = "a.test") -> NewURL:
    return NewURL(f"http://{host}/{n}", host, 1)


def test_urls_are_leased_oldest_first_each_once(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        assert await f.add([url(n) for n in range(10)]) == 10
        first = await f.lease(4)
        second = await f.lease(100)
        assert [i.url for i in first] == [f"http://a.test/{n}" for n in range(4)]
        assert [i.url for i in second] == [f"http://a.test/{n}" for n in range(4, 10)]
        assert await f.lease(100) == []
    run(opener, tmp_path, scenario)


def test_a_lease_carries_the_depth_it_was_added_with(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        await f.add([NewURL("http://a.test/", "a.test", 0), NewURL("http://a.test/deep", "a.test", 7)])
        assert {(i.url, i.depth, i.attempt) for i in await f.lease(10)} == {
            ("http://a.test/", 0, 0), ("http://a.test/deep", 7, 0)}
    run(opener, tmp_path, scenario)


def test_a_url_found_twice_is_queued_once(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        assert await f.add([url(1), url(2)]) == 2
        assert await f.add([url(2), url(3), url(3)]) == 1
        assert await f.pending() == 3
        leased = await f.lease(10)
        await f.ack(leased)
        assert await f.add([url(1), url(2), url(3)]) == 0   # done: seen, never queued again
        assert await f.lease(10) == []
    run(opener, tmp_path, scenario)


def test_an_excluded_url_is_kept_out_until_it_comes_in_bounds(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        deep = NewURL("http://a.test/deep", "a.test", 5, "too_deep")
        off = NewURL("http://b.test/", "b.test", 1, "off_host")
        assert await f.add([deep, off]) == 0
        assert await f.pending() == 0
        assert await f.lease(10) == []
        assert await f.add([NewURL("http://a.test/deep", "a.test", 2)]) == 1   # a shorter path to it
        assert [(i.url, i.depth) for i in await f.lease(10)] == [("http://a.test/deep", 2)]
        assert await f.add([off]) == 0   # excluded again: still excluded
    run(opener, tmp_path, scenario)


def test_a_seed_brings_back_an_excluded_url_at_depth_zero(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        await f.add([NewURL("http://a.test/x", "a.test", 3, "nofollow")])
        assert await f.add([NewURL("http://a.test/x", "a.test", 0)]) == 1
        assert [(i.url, i.depth) for i in await f.lease(10)] == [("http://a.test/x", 0)]
    run(opener, tmp_path, scenario)


def test_released_urls_are_leased_again_and_acknowledged_ones_are_not(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        await f.add([url(n) for n in range(6)])
        leased = await f.lease(6)
        await f.ack(leased[:2])
        await f.ack(leased[:2])                     # repeating an ack is harmless
        assert await f.release(leased[2:4]) == 2
        assert await f.release(leased[:2]) == 0     # done is done: release does not undo an ack
        assert [i.url for i in await f.lease(10)] == [leased[2].url, leased[3].url]
        assert await f.pending() == 4               # two leased again + two still leased from before
        assert await f.release() == 4               # every lease (a dead run's, or our own at exit)
        assert await f.pending() == 4
    run(opener, tmp_path, scenario)


def test_pending_counts_what_is_queued_and_what_is_leased(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        assert await f.pending() == 0
        await f.add([url(1)])
        assert await f.pending() == 1
        (item,) = await f.lease(10)
        assert await f.pending() == 1              # leased is not done: its page may bring links
        await f.ack([item])
        assert await f.pending() == 0
    run(opener, tmp_path, scenario)


def test_requeue_puts_done_urls_back_and_leaves_the_rest(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        await f.add([url(1), url(2), url(3)])
        leased = await f.lease(2)
        await f.ack(leased)
        if opener in {BACKENDS[name] for name in NO_RECRAWL}:
            with pytest.raises(UsageError, match="recrawl is not supported"):
                await f.requeue([url(1).url])
            return
        assert await f.requeue([url(1).url, url(3).url, "http://a.test/never-seen"]) == 1   # 3 is pending
        assert [i.url for i in await f.lease(10)] == [url(1).url, url(3).url]
    run(opener, tmp_path, scenario)


def test_leases_survive_a_crash_and_are_released_on_the_next_start(opener: Opener, tmp_path: Path) -> None:
    async def crash(f: Frontier) -> None:
        await f.add([url(n) for n in range(3)])
        await f.ack(await f.lease(1))
        await f.lease(10)                            # then the process "dies" holding two leases

    async def restart(f: Frontier) -> None:
        assert await f.lease(10) == []               # still leased: nobody else gets them
        assert await f.release() == 2
        assert [i.url for i in await f.lease(10)] == [url(1).url, url(2).url]
    run(opener, tmp_path, crash)
    run(opener, tmp_path, restart)


def test_a_leased_url_excluded_at_its_visit_is_neither_pending_nor_leased_again(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        await f.add([url(n) for n in range(3)])
        leased = await f.lease(3)
        await f.exclude([(leased[0], "robots_disallowed", "Disallow: /0")])
        await f.ack(leased[1:])
        assert await f.pending() == 0
        await f.release()
        assert await f.lease(10) == []   # an exclusion is not a lease to give back
        await f.add([url(0)])            # found again with no exclusion: queued, as any excluded URL
        assert [i.url for i in await f.lease(10)] == ["http://a.test/0"]
    run(opener, tmp_path, scenario)


def test_a_backed_off_host_keeps_its_work(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        await f.add([url(1), url(2, "b.test")])
        await f.back_off("a.test", "503: 4 in flight, 0.5 s apart")
        assert sorted(await f.hosts_with_work()) == ["a.test", "b.test"]
        await f.back_off("a.test", None)
        assert sorted(await f.hosts_with_work()) == ["a.test", "b.test"]
    run(opener, tmp_path, scenario)


def test_parked_work_counts_the_pending_urls_of_hosts_parked_until_later(opener: Opener, tmp_path: Path) -> None:
    async def scenario(f: Frontier) -> None:
        assert await f.parked_work() == (0, 0, None)
        await f.add([url(1), url(2), url(1, "b.test"), url(1, "c.test"), url(1, "d.test")])
        await f.park("a.test", "2999-01-01T00:00:00Z", "timeout, failing")
        await f.park("b.test", "2998-06-01T00:00:00Z", "connect")
        await f.park("c.test", "2000-01-01T00:00:00Z", "connect")   # over: its URL is work again
        assert await f.parked_work() == (3, 2, "2998-06-01T00:00:00Z")
        await f.ack(await f.lease(10, "b.test"))                     # it answered after all
        assert await f.parked_work() == (2, 1, "2999-01-01T00:00:00Z")
    run(opener, tmp_path, scenario)
