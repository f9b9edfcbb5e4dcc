"""The job file: schema migrations, and what a full disk does to a crawl (one line, an intact job)."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CLI
from site_server import Site, html

from crawler.errors import StorageError
from crawler.storage.jobfile import JobFile
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
        assert job.links(1) == [("http://a.test/down", False, None), ("http://a.test/gone", False, None),
                                ("http://b.test/", True, None)]
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

    line = cli.fails(1, "crawl", site.url("/"), "--db", job, "--no-robots", "--concurrency", "4")
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
    done = cli("crawl", "--db", bigger / "job.db")
    assert done.returncode == 0, done.stderr
    stats = cli.stats(bigger / "job.db")
    assert stats["pages"] == 151
    assert stats["statuses"] == {"200": 151}
    fetched_again = {site.url(h.path) for h in site.hits[hits_before:]}
    assert not fetched_again & acknowledged, "pages acknowledged before the disk filled were fetched again"
    # at most the batch in flight: visits hold their slots (2 x --concurrency) until committed
    assert len(fetched_again & stored_before) <= 8, "more than the batch in flight was fetched again"
