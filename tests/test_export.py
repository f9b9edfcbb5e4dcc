"""The export stage: the format registry, and files written all or nothing."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import pytest

from crawler import export
from crawler.errors import StorageError
from crawler.export.base import FIELDS, Selection
from crawler.storage.read import JobReader
from crawler.storage.schema import SCHEMA


def job(path: Path, rows: int = 3) -> Path:
    """A job file written straight through the schema: ``rows`` pages of status 200."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    for n in range(rows):
        conn.execute("INSERT INTO urls (id, url, host, depth, state, exclusion) VALUES (?, ?, 'a.test', 0, 2, NULL)", (n + 1, f"http://a.test/{n}"))
        conn.execute("INSERT INTO pages (url_id, status, title, fetched_at) VALUES (?, 200, ?, ?)",
                     (n + 1, f"page {n}", f"2026-11-29T00:00:0{n}Z"))
    conn.commit()
    conn.close()
    return path


def test_every_format_is_registered_and_writes_the_interface_fields(tmp_path: Path) -> None:
    db = job(tmp_path / "job.db")
    assert set(export.FORMATS) >= {"jsonl", "csv"}
    out = tmp_path / "out.jsonl"
    assert export.write_file(out, "jsonl", [db], Selection()) == 3
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [list(r) for r in records] == [list(FIELDS)] * 3
    assert [r["title"] for r in records] == ["page 0", "page 1", "page 2"]
    out_csv = tmp_path / "out.csv"
    assert export.write_file(out_csv, "csv", [db], Selection(("url", "status"))) == 3
    assert out_csv.read_text(encoding="utf-8").splitlines() == [
        "url,status", "http://a.test/0,200", "http://a.test/1,200", "http://a.test/2,200"]


def test_a_failed_export_leaves_the_earlier_file_and_no_partial_one(tmp_path: Path) -> None:
    good = job(tmp_path / "good.db")
    bad = tmp_path / "bad.db"
    conn = sqlite3.connect(bad)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier export\n", encoding="utf-8")
    with pytest.raises(StorageError, match="not a crawler job"):
        export.write_file(out, "jsonl", [good, bad], Selection())   # the second job is no job
    assert out.read_text(encoding="utf-8") == "an earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db", "good.db", "out.jsonl"]


def test_an_export_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    export.write_file(out, "jsonl", [job(tmp_path / "job.db")], Selection())
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_merged_export_stopped_halfway_leaves_the_jobs_attached_to_nothing_and_no_scratch_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with JobReader(job(tmp_path / "a.db")) as a, JobReader(job(tmp_path / "b.db")) as b:
        pages = Selection().pages([a, b])
        assert next(pages)[1].url == "http://a.test/0"
        pages.close()   # a format that failed on its first record
        for reader in (a, b):
            assert [name for _, name, _ in reader.conn.execute("PRAGMA database_list")] == ["main"]
    assert list(scratch.iterdir()) == []
