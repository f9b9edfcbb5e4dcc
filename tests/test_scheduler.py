"""The scheduler in-process: a ``Crawl`` driven through ``httpx2.MockTransport`` with a fake clock,
a seeded random source and a temporary job file. Each test checks one rule exactly, in fake time."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import CLI
from conftest_fetch import reply
from fake_clock import FakeClock
from fake_web import ORIGIN, FakeWeb, crawl, fan_out, page, queue, run, stored
from site_server import Site, html

from crawler import visit
from crawler.config import Settings
from crawler.errors import InternalError, ServerBusy, StorageError, WorkerDied
from crawler.fetcher import retry_delay
from crawler.frontier.sqlite import SqliteFrontier
from crawler.models import FrontierItem, PageRecord, Response
from crawler.run_stats import RunStats
from crawler.scheduler import Crawl
from crawler.storage.jobfile import JobFile
from crawler.storage.pages import PageStore
from crawler.storage.read import JobReader

Handler = Callable[[httpx2.Request], Coroutine[Any, Any, httpx2.Response]]


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    return replace(Settings(), db=str(tmp_path / "job.db"), robots=False, **changes).validated()


def test_a_crawl_stores_every_reachable_page_once_and_finishes(tmp_path: Path) -> None:
    clock = FakeClock()
    server = FakeWeb(clock, {"/": lambda: page("/a", "/b"), "/a": lambda: page("/b", "/c", "/"),
                            "/c": lambda: page("/a", "http://elsewhere.test/")})
    settings = make_settings(tmp_path)
    stats = run(crawl(settings, server))
    assert stats.outcome == "finished"
    assert sorted(server.paths()) == ["/", "/a", "/b", "/c"]
    assert stored(settings) == {f"{ORIGIN}/": 200, f"{ORIGIN}/a": 200, f"{ORIGIN}/b": 404, f"{ORIGIN}/c": 200}
    assert queue(settings) == {}
    assert (stats.pages, stats.errors) == (4, 1)


def test_a_retry_waits_out_its_backoff_in_fake_time(tmp_path: Path) -> None:
    clock = FakeClock()
    answers = iter([reply(503, b"busy"), page()])
    server = FakeWeb(clock, {"/": lambda: next(answers)})
    settings = make_settings(tmp_path, retries=2, retry_backoff=4.0)
    stats = run(crawl(settings, server, rng=11))
    expected = retry_delay(ServerBusy(ORIGIN, 503), 0, settings, random.Random(11))
    assert expected is not None
    assert 2.0 <= expected <= 6.0
    t0, t1 = server.times()
    assert t1 - t0 == pytest.approx(expected)
    assert (stats.outcome, stats.retries) == ("finished", 1)
    assert stored(settings) == {f"{ORIGIN}/": 200}


def test_retry_after_is_waited_out_in_full(tmp_path: Path) -> None:
    clock = FakeClock()
    answers = iter([reply(429, b"slow down", {"retry-after": "45"}), page()])
    server = FakeWeb(clock, {"/": lambda: next(answers)})
    settings = make_settings(tmp_path, retries=1, retry_backoff=0.1, retry_after_max=60.0)
    run(crawl(settings, server))
    t0, t1 = server.times()
    assert t1 - t0 == pytest.approx(45.0)


def test_retries_run_out_and_the_last_answer_is_stored(tmp_path: Path) -> None:
    clock = FakeClock()
    server = FakeWeb(clock, {"/": lambda: reply(503, b"down")})
    settings = make_settings(tmp_path, retries=3)
    stats = run(crawl(settings, server))
    assert server.paths() == ["/"] * 4   # 1 + retries
    assert stats.retries == 3
    assert stored(settings) == {f"{ORIGIN}/": 503}


class StopWhenWaiting(FakeClock):
    """A fake clock that asks the crawl to stop the first time the dispatcher waits for a deadline."""

    job: Crawl | None = None

    async def wait(self, event: asyncio.Event, seconds: float | None) -> None:
        if seconds is not None and seconds > 0 and self.job is not None and not self.job.stopping:
            self.job.request_stop()
        await super().wait(event, seconds)


def test_a_stop_during_a_backoff_ends_the_run_without_waiting_it_out(tmp_path: Path) -> None:
    clock = StopWhenWaiting()
    server = FakeWeb(clock, {"/": lambda: reply(503, b"busy", {"retry-after": "3600"})})
    settings = make_settings(tmp_path, retries=2, retry_after_max=3600.0)
    job = clock.job = crawl(settings, server)
    stats = run(job)
    assert stats.outcome == "stopped"
    assert server.paths() == ["/"]            # the retry never went out
    assert clock.now < 3600                   # and nobody waited for it, not even in fake time
    assert stored(settings) == {}
    assert queue(settings) == {f"{ORIGIN}/": 0}   # pending again: the next run retries it


def test_max_pages_stops_at_exactly_n(tmp_path: Path) -> None:
    clock = FakeClock()
    server = FakeWeb(clock, fan_out(40))
    settings = make_settings(tmp_path, max_pages=7, concurrency=4)
    stats = run(crawl(settings, server))
    assert stats.outcome == "limit"
    assert len(server.log) == 7
    assert len(stored(settings)) == 7
    assert len(queue(settings)) == 41 - 7     # the rest is pending, not leased: a later run goes on


class Gate:
    """A route that never answers until the test opens it; ``started`` is set by its first request."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.never = asyncio.Event()

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.started.set()
        await self.never.wait()
        raise AssertionError("unreachable")


def hanging_crawl(tmp_path: Path, grace: float) -> tuple[Crawl, Gate, Settings]:
    gate = Gate()
    settings = make_settings(tmp_path, grace_period=grace)
    job = Crawl(settings, [ORIGIN + "/"], transport=httpx2.MockTransport(gate), clock=FakeClock(),
                rng=random.Random(1))
    return job, gate, settings


def test_the_grace_period_waits_then_cancels_what_is_left(tmp_path: Path) -> None:
    job, gate, settings = hanging_crawl(tmp_path, grace=0.05)

    async def go() -> RunStats:
        async with asyncio.timeout(20):
            running = asyncio.create_task(job.run())
            await gate.started.wait()
            job.request_stop()
            return await running
    stats = asyncio.run(go())
    assert stats.outcome == "stopped"
    assert stats.in_flight == 0
    assert stored(settings) == {}
    assert queue(settings) == {f"{ORIGIN}/": 0}


def test_a_second_stop_cancels_at_once_whatever_the_grace_period(tmp_path: Path) -> None:
    job, gate, settings = hanging_crawl(tmp_path, grace=3600)

    async def go() -> RunStats:
        async with asyncio.timeout(20):   # a grace period of an hour would trip this guard
            running = asyncio.create_task(job.run())
            await gate.started.wait()
            job.request_stop()
            await asyncio.sleep(0.05)
            job.request_stop()
            return await running
    assert asyncio.run(go()).outcome == "stopped"
    assert queue(settings) == {f"{ORIGIN}/": 0}


def test_pages_are_stored_before_their_links_are_added_and_acknowledged_last(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def spy(cls: type, name: str) -> None:
        original = getattr(cls, name)

        async def wrapper(self: Any, *args: Any) -> Any:
            calls.append(name)
            return await original(self, *args)
        monkeypatch.setattr(cls, name, wrapper)

    spy(PageStore, "store")
    spy(SqliteFrontier, "add")
    spy(SqliteFrontier, "ack")
    server = FakeWeb(FakeClock(), {"/": lambda: page("/a"), "/a": lambda: page()})
    run(crawl(make_settings(tmp_path), server))
    assert calls[0] == "add"                      # the seed
    batches = calls[1:]
    assert len(batches) >= 3
    assert batches == ["store", "add", "ack"] * (len(batches) // 3)


def test_an_error_in_a_visit_ends_the_crawl_as_one_internal_error(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    original = visit.record_of

    async def broken(item: FrontierItem, response: Response, *args: Any) -> PageRecord:
        if item.url.endswith("/bug"):
            raise RuntimeError("boom")
        return await original(item, response, *args)

    monkeypatch.setattr(visit, "record_of", broken)
    server = FakeWeb(FakeClock(), {"/": lambda: page("/bug")})
    settings = make_settings(tmp_path)
    with pytest.raises(InternalError, match="unexpected RuntimeError in the crawl: boom") as caught:
        run(crawl(settings, server))
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert stored(settings) == {f"{ORIGIN}/": 200}        # what was committed stays
    assert queue(settings) == {f"{ORIGIN}/bug": 0}        # the failed URL is pending again


def test_the_cli_reports_an_error_in_a_visit_in_one_line_and_exits_1(tmp_path: Path, site: Site, cli: CLI,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    site.routes.update({"/": html("home", "/bug"), "/bug": html("bug")})

    async def broken(item: FrontierItem, response: Response, *args: Any) -> PageRecord:
        raise RuntimeError("boom")

    monkeypatch.setattr(visit, "record_of", broken)
    done = cli.in_process("crawl", site.origin + "/", "--db", tmp_path / "job.db", "--no-robots", "--workers", 1)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("crawler: failed: unexpected RuntimeError in the crawl: boom at test_scheduler.py:")


def test_a_failing_job_file_ends_the_crawl_with_a_storage_error_and_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = PageStore.store
    stores = 0

    async def fails_on_the_second_batch(self: PageStore, records: Any) -> None:
        nonlocal stores
        stores += 1
        if stores == 1:
            return await original(self, records)
        async with self.job.transaction() as db:   # a real SQLite error, through the real boundary
            await db.execute("INSERT INTO pages (url_id, fetched_at) VALUES (999999, 'x')")
            await db.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(PageStore, "store", fails_on_the_second_batch)
    server = FakeWeb(FakeClock(), {"/": lambda: page("/a", "/b"), "/a": page, "/b": page})
    settings = make_settings(tmp_path, concurrency=1)
    with pytest.raises(StorageError, match=r"cannot write to job file .*job\.db: no such table: no_such_table"):
        run(crawl(settings, server))
    assert stored(settings) == {f"{ORIGIN}/": 200}        # the first batch; the failed one rolled back
    conn = sqlite3.connect(settings.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM urls WHERE state = 1").fetchone() == (0,)   # leases released
    finally:
        conn.close()
    # and the job resumes to the end once the file can be written again
    monkeypatch.setattr(PageStore, "store", original)
    assert run(crawl(settings, server)).outcome == "finished"
    assert len(stored(settings)) == 3


def test_a_job_resumes_where_it_stopped_without_refetching(tmp_path: Path) -> None:
    clock = FakeClock()
    server = FakeWeb(clock, fan_out(10))
    settings = make_settings(tmp_path, max_pages=4, concurrency=2)
    assert run(crawl(settings, server)).outcome == "limit"
    more = replace(settings, max_pages=0)
    resumed = Crawl(more, [], explicit=frozenset({"max_pages"}), transport=httpx2.MockTransport(server),
                    clock=clock, rng=random.Random(1))
    assert run(resumed).outcome == "finished"
    assert sorted(server.paths()) == sorted(["/", *(f"/p{n}" for n in range(10))])   # each once


def test_storage_boundary_names_a_full_disk_and_says_the_job_is_intact(tmp_path: Path) -> None:
    from crawler.storage.jobfile import translate
    error = translate(sqlite3.OperationalError("database or disk is full"), tmp_path / "j.db", "write to")
    assert isinstance(error, StorageError)
    assert str(error).startswith(f"cannot write to job file {tmp_path / 'j.db'}: database or disk is full; the job is intact")


def test_a_job_file_transaction_rolls_back_on_any_failure(tmp_path: Path) -> None:
    async def go() -> int:
        async with JobFile(tmp_path / "job.db") as job:
            async def half_done() -> None:
                async with job.transaction() as db:
                    await db.execute("INSERT INTO meta VALUES ('half', '1')")
                    raise KeyError("not a SQLite error: rolled back all the same")
            with pytest.raises(KeyError):
                await half_done()
            rows = await job.fetchall("SELECT COUNT(*) FROM meta WHERE key = 'half'")
            return int(rows[0][0])
    assert asyncio.run(go()) == 0


def test_a_transaction_opened_inside_another_of_the_same_task_joins_it(tmp_path: Path) -> None:
    async def go() -> int:
        async with JobFile(tmp_path / "job.db") as job:
            async def batch() -> None:
                async with job.transaction():
                    async with job.transaction() as db:      # the page store's step
                        await db.execute("INSERT INTO meta VALUES ('stored', '1')")
                    async with job.transaction() as db:      # the frontier's step fails
                        await db.execute("INSERT INTO meta VALUES ('stored', '2')")
            with pytest.raises(StorageError, match="UNIQUE constraint failed"):
                await batch()
            rows = await job.fetchall("SELECT COUNT(*) FROM meta WHERE key = 'stored'")
            return int(rows[0][0])
    assert asyncio.run(go()) == 0   # the whole batch rolled back, the first step with it


def test_a_retryable_failure_during_a_stop_is_no_verdict_and_the_resume_fetches_the_url(tmp_path: Path) -> None:
    # A stop by a signal may kill what was fetching (a worker process) or cut a request short.
    clock = FakeClock()
    settings = make_settings(tmp_path, retries=2)
    job: Crawl | None = None

    def stopped_mid_request() -> httpx2.Response:
        assert job is not None
        job.request_stop()
        return reply(503, b"busy")

    job = crawl(settings, FakeWeb(clock, {"/": stopped_mid_request}))
    assert run(job).outcome == "stopped"
    assert stored(settings) == {}
    assert queue(settings) == {f"{ORIGIN}/": 0}   # pending again: the next run fetches it
    assert run(crawl(settings, FakeWeb(clock, {"/": page}))).outcome == "finished"
    assert stored(settings) == {f"{ORIGIN}/": 200}


def test_a_url_whose_worker_died_on_every_try_is_recorded_and_fetched_again_by_the_next_run(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path, retries=1)

    async def dies(request: httpx2.Request) -> httpx2.Response:
        raise WorkerDied(str(request.url), "worker process 0 exited (-9)")

    first = Crawl(settings, [ORIGIN + "/"], transport=httpx2.MockTransport(dies), clock=clock, rng=random.Random(1))
    assert run(first).outcome == "finished"
    with JobReader(settings.db) as reader:
        assert [r["error"] for r in reader.records(("error",))] == ["worker_died"]   # what this run saw
    assert queue(settings) == {f"{ORIGIN}/": 0}   # and not the URL's verdict: the next run tries again
    assert run(crawl(settings, FakeWeb(clock, {"/": page}))).outcome == "finished"
    assert stored(settings) == {f"{ORIGIN}/": 200}
