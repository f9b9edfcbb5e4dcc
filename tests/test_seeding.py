"""``crawler add`` (crawler/seeding.py): more seeds queued in a job, idle or being crawled, and
``crawler crawl`` with seeds on a job that another process is crawling (issue 9, "Adding seeds to a
job, even while it runs").

A second host is a second ``Site`` addressed as ``localhost``: scope compares host names without
ports, so a second site on 127.0.0.1 would already be in scope.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from site_server import Site, Slow, html

from crawler.errors import JobLocked
from crawler.seeding import add_seeds, crawled_by_another
from crawler.storage.jobfile import JobFile

FAST = ("--timeout", "2", "--retries", "0")


@pytest.fixture
def other() -> Iterator[Site]:
    """A second site, on another host name (``other.url``): a page linking one more page there."""
    with Site({"/": html("Other", "/linked"), "/linked": html("Linked")}) as running:
        yield running


def on_localhost(site: Site, path: str = "/") -> str:
    return f"http://localhost:{site.port}{path}"


def titles(cli: Any, db: Path) -> dict[str, str | None]:
    return {url: rec["title"] for url, rec in cli.export_by_url(db).items()}


def meta(db: Path, key: str) -> str | None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


@pytest.fixture
def finished_job(site: Site, cli: Any, db: Path) -> Path:
    site.routes.update({"/": html("Home"), "/more": html("More")})
    done = cli.in_process("crawl", site.url("/"), "--db", db, *FAST)
    assert done.returncode == 0, done.stderr
    assert cli.stats(db)["state"] == "finished"
    return db


def slow_crawl(site: Site, cli: Any, db: Path, seconds: float = 30.0) -> subprocess.Popen[str]:
    """A crawl of ``site`` that is still running when this returns: its /slow answers after ``seconds``."""
    site.routes.update({"/": html("Home", "/slow"), "/slow": Slow(seconds, html("Slow"))})
    proc = cli.popen("crawl", site.url("/"), "--db", db, "--timeout", str(seconds + 10), "--retries", "0")
    if not site.wait_for("/slow"):
        cli.stop(proc)
        pytest.fail("the crawl never got going")
    return proc


# -- an idle job ---------------------------------------------------------------------------------


def resume_to_the_end(site: Site, cli: Any, db: Path) -> None:
    """Resume the job once /slow answers at once: it ends with both sites' pages, the added ones too."""
    site.routes["/slow"] = html("Slow, but now")
    resumed = cli.in_process("crawl", "--db", db, *FAST)
    assert resumed.returncode == 0, resumed.stderr
    assert set(titles(cli, db).values()) == {"Home", "Slow, but now", "Other", "Linked"}


def test_add_to_a_finished_job_says_how_many_were_new_and_the_next_crawl_fetches_them(
        site: Site, other: Site, cli: Any, finished_job: Path) -> None:
    db = finished_job
    done = cli.in_process("add", "--db", db, site.url("/more"), site.url("/"), on_localhost(other))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"2 new URLs queued in {db} (1 already known)\n"
    assert done.stderr == ""
    assert cli.stats(db)["state"] != "finished"
    resumed = cli.in_process("crawl", "--db", db, *FAST)
    assert resumed.returncode == 0, resumed.stderr
    assert "already finished" not in resumed.stdout
    # The added host joined the job's scope: the page it links on that host was crawled too.
    assert titles(cli, db) == {site.url("/"): "Home", site.url("/more"): "More", on_localhost(other): "Other",
                               on_localhost(other, "/linked"): "Linked"}
    assert site.count("/") == 1, "a URL the job already knew was fetched again"
    assert cli.stats(db)["state"] == "finished"


def test_add_of_urls_the_job_knows_changes_nothing(site: Site, cli: Any, finished_job: Path) -> None:
    db = finished_job
    done = cli.in_process("add", "--db", db, site.url("/"), site.url("/#again"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"0 new URLs queued in {db} (1 already known)\n"
    assert cli.stats(db)["state"] == "finished"
    again = cli.in_process("crawl", "--db", db, *FAST)
    assert again.returncode == 0, again.stderr
    assert "already finished" in again.stdout


def test_add_to_an_unfinished_job_keeps_it_resumable(site: Site, other: Site, cli: Any, db: Path) -> None:
    """A crawl killed mid-way leaves its job unfinished (URLs leased); add keeps its state, and the
    next run crawls what was left and what was added."""
    first = slow_crawl(site, cli, db)
    cli.stop(first)
    state = meta(db, "state")
    done = cli.in_process("add", "--db", db, on_localhost(other))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"1 new URL queued in {db} (0 already known)\n"
    assert meta(db, "state") == state
    resume_to_the_end(site, cli, db)


def test_add_reads_a_seeds_file_as_crawl_does(site: Site, cli: Any, finished_job: Path, tmp_path: Path) -> None:
    db = finished_job
    seeds = tmp_path / "more.txt"
    seeds.write_text(f"# more\n\n{site.url('/more')}\nnot a url\n{site.url('/')}\n", encoding="utf-8")
    done = cli.in_process("add", "--db", db, "--seeds", seeds)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"crawler: {seeds}:4: not an absolute http(s) URL: 'not a url' (skipped)"]
    assert done.stdout == f"1 new URL queued in {db} (1 already known)\n"
    from_stdin = cli.in_process("add", "--db", db, "--seeds", "-", stdin=site.url("/third") + "\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == f"1 new URL queued in {db} (0 already known)\n"


def test_seeds_given_twice_count_once(site: Site, cli: Any, finished_job: Path) -> None:
    done = cli.in_process("add", "--db", finished_job, site.url("/more"), site.url("/more"))
    assert done.stdout == f"1 new URL queued in {finished_job} (0 already known)\n"


# -- bad input: one line, the right exit code ----------------------------------------------------


def test_add_to_a_missing_job_creates_no_file(cli: Any, tmp_path: Path) -> None:
    line = cli.fails(2, "add", "--db", "typo.db", "http://127.0.0.1:9/")
    assert line == "crawler: error: no job file at typo.db"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "no seed URLs given"),
        (("not a url",), "not an absolute http(s) URL"),
        (("ftp://host/x",), "unsupported scheme 'ftp'"),
        (("--seeds", "/missing/file"), "/missing/file"),
    ],
)
def test_add_with_bad_seeds_is_exit_2(cli: Any, finished_job: Path, args: tuple[str, ...], words: str) -> None:
    line = cli.fails(2, "add", "--db", finished_job, *args)
    assert line.startswith("crawler: error: ")
    assert words in line


def test_add_with_a_seeds_file_of_no_valid_url(cli: Any, finished_job: Path, tmp_path: Path) -> None:
    seeds = tmp_path / "bad.txt"
    seeds.write_text("# nothing\n", encoding="utf-8")
    assert "no valid URL in seeds file" in cli.fails(2, "add", "--db", finished_job, "--seeds", seeds)


def test_add_to_a_sqlite_file_that_is_not_a_job(cli: Any, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    assert "not a crawler job" in cli.fails(1, "add", "--db", other, "http://127.0.0.1:9/")


def test_add_to_a_file_that_is_not_sqlite(cli: Any, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 50, encoding="utf-8")
    assert str(bogus) in cli.fails(1, "add", "--db", bogus, "http://127.0.0.1:9/")
    assert bogus.read_text(encoding="utf-8").startswith("these are my notes")


# -- a job being crawled -------------------------------------------------------------------------


def test_add_beside_a_job_file_open_for_crawling(tmp_path: Path) -> None:
    """In one process: the crawl's exclusive open holds the job lock, and add still writes."""
    db = tmp_path / "job.db"

    async def go() -> tuple[int, int, Any, bool]:
        async with JobFile(db) as crawl:
            await crawl.set_meta("state", "running")
            locked = crawled_by_another(db) is not None
            added = await add_seeds(db, ["http://a.example/", "http://b.example/x"])
            again = await add_seeds(db, ["http://a.example/"])
            hosts = await crawl.get_meta("seed_hosts")
            with pytest.raises(JobLocked):
                async with JobFile(db):
                    pass
        return added.queued, again.known, hosts, locked

    assert asyncio.run(go()) == (2, 1, ["a.example", "b.example"], True)
    assert crawled_by_another(db) is None


def test_add_while_another_process_crawls_the_job(site: Site, other: Site, cli: Any, db: Path) -> None:
    first = slow_crawl(site, cli, db)
    try:
        done = cli.in_process("add", "--db", db, on_localhost(other))
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"1 new URL queued in {db} (0 already known)\n"
        assert first.poll() is None, "add disturbed the running crawl"
    finally:
        cli.stop(first)
    resume_to_the_end(site, cli, db)


def test_crawl_with_seeds_on_a_job_another_process_crawls_queues_them(site: Site, other: Site, cli: Any,
                                                                        db: Path, tmp_path: Path) -> None:
    first = slow_crawl(site, cli, db)
    seeds = tmp_path / "more.txt"
    seeds.write_text(f"{on_localhost(other)}\n{site.url('/')}\n", encoding="utf-8")
    try:
        done = cli.in_process("crawl", "--db", db, "--seeds", seeds, *FAST)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"1 new URL queued in {db} (1 already known)\n"
        assert done.stderr == (f"crawler: job {db} is being crawled by process {first.pid}, which picks them up\n"
                               "crawler: ignored --timeout, --retries: only the seeds are handed to the running "
                               "crawl, which keeps its own settings (give them again once it has ended)\n")
        # Without seeds there is nothing to hand over: a locked job is still refused.
        line = cli.fails(2, "crawl", "--db", db, *FAST)
        assert f"process {first.pid}" in line
        assert first.poll() is None, "the second crawl disturbed the first"
    finally:
        cli.stop(first)
    resume_to_the_end(site, cli, db)


def test_flags_given_to_a_crawl_of_a_job_another_process_runs_are_named_as_ignored(
        site: Site, other: Site, cli: Any, db: Path) -> None:
    first = slow_crawl(site, cli, db)
    try:
        done = cli.in_process("crawl", on_localhost(other), "--db", db, "--recrawl", "--max-depth", "0")
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"1 new URL queued in {db} (0 already known)\n"
        assert done.stderr.splitlines()[1:] == [
            "crawler: ignored --max-depth, --recrawl: only the seeds are handed to the running crawl, which keeps "
            "its own settings (give them again once it has ended)"]
        assert first.poll() is None, "the second crawl disturbed the first"
    finally:
        cli.stop(first)


def test_a_running_crawl_picks_up_added_seeds_within_a_second_and_widens_its_scope(
        site: Site, other: Site, cli: Any, db: Path) -> None:
    # /slow holds the first crawl open for 5 s; the added seed must be fetched long before that.
    first = slow_crawl(site, cli, db, seconds=5.0)
    try:
        done = cli.in_process("add", "--db", db, on_localhost(other))
        assert done.returncode == 0, done.stderr
        added_at = time.monotonic()
        assert other.wait_for("/", timeout=5), "the running crawl did not pick up the added seed"
        assert other.times("/")[0] - added_at < 2.0
        assert other.wait_for("/linked", timeout=5), "the running crawl did not widen its scope to the added host"
        assert first.poll() is None, "picked up only after the crawl's own work was done"
        _, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
    finally:
        cli.stop(first)
    assert titles(cli, db) == {site.url("/"): "Home", site.url("/slow"): "Slow", on_localhost(other): "Other",
                               on_localhost(other, "/linked"): "Linked"}
    assert cli.stats(db)["state"] == "finished"
