"""The job file: schema migrations, and what a full disk does to a crawl (one line, an intact job)."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CLI, cli_command, cli_env
from job_files import small_job
from site_server import Site, html

from crawler.errors import JobLocked, StorageError
from crawler.storage.jobfile import JobFile, JobLock
from crawler.storage.read import JobReader, open_readonly
from crawler.storage.schema import SCHEMA_VERSION

# A job file as schema version 1 wrote it (before "reason" was split and links named targets by URL).
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE urls (id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE, host TEXT NOT NULL,
    depth INTEGER NOT NULL, state INTEGER NOT NULL, reason TEXT);
CREATE INDEX urls_pending ON urls(id) WHERE state = 0;
CREATE INDEX urls_leased ON urls(id) WHERE state = 1;
CREATE TABLE pages (url_id INTEGER PRIMARY KEY REFERENCES urls(id), final_url TEXT, status INTEGER,
    content_type TEXT, title TEXT, description TEXT, canonical TEXT, noindex INTEGER NOT NULL DEFAULT 0,
    nofollow INTEGER NOT NULL DEFAULT 0, outlinks INTEGER NOT NULL DEFAULT 0, bytes INTEGER, elapsed_ms INTEGER,
    fetched_at TEXT NOT NULL, error TEXT, etag TEXT, last_modified TEXT, content_hash TEXT, duplicate_of INTEGER,
    simhash INTEGER, near_duplicate_of INTEGER, http_version TEXT, reason TEXT, pass INTEGER NOT NULL DEFAULT 1,
    change TEXT, headers BLOB, body BLOB);
CREATE TABLE history (url_id INTEGER NOT NULL, status INTEGER, content_hash TEXT, fetched_at TEXT NOT NULL,
    pass INTEGER NOT NULL);
CREATE TABLE simhash_bands (band INTEGER NOT NULL, value INTEGER NOT NULL, url_id INTEGER NOT NULL,
    PRIMARY KEY (band, value, url_id)) WITHOUT ROWID;
CREATE TABLE links (source_id INTEGER NOT NULL, target_id INTEGER NOT NULL, nofollow INTEGER NOT NULL,
    PRIMARY KEY (source_id, target_id)) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', '1'), ('state', '"finished"');
INSERT INTO urls VALUES (1, 'http://a.test/', 'a.test', 0, 2, NULL), (2, 'http://a.test/gone', 'a.test', 1, 2, NULL),
    (3, 'http://a.test/down', 'a.test', 1, 2, NULL), (4, 'http://b.test/', 'b.test', 1, 3, 'off_host');
INSERT INTO pages (url_id, status, fetched_at, error, reason) VALUES
    (1, 200, '2026-11-01T00:00:00Z', NULL, 'OK'),
    (2, 404, '2026-11-01T00:00:01Z', 'http_error', 'Not Found'),
    (3, NULL, '2026-11-01T00:00:02Z', 'timeout', 'no answer within 30 s');
INSERT INTO links VALUES (1, 2, 0), (1, 3, 0), (1, 4, 1);
"""


def v1_job(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    conn.close()
    return path


def test_a_version_1_job_file_is_migrated_when_a_crawl_opens_it(tmp_path: Path) -> None:
    db = v1_job(tmp_path / "old.db")

    async def go() -> list[tuple[object, ...]]:
        async with JobFile(db) as job:
            return await job.fetchall("SELECT url_id, reason_phrase, error_message FROM pages ORDER BY url_id")
    assert asyncio.run(go()) == [(1, "OK", None), (2, "Not Found", None), (3, None, "no answer within 30 s")]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert conn.execute("SELECT url, exclusion FROM urls WHERE state = 3").fetchall() == [("http://b.test/", "off_host")]
        # schema 4: links have an anchor text and pages their request headers and server address,
        # none of which an old crawl kept
        assert conn.execute("SELECT source_id, target, nofollow, anchor FROM links ORDER BY target").fetchall() == [
            (1, "http://a.test/down", 0, None), (1, "http://a.test/gone", 0, None), (1, "http://b.test/", 1, None)]
        assert conn.execute("SELECT request_headers, ip FROM pages WHERE url_id = 1").fetchone() == (None, None)
    finally:
        conn.close()


def test_stats_and_export_read_a_version_1_job_file(tmp_path: Path) -> None:
    db = v1_job(tmp_path / "old.db")
    with JobReader(db) as job:
        assert job.summary()["links"] == 3
        assert [r["error"] for r in job.records(("url", "error"))] == [None, "http_error", "timeout"]
        assert job.links(1) == [("http://a.test/down", False, None, "page"), ("http://a.test/gone", False, None, "page"),
                                ("http://b.test/", True, None, "page")]
        # a page crawled before request headers were kept: a response, and no request, in a WARC
        (capture, gone) = job.captures()
        assert (capture.url, capture.status, capture.reason_phrase, capture.request_headers) == (
            "http://a.test/", 200, "OK", [])
        assert gone.status == 404


def test_a_job_file_from_a_newer_crawler_is_refused(tmp_path: Path) -> None:
    db = v1_job(tmp_path / "new.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match=r"written by a newer crawler \(schema 99 > "):
        open_readonly(db)


def test_a_sqlite_file_that_is_no_job_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.close()
    before = db.read_bytes()

    async def go() -> None:
        async with JobFile(db):
            pass
    with pytest.raises(StorageError, match="is a SQLite file but not a crawler job"):
        asyncio.run(go())
    assert db.read_bytes() == before


# -- a full disk ------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, the size of a full disk (needs root and mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a 2 MB tmpfs needs root and mount(8)")
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_ends_the_crawl_in_one_line_and_the_job_resumes_elsewhere(
        small_disk: Path, tmp_path: Path, site: Site, cli: CLI) -> None:
    # 150 pages of 24 KB that do not compress: 3.6 MB of bodies, for a 2 MB disk.
    rng = random.Random(5)
    pages = [f"/p{n}" for n in range(150)]
    site.routes["/"] = html("home", *pages)
    for path in pages:
        noise = base64.b64encode(rng.randbytes(18_000)).decode()
        site.routes[path] = html(path, extra=f"<p>{noise}</p>")
    job = small_disk / "job.db"

    line = cli.fails(1, "crawl", site.url("/"), "--db", job, "--no-robots", "--concurrency", "4", fresh=True)
    assert "database or disk is full" in line
    assert "the job is intact" in line

    bigger = tmp_path / "bigger"
    bigger.mkdir()
    for name in os.listdir(small_disk):          # the job file with its -wal, as the message says
        if name.startswith("job.db") and not name.endswith(".lock"):
            shutil.copy(small_disk / name, bigger / name)
    conn = sqlite3.connect(bigger / "job.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Acknowledged: stored, links added, URL done. The batch the disk filled on may have got as far
        # as storing its pages and no further; those URLs are fetched again, as after a kill.
        acknowledged = {u for (u,) in conn.execute("SELECT url FROM urls WHERE state = 2")}
        stored_before = {u for (u,) in conn.execute("SELECT u.url FROM pages p JOIN urls u ON u.id = p.url_id")}
    finally:
        conn.close()
    assert acknowledged, "the first run stored nothing before the disk filled: the test proves nothing"
    assert acknowledged <= stored_before

    hits_before = len(site.hits)
    done = cli.in_process("crawl", "--db", bigger / "job.db")
    assert done.returncode == 0, done.stderr
    stats = cli.stats(bigger / "job.db")
    assert stats["pages"] == 151
    assert stats["statuses"] == {"200": 151}
    fetched_again = {site.url(h.path) for h in site.hits[hits_before:]}
    assert not fetched_again & acknowledged, "pages acknowledged before the disk filled were fetched again"
    # at most the batch in flight: visits hold their slots (2 x --concurrency) until committed
    assert len(fetched_again & stored_before) <= 8, "more than the batch in flight was fetched again"


# -- a damaged job file, a read-only one -------------------------------------------------------------

# Every command that reads a job file, with what it needs besides --db.
JOB_COMMANDS = {
    "stats": ("stats",), "stats --hosts": ("stats", "--hosts"), "stats --json": ("stats", "--json"),
    "export jsonl": ("export",), "export csv": ("export", "--format", "csv"),
    "export parquet": ("export", "--format", "parquet", "--out", "out.parquet"),
    "export links": ("export", "--format", "links"), "export warc": ("export", "--format", "warc"),
    "report": ("report", "--out", "report.html"), "explain": ("explain", "http://a.test/0"),
    "add": ("add", "http://a.test/new"), "crawl": ("crawl", "http://127.0.0.1:9/", "--timeout", "1", "--retries", "0"),
}


def damaged(path: Path, sql: str) -> Path:
    """A job file of three pages, then ``sql`` run on it."""
    small_job(path)
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()
    return path


def fails_in_one_line(cli: CLI, *args: object) -> str:
    """Exit 1 and one line on stderr; in this process (no traceback can hide in a subprocess's
    stderr: an exception would fail the test), but for crawl, which runs as it does for a user."""
    if args[0] == "crawl":
        return cli.fails(1, *args, fresh=True)
    done = cli.in_process(*args)
    assert done.returncode == 1, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr.strip()


@pytest.mark.parametrize("command", JOB_COMMANDS)
@pytest.mark.parametrize("version", ["abc", "0", "-5"])
def test_a_schema_version_that_is_no_positive_integer_is_one_line_from_every_command(
        cli: CLI, version: str, command: str) -> None:
    db = damaged(cli.cwd / "job.db", f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    line = fails_in_one_line(cli, *JOB_COMMANDS[command], "--db", db)
    assert line == f"crawler: cannot run: {db} is a damaged job file: its schema version is '{version}', " \
                   "not a positive integer"
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    assert not (cli.cwd / "out.parquet").exists()
    assert not (cli.cwd / "report.html").exists()


@pytest.mark.parametrize("command", ["report", "export parquet", "export jsonl"])
def test_text_in_a_number_column_is_one_line(cli: CLI, command: str) -> None:
    db = damaged(cli.cwd / "job.db", "UPDATE pages SET status = 'abc' WHERE url_id = 2")
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    line = fails_in_one_line(cli, *JOB_COMMANDS[command], "--db", db)
    assert line.startswith(f"crawler: cannot run: {db} is a damaged job file: ")
    assert "status" in line
    assert "not a number" in line
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def test_a_meta_value_that_is_not_json_is_one_line(cli: CLI) -> None:
    db = damaged(cli.cwd / "job.db", "INSERT INTO meta VALUES ('state', 'fini{')")
    line = fails_in_one_line(cli, "stats", "--db", db)
    assert line == f"crawler: cannot run: {db} is a damaged job file: its state is 'fini{{', not a stored value"


@pytest.fixture
def cannot_write() -> list[str]:
    """A command prefix under which folders and files are only as writable as their modes say.
    Root writes into a chmod 555 folder regardless (CAP_DAC_OVERRIDE), so as root the command runs
    without that capability (setpriv); the fixture first checks that this really stops a write."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("as root, a read-only folder needs setpriv(1) to be read-only")
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_a_job_in_a_read_only_folder_is_read_by_every_reader(cli: CLI, tmp_path: Path,
                                                              cannot_write: list[str]) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    db = damaged(folder / "job.db", "PRAGMA journal_mode=WAL")   # as a crawl leaves it
    (tmp_path / "out").mkdir()
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    folder.chmod(0o555)
    try:
        probe = subprocess.run([*cannot_write, "touch", str(folder / "probe")], capture_output=True, check=False)
        assert probe.returncode != 0, "the folder is writable after all: this test would prove nothing"
        for command in ("stats", "stats --hosts", "export jsonl", "export parquet", "report", "explain"):
            args = [a.replace("out.", "out/out.").replace("report.html", "out/report.html")
                    for a in JOB_COMMANDS[command]]
            done = subprocess.run([*cannot_write, *cli_command(*args, "--db", db)], capture_output=True, text=True,
                                  cwd=tmp_path, env=cli_env(), timeout=60, check=False)
            assert done.returncode == 0, f"{command}: {done.stderr}"
            if command == "export jsonl":
                assert len(done.stdout.splitlines()) == 3
        assert sorted(p.name for p in folder.iterdir()) == ["job.db"]   # no -wal, no -shm left behind
        assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    finally:
        folder.chmod(0o755)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["out.parquet", "report.html"]


def test_an_old_job_in_a_read_only_folder_says_it_must_be_upgraded(cli: CLI, tmp_path: Path,
                                                                     cannot_write: list[str]) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    db = v1_job(folder / "old.db")
    folder.chmod(0o555)
    try:
        done = subprocess.run([*cannot_write, *cli_command("stats", "--db", db)], capture_output=True, text=True,
                              cwd=tmp_path, env=cli_env(), timeout=60, check=False)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"crawler: cannot run: {db} has schema 1, older than {SCHEMA_VERSION}, "
                                        "and is read-only: run any command on it once where it can be written, "
                                        "to upgrade it"]


def test_the_job_lock_holds_while_held_and_leaves_no_file_once_released(tmp_path: Path) -> None:
    holder, other = JobLock(tmp_path / "job.db"), JobLock(tmp_path / "job.db")
    holder.acquire()
    assert (tmp_path / "job.db.lock").read_text() == str(os.getpid())
    with pytest.raises(JobLocked, match=f"being crawled by process {os.getpid()}"):
        other.acquire()
    holder.release()
    assert not (tmp_path / "job.db.lock").exists()
    other.acquire()
    other.release()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_won_on_a_lock_file_its_holder_just_deleted_is_taken_again_on_the_new_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race a deleted lock file opens: this process opened ``job.db.lock``, then its holder
    deleted it and let go, and another process made a new one and holds it. Winning the flock on the
    deleted file must not count: the lock is the file at the path."""
    path = tmp_path / "job.db.lock"
    rival = JobLock(tmp_path / "job.db")
    real_flock = fcntl.flock
    calls = []

    def flock_after_the_holder_let_go(fd: int, operation: int) -> None:
        calls.append(fd)
        if len(calls) == 1:   # our first flock: the file we opened is deleted, a rival locks a new one
            path.unlink()
            rival.acquire()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_the_holder_let_go)
    with pytest.raises(JobLocked):
        JobLock(tmp_path / "job.db").acquire()
    monkeypatch.undo()
    rival.release()
