"""The Redis frontier beyond the contract suite: leases that expire, renew and are fenced, workers
sharing one job and its per-host limits, a worker that dies, memory per URL, and its errors: a
Redis that lost the job, or that stops answering.

Against a private redis-server (the ``redis_url`` fixture); each test is its own job. Lease times
are a fraction of a second, so expiry is real waiting, kept short.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis_server

from crawler.errors import StorageError
from crawler.frontier import NewURL, Outage
from crawler.models import FrontierItem

pytest.importorskip("redis", reason="redis-py is not installed (pip install -e '.[redis]')")

from crawler.frontier.redis import RedisFrontier, RedisUnavailable
from crawler.frontier.redis_link import JobLost, RedisSilent


@pytest.fixture(autouse=True)
def server(redis_url: str) -> str:
    return redis_url


@pytest.fixture
def job(request: pytest.FixtureRequest) -> str:
    return request.node.name


def url(n: int, host: str = "a.test", depth: int = 1) -> NewURL:
    return NewURL(f"http://{host}/{n}", host, depth)


@asynccontextmanager
async def workers(job: str, count: int, **options: Any) -> AsyncIterator[list[RedisFrontier]]:
    """``count`` workers of ``job``, each with its own connection, as on separate machines."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(RedisFrontier(redis_server.url(), job, f"w{n}", **options))
               for n in range(1, count + 1)]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


# -- leases -------------------------------------------------------------------------------------


def test_an_expired_lease_returns_its_url_to_the_queue_and_the_late_ack_is_refused(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2, lease_seconds=0.3) as (w1, w2):
            await w1.add([url(1), url(2)])
            (late,) = await w1.lease(1)
            other = await w2.lease(1, "a.test")
            assert other == [FrontierItem(2, "http://a.test/2", 1, host="a.test", token=2)]
            await w2.ack(other)
            assert await w2.lease(1) == []                     # /1 is w1's while its lease holds
            await asyncio.sleep(0.4)
            (again,) = await w2.lease(5)                       # expired: back at the head of its host's queue
            assert (again.id, again.url, again.depth) == (late.id, late.url, late.depth)
            assert again.token != late.token                   # a new attempt
            assert await w1.ack_fenced([late]) == [late]       # the late worker's result is refused
            assert w1.refused == 1
            assert await w2.ack_fenced([again]) == []
            assert await w2.ack_fenced([again]) == []          # repeating one's own ack is no refusal
            assert await w1.release([late]) == 0
            stats = await w1.stats()
            assert (stats.done, stats.refused, stats.reclaimed, stats.leased) == (2, 1, 1, 0)
    run(scenario)


def test_a_late_ack_of_a_url_nobody_leased_again_is_taken(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2, lease_seconds=0.2) as (w1, w2):
            await w1.add([url(1)])
            (item,) = await w1.lease(1)
            await asyncio.sleep(0.3)
            assert await w2.reclaim() == 1                     # back in the queue, not leased yet
            assert await w1.ack_fenced([item]) == []           # the page is stored: no need to fetch it again
            assert await w2.lease(10) == []
            assert await w2.pending() == 0
    run(scenario)


def test_renewal_keeps_a_lease_past_its_expiry(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2, lease_seconds=0.4) as (w1, w2):
            await w1.add([url(1)])
            held = await w1.lease(1)
            for _ in range(4):                                 # 0.8 s in all: twice the lease
                await asyncio.sleep(0.2)
                assert await w1.renew(held) == []
                assert await w2.lease(1) == []
            await asyncio.sleep(0.5)                           # no renewal: it expires
            taken = await w2.lease(1)
            assert [i.url for i in taken] == [held[0].url]
            assert await w1.renew(held) == held                # lost: w1 learns its result will be refused
            assert await w1.ack_fenced(held) == held
    run(scenario)


def test_a_worker_that_dies_loses_nothing_once_its_leases_expire(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 1, lease_seconds=0.3) as (survivor,):
            dead = RedisFrontier(redis_server.url(), job, "dead", lease_seconds=0.3)
            await dead.__aenter__()
            await dead.add([url(n, host) for n in range(10) for host in ("a.test", "b.test")])
            held = await dead.lease(8)
            await dead.client.aclose()                         # killed: no release, no goodbye
            fetched: list[str] = []
            deadline = time.monotonic() + 5
            while await survivor.pending():
                assert time.monotonic() < deadline
                items = await survivor.lease(4)
                fetched += [i.url for i in items]
                await survivor.ack(items)
                await asyncio.sleep(0.02)
            assert sorted(fetched) == sorted(f"http://{h}/{n}" for n in range(10) for h in ("a.test", "b.test"))
            stats = await survivor.stats()
            assert (stats.done, stats.reclaimed, stats.queued, stats.leased) == (20, len(held), 0, 0)
            assert stats.workers_alive == 1                    # the dead worker's heartbeat ran out with it
    run(scenario)


def test_release_without_items_hands_back_this_workers_leases_only(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2) as (w1, w2):
            await w1.add([url(n) for n in range(6)])
            mine, theirs = await w1.lease(2), await w2.lease(3)
            assert await w1.release() == 2
            assert [i.url for i in await w1.lease(10)] == [i.url for i in mine] + ["http://a.test/5"]
            assert await w2.release(theirs[:1]) == 1
            assert await w2.release(theirs[:1]) == 0
    run(scenario)


# -- workers sharing a job ------------------------------------------------------------------------


def test_two_workers_leasing_concurrently_never_hold_the_same_url(job: str) -> None:
    hosts = [f"h{k}.test" for k in range(20)]

    async def scenario() -> None:
        async with workers(job, 2) as pair:
            await pair[0].add([url(n, host) for n in range(100) for host in hosts])
            taken: list[int] = []

            async def drain(w: RedisFrontier, seed: int) -> None:
                rng = random.Random(seed)
                while items := await w.lease(rng.randint(1, 25), rng.choice([None, *hosts])):
                    taken.extend(i.id for i in items)
                    await w.ack(items)

            async with asyncio.TaskGroup() as tg:
                for n in range(8):   # four tasks per worker, interleaving their scripts
                    tg.create_task(drain(pair[n % 2], n))
            for w in pair:           # a host-only lease may stop early while other hosts still have URLs
                while items := await w.lease(100):
                    taken.extend(i.id for i in items)
                    await w.ack(items)
            assert len(taken) == len(set(taken)) == 2000
            assert await pair[0].pending() == 0
    run(scenario)


def test_a_hosts_in_flight_limit_holds_across_workers(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2, per_host=2) as (w1, w2):
            await w1.add([url(n) for n in range(40)] + [url(n, "b.test") for n in range(40)])
            assert len(await w1.lease(5, "a.test")) == 2
            assert await w2.lease(5, "a.test") == []
            assert len(await w2.lease(5)) == 2                 # b.test's two
            in_flight, highest = 0, 0

            async def work(w: RedisFrontier) -> None:
                nonlocal in_flight, highest
                while True:
                    items = await w.lease(3, "a.test")
                    if not items:
                        if "a.test" not in await w.hosts_with_work():
                            return
                        await asyncio.sleep(0.005)
                        continue
                    in_flight += len(items)
                    highest = max(highest, in_flight)
                    await asyncio.sleep(0.01)
                    in_flight -= len(items)                    # before the ack: what we count is at most Redis's
                    await w.ack(items)

            await w1.release()
            await w2.release()
            async with asyncio.TaskGroup() as tg:
                for w in (w1, w2, w1, w2):
                    tg.create_task(work(w))
            assert highest == 2
    run(scenario)


def test_a_hosts_delay_holds_across_workers(job: str) -> None:
    delay = 0.15

    async def scenario() -> None:
        async with workers(job, 2, delay=delay) as (w1, w2):
            await w1.add([url(n) for n in range(6)])
            starts: list[float] = []

            async def work(w: RedisFrontier) -> None:
                while len(starts) < 6:
                    items = await w.lease(5, "a.test")
                    if items:
                        assert len(items) == 1                 # with a delay, one URL per lease
                        starts.append(time.monotonic())
                        await w.ack(items)
                    await asyncio.sleep(0.005)

            async with asyncio.TaskGroup() as tg:
                tg.create_task(work(w1))
                tg.create_task(work(w2))
            gaps = [b - a for a, b in itertools.pairwise(starts)]
            assert min(gaps) > delay - 0.02, gaps              # Redis's clock decides; replies take a moment
    run(scenario)


def test_a_crawl_delay_raises_a_hosts_delay_for_every_worker(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2) as (w1, w2):
            await w1.add([url(n) for n in range(3)])
            await w1.set_delay("a.test", 30)
            assert len(await w1.lease(3, "a.test")) == 1
            assert await w2.lease(3, "a.test") == []
    run(scenario)


def test_a_host_budget_holds_for_the_job(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2, host_budget=3) as (w1, w2):
            await w1.add([url(n) for n in range(10)])
            first = await w1.lease(10, "a.test")
            assert len(first) == 3
            assert await w2.lease(10, "a.test") == []
            await w1.ack(first)
            assert await w2.hosts_with_work() == []            # spent: the rest is never fetched
            assert await w2.add([url(20)]) == 0
            assert await w2.pending() == 0
            (host,) = (await w2.stats()).hosts
            assert (host.state, host.fetched, host.queued) == ("budget", 3, 0)
    run(scenario)


def test_a_parked_host_is_out_of_hosts_with_work_until_its_time_or_an_answer(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 1) as (w,):
            await w.add([url(1), url(2), url(1, "b.test"), url(1, "c.test")])
            await w.park("b.test", "2999-01-01T00:00:00Z", "connect")
            await w.park("c.test", "2000-01-01T00:00:00Z", "connect")
            assert sorted(await w.hosts_with_work()) == ["a.test", "c.test"]
            assert await w.pending() > 0                      # parked URLs are still the job's
            assert not await w.idle()                          # but a.test's are this run's work
            await w.ack(await w.lease(10, "c.test"))           # parked until a time gone by: work
            leased = await w.lease(10, "a.test")
            assert not await w.hosts_with_work()
            assert not await w.idle()                          # a lease is out
            await w.ack(leased)
            assert await w.pending() > 0
            assert await w.idle()                              # b.test's URLs wait for a later run
            hosts = {h.host: h for h in (await w.stats()).hosts}
            assert (hosts["b.test"].state, hosts["b.test"].until, hosts["b.test"].error) == (
                "parked", "2999-01-01T00:00:00Z", "connect")
            await w.ack(await w.lease(1, "b.test"))            # it answered after all
            assert sorted(await w.hosts_with_work()) == []
            assert (await w.stats()).hosts[1].state == "done"
    run(scenario)


def test_a_run_is_idle_when_only_hosts_parked_beyond_its_wait_have_urls(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 1) as (w,):
            await w.add([url(1, "b.test")])
            soon = datetime.now(UTC) + timedelta(seconds=10)
            await w.park("b.test", soon.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeout, failing")
            assert await w.idle()              # nothing else to do: a later run's work
            assert not await w.idle(30.0)      # unless the run waits for a park ending within 30 s
    run(scenario)


def test_a_job_is_started_by_its_first_worker_with_seeds(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2) as (first, joining):
            assert not await joining.started()
            assert await first.add([NewURL("http://a.test/", "a.test", 0)]) == 1
            assert await joining.started()
            assert await joining.add([NewURL("http://a.test/", "a.test", 0)]) == 0   # seeds again: no change
            assert [i.id for i in await joining.lease(1)] == [1]
    run(scenario)


def test_stats_show_the_job_as_every_worker_shares_it(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2) as (w1, w2):
            await w1.add([url(n) for n in range(4)] + [url(1, "b.test")])
            await w1.ack(await w1.lease(1, "b.test"))
            await w2.lease(1, "a.test")
            stats = await w1.stats()
            assert (stats.queued, stats.leased, stats.done, stats.workers_alive) == (3, 1, 1, 2)
            assert [(h.host, h.queued, h.in_flight, h.fetched, h.state) for h in stats.hosts] == [
                ("a.test", 3, 1, 0, "queued"), ("b.test", 0, 0, 1, "done")]
    run(scenario)


# -- memory ----------------------------------------------------------------------------------------


def test_a_done_url_costs_under_100_bytes_of_redis_memory(job: str, capsys: pytest.CaptureFixture[str]) -> None:
    count = 25_000   # well past the 128 members a set keeps packed: the per-URL cost of a hash table

    async def scenario() -> None:
        async with workers(job, 1) as (w,):
            before = int((await w.client.info("memory"))["used_memory"])
            hosts = [f"h{k}.test" for k in range(100)]
            await w.add([NewURL(f"http://{hosts[n % 100]}/page-{n}", hosts[n % 100], 1) for n in range(count)])
            for host in hosts:
                while items := await w.lease(1000, host):
                    await w.ack(items)
            assert await w.pending() == 0
            seen = int(await w.client.memory_usage(w.prefix + "seen", samples=0))
            used = int((await w.client.info("memory"))["used_memory"]) - before
            with capsys.disabled():
                print(f"\nredis memory per done URL ({count:,}): seen set {seen / count:.1f} B, "
                      f"INFO used_memory {used / count:.1f} B")
            assert seen / count < 100
            assert used / count < 100
    run(scenario)


# -- errors ----------------------------------------------------------------------------------------


def test_an_unreachable_server_is_one_line_naming_it() -> None:
    address = f"redis://127.0.0.1:{redis_server.free_port()}/0"

    async def scenario() -> None:
        with pytest.raises(RedisUnavailable) as caught:
            async with RedisFrontier(address, "job", "w1"):
                pass
        message = str(caught.value)
        assert address in message
        assert "\n" not in message
    run(scenario)


def test_a_server_lost_during_the_crawl_is_a_storage_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        with redis_server.serve(tmp_path) as address:
            frontier = RedisFrontier(address, "job", "w1", retry_for=1.5)
            await frontier.__aenter__()
        try:
            with pytest.raises(StorageError, match=r"Redis at redis://127\.0\.0\.1:[0-9]+/0 has not answered for [0-9]+ s "
                                                   r"\(Error 111 connecting"):
                await frontier.add([url(1)])
        finally:
            await frontier.__aexit__(None, None, None)
    run(scenario)


def test_the_address_in_messages_carries_no_password() -> None:
    frontier = RedisFrontier("redis://user:secret@127.0.0.1:6379/2", "job", "w1")
    assert frontier.address == "redis://127.0.0.1:6379/2"


def test_a_redis_that_lost_the_job_is_an_error_and_never_a_finished_job(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 2) as (w1, w2):
            await w1.add([url(1), url(2)])
            assert await w1.join({"a.test"}) == {"a.test"}
            assert not await w1.idle()
            await w1.client.delete(*await w1.client.keys(w1.prefix + "*"))   # what a restart without persistence leaves
            for empty in (w1.idle, w1.pending, w1.hosts_with_work, w1.reclaim):
                with pytest.raises(JobLost, match=f"no longer holds job '{job}'"):
                    await empty()
            with pytest.raises(JobLost):
                await w1.add([url(3)])
            assert await w1.client.keys(w1.prefix + "*") == []   # nothing written to the empty Redis
            # Another worker starting the job afresh under the same name is another job to this one.
            assert await w2.join({"a.test"}) == {"a.test"}
            with pytest.raises(JobLost):
                await w1.lease(1)
    run(scenario)


def test_a_worker_joining_a_job_from_before_markers_adopts_it(job: str) -> None:
    async def scenario() -> None:
        async with workers(job, 1) as (w,):
            await w.client.sadd(w.prefix + "seed_hosts", "a.test")   # a job started by an older crawler
            assert await w.join() == {"a.test"}
            assert await w.idle()
    run(scenario)


def test_a_silent_redis_is_retried_within_its_bound_and_said_so_then_an_error(tmp_path: Path) -> None:
    outages: list[Outage | None] = []

    async def scenario() -> None:
        with redis_server.serve(tmp_path) as address:
            async with RedisFrontier(address, "job", "w1", retry_for=3.0, on_outage=outages.append) as frontier:
                await frontier.add([url(1)])
                # Stopped longer than one attempt (1 s): retried, said, and over once it answers.
                redis_server.pause(address, signal.SIGSTOP)
                asyncio.get_running_loop().call_later(1.5, redis_server.pause, address, signal.SIGCONT)
                assert await frontier.pending() == 1
                assert [type(o) for o in outages] == [Outage, type(None)]
                assert outages[0] is not None
                assert (outages[0].server, outages[0].within) == (f"Redis at {address}", 3.0)
                # Stopped for good: every operation has failed within the bound.
                redis_server.pause(address, signal.SIGSTOP)
                began = time.monotonic()
                with pytest.raises(RedisSilent, match=f"Redis at {address} has not answered for [0-9]+ s"):
                    await asyncio.gather(frontier.pending(), frontier.hosts_with_work(), frontier.add([url(2)]))
                assert time.monotonic() - began <= 3.0 + 0.5
                began = time.monotonic()
                with pytest.raises(RedisSilent):
                    await frontier.release()       # once given up, at once
            assert time.monotonic() - began < 0.5  # and no goodbye waits on it
    run(scenario)


def test_a_redis_restarted_between_loading_the_add_script_and_running_it_is_judged_by_the_script(
        job: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # redis-py loads a pipeline's scripts, then runs the pipeline (retrying a lost connection): a
    # Redis restarted in between knows no script. Seen under load in test_workers_redis: the crawl
    # stopped with "No matching script" instead of saying the job was lost.
    from redis.asyncio.client import Pipeline
    loaded = Pipeline.load_scripts
    restarts: list[bool] = []   # one per pipeline to break: True loses the job too

    async def then_restarted(pipe: Pipeline) -> None:
        await loaded(pipe)
        if restarts:
            if restarts.pop(0):
                await pipe.immediate_execute_command("FLUSHALL")
            await pipe.immediate_execute_command("SCRIPT", "FLUSH")

    monkeypatch.setattr(Pipeline, "load_scripts", then_restarted)

    async def scenario() -> None:
        async with workers(job, 1) as (w1,):
            assert await w1.join({"a.test"}) == {"a.test"}
            restarts.append(False)   # the scripts lost, the job kept (a Redis with persistence)
            assert await w1.add([url(1), url(2)]) == 2
            assert await w1.add([url(2), url(3)]) == 1
            assert await w1.pending() == 3
            restarts.append(True)    # the scripts and the job lost
            with pytest.raises(JobLost, match=f"no longer holds job '{job}'"):
                await w1.add([url(4)])
    run(scenario)
